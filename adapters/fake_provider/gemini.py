"""Gemini ``generateContent`` wire format of the fake provider, ``alt=sse`` streaming included.

Pure functions from request JSON to ``GenerateContentResponse`` objects
(``candidates[].content.parts[]``, ``finishReason``, ``usageMetadata``); a
stream is a sequence of such objects as ``data:`` frames with no end marker.
Errors are Google's ``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.fake_provider.replies import Answer, Prompt, Settings, answer, pieces, sse, texts_of

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_MESSAGES = {
    401: "API key not valid. Please pass a valid API key.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}
_TEXT_KEYS = ("text", "functionResponse", "function_response")
# Gemini streams end events with CRLF pairs; clients accept either.
_SEP = "\r\n\r\n"


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """Google's ``{"error": {"code", "message", "status"}}`` for ``status``."""
    name = _STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    return {
        "error": {
            "code": status,
            "message": message or _MESSAGES.get(status, "Request failed."),
            "status": name,
        }
    }


def stream_error(status: int, message: str | None = None) -> bytes:
    """The frame sent when a stream fails after the 200 response."""
    return sse(error_body(status, message), sep=_SEP)


def _get(body: Mapping[str, Any], camel: str, snake: str) -> Any:
    # The REST surface accepts both proto JSON spellings.
    return body.get(camel, body.get(snake))


def validate(body: Any) -> dict[str, Any] | None:
    """The 400 error body for an invalid request, or ``None``."""
    if not isinstance(body, Mapping):
        return error_body(400, "Invalid JSON payload received. Unexpected token.")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return error_body(400, "* GenerateContentRequest.contents: contents is not specified\n")
    for index, content in enumerate(contents):
        if not isinstance(content, Mapping) or not isinstance(content.get("parts"), list):
            return error_body(
                400,
                f"* GenerateContentRequest.contents[{index}].parts: must not be empty.\n",
            )
    return None


def prompt_of(body: Mapping[str, Any]) -> Prompt:
    """The wire-independent prompt of a (valid) request."""
    contents: list[Mapping[str, Any]] = body["contents"]
    users = [c for c in contents if c.get("role", "user") == "user"]
    last_user = " ".join(texts_of(users[-1]["parts"], _TEXT_KEYS)) if users else ""
    tools: dict[str, Mapping[str, Any]] = {}
    for tool in body.get("tools") or []:
        decls = (
            _get(tool, "functionDeclarations", "function_declarations")
            if isinstance(tool, Mapping)
            else None
        )
        for decl in decls or []:
            if isinstance(decl, Mapping) and isinstance(decl.get("name"), str):
                params = decl.get("parameters")
                tools[decl["name"]] = params if isinstance(params, Mapping) else {}
    system = _get(body, "systemInstruction", "system_instruction")
    system_text = "".join(texts_of(system.get("parts"))) if isinstance(system, Mapping) else ""
    last = contents[-1]
    has_text = any(isinstance(p, Mapping) and "text" in p for p in last["parts"])
    config = _get(body, "generationConfig", "generation_config")
    limit = (
        _get(config, "maxOutputTokens", "max_output_tokens")
        if isinstance(config, Mapping)
        else None
    )
    return Prompt(
        last_user_text=last_user,
        last_is_user=last.get("role", "user") == "user" and has_text,
        all_text=system_text + "".join("".join(texts_of(c["parts"], _TEXT_KEYS)) for c in contents),
        tools=tools,
        max_tokens=limit if isinstance(limit, int) else None,
    )


def _usage(ans: Answer, candidates: int) -> dict[str, int]:
    return {
        "promptTokenCount": ans.prompt_tokens,
        "candidatesTokenCount": candidates,
        "totalTokenCount": ans.prompt_tokens + candidates,
    }


def _response(
    model: str, ident: str, parts: list[dict[str, Any]], finish: str | None, usage: dict[str, int]
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": ident,
    }


def _finish(ans: Answer) -> str:
    return "MAX_TOKENS" if ans.truncated else "STOP"


def generate(body: Mapping[str, Any], model: str, settings: Settings, ident: str) -> dict[str, Any]:
    """A ``GenerateContentResponse`` answering ``body`` for ``model``."""
    ans = answer(prompt_of(body), settings, ident)
    parts: list[dict[str, Any]]
    if ans.tool_call is not None:
        parts = [{"functionCall": {"name": ans.tool_call.name, "args": ans.tool_call.arguments}}]
    else:
        parts = [{"text": ans.text}]
    return _response(model, ident, parts, _finish(ans), _usage(ans, ans.completion_tokens))


def stream_responses(
    body: Mapping[str, Any], model: str, settings: Settings, ident: str
) -> list[dict[str, Any]]:
    """The streamed ``GenerateContentResponse`` objects; the last carries ``finishReason``."""
    ans = answer(prompt_of(body), settings, ident)
    if ans.tool_call is not None:
        # Gemini never splits a function call across stream chunks.
        return [generate(body, model, settings, ident)]
    chunks = pieces(ans.text, settings.chunk_size)
    out = []
    sent = ""
    for index, piece in enumerate(chunks):
        sent += piece
        last = index == len(chunks) - 1
        usage = _usage(ans, ans.completion_tokens if last else (len(sent) + 3) // 4)
        out.append(
            _response(model, ident, [{"text": piece}], _finish(ans) if last else None, usage)
        )
    return out


def stream(body: Mapping[str, Any], model: str, settings: Settings, ident: str) -> list[bytes]:
    """The ``alt=sse`` frames of a streamed answer (no end marker: the stream just ends)."""
    return [sse(r, sep=_SEP) for r in stream_responses(body, model, settings, ident)]
