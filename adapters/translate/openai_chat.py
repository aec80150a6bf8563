"""OpenAI Chat Completions responses and ``chat.completion.chunk`` streams <-> canonical.

Only choice 0 is translated (``n`` > 1 has no equivalent elsewhere). A refusal
becomes text, so the client sees why nothing else came.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from adapters.translate.canonical import (
    CanonicalResponse,
    Event,
    StopReason,
    TextPart,
    ToolCall,
    Usage,
    text_of,
    tool_call,
)
from adapters.translate.errors import TranslateError, describe_upstream_error, stream_error_event
from adapters.translate.sse import SSEEvent, dumps, json_event

API = "openai.chat"
DONE = "[DONE]"

_STOP_IN: dict[str, StopReason] = {
    "stop": "end",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
}
_STOP_OUT: dict[StopReason, str] = {
    "end": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
}


def response_to_canonical(body: Mapping[str, Any]) -> CanonicalResponse:
    """A ``chat.completion`` object -> canonical response."""
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise TranslateError("upstream_malformed_response", "chat completion has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, Mapping):
        raise TranslateError("upstream_malformed_response", "chat completion choice has no message")
    return {
        "id": str(body.get("id") or ""),
        "model": str(body.get("model") or ""),
        "content": _text_parts(message),
        "tool_calls": _tool_calls(message),
        "stop_reason": _STOP_IN.get(str(choice.get("finish_reason")), "end"),
        "usage": _usage(body.get("usage")),
    }


def response_from_canonical(
    response: CanonicalResponse, *, created: int | None = None
) -> dict[str, Any]:
    """Canonical response -> a ``chat.completion`` object the OpenAI SDK accepts."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text_of(response) if response["content"] or not response["tool_calls"] else None,
        "refusal": None,
    }
    if response["tool_calls"]:
        message["tool_calls"] = [_tool_call_out(call) for call in response["tool_calls"]]
    body: dict[str, Any] = {
        "id": response["id"],
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": response["model"],
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _STOP_OUT[response["stop_reason"]],
            }
        ],
    }
    if response["usage"] is not None:
        body["usage"] = _usage_out(response["usage"])
    return body


class StreamDecoder:
    """``chat.completion.chunk`` events (and ``[DONE]``) -> canonical events."""

    def __init__(self) -> None:
        self._started = False
        self._tools: set[int] = set()

    def feed(self, event: SSEEvent) -> list[Event]:
        if event.data.strip() == DONE:
            return []
        chunk = event.json()
        if not isinstance(chunk, Mapping):
            raise TranslateError("upstream_malformed_event", "chunk is not a JSON object")
        if chunk.get("error"):
            fault = describe_upstream_error(API, chunk)
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
            out.append(
                {
                    "type": "start",
                    "id": str(chunk.get("id") or ""),
                    "model": str(chunk.get("model") or ""),
                }
            )
        for choice in chunk.get("choices") or ():
            if isinstance(choice, Mapping) and choice.get("index", 0) == 0:
                out.extend(self._choice(choice))
        usage = _usage(chunk.get("usage"))
        if usage is not None:
            out.append({"type": "usage", **usage})
        return out

    def finish(self) -> list[Event]:
        return []

    def _choice(self, choice: Mapping[str, Any]) -> list[Event]:
        out: list[Event] = []
        delta = choice.get("delta")
        if not isinstance(delta, Mapping):
            delta = {}
        for field in ("content", "refusal"):
            if isinstance(delta.get(field), str) and delta[field]:
                out.append({"type": "text_delta", "index": 0, "text": delta[field]})
        for call in delta.get("tool_calls") or ():
            index = call.get("index", 0)
            function = call.get("function") or {}
            if index not in self._tools:
                self._tools.add(index)
                out.append(
                    {
                        "type": "tool_call_start",
                        "index": index,
                        "id": str(call.get("id") or f"call_{index}"),
                        "name": str(function.get("name") or ""),
                    }
                )
            if function.get("arguments"):
                out.append(
                    {
                        "type": "tool_call_delta",
                        "index": index,
                        "arguments_json_fragment": str(function["arguments"]),
                    }
                )
        if choice.get("finish_reason"):
            out.append(
                {"type": "stop", "stop_reason": _STOP_IN.get(str(choice["finish_reason"]), "end")}
            )
        return out


