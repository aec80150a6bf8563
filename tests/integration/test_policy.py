"""Policy decisions as the SDKs see them: denials, redaction and EU routing (default bundle)."""

from __future__ import annotations

import re

import anthropic
import openai
import pytest

from tests.integration.conftest import Regate, Upstream

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example key id
DECISION_ID = re.compile(r"\(decision (req_[0-9A-Za-z]+)\)")


def test_openai_denial_raises_permission_denied_with_reason_and_decision_id(
    oai: openai.OpenAI, upstream: Upstream
) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        oai.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"my key is {AWS_KEY}"}]
        )

    error = caught.value
    header_id = error.response.headers["x-regate-decision-id"]
    assert error.status_code == 403
    assert "secret.aws_access_key" in error.message
    match = DECISION_ID.search(error.message)
    assert match is not None and match.group(1) == header_id
    assert isinstance(error.body, dict) and error.body["code"] == "secret.aws_access_key"
    assert error.body["decision_id"] == header_id
    assert [r["code"] for r in error.body["reasons"]] == ["secret.aws_access_key"]
    assert AWS_KEY not in error.response.text
    assert len(upstream.fake.recorder) == 0


def test_anthropic_denial_raises_permission_denied_with_reason_and_decision_id(
    claude: anthropic.Anthropic, upstream: Upstream
) -> None:
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        claude.messages.create(
            model="claude-3-opus-20240229",
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
        )

    error = caught.value
    header_id = error.response.headers["x-regate-decision-id"]
    assert error.status_code == 403
    assert "model.not_allowed" in error.message
    match = DECISION_ID.search(error.message)
    assert match is not None and match.group(1) == header_id
    assert isinstance(error.body, dict) and error.body["type"] == "error"
    assert (
        error.body["error"]["type"] == "permission_error"
        and error.body["error"]["decision_id"] == header_id
    )
    assert len(upstream.fake.recorder) == 0


def test_denied_stream_request_fails_before_any_stream(
    oai: openai.OpenAI, upstream: Upstream
) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        oai.chat.completions.create(
            model="gpt-4o-mini",
            stream=True,
            messages=[{"role": "user", "content": f"key {AWS_KEY}"}],
        )

    assert "secret.aws_access_key" in caught.value.message
    assert len(upstream.fake.recorder) == 0


def test_pii_is_redacted_before_it_leaves(oai: openai.OpenAI, upstream: Upstream) -> None:
    text = "Mail jane.doe@example.com or call +44 20 7946 0958 about the invoice"
    reply = oai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
    )

    [sent] = upstream.received("openai")
    forwarded = sent.body["messages"][0]["content"]
    assert "[EMAIL]" in forwarded and "[PHONE]" in forwarded and "about the invoice" in forwarded
    assert b"jane.doe@example.com" not in sent.raw and b"7946 0958" not in sent.raw
    assert reply.choices[0].message.content == f"echo: {forwarded}"


def test_pii_is_redacted_across_formats_and_streams(
    claude: anthropic.Anthropic, upstream: Upstream
) -> None:
    text = "Contact jane.doe@example.com please"
    with claude.messages.stream(
        model="claude-sonnet-4-6", max_tokens=50, messages=[{"role": "user", "content": text}]
    ) as stream:
        answer = "".join(stream.text_stream)

    [sent] = upstream.received("openai")
    assert (
        b"jane.doe@example.com" not in sent.raw and "[EMAIL]" in sent.body["messages"][0]["content"]
    )
    assert answer == "echo: Contact [EMAIL] please"


def test_eu_principal_reaches_only_the_eu_provider(regate: Regate, upstream: Upstream) -> None:
    with regate.openai("eu-bot") as client:
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hallo"}]
        )
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "hallo"}]
            )
        )

    assert reply.choices[0].message.content == "echo: hallo"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hallo"
    recorded = upstream.fake.recorder.requests
    assert [r.provider for r in recorded] == ["azure-eu", "azure-eu"]
    assert all(
        r.headers["authorization"] == f"Bearer {upstream.keys['azure-eu']}" for r in recorded
    )


def test_same_model_for_a_us_principal_goes_to_its_default_route(
    oai: openai.OpenAI, upstream: Upstream
) -> None:
    oai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
    )

    assert [r.provider for r in upstream.fake.recorder.requests] == ["openai"]
