"""OpenAI wire format of the fake provider: chat completions, streamed chunks, embeddings, models.

Pure functions from request JSON to response JSON (or SSE frames); the shapes
follow the OpenAI API reference (``chat.completion``, ``chat.completion.chunk``
ending with ``data: [DONE]``, the ``stream_options.include_usage`` usage chunk
with empty ``choices``, ``tool_calls`` deltas, ``{"error": {...}}`` bodies).
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Mapping
from typing import Any

from adapters.fake_provider.replies import (
    Answer,
    Prompt,
    Settings,
    answer,
    count_tokens,
    pieces,
    sse,
    texts_of,
)

_ERROR_KINDS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def error_body(
    status: int, message: str | None = None, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's ``{"error": {"message", "type", "param", "code"}}`` for ``status``."""
    default = _ERROR_KINDS[500] if status >= 500 else _ERROR_KINDS[400]
    kind, default_code, default_message = _ERROR_KINDS.get(status, default)
    return {
        "error": {
            "message": message or default_message,
            "type": kind,
            "param": param,
            "code": code if code is not None else default_code,
        }
    }


def stream_error(status: int, message: str | None = None) -> bytes:
    """The frame OpenAI sends when a stream fails after the 200 response."""
    return sse(error_body(status, message))


def validate_chat(body: Any) -> dict[str, Any] | None:
    """The 400 error body for an invalid chat request, or ``None`` when it is valid."""
    if not isinstance(body, Mapping):
        return error_body(400, "We could not parse the JSON body of your request.")
    if not isinstance(body.get("model"), str):
        return error_body(400, "you must provide a model parameter")
    messages = body.get("messages")
    if messages is None:
        return error_body(
            400,
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(messages, list) or not messages:
        return error_body(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            param="messages",
            code="empty_array",
        )
    return None


def prompt_of(body: Mapping[str, Any]) -> Prompt:
    """The wire-independent prompt of a (valid) chat request."""
    messages = [m for m in body["messages"] if isinstance(m, Mapping)]
    users = [m for m in messages if m.get("role") in ("user", "tool")]
    last_user = " ".join(texts_of(users[-1].get("content"))) if users else ""
    tools: dict[str, Mapping[str, Any]] = {}
    for tool in body.get("tools") or []:
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            params = fn.get("parameters")
            tools[fn["name"]] = params if isinstance(params, Mapping) else {}
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    return Prompt(
        last_user_text=last_user,
        last_is_user=bool(messages) and messages[-1].get("role") == "user",
        all_text="".join("".join(texts_of(m.get("content"))) for m in messages),
        tools=tools,
        max_tokens=limit if isinstance(limit, int) else None,
    )


def _finish(ans: Answer) -> str:
    if ans.tool_call is not None:
        return "tool_calls"
    return "length" if ans.truncated else "stop"


def _usage(ans: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": ans.prompt_tokens,
        "completion_tokens": ans.completion_tokens,
        "total_tokens": ans.total_tokens,
    }


def chat_completion(
    body: Mapping[str, Any], settings: Settings, ident: str, created: int
) -> dict[str, Any]:
    """A non-streamed ``chat.completion`` answering ``body``."""
    ans = answer(prompt_of(body), settings, f"call_{ident}")
    message: dict[str, Any] = {"role": "assistant", "content": ans.text, "refusal": None}
    if ans.tool_call is not None:
        call = ans.tool_call
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json()},
            }
        ]
    return {
        "id": f"chatcmpl-{ident}",
        "object": "chat.completion",
        "created": created,
        "model": body["model"],
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(ans)}
        ],
        "usage": _usage(ans),
        "system_fingerprint": "fp_fake",
    }


def chat_chunks(
    body: Mapping[str, Any], settings: Settings, ident: str, created: int
) -> list[bytes]:
    """The SSE frames of a streamed answer to ``body``, ``data: [DONE]`` included."""
    ans = answer(prompt_of(body), settings, f"call_{ident}")
    options = body.get("stream_options")
    with_usage = isinstance(options, Mapping) and options.get("include_usage") is True
    base: dict[str, Any] = {
        "id": f"chatcmpl-{ident}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": body["model"],
        "system_fingerprint": "fp_fake",
    }
    if with_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse({**base, "choices": [choice]})

    frames = [chunk({"role": "assistant", "content": "" if ans.tool_call is None else None})]
    if ans.tool_call is not None:
        call = ans.tool_call
        head = {"index": 0, "id": call.id, "type": "function"}
        frames.append(
            chunk({"tool_calls": [{**head, "function": {"name": call.name, "arguments": ""}}]})
        )
        for piece in pieces(call.arguments_json(), settings.chunk_size):
            frames.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    else:
        frames.extend(chunk({"content": p}) for p in pieces(ans.text, settings.chunk_size))
    frames.append(chunk({}, _finish(ans)))
    if with_usage:
        frames.append(sse({**base, "choices": [], "usage": _usage(ans)}))
    frames.append(b"data: [DONE]\n\n")
    return frames


def validate_embeddings(body: Any) -> dict[str, Any] | None:
    """The 400 error body for an invalid embeddings request, or ``None``."""
    if not isinstance(body, Mapping):
        return error_body(400, "We could not parse the JSON body of your request.")
    if not isinstance(body.get("model"), str):
        return error_body(400, "you must provide a model parameter")
    if "input" not in body:
        return error_body(
            400,
            "Missing required parameter: 'input'.",
            param="input",
            code="missing_required_parameter",
        )
    if body.get("encoding_format", "float") not in ("float", "base64"):
        return error_body(400, "Invalid value for 'encoding_format'.", param="encoding_format")
    return None


def _inputs(raw: Any) -> list[str]:
    # A list of ints is one tokenised input; a list of lists is several.
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        return [" ".join(map(str, raw))]
    if isinstance(raw, list):
        return [x if isinstance(x, str) else " ".join(map(str, x)) for x in raw]
    return [str(raw)]


def vector(text: str, dim: int) -> list[float]:
    """A deterministic unit-free vector in [-1, 1] for ``text``, from SHA-256."""
    out: list[float] = []
    counter = 0
    while len(out) < dim:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        out.extend(round(b / 127.5 - 1.0, 6) for b in digest)
        counter += 1
    return out[:dim]


def embeddings(body: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """An embeddings ``list`` answering ``body`` in its ``encoding_format``."""
    texts = _inputs(body["input"])
    b64 = body.get("encoding_format") == "base64"
    data: list[dict[str, Any]] = []
    for index, text in enumerate(texts):
        vec = vector(text, int(body.get("dimensions") or settings.embedding_dim))
        emb: Any = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode() if b64 else vec
        data.append({"object": "embedding", "index": index, "embedding": emb})
    tokens = sum(count_tokens(t) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def models(settings: Settings, owner: str, created: int) -> dict[str, Any]:
    """``GET /v1/models``."""
    return {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": created, "owned_by": owner}
            for m in settings.models
        ],
    }