class StreamEncoder:
    """Canonical events -> ``chat.completion.chunk`` events, a usage chunk, ``[DONE]``.

    Every chunk carries the same id, ``created`` and model. The role comes in the
    first chunk; with ``include_usage`` every chunk has ``"usage": null`` and the
    last one before ``[DONE]`` has no choices and the usage, as OpenAI does.
    """

    def __init__(self, *, include_usage: bool = False, created: int | None = None) -> None:
        self._include_usage = include_usage
        self._created = int(time.time()) if created is None else created
        self._id = ""
        self._model = ""
        self._started = False
        self._finished = False
        self._usage: Usage | None = None

    def feed(self, event: Event) -> list[SSEEvent]:
        if self._finished:
            return []
        out: list[SSEEvent] = []
        if event["type"] == "error":
            self._finished = True
            name, body = stream_error_event(
                API, event["code"], event["message"], status=event["status"]
            )
            return [json_event(body, name)]
        if event["type"] == "start":
            self._id, self._model = event["id"], event["model"]
        if not self._started:
            self._started = True
            out.append(self._chunk({"role": "assistant", "content": ""}))
        if event["type"] == "text_delta":
            out.append(self._chunk({"content": event["text"]}))
        elif event["type"] == "tool_call_start":
            out.append(
                self._chunk(
                    {
                        "tool_calls": [
                            {
                                "index": event["index"],
                                "id": event["id"],
                                "type": "function",
                                "function": {"name": event["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
        elif event["type"] == "tool_call_delta":
            out.append(
                self._chunk(
                    {
                        "tool_calls": [
                            {
                                "index": event["index"],
                                "function": {"arguments": event["arguments_json_fragment"]},
                            }
                        ]
                    }
                )
            )
        elif event["type"] == "stop":
            out.append(self._chunk({}, finish_reason=_STOP_OUT[event["stop_reason"]]))
        elif event["type"] == "usage":
            self._usage = {
                "prompt_tokens": event["prompt_tokens"],
                "completion_tokens": event["completion_tokens"],
            }
        return out

    def finish(self) -> list[SSEEvent]:
        if self._finished:
            return []
        self._finished = True
        out = []
        if self._include_usage and self._usage is not None:
            out.append(json_event(self._envelope([], usage=_usage_out(self._usage))))
        out.append(SSEEvent(data=DONE))
        return out

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> SSEEvent:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return json_event(self._envelope([choice]))

    def _envelope(self, choices: list[Any], usage: Any = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if self._include_usage:
            chunk["usage"] = usage
        return chunk


def is_usage_only_chunk(event: SSEEvent) -> bool:
    """True for the ``include_usage`` chunk (no choices), which clients that did not ask
    for it may not expect (``chunk.choices[0]`` fails on it)."""
    if event.data.startswith("[") or '"usage"' not in event.data:
        return False
    chunk = event.json()
    return isinstance(chunk, Mapping) and chunk.get("choices") == [] and bool(chunk.get("usage"))


def _text_parts(message: Mapping[str, Any]) -> list[TextPart]:
    content = message.get("content")
    texts: list[str] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        texts.extend(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    if isinstance(message.get("refusal"), str):
        texts.append(message["refusal"])
    return [{"type": "text", "text": text} for text in texts if text]


def _tool_calls(message: Mapping[str, Any]) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for index, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping) and call.get("type", "function") == "function":
            calls.append(
                tool_call(
                    str(call.get("id") or f"call_{index}"),
                    str(function.get("name") or ""),
                    str(function.get("arguments") or ""),
                )
            )
    legacy = message.get("function_call")
    if isinstance(legacy, Mapping):
        calls.append(
            tool_call(
                f"call_{len(calls)}",
                str(legacy.get("name") or ""),
                str(legacy.get("arguments") or ""),
            )
        )
    return calls


def _tool_call_out(call: ToolCall) -> dict[str, Any]:
    arguments = call.get("raw_arguments")
    return {
        "id": call["id"],
        "type": "function",
        "function": {
            "name": call["name"],
            "arguments": arguments if arguments is not None else dumps(call["arguments"]),
        },
    }


def _usage(value: Any) -> Usage | None:
    if not isinstance(value, Mapping):
        return None
    return {
        "prompt_tokens": int(value.get("prompt_tokens") or 0),
        "completion_tokens": int(value.get("completion_tokens") or 0),
    }


def _usage_out(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"],
    }
