"""Client mistakes answered in the client's own wire format (never a 500): a missing or
wrong regate key, a body that is not JSON, a body of the wrong shape, an unknown route."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from tests.integration.conftest import Regate, Upstream, chat, messages

HI = chat("hi")
HI_MESSAGES = messages("hi")


# The SDKs refuse to start without a key: "missing" sends one but omits the header carrying it.
NO_OPENAI_KEY = {"Authorization": openai.omit}
NO_ANTHROPIC_KEY = {"X-Api-Key": anthropic.omit, "Authorization": anthropic.omit}


@pytest.mark.parametrize("key", ["missing", "rgk_not-a-key-regate-knows"])
def test_openai_client_without_a_valid_key_gets_authentication_error(
    regate: Regate, upstream: Upstream, key: str
) -> None:
    headers = NO_OPENAI_KEY if key == "missing" else {}
    with regate.openai(key=key) as client, pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI, extra_headers=headers)

    error = caught.value
    assert ("authorization" in error.response.request.headers) == (key != "missing")
    assert error.status_code == 401 and error.code == "invalid_api_key"
    assert error.response.headers["x-regate-decision-id"].startswith("req_")
    assert len(upstream.fake.recorder) == 0


@pytest.mark.parametrize("key", ["missing", "rgk_not-a-key-regate-knows"])
def test_anthropic_client_without_a_valid_key_gets_authentication_error(
    regate: Regate, upstream: Upstream, key: str
) -> None:
    headers = NO_ANTHROPIC_KEY if key == "missing" else {}
    with (
        regate.anthropic(key=key) as client,
        pytest.raises(anthropic.AuthenticationError) as caught,
    ):
        client.messages.create(
            model="claude-haiku-4-5", max_tokens=10, messages=HI_MESSAGES, extra_headers=headers
        )

    body = caught.value.body
    sent = caught.value.response.request.headers
    assert ("x-api-key" in sent or "authorization" in sent) == (key != "missing")
    assert caught.value.status_code == 401
    assert (
        isinstance(body, dict)
        and body["type"] == "error"
        and body["error"]["type"] == "authentication_error"
    )
    assert len(upstream.fake.recorder) == 0


def test_a_valid_key_of_one_principal_is_not_accepted_with_extra_text(
    regate: Regate, upstream: Upstream
) -> None:
    with (
        regate.openai(key=regate.keys["billing-bot"] + "x") as client,
        pytest.raises(openai.AuthenticationError),
    ):
        client.models.list()


def test_openai_models_without_a_key_is_401(regate: Regate) -> None:
    with regate.openai(key="missing") as client, pytest.raises(openai.AuthenticationError):
        client.models.list(extra_headers=NO_OPENAI_KEY)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings"])
def test_non_json_body_is_400_in_openai_format(
    regate: Regate, upstream: Upstream, path: str
) -> None:
    with regate.http() as http:
        response = http.post(
            path,
            content=b'{"model": "gpt-4o-mini", "messages": [',
            headers={"authorization": f"Bearer {regate.keys['billing-bot']}"},
        )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"] and error["code"]
    assert response.headers["x-regate-decision-id"].startswith("req_")
    assert len(upstream.fake.recorder) == 0


def test_non_json_body_is_400_in_anthropic_format(regate: Regate, upstream: Upstream) -> None:
    with regate.http() as http:
        response = http.post(
            "/v1/messages",
            content=b"\xff\xfe not json",
            headers={"x-api-key": regate.keys["billing-bot"]},
        )

    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "body",
    [
        {"model": "gpt-4o-mini", "messages": "not a list"},
        {"model": "gpt-4o-mini"},
        {"model": "gpt-4o-mini", "messages": [{"role": "wizard", "content": "hi"}]},
        {"model": 42, "messages": HI},
        {"model": "gpt-4o-mini", "messages": HI, "stream": True, "stream_options": 5},
        ["a", "list"],
    ],
)
def test_invalid_chat_body_raises_bad_request(
    oai: openai.OpenAI, upstream: Upstream, body: object
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.post("/chat/completions", body=body, cast_to=object)

    assert caught.value.status_code == 400
    assert (
        isinstance(caught.value.body, dict) and caught.value.body["type"] == "invalid_request_error"
    )
    assert len(upstream.fake.recorder) == 0


def test_invalid_messages_body_raises_bad_request(
    claude: anthropic.Anthropic, upstream: Upstream
) -> None:
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.create(model="claude-haiku-4-5", max_tokens=10, messages="hello")  # type: ignore[arg-type]

    assert len(upstream.fake.recorder) == 0


def test_invalid_embeddings_body_raises_bad_request(oai: openai.OpenAI, upstream: Upstream) -> None:
    with pytest.raises(openai.BadRequestError):
        oai.embeddings.create(model="text-embedding-3-small", input=[{"nested": True}])  # type: ignore[arg-type]

    assert len(upstream.fake.recorder) == 0


def test_oversized_body_is_413_in_the_client_format(regate: Regate, upstream: Upstream) -> None:
    big = json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * (5 * 1024 * 1024)}]}
    )
    with regate.http() as http:
        response = http.post(
            "/v1/messages", content=big, headers={"x-api-key": regate.keys["billing-bot"]}
        )

    assert response.status_code == 413
    assert response.json()["type"] == "error"
    assert len(upstream.fake.recorder) == 0


def test_unknown_path_is_404_in_openai_format(regate: Regate) -> None:
    with regate.http() as http:
        response = http.get("/v1/nothing-here")

    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
