"""Gemini ``generateContent``, ``streamGenerateContent?alt=sse``, ``embedContent`` <-> canonical.

Gemini is a provider, never a client API: the ``from_canonical`` side exists
for fake Gemini servers in tests. Thought parts are skipped (their tokens still
count as completion tokens, as OpenAI counts reasoning tokens). Function calls
arrive whole, so each becomes a start and one argument fragment; calls without
an ``id`` get one derived from the response id, stable across a retry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from adapters.translate.canonical import (
    CanonicalEmbeddings,
    CanonicalResponse,
    Event,
    StopReason,
    TextPart,
    ToolCall,
    Usage,
    parse_arguments,
    tool_call,
)
from adapters.translate.errors import (
    TranslateError,
    describe_upstream_error,
    gemini_error_body,
)
from adapters.translate.sse import SSEEvent, dumps, json_event

API = "gemini.generate_content"

_FINISH_IN: dict[str, StopReason] = {
    "STOP": "end",
    "MAX_TOKENS": "max_tokens",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
_FINISH_OUT: dict[StopReason, str] = {
    "end": "STOP",
    "stop_sequence": "STOP",
    "tool_use": "STOP",
    "max_tokens": "MAX_TOKENS",
    "content_filter": "SAFETY",
}
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_-]")


def response_to_canonical(body: Mapping[str, Any]) -> CanonicalResponse:
    """A ``GenerateContentResponse`` -> canonical response."""
    if not isinstance(body.get("candidates", []), list):
        raise TranslateError("upstream_malformed_response", "candidates is not a list")
    response_id = str(body.get("responseId") or "")
    parts: list[TextPart] = []
    calls: list[ToolCall] = []
    for part in _parts(body):
        if _is_text(part):
            parts.append({"type": "text", "text": part["text"]})
        elif isinstance(part.get("functionCall"), Mapping):
            call = part["functionCall"]
            calls.append(
                tool_call(
                    _call_id(call, response_id, len(calls)),
                    str(call.get("name") or ""),
                    dumps(call.get("args") or {}),
                )
            )
    return {
        "id": response_id,
        "model": str(body.get("modelVersion") or ""),
        "content": parts,
        "tool_calls": calls,
        "stop_reason": _stop_reason(body, has_tools=bool(calls)) or "end",
        "usage": _usage(body.get("usageMetadata")),
    }


def response_from_canonical(response: CanonicalResponse) -> dict[str, Any]:
    """Canonical response -> a ``GenerateContentResponse``."""
    parts: list[dict[str, Any]] = [{"text": part["text"]} for part in response["content"]]
    parts.extend(
        {"functionCall": {"id": call["id"], "name": call["name"], "args": call["arguments"]}}
        for call in response["tool_calls"]
    )
    return _chunk(
        response["id"],
        response["model"],
        parts,
        _FINISH_OUT[response["stop_reason"]],
        response["usage"],
    )


def embeddings_to_canonical(body: Mapping[str, Any], *, model: str) -> CanonicalEmbeddings:
    """``embedContent`` (``embedding``) or ``batchEmbedContents`` (``embeddings``) -> canonical.

    Gemini does not echo the model, so the caller names it.
    """
    items = body.get("embeddings")
    if items is None and isinstance(body.get("embedding"), Mapping):
        items = [body["embedding"]]
    if not isinstance(items, list):
        raise TranslateError("upstream_malformed_response", "no embeddings in response")
    vectors = [
        [float(value) for value in item.get("values", ())]
        for item in items
        if isinstance(item, Mapping)
    ]
    metadata = body.get("usageMetadata")
    usage: Usage | None = None
    if isinstance(metadata, Mapping):
        usage = {
            "prompt_tokens": int(metadata.get("promptTokenCount") or 0),
            "completion_tokens": 0,
        }
    return {"model": model, "vectors": vectors, "usage": usage}


def embeddings_from_canonical(embeddings: CanonicalEmbeddings) -> dict[str, Any]:
    """Canonical embeddings -> a ``batchEmbedContents`` response."""
    return {"embeddings": [{"values": vector} for vector in embeddings["vectors"]]}


class StreamDecoder:
    """``streamGenerateContent?alt=sse`` events -> canonical events.

    Usage metadata grows chunk by chunk; it is reported once, after the stop.
    """

    def __init__(self) -> None:
        self._started = False
        self._response_id = ""
        self._tools = 0
        self._usage: Usage | None = None
        self._usage_sent = False

    def feed(self, event: SSEEvent) -> list[Event]:
        payload = event.json()
        if isinstance(payload, list) and len(payload) == 1:
            payload = payload[0]
        if not isinstance(payload, Mapping):
            raise TranslateError("upstream_malformed_event", "event is not a JSON object")
        if payload.get("error"):
            fault = describe_upstream_error(API, payload)
            return [
                {
                    "type": "error",
                    "status": fault.status,
                    "code": "upstream_error",
                    "message": fault.message,
                }
            ]
        out: list[Event] = []
        if not self._started:
            self._started = True
            self._response_id = str(payload.get("responseId") or "")
            out.append(
                {
                    "type": "start",
                    "id": self._response_id,
                    "model": str(payload.get("modelVersion") or ""),
                }
            )
        for part in _parts(payload):
            if _is_text(part):
                out.append({"type": "text_delta", "index": 0, "text": part["text"]})
            elif isinstance(part.get("functionCall"), Mapping):
                call = part["functionCall"]
                index, self._tools = self._tools, self._tools + 1
                out.append(
                    {
                        "type": "tool_call_start",
                        "index": index,
                        "id": _call_id(call, self._response_id, index),
                        "name": str(call.get("name") or ""),
                    }
                )
                out.append(
                    {
                        "type": "tool_call_delta",
                        "index": index,
                        "arguments_json_fragment": dumps(call.get("args") or {}),
                    }
                )
        self._usage = _usage(payload.get("usageMetadata")) or self._usage
        stop = _stop_reason(payload, has_tools=self._tools > 0)
        if stop is not None:
            out.append({"type": "stop", "stop_reason": stop})
            out.extend(self._usage_event())
        return out

    def finish(self) -> list[Event]:
        return self._usage_event()

    def _usage_event(self) -> list[Event]:
        if self._usage is None or self._usage_sent:
            return []
        self._usage_sent = True
        return [{"type": "usage", **self._usage}]


class StreamEncoder:
    """Canonical events -> ``streamGenerateContent?alt=sse`` events.

    A function call is sent whole once its arguments are complete; the last
    chunk carries ``finishReason`` and ``usageMetadata``, as Gemini's does.
    """

    def __init__(self) -> None:
        self._id = ""
        self._model = ""
        self._call: tuple[str, str, list[str]] | None = None
        self._stop: StopReason | None = None
        self._usage: Usage | None = None
        self._finished = False

    def feed(self, event: Event) -> list[SSEEvent]:
        if self._finished:
            return []
        if event["type"] == "error":
            self._finished = True
            return [json_event(gemini_error_body(event["status"], event["message"]))]
        out: list[SSEEvent] = []
        if event["type"] == "start":
            self._id, self._model = event["id"], event["model"]
        elif event["type"] == "text_delta":
            out += self._flush_call()
            out.append(json_event(_chunk(self._id, self._model, [{"text": event["text"]}])))
        elif event["type"] == "tool_call_start":
            out += self._flush_call()
            self._call = (event["id"], event["name"], [])
        elif event["type"] == "tool_call_delta" and self._call is not None:
            self._call[2].append(event["arguments_json_fragment"])
        elif event["type"] == "stop":
            self._stop = event["stop_reason"]
            out += self._flush_call()
            if self._usage is not None:
                out += self.finish()
        elif event["type"] == "usage":
            self._usage = {
                "prompt_tokens": event["prompt_tokens"],
                "completion_tokens": event["completion_tokens"],
            }
            if self._stop is not None:
                out += self.finish()
        return out

    def finish(self) -> list[SSEEvent]:
        if self._finished:
            return []
        out = self._flush_call()
        self._finished = True
        out.append(
            json_event(
                _chunk(self._id, self._model, [], _FINISH_OUT[self._stop or "end"], self._usage)
            )
        )
        return out

    def _flush_call(self) -> list[SSEEvent]:
        if self._call is None:
            return []
        call_id, name, fragments = self._call
        self._call = None
        arguments, _ = parse_arguments("".join(fragments))
        part = {"functionCall": {"id": call_id, "name": name, "args": arguments}}
        return [json_event(_chunk(self._id, self._model, [part]))]


def _parts(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    candidates = body.get("candidates") or []
    if not candidates or not isinstance(candidates[0], Mapping):
        return []
    content = candidates[0].get("content") or {}
    return [part for part in content.get("parts") or () if isinstance(part, Mapping)]


def _is_text(part: Mapping[str, Any]) -> bool:
    return isinstance(part.get("text"), str) and bool(part["text"]) and not part.get("thought")


def _stop_reason(body: Mapping[str, Any], *, has_tools: bool) -> StopReason | None:
    candidates = body.get("candidates") or []
    if not candidates:
        feedback = body.get("promptFeedback") or {}
        return "content_filter" if feedback.get("blockReason") else None
    reason = candidates[0].get("finishReason") if isinstance(candidates[0], Mapping) else None
    if not reason:
        return None
    stop = _FINISH_IN.get(str(reason), "end")
    return "tool_use" if has_tools and stop == "end" else stop


def _call_id(call: Mapping[str, Any], response_id: str, index: int) -> str:
    if call.get("id"):
        return str(call["id"])
    suffix = _UNSAFE_ID.sub("", response_id)[:24]
    return f"call_{suffix}_{index}" if suffix else f"call_{index}"


def _usage(metadata: Any) -> Usage | None:
    if not isinstance(metadata, Mapping):
        return None
    return {
        "prompt_tokens": int(metadata.get("promptTokenCount") or 0)
        + int(metadata.get("toolUsePromptTokenCount") or 0),
        "completion_tokens": int(metadata.get("candidatesTokenCount") or 0)
        + int(metadata.get("thoughtsTokenCount") or 0),
    }


def _chunk(
    response_id: str,
    model: str,
    parts: list[dict[str, Any]],
    finish_reason: str | None = None,
    usage: Usage | None = None,
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish_reason is not None:
        candidate["finishReason"] = finish_reason
    body: dict[str, Any] = {"candidates": [candidate]}
    if usage is not None:
        body["usageMetadata"] = {
            "promptTokenCount": usage["prompt_tokens"],
            "candidatesTokenCount": usage["completion_tokens"],
            "totalTokenCount": usage["prompt_tokens"] + usage["completion_tokens"],
        }
    body["modelVersion"] = model
    body["responseId"] = response_id
    return body
