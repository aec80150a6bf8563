"""Anthropic Messages responses and stream events <-> canonical.

Thinking and server-tool blocks have no canonical equivalent and are skipped.
Prompt tokens count cache reads and writes too, as OpenAI's ``prompt_tokens`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.translate.canonical import (
    CanonicalResponse,
    Event,
    StopReason,
    TextPart,
    ToolCall,
    Usage,
    tool_call,
)
from adapters.translate.errors import TranslateError, describe_upstream_error, stream_error_event
from adapters.translate.sse import SSEEvent, dumps, json_event

API = "anthropic.messages"

_STOP_IN: dict[str, StopReason] = {
    "end_turn": "end",
    "pause_turn": "end",
    "max_tokens": "max_tokens",
    "model_context_window_exceeded": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "refusal": "content_filter",
}
_STOP_OUT: dict[StopReason, str] = {
    "end": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "content_filter": "refusal",
}


def response_to_canonical(body: Mapping[str, Any]) -> CanonicalResponse:
    """A ``message`` object -> canonical response."""
    blocks = body.get("content")
    if not isinstance(blocks, list):
        raise TranslateError("upstream_malformed_response", "message has no content list")
    parts: list[TextPart] = []
    calls: list[ToolCall] = []
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "text" and block.get("text"):
            parts.append({"type": "text", "text": str(block["text"])})
        elif block.get("type") == "tool_use":
            arguments = block.get("input")
            calls.append(
                tool_call(
                    str(block.get("id") or f"toolu_{len(calls)}"),
                    str(block.get("name") or ""),
                    dumps(arguments if isinstance(arguments, Mapping) else {}),
                )
            )
    usage = body.get("usage")
    return {
        "id": str(body.get("id") or ""),
        "model": str(body.get("model") or ""),
        "content": parts,
        "tool_calls": calls,
        "stop_reason": _STOP_IN.get(str(body.get("stop_reason")), "end"),
        "usage": _usage(usage, usage) if isinstance(usage, Mapping) else None,
    }


def response_from_canonical(response: CanonicalResponse) -> dict[str, Any]:
    """Canonical response -> a ``message`` object the Anthropic SDK accepts.

    Empty text parts are dropped: Anthropic rejects empty text blocks when a
    client sends the message back in its history.
    """
    content: list[dict[str, Any]] = [
        {"type": "text", "text": part["text"]} for part in response["content"] if part["text"]
    ]
    content.extend(
        {"type": "tool_use", "id": call["id"], "name": call["name"], "input": call["arguments"]}
        for call in response["tool_calls"]
    )
    usage = response["usage"] or {"prompt_tokens": 0, "completion_tokens": 0}
    return {
        "id": response["id"],
        "type": "message",
        "role": "assistant",
        "model": response["model"],
        "content": content,
        "stop_reason": _STOP_OUT[response["stop_reason"]],
        "stop_sequence": None,
        "usage": {
            "input_tokens": usage["prompt_tokens"],
            "output_tokens": usage["completion_tokens"],
        },
    }


class StreamDecoder:
    """``message_start`` .. ``message_stop`` events -> canonical events."""

    def __init__(self) -> None:
        self._blocks: dict[int, tuple[str, int]] = {}  # block index -> ("text"|"tool", ordinal)
        self._texts = 0
        self._tools = 0
        self._start_usage: Mapping[str, Any] = {}

    def feed(self, event: SSEEvent) -> list[Event]:
        if event.event == "ping":
            return []
        payload = event.json()
        if not isinstance(payload, Mapping):
            raise TranslateError("upstream_malformed_event", "event is not a JSON object")
        kind = payload.get("type") or event.event
        if kind == "error":
            fault = describe_upstream_error(API, payload)
            return [
                {
                    "type": "error",
                    "status": fault.status,
                    "code": "upstream_error",
                    "message": fault.message,
                }
            ]
        if kind == "message_start":
            message = payload.get("message") or {}
            self._start_usage = message.get("usage") or {}
            return [
                {
                    "type": "start",
                    "id": str(message.get("id") or ""),
                    "model": str(message.get("model") or ""),
                }
            ]
        if kind == "content_block_start":
            return self._block_start(payload.get("index", 0), payload.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(payload.get("index", 0), payload.get("delta") or {})
        if kind == "message_delta":
            out: list[Event] = []
            stop = (payload.get("delta") or {}).get("stop_reason")
            if stop:
                out.append({"type": "stop", "stop_reason": _STOP_IN.get(str(stop), "end")})
            usage = payload.get("usage")
            if isinstance(usage, Mapping):
                out.append({"type": "usage", **_usage(usage, self._start_usage)})
            return out
        return []  # content_block_stop, message_stop, unknown future events

    def finish(self) -> list[Event]:
        return []

    def _block_start(self, index: int, block: Mapping[str, Any]) -> list[Event]:
        if block.get("type") == "text":
            self._blocks[index] = ("text", self._texts)
            self._texts += 1
            if block.get("text"):
                return [
                    {"type": "text_delta", "index": self._texts - 1, "text": str(block["text"])}
                ]
        elif block.get("type") == "tool_use":
            self._blocks[index] = ("tool", self._tools)
            self._tools += 1
            out: list[Event] = [
                {
                    "type": "tool_call_start",
                    "index": self._tools - 1,
                    "id": str(block.get("id") or ""),
                    "name": str(block.get("name") or ""),
                }
            ]
            if block.get("input"):
                out.append(
                    {
                        "type": "tool_call_delta",
                        "index": self._tools - 1,
                        "arguments_json_fragment": dumps(block["input"]),
                    }
                )
            return out
        return []

    def _block_delta(self, index: int, delta: Mapping[str, Any]) -> list[Event]:
        kind, ordinal = self._blocks.get(index, ("", 0))
        if kind == "text" and delta.get("type") == "text_delta" and delta.get("text"):
            return [{"type": "text_delta", "index": ordinal, "text": str(delta["text"])}]
        if kind == "tool" and delta.get("type") == "input_json_delta" and delta.get("partial_json"):
            return [
                {
                    "type": "tool_call_delta",
                    "index": ordinal,
                    "arguments_json_fragment": str(delta["partial_json"]),
                }
            ]
        return []


class StreamEncoder:
    """Canonical events -> Anthropic ``message_start`` .. ``message_stop`` events.

    A block opens before its first delta and closes when the next begins or the
    message stops; ``message_delta`` carries the stop reason and the usage, so it
    waits for both (or for the end of the stream).
    """

    def __init__(self) -> None:
        self._started = False
        self._finished = False
        self._delta_sent = False
        self._open: tuple[str, int] | None = None  # ("text"|"tool", canonical index)
        self._blocks = 0
        self._tool_blocks: dict[int, int] = {}
        self._stop: StopReason | None = None
        self._usage: Usage | None = None

    def feed(self, event: Event) -> list[SSEEvent]:
        if self._finished:
            return []
        if event["type"] == "error":
            self._finished = True
            name, body = stream_error_event(
                API, event["code"], event["message"], status=event["status"]
            )
            return [json_event(body, name)]
        out = self._ensure_started(
            event["id"] if event["type"] == "start" else "",
            event["model"] if event["type"] == "start" else "",
        )
        if event["type"] == "text_delta" and event["text"]:
            if self._open != ("text", event["index"]):
                out += self._open_block(("text", event["index"]), {"type": "text", "text": ""})
            out.append(
                _event(
                    "content_block_delta",
                    index=self._blocks - 1,
                    delta={"type": "text_delta", "text": event["text"]},
                )
            )
        elif event["type"] == "tool_call_start":
            self._tool_blocks[event["index"]] = self._blocks
            out += self._open_block(
                ("tool", event["index"]),
                {"type": "tool_use", "id": event["id"], "name": event["name"], "input": {}},
            )
        elif event["type"] == "tool_call_delta" and event["index"] in self._tool_blocks:
            out.append(
                _event(
                    "content_block_delta",
                    index=self._tool_blocks[event["index"]],
                    delta={
                        "type": "input_json_delta",
                        "partial_json": event["arguments_json_fragment"],
                    },
                )
            )
        elif event["type"] == "stop":
            self._stop = event["stop_reason"]
            out += self._close_block()
            if self._usage is not None:
                out += self._message_delta()
        elif event["type"] == "usage":
            self._usage = {
                "prompt_tokens": event["prompt_tokens"],
                "completion_tokens": event["completion_tokens"],
            }
            if self._stop is not None:
                out += self._message_delta()
        return out

    def finish(self) -> list[SSEEvent]:
        if self._finished:
            return []
        out = self._ensure_started("", "") + self._close_block() + self._message_delta()
        self._finished = True
        return [*out, _event("message_stop")]

    def _ensure_started(self, message_id: str, model: str) -> list[SSEEvent]:
        if self._started:
            return []
        self._started = True
        return [
            _event(
                "message_start",
                message={
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                },
            )
        ]

    def _open_block(self, key: tuple[str, int], block: dict[str, Any]) -> list[SSEEvent]:
        out = self._close_block()
        self._open = key
        self._blocks += 1
        return [*out, _event("content_block_start", index=self._blocks - 1, content_block=block)]

    def _close_block(self) -> list[SSEEvent]:
        if self._open is None:
            return []
        self._open = None
        return [_event("content_block_stop", index=self._blocks - 1)]

    def _message_delta(self) -> list[SSEEvent]:
        if self._delta_sent:
            return []
        self._delta_sent = True
        usage = self._usage or {"prompt_tokens": 0, "completion_tokens": 0}
        return [
            _event(
                "message_delta",
                delta={"stop_reason": _STOP_OUT[self._stop or "end"], "stop_sequence": None},
                usage={
                    "input_tokens": usage["prompt_tokens"],
                    "output_tokens": usage["completion_tokens"],
                },
            )
        ]


def _event(kind: str, **fields: Any) -> SSEEvent:
    return json_event({"type": kind, **fields}, kind)


def _usage(usage: Mapping[str, Any], fallback: Mapping[str, Any]) -> Usage:
    # message_delta may omit input counts; message_start then holds them.
    source = usage if usage.get("input_tokens") is not None else fallback
    prompt = sum(
        int(source.get(key) or 0)
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    return {"prompt_tokens": prompt, "completion_tokens": int(usage.get("output_tokens") or 0)}
