"""The one place where errors become the client's wire format, plus this package's exception.

Client formats: OpenAI ``{"error": {"message", "type", "param", "code"}}`` and
Anthropic ``{"type": "error", "error": {"type", "message"}}``. Both SDKs pick the
exception class from the HTTP status; the ``type`` strings follow what each
provider itself sends for that status. Upstream errors (OpenAI, Anthropic,
Gemini bodies) are rewritten here too, with anything that looks like a secret
removed::

    RegateError (engine.errors)
     +-- TranslateError   a provider body or stream cannot be translated (code says why)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from engine.errors import RegateError

CLIENT_APIS = ("openai.chat", "openai.embeddings", "anthropic.messages")

# What api.openai.com sends per status: 401 is an invalid_request_error (code
# invalid_api_key), 403 request_forbidden, 429 "requests"/"tokens", 5xx server_error.
_OPENAI_TYPES = {401: "invalid_request_error", 403: "request_forbidden"}
# docs.anthropic.com/en/api/errors; other 4xx are invalid_request_error there too.
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_ANTHROPIC_STATUS = {kind: status for status, kind in _ANTHROPIC_TYPES.items()}
_GEMINI_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}

_GEMINI_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_SECRET_PATTERNS = (
    re.compile(r"\b(?:sk|rk|pk|xai|gsk)-[A-Za-z0-9_*\-]{6,}"),  # OpenAI, Anthropic, xAI, Groq
    re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"),  # Google API keys
    re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"),  # JWTs
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}"),
    re.compile(
        r"(?i)\b((?:api[_-]?key|access[_-]?token|key|token)[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;]{8,}"
    ),
    # Anything else long and random-looking (at least one digit and one letter).
    re.compile(r"\b(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{40,}\b"),
)
REDACTED = "[REDACTED]"
_MAX_UPSTREAM_MESSAGE = 500


class TranslateError(RegateError):
    """A provider response, stream event or error body could not be translated."""

    code = "translate_error"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UpstreamFault(NamedTuple):
    """What a provider's error body says, in provider-neutral terms."""

    status: int
    kind: str  # the provider's own type / status string ("" if none)
    code: str | None
    message: str
    param: str | None
    retry_after: int | None


class ClientError(NamedTuple):
    """An error ready to send: HTTP status, body, and ``retry-after`` seconds if known."""

    status: int
    body: dict[str, Any]
    retry_after: int | None


