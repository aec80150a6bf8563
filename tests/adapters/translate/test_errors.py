"""Error bodies in the client's format: the SDKs raise the right exceptions; secrets never leak."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from adapters.translate.errors import (
    REDACTED,
    TranslateError,
    error_body,
    redact_secrets,
    stream_error_event,
    upstream_error_to_client,
)

from .recorded import CHAT, MESSAGES, anthropic_client, load_bytes, openai_client

OPENAI_CLASSES = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
    500: openai.InternalServerError,
    502: openai.InternalServerError,
    503: openai.InternalServerError,
}
ANTHROPIC_CLASSES = {
    400: (anthropic.BadRequestError, "invalid_request_error"),
    401: (anthropic.AuthenticationError, "authentication_error"),
    403: (anthropic.PermissionDeniedError, "permission_error"),
    404: (anthropic.NotFoundError, "not_found_error"),
    413: (anthropic.ContentTooLargeError, "request_too_large"),
    422: (anthropic.UnprocessableEntityError, "invalid_request_error"),
    429: (anthropic.RateLimitError, "rate_limit_error"),
    500: (anthropic.InternalServerError, "api_error"),
    502: (anthropic.InternalServerError, "api_error"),
    503: (anthropic.ServiceUnavailableError, "api_error"),
    529: (anthropic.OverloadedError, "overloaded_error"),
}


@pytest.mark.parametrize("status", sorted(OPENAI_CLASSES))
def test_openai_sdk_raises_the_class_for_the_status(status: int) -> None:
    body = error_body(
        "openai.chat",
        status,
        "policy.denied",
        "denied by policy",
        extra={"decision_id": "req_1", "param": "messages"},
    )
    with pytest.raises(OPENAI_CLASSES[status]) as caught:
        openai_client(status, json.dumps(body).encode()).chat.completions.create(**CHAT)
    err = caught.value
    assert (err.code, err.param, err.message.endswith("denied by policy")) == (
        "policy.denied",
        "messages",
        True,
    )
    assert isinstance(err.body, dict) and err.body["decision_id"] == "req_1"
    assert err.type == body["error"]["type"]


@pytest.mark.parametrize(
    ("status", "expected_type"),
    [
        (400, "invalid_request_error"),
        (401, "invalid_request_error"),
        (403, "request_forbidden"),
        (404, "invalid_request_error"),
        (500, "server_error"),
        (503, "server_error"),
    ],
)
def test_openai_type_strings_follow_openai(status: int, expected_type: str) -> None:
    assert error_body("openai.embeddings", status, "c", "m")["error"]["type"] == expected_type


@pytest.mark.parametrize(
    ("code", "expected_type"),
    [
        ("limit.tokens_per_day", "tokens"),
        ("limit.requests_per_minute", "requests"),
    ],
)
def test_openai_rate_limit_type_says_what_ran_out(code: str, expected_type: str) -> None:
    assert error_body("openai.chat", 429, code, "m")["error"]["type"] == expected_type


@pytest.mark.parametrize("status", sorted(ANTHROPIC_CLASSES))
def test_anthropic_sdk_raises_the_class_for_the_status(status: int) -> None:
    expected_class, expected_type = ANTHROPIC_CLASSES[status]
    body = error_body(
        "anthropic.messages",
        status,
        "policy.denied",
        "denied by policy",
        extra={"decision_id": "req_2"},
    )
    assert body["type"] == "error" and body["error"]["type"] == expected_type
    with pytest.raises(expected_class) as caught:
        anthropic_client(status, json.dumps(body).encode()).messages.create(**MESSAGES)
    assert type(caught.value) is expected_class
    assert caught.value.body == body


def test_unknown_client_api_is_refused() -> None:
    with pytest.raises(TranslateError) as caught:
        error_body("gemini.generate_content", 400, "c", "m")
    assert caught.value.code == "unknown_api"


def test_stream_error_events() -> None:
    name, body = stream_error_event("openai.chat", "upstream_error", "boom", status=502)
    assert name is None and body["error"] == {
        "message": "boom",
        "type": "server_error",
        "param": None,
        "code": "upstream_error",
    }
    name, body = stream_error_event("anthropic.messages", "upstream_error", "boom", status=529)
    assert name == "error" and body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "boom", "code": "upstream_error"},
    }


@pytest.mark.parametrize(
    "secret_text",
    [
        "sk-proj-Ab12Cd34Ef56Gh78Ij90",
        "sk-ant-api03-R2D2C3POr2d2c3po-AAAAAAA",
        "sk-proj-****************************Ab1x",
        "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
        "Bearer abcdefghijklmnop123",
        "https://generativelanguage.googleapis.com/v1beta/models/x?key=abc123def456ghi",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl",
        "token: 9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        "0123456789abcdefABCDEF0123456789abcdefXYZ",
    ],
)
def test_key_shaped_text_is_redacted(secret_text: str) -> None:
    cleaned = redact_secrets(f"upstream said: {secret_text} (sorry)")
    assert REDACTED in cleaned
    assert cleaned.startswith("upstream said: ") and cleaned.endswith(" (sorry)")
    for piece in (
        "Ab12Cd34",
        "R2D2C3PO",
        "Ab1x",
        "A1b2C3d4",
        "mnop123",
        "def456",
        "c2lnbmF0",
        "5b4a3928",
        "abcdefABCDEF",
    ):
        assert piece not in cleaned


@pytest.mark.parametrize(
    "benign",
    [
        "max_tokens is too large: 100000. This model supports at most 16384 completion tokens",
        "The model `claude-3-5-sonnet-20241022` does not exist",
        "request req_011CSHoEeqs5C35K2UUqR7Fy failed; model gpt-4o-mini-2024-07-18",
        "Rate limit reached on tokens per min (TPM): Limit 30000, Used 28039, Requested 3906.",
    ],
)
def test_ordinary_messages_are_left_alone(benign: str) -> None:
    assert redact_secrets(benign) == benign


def test_known_secrets_are_redacted_even_when_unremarkable() -> None:
    assert (
        redact_secrets("key is hunter2hunter2!", secrets=["hunter2hunter2"])
        == f"key is {REDACTED}!"
    )


def translate(
    name: str,
    provider_api: str,
    status: int,
    client_api: str,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], int | None]:
    result = upstream_error_to_client(
        provider_api, status, load_bytes(name), client_api, "prov-eu", headers=headers
    )
    assert "sk-" not in json.dumps(result.body)
    return result.status, result.body, result.retry_after


@pytest.mark.parametrize(
    ("name", "provider_api", "status"),
    [
        ("openai_error_401.json", "openai.chat", 401),
        ("anthropic_error_401.json", "anthropic.messages", 401),
        ("gemini_error_400_key.json", "gemini.generate_content", 400),
    ],
)
@pytest.mark.parametrize("client_api", ["openai.chat", "anthropic.messages"])
def test_refused_gateway_credentials_become_502(
    name: str, provider_api: str, status: int, client_api: str
) -> None:
    out_status, body, _ = translate(name, provider_api, status, client_api)
    error = body["error"]
    assert (out_status, error["code"], error["provider"]) == (502, "upstream_auth_error", "prov-eu")
    assert "API key" not in error["message"] and "x-api-key" not in error["message"]


def test_same_family_client_error_keeps_code_and_param() -> None:
    status, body, _ = translate("openai_error_400.json", "openai.chat", 400, "openai.chat")
    recorded = json.loads(load_bytes("openai_error_400.json"))["error"]
    assert status == 400
    assert {k: body["error"][k] for k in ("message", "code", "param")} == {
        k: recorded[k] for k in ("message", "code", "param")
    }


@pytest.mark.parametrize(
    ("name", "provider_api", "client_api", "sdk_error"),
    [
        ("openai_error_400.json", "openai.chat", "anthropic.messages", anthropic.BadRequestError),
        ("anthropic_error_400.json", "anthropic.messages", "openai.chat", openai.BadRequestError),
    ],
)
def test_cross_format_client_error_keeps_status_and_message(
    name: str, provider_api: str, client_api: str, sdk_error: type[Exception]
) -> None:
    status, body, _ = translate(name, provider_api, 400, client_api)
    recorded = json.loads(load_bytes(name))["error"]["message"]
    assert (status, body["error"]["code"], body["error"]["message"]) == (
        400,
        "upstream_rejected",
        recorded,
    )
    payload = json.dumps(body).encode()
    with pytest.raises(sdk_error):
        if client_api == "openai.chat":
            openai_client(status, payload).chat.completions.create(**CHAT)
        else:
            anthropic_client(status, payload).messages.create(**MESSAGES)


@pytest.mark.parametrize(
    ("name", "provider_api", "headers", "retry_after"),
    [
        ("openai_error_429.json", "openai.chat", {"Retry-After": "20"}, 20),
        ("openai_error_429.json", "openai.chat", {"retry-after-ms": "1500"}, 2),
        (
            "openai_error_429.json",
            "openai.chat",
            {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"},
            None,
        ),
        ("gemini_error_429.json", "gemini.generate_content", None, 21),
    ],
)
def test_rate_limits_stay_429_with_retry_after(
    name: str, provider_api: str, headers: dict[str, str] | None, retry_after: int | None
) -> None:
    status, body, seconds = translate(name, provider_api, 429, "openai.chat", headers)
    assert (status, body["error"]["code"], seconds) == (429, "upstream_rate_limited", retry_after)
    assert "org-" not in body["error"]["message"]  # the gateway's account stays private
    with pytest.raises(openai.RateLimitError):
        openai_client(429, json.dumps(body).encode()).chat.completions.create(**CHAT)


@pytest.mark.parametrize(
    ("name", "provider_api", "status", "upstream_text"),
    [
        ("anthropic_error_529.json", "anthropic.messages", 529, "Overloaded"),
        ("gemini_error_503.json", "gemini.generate_content", 503, "The model is overloaded."),
        ("openai_error_500.json", "openai.chat", 500, "The server had an error"),
    ],
)
def test_server_errors_become_502_naming_the_provider(
    name: str, provider_api: str, status: int, upstream_text: str
) -> None:
    out_status, body, _ = translate(name, provider_api, status, "anthropic.messages")
    message = body["error"]["message"]
    assert (out_status, body["error"]["type"], body["error"]["code"]) == (
        502,
        "api_error",
        "upstream_error",
    )
    assert "prov-eu" in message and str(status) in message and upstream_text in message
    with pytest.raises(anthropic.InternalServerError):
        anthropic_client(502, json.dumps(body).encode()).messages.create(**MESSAGES)


def test_an_html_error_page_is_never_echoed() -> None:
    result = upstream_error_to_client(
        "openai.chat", 502, b"<html><body>Bad gateway</body></html>", "openai.chat", "prov-eu"
    )
    assert result.status == 502
    assert "<html>" not in result.body["error"]["message"]


def test_secrets_in_client_error_messages_are_redacted() -> None:
    body = json.dumps(
        {
            "error": {
                "message": "bad key hunter2hunter2 and sk-live-12345678",
                "type": "invalid_request_error",
            }
        }
    ).encode()
    result = upstream_error_to_client(
        "openai.chat", 400, body, "anthropic.messages", "p", secrets=["hunter2hunter2"]
    )
    assert result.body["error"]["message"] == f"bad key {REDACTED} and {REDACTED}"
