"""Anthropic Messages wire format of the fake provider, streamed events included.

Pure functions from request JSON to a ``message`` object, or to the SSE event
sequence ``message_start``, ``content_block_start``, ``ping``,
``content_block_delta`` (``text_delta`` / ``input_json_delta``),
``content_block_stop``, ``message_delta``, ``message_stop``; errors are
``{"type": "error", "error": {"type", "message"}, "request_id"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.fake_provider.replies import Answer, Prompt, Settings, answer, pieces, sse, texts_of

_ERROR_TYPES = {
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
_MESSAGES = {
    "invalid_request_error": "Invalid request.",
    "authentication_error": "invalid x-api-key",
    "rate_limit_error": "Number of requests has exceeded your rate limit.",
    "api_error": "Internal server error",
    "overloaded_error": "Overloaded",
}
_TEXT_KEYS = ("text", "content")


def error_type(status: int) -> str:
    """Anthropic's error ``type`` for an HTTP status."""
    return _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(
    status: int, message: str | None = None, *, request_id: str = "req_fake"
) -> dict[str, Any]:
    """``{"type": "error", "error": {...}, "request_id": ...}`` for ``status``."""
    kind = error_type(status)
    return {
        "type": "error",
        "error": {"type": kind, "message": message or _MESSAGES.get(kind, "Error")},
        "request_id": request_id,
    }


def stream_error(status: int, message: str | None = None) -> bytes:
    """The ``error`` event Anthropic sends when a stream fails after the 200 response."""
    body = error_body(status, message)
    del body["request_id"]
    return sse(body, "error")


def validate(body: Any) -> dict[str, Any] | None:
    """The 400 error body for an invalid Messages request, or ``None``."""
    if not isinstance(body, Mapping):
        return error_body(400, "There was an issue with the format of your request: invalid JSON")
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            return error_body(400, f"{name}: Field required")
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return error_body(400, "max_tokens: Input should be a valid integer greater than 0")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return error_body(400, "messages: at least one message is required")
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or message.get("role") not in ("user", "assistant"):
            return error_body(400, f"messages.{index}.role: Input should be 'user' or 'assistant'")
    return None


def prompt_of(body: Mapping[str, Any]) -> Prompt:
    """The wire-independent prompt of a (valid) Messages request."""
    messages: list[Mapping[str, Any]] = body["messages"]
    users = [m for m in messages if m.get("role") == "user"]
    last_user = " ".join(texts_of(users[-1].get("content"), _TEXT_KEYS)) if users else ""
    tools: dict[str, Mapping[str, Any]] = {}
    for tool in body.get("tools") or []:
        if isinstance(tool, Mapping) and isinstance(tool.get("name"), str):
            schema = tool.get("input_schema")
            tools[tool["name"]] = schema if isinstance(schema, Mapping) else {}
    system = "".join(texts_of(body.get("system")))
    last = messages[-1]
    only_results = isinstance(last.get("content"), list) and all(
        isinstance(b, Mapping) and b.get("type") == "tool_result" for b in last["content"]
    )
    return Prompt(
        last_user_text=last_user,
        last_is_user=last.get("role") == "user" and not only_results,
        all_text=system
        + "".join("".join(texts_of(m.get("content"), _TEXT_KEYS)) for m in messages),
        tools=tools,
        max_tokens=body["max_tokens"],
    )


def _stop_reason(ans: Answer) -> str:
    if ans.tool_call is not None:
        return "tool_use"
    return "max_tokens" if ans.truncated else "end_turn"


def _usage(ans: Answer, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": ans.prompt_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _block(ans: Answer) -> dict[str, Any]:
    if ans.tool_call is None:
        return {"type": "text", "text": ans.text}
    call = ans.tool_call
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}


def message(body: Mapping[str, Any], settings: Settings, ident: str) -> dict[str, Any]:
    """A non-streamed ``message`` answering ``body``."""
    ans = answer(prompt_of(body), settings, f"toolu_{ident}")
    return {
        "id": f"msg_{ident}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [_block(ans)],
        "stop_reason": _stop_reason(ans),
        "stop_sequence": None,
        "usage": _usage(ans, ans.completion_tokens),
    }


def events(body: Mapping[str, Any], settings: Settings, ident: str) -> list[bytes]:
    """The SSE events of a streamed answer to ``body``, ``message_stop`` included."""
    ans = answer(prompt_of(body), settings, f"toolu_{ident}")
    start = {
        "id": f"msg_{ident}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage(ans, 1),
    }
    frames = [sse({"type": "message_start", "message": start}, "message_start")]
    if ans.tool_call is None:
        first: dict[str, Any] = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in pieces(ans.text, settings.chunk_size)]
    else:
        first = {**_block(ans), "input": {}}
        json_pieces = pieces(ans.tool_call.arguments_json(), settings.chunk_size)
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in json_pieces]
    frames.append(
        sse(
            {"type": "content_block_start", "index": 0, "content_block": first},
            "content_block_start",
        )
    )
    frames.append(sse({"type": "ping"}, "ping"))
    frames.extend(
        sse({"type": "content_block_delta", "index": 0, "delta": d}, "content_block_delta")
        for d in deltas
    )
    frames.append(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
    delta = {"stop_reason": _stop_reason(ans), "stop_sequence": None}
    usage = {"output_tokens": ans.completion_tokens}
    frames.append(sse({"type": "message_delta", "delta": delta, "usage": usage}, "message_delta"))
    frames.append(sse({"type": "message_stop"}, "message_stop"))
    return frames


def models(settings: Settings) -> dict[str, Any]:
    """Anthropic's ``GET /v1/models`` page (chosen when ``anthropic-version`` is sent)."""
    data = [
        {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
        for m in settings.models
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
