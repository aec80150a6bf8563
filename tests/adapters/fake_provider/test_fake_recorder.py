"""What the fake provider records, its control API, provider prefixes and credential checks."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from adapters.fake_provider import FakeProvider

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "record me"}]}


def _anthropic_key(headers: dict[str, str]) -> str | None:
    # Anthropic accepts x-api-key; its Python SDK >= 2 sends the key as a bearer token.
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")


MESSAGES = {
    "model": "claude-haiku",
    "max_tokens": 20,
    "messages": [{"role": "user", "content": "x"}],
}


def test_recorder_keeps_headers_and_bodies_as_received(
    oai: openai.OpenAI, claude: anthropic.Anthropic, http: httpx.Client, fake: FakeProvider
) -> None:
    oai.chat.completions.create(**CHAT, extra_headers={"x-trace": "t-1"})  # type: ignore[call-overload]
    claude.messages.create(**MESSAGES)  # type: ignore[call-overload]
    http.post(
        "/v1beta/models/gemini-2.0-flash:generateContent",
        params={"key": "g-query"},
        json={"contents": [{"parts": [{"text": "x"}]}]},
        headers={"x-goog-api-key": "g-header"},
    )

    first, second, third = fake.recorder.requests
    assert (first.method, first.path, first.provider) == ("POST", "/v1/chat/completions", "fake")
    assert first.headers["authorization"] == "Bearer sk-openai-test"
    assert first.headers["x-trace"] == "t-1"
    assert first.body == CHAT
    assert first.model == "gpt-4o-mini"
    assert _anthropic_key(second.headers) == "sk-ant-test"
    assert second.headers["anthropic-version"]
    assert second.body == MESSAGES
    assert third.headers["x-goog-api-key"] == "g-header"
    assert third.query == {"key": "g-query"}
    assert first.time <= second.time <= third.time


def test_control_api_lists_and_clears_the_record(http: httpx.Client, fake: FakeProvider) -> None:
    http.post("/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer k"})
    http.post("/v1/chat/completions", content=b"not json")

    listed = http.get("/_fake/requests").json()["requests"]
    cleared = http.delete("/_fake/requests").json()

    assert [r["body"] for r in listed] == [CHAT, None]
    assert listed[0]["headers"]["authorization"] == "Bearer k"
    assert listed[1]["raw"] == "not json"
    assert cleared == {"cleared": 2}
    assert len(fake.recorder) == 0
    assert http.get("/_fake/requests").json() == {"requests": []}


def test_provider_prefix_lets_one_server_play_several(base_url: str, fake: FakeProvider) -> None:
    with (
        openai.OpenAI(base_url=f"{base_url}/p/azure-eu/v1", api_key="azure-key") as azure,
        anthropic.Anthropic(base_url=f"{base_url}/p/anthropic-eu", api_key="ant-key") as ant,
    ):
        chat = azure.chat.completions.create(**CHAT)  # type: ignore[call-overload]
        message = ant.messages.create(**MESSAGES)  # type: ignore[call-overload]

    assert chat.choices[0].message.content == "echo: record me"
    assert message.content[0].type == "text"
    [azure_req] = fake.recorder.for_provider("azure-eu")
    [ant_req] = fake.recorder.for_provider("anthropic-eu")
    assert azure_req.path == "/v1/chat/completions"
    assert azure_req.headers["authorization"] == "Bearer azure-key"
    assert ant_req.path == "/v1/messages"
    assert _anthropic_key(ant_req.headers) == "ant-key"
    assert fake.recorder.for_provider("fake") == []


def test_configured_keys_are_enforced_per_provider(base_url: str, fake: FakeProvider) -> None:
    fake.settings.api_keys = {"openai": "sk-good", "anthropic": "ant-good", "gemini": "g-good"}
    gemini_url = f"{base_url}/p/gemini/v1beta/models/g:generateContent"
    gemini_body = {"contents": [{"parts": [{"text": "x"}]}]}

    with (
        openai.OpenAI(base_url=f"{base_url}/p/openai/v1", api_key="sk-bad", max_retries=0) as bad,
        pytest.raises(openai.AuthenticationError) as denied,
    ):
        bad.chat.completions.create(**CHAT)  # type: ignore[call-overload]
    with openai.OpenAI(base_url=f"{base_url}/p/openai/v1", api_key="sk-good") as good:
        allowed = good.chat.completions.create(**CHAT)  # type: ignore[call-overload]
    with (
        anthropic.Anthropic(base_url=f"{base_url}/p/anthropic", api_key="no", max_retries=0) as ant,
        pytest.raises(anthropic.AuthenticationError) as ant_denied,
    ):
        ant.messages.create(**MESSAGES)  # type: ignore[call-overload]
    raw_ok = httpx.post(
        f"{base_url}/p/anthropic/v1/messages", json=MESSAGES, headers={"x-api-key": "ant-good"}
    )
    gemini_ok = httpx.post(gemini_url, params={"key": "g-good"}, json=gemini_body)
    gemini_bad = httpx.post(gemini_url, headers={"x-goog-api-key": "nope"}, json=gemini_body)
    unchecked = httpx.post(f"{base_url}/p/other/v1/chat/completions", json=CHAT)

    assert denied.value.status_code == 401
    assert allowed.choices[0].message.content == "echo: record me"
    assert ant_denied.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert raw_ok.status_code == 200
    assert gemini_ok.status_code == 200
    assert gemini_bad.status_code == 401
    assert gemini_bad.json()["error"]["status"] == "UNAUTHENTICATED"
    assert unchecked.status_code == 200


def test_settings_api_changes_the_reply(http: httpx.Client, fake: FakeProvider) -> None:
    updated = http.put("/_fake/settings", json={"reply": "canned", "models": ["only"]})
    chat = http.post("/v1/chat/completions", json=CHAT).json()
    refused = http.put("/_fake/settings", json={"colour": "red"})

    assert updated.json()["reply"] == "canned"
    assert chat["choices"][0]["message"]["content"] == "canned"
    assert fake.settings.models == ("only",)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_fault"


def test_unknown_paths_get_provider_404s(http: httpx.Client) -> None:
    openai_404 = http.post("/v1/completions", json={})
    gemini_404 = http.get("/v1beta/files")

    assert openai_404.status_code == 404
    assert openai_404.json()["error"]["message"] == "Invalid URL (POST /v1/completions)"
    assert gemini_404.json()["error"]["status"] == "NOT_FOUND"
