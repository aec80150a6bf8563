"""Upstream failures as the SDKs see them: 5xx, 429, fallback, a stream cut mid-way, quotas.

Route ``o3-mini`` has the single target ``flaky``; ``o4-mini`` falls back from
``flaky`` to ``backup`` (see conftest).
"""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.integration.conftest import StartRegate, Upstream, chat, messages

HI = chat("hi")
HI_MESSAGES = messages("hi")


def test_upstream_5xx_becomes_502_naming_the_provider_never_its_key(
    oai: openai.OpenAI, upstream: Upstream
) -> None:
    key = upstream.keys["flaky"]
    upstream.fail("flaky", {"status": 500, "message": f"database on fire; your key {key} is fine"})

    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(model="o3-mini", messages=HI)

    error = caught.value
    assert error.status_code == 502 and error.code == "upstream_error"
    assert "'flaky'" in error.message and "database on fire" in error.message
    assert key not in error.response.text and key not in str(error.response.headers)
    assert len(upstream.received("flaky")) == 1


def test_upstream_5xx_reaches_an_anthropic_client_in_its_format(
    claude: anthropic.Anthropic, upstream: Upstream
) -> None:
    upstream.fail("flaky", "status=503")

    with pytest.raises(anthropic.InternalServerError) as caught:
        claude.messages.create(model="o3-mini", max_tokens=10, messages=HI_MESSAGES)

    body = caught.value.body
    assert caught.value.status_code == 502
    assert (
        isinstance(body, dict) and body["type"] == "error" and "'flaky'" in body["error"]["message"]
    )


def test_upstream_401_is_a_gateway_credential_problem_not_the_callers(
    oai: openai.OpenAI, upstream: Upstream
) -> None:
    upstream.fail("flaky", "status=401")

    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(model="o3-mini", messages=HI)

    assert caught.value.status_code == 502 and caught.value.code == "upstream_auth_error"


def test_upstream_429_raises_rate_limit_error_with_retry_after(
    oai: openai.OpenAI, upstream: Upstream
) -> None:
    upstream.fail("flaky", "status=429;retry-after=7")

    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model="o3-mini", messages=HI)

    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert "'flaky'" in caught.value.message


@pytest.mark.parametrize("fault", ["status=503", "reset", "disconnect_after_chunks=0"])
def test_fallback_to_the_second_target_when_the_first_fails_before_the_first_byte(
    oai: openai.OpenAI, upstream: Upstream, fault: str
) -> None:
    upstream.fail("flaky", fault)

    reply = oai.chat.completions.create(model="o4-mini", messages=HI)
    chunks = list(oai.chat.completions.create(model="o4-mini", messages=HI, stream=True))

    assert reply.choices[0].message.content == "echo: hi"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hi"
    # First call: flaky fails, backup serves. Second call: flaky (healthy again) serves the stream.
    assert [r.provider for r in upstream.fake.recorder.requests] == ["flaky", "backup", "flaky"]


def test_streamed_fallback_when_the_first_target_fails_before_the_first_byte(
    oai: openai.OpenAI, upstream: Upstream
) -> None:
    upstream.fail("flaky", "disconnect_after_chunks=0")

    chunks = list(oai.chat.completions.create(model="o4-mini", messages=HI, stream=True))

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hi"
    assert [r.provider for r in upstream.fake.recorder.requests] == ["flaky", "backup"]
    assert upstream.received("backup")[0].body["stream"] is True


def test_every_target_failing_is_one_502(oai: openai.OpenAI, upstream: Upstream) -> None:
    upstream.fail("flaky", "status=500")
    upstream.fail("backup", "status=500")

    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(model="o4-mini", messages=HI)

    assert caught.value.status_code == 502
    assert [r.provider for r in upstream.fake.recorder.requests] == ["flaky", "backup"]


def test_openai_stream_cut_mid_way_raises_in_the_sdk(
    oai: openai.OpenAI, upstream: Upstream
) -> None:
    upstream.fail("flaky", "disconnect_after_chunks=2")
    received: list[str] = []

    with pytest.raises(openai.APIError) as caught:
        for chunk in oai.chat.completions.create(
            model="o3-mini",
            messages=[{"role": "user", "content": "a long enough answer please"}],
            stream=True,
        ):
            received += [chunk.choices[0].delta.content or ""] if chunk.choices else []

    assert "'flaky'" in caught.value.message
    assert "".join(received) != "echo: a long enough answer please"


@pytest.mark.parametrize("model", ["o3-mini", "gpt-4o"])
def test_anthropic_stream_cut_mid_way_raises_in_the_sdk(
    claude: anthropic.Anthropic, upstream: Upstream, model: str
) -> None:
    provider = "flaky" if model == "o3-mini" else "anthropic"
    upstream.fail(provider, "disconnect_after_chunks=3")

    question = messages("a long enough answer please")
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        claude.messages.stream(model=model, max_tokens=100, messages=question) as stream,
    ):
        for _ in stream.text_stream:
            pass

    assert f"'{provider}'" in str(caught.value)


def test_quota_exceeded_is_429_with_retry_after(
    start_regate: StartRegate, upstream: Upstream
) -> None:
    limited = start_regate(limits={"quotas": [{"scope": "principal", "requests_per_minute": 2}]})
    try:
        with limited.openai() as client:
            for _ in range(2):
                client.chat.completions.create(model="gpt-4o-mini", messages=HI)
            with pytest.raises(openai.RateLimitError) as caught:
                client.chat.completions.create(model="gpt-4o-mini", messages=HI)
        with limited.openai("eu-bot") as other:  # the quota is per principal
            other.chat.completions.create(model="gpt-4o-mini", messages=HI)
    finally:
        limited.stop()

    error = caught.value
    assert error.status_code == 429 and error.code == "limit.requests_per_minute"
    assert 1 <= int(error.response.headers["retry-after"]) <= 61
    assert len(upstream.received("openai")) == 2 and len(upstream.received("azure-eu")) == 1