def error_type(api: str, status: int) -> str:
    """The ``error.type`` the client's provider uses for ``status``."""
    if api == "anthropic.messages":
        if status in _ANTHROPIC_TYPES:
            return _ANTHROPIC_TYPES[status]
        return "api_error" if status >= 500 else "invalid_request_error"
    _check_api(api)
    if status in _OPENAI_TYPES:
        return _OPENAI_TYPES[status]
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def error_body(
    api: str, status: int, code: str, message: str, *, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The error body in the client's wire format; ``extra`` adds fields to the error object.

    >>> error_body("anthropic.messages", 403, "policy.denied", "no")["error"]
    {'type': 'permission_error', 'message': 'no', 'code': 'policy.denied'}
    >>> error_body("openai.chat", 429, "limit.tokens_per_day", "slow down")["error"]["type"]
    'tokens'
    """
    fields = dict(extra or {})
    kind = error_type(api, status)
    if api == "anthropic.messages":
        error = {**fields, "type": kind, "message": message, "code": code}
        return {"type": "error", "error": error}
    if status == 429:
        kind = "tokens" if "token" in code else "requests"
    param = fields.pop("param", None)
    return {"error": {**fields, "message": message, "type": kind, "param": param, "code": code}}


def gemini_error_body(status: int, message: str) -> dict[str, Any]:
    """A Gemini-style error body (for fake Gemini providers; Gemini is never a client API)."""
    name = _GEMINI_NAMES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    return {"error": {"code": status, "message": message, "status": name}}


def stream_error_event(
    api: str, code: str, message: str, *, status: int = 500
) -> tuple[str | None, dict[str, Any]]:
    """``(event name, data)`` for an error after a stream has started.

    OpenAI clients get an unnamed ``data: {"error": {...}}`` event and Anthropic
    clients ``event: error``; on either the SDK raises (``openai.APIError``,
    ``anthropic.APIStatusError``) with this body.
    """
    body = error_body(api, status, code, message)
    return ("error", body) if api == "anthropic.messages" else (None, body)


def redact_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with known secrets and anything key-shaped replaced by ``[REDACTED]``.

    >>> redact_secrets("Incorrect API key provided: sk-proj-abc123def456")
    'Incorrect API key provided: [REDACTED]'
    """
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(_redact_match, text)
    return text


def _redact_match(match: re.Match[str]) -> str:
    if not match.groups():
        return REDACTED
    label = match.group(1)  # "Bearer", "api_key=": keep the label, drop the value
    return f"{label} {REDACTED}" if label.isalpha() else label + REDACTED


def describe_upstream_error(
    provider_api: str, body: Any, status: int | None = None
) -> UpstreamFault:
    """Read a provider error body (already parsed JSON, or anything else) neutrally.

    ``status`` is the HTTP status, or ``None`` for an error inside a stream, in
    which case it is inferred from the error's type.
    """
    if isinstance(body, list) and body:  # Gemini's JSON-array streams wrap errors in a list
        body = body[0]
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return UpstreamFault(status or 502, "", None, "", None, None)
    message = str(error.get("message") or "")
    if provider_api.startswith("anthropic."):
        kind = str(error.get("type") or "")
        inferred = _ANTHROPIC_STATUS.get(kind, 500)
        return UpstreamFault(status or inferred, kind, None, message, None, None)
    if provider_api.startswith("gemini."):
        kind = str(error.get("status") or "")
        code_number = error.get("code")
        inferred = code_number if isinstance(code_number, int) else _GEMINI_STATUS.get(kind, 500)
        details = error.get("details")
        details = details if isinstance(details, list) else []
        reason = next(
            (str(d["reason"]) for d in details if isinstance(d, Mapping) and "reason" in d), None
        )
        return UpstreamFault(status or inferred, kind, reason, message, None, _retry_delay(details))
    kind = str(error.get("type") or "")
    code = error.get("code")
    code = str(code) if code is not None else None
    param = error.get("param")
    if kind in ("requests", "tokens", "insufficient_quota") or code == "rate_limit_exceeded":
        inferred = 429
    elif kind == "invalid_request_error":
        inferred = 400
    else:
        inferred = 500
    return UpstreamFault(
        status or inferred, kind, code, message, param if isinstance(param, str) else None, None
    )


def upstream_error_to_client(
    provider_api: str,
    status: int,
    body_bytes: bytes,
    client_api: str,
    provider_name: str,
    *,
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> ClientError:
    """Rewrite a provider's error response for the client.

    - 4xx keep their status and (secret-free) message; same-family errors keep
      the provider's ``code`` and ``param`` (``context_length_exceeded`` ...).
    - 401/403 and Gemini's ``API_KEY_INVALID`` mean the *gateway's* credential
      was refused, which the client cannot fix: 502 ``upstream_auth_error``.
    - 429 stays 429 (``upstream_rate_limited``) with ``retry_after`` from the
      ``retry-after``/``retry-after-ms`` headers or Gemini's ``RetryInfo``.
    - 5xx (and anything unreadable) become 502 ``upstream_error`` naming the provider.
    """
    try:
        parsed: Any = json.loads(body_bytes) if body_bytes else None
    except ValueError:
        parsed = None  # an HTML error page from a proxy: never echo it
    fault = describe_upstream_error(provider_api, parsed, status)
    # Bounded before the patterns run; only the first few hundred characters are kept.
    message = redact_secrets(fault.message[:4096], secrets)[:_MAX_UPSTREAM_MESSAGE]
    retry_after = _retry_after_header(headers) or fault.retry_after
    extra: dict[str, Any] = {"provider": provider_name}
    if status in (401, 403, 407) or fault.code == "API_KEY_INVALID":
        text = f"provider '{provider_name}' rejected the gateway's credentials"
        return ClientError(
            502, error_body(client_api, 502, "upstream_auth_error", text, extra=extra), None
        )
    if status == 429:
        text = f"provider '{provider_name}' is rate limiting requests; retry later"
        return ClientError(
            429,
            error_body(client_api, 429, "upstream_rate_limited", text, extra=extra),
            retry_after,
        )
    if 400 <= status < 500:
        code = "upstream_rejected"
        if _family(provider_api) == _family(client_api) and fault.code:
            code = fault.code
            if fault.param:
                extra["param"] = fault.param
        text = message or f"provider '{provider_name}' rejected the request ({status})"
        return ClientError(status, error_body(client_api, status, code, text, extra=extra), None)
    text = f"provider '{provider_name}' failed with status {status}"
    if message:
        text += f": {message}"
    return ClientError(
        502, error_body(client_api, 502, "upstream_error", text, extra=extra), retry_after
    )


def _family(api: str) -> str:
    return api.partition(".")[0]


def _check_api(api: str) -> None:
    if api not in CLIENT_APIS:
        raise TranslateError("unknown_api", f"unknown client API {api!r}")


def _retry_after_header(headers: Mapping[str, str] | None) -> int | None:
    lowered = {key.lower(): value for key, value in (headers or {}).items()}
    if lowered.get("retry-after-ms"):
        return _seconds(lowered["retry-after-ms"], scale=0.001)
    if lowered.get("retry-after"):
        return _seconds(lowered["retry-after"])
    return None


def _retry_delay(details: list[Any]) -> int | None:
    for detail in details:
        if isinstance(detail, Mapping) and str(detail.get("@type", "")).endswith("RetryInfo"):
            return _seconds(str(detail.get("retryDelay", "")).removesuffix("s"))
    return None


def _seconds(value: str, scale: float = 1.0) -> int | None:
    try:
        seconds = float(value) * scale
    except ValueError:
        return None  # an HTTP-date: the caller passes the header through as is
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return max(1, math.ceil(seconds))
