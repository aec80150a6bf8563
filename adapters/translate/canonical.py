"""The canonical response hub: one response shape and one stream-event vocabulary.

Every wire format translates to and from these, so N formats need N
translators, not N x N. Text parts have the shape of Contract 1's message
content, so a JSON pointer names one response text exactly.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal, NotRequired, Protocol, TypedDict

if TYPE_CHECKING:
    from adapters.translate.sse import SSEEvent

StopReason = Literal["end", "max_tokens", "tool_use", "stop_sequence", "content_filter"]


class TextPart(TypedDict):
    type: Literal["text"]
    text: str


class ToolCall(TypedDict):
    id: str
    name: str
    arguments: dict[str, Any]
    # The provider's argument text when it was not a JSON object ("arguments" is then {}).
    raw_arguments: NotRequired[str]


class Usage(TypedDict):
    prompt_tokens: int
    completion_tokens: int


class CanonicalResponse(TypedDict):
    id: str
    model: str
    content: list[TextPart]
    tool_calls: list[ToolCall]
    stop_reason: StopReason
    usage: Usage | None  # None: the provider did not say


class CanonicalEmbeddings(TypedDict):
    model: str
    vectors: list[list[float]]
    usage: Usage | None


class StartEvent(TypedDict):
    type: Literal["start"]
    id: str
    model: str


class TextDeltaEvent(TypedDict):
    type: Literal["text_delta"]
    index: int  # which text part (0 for the first)
    text: str


class ToolCallStartEvent(TypedDict):
    type: Literal["tool_call_start"]
    index: int  # which tool call (0 for the first)
    id: str
    name: str


class ToolCallDeltaEvent(TypedDict):
    type: Literal["tool_call_delta"]
    index: int
    arguments_json_fragment: str


class StopEvent(TypedDict):
    type: Literal["stop"]
    stop_reason: StopReason


class UsageEvent(TypedDict):
    type: Literal["usage"]
    prompt_tokens: int
    completion_tokens: int


class ErrorEvent(TypedDict):
    type: Literal["error"]
    status: int  # the HTTP status the error would have had (529 overloaded, 429, ...)
    code: str
    message: str


Event = (
    StartEvent
    | TextDeltaEvent
    | ToolCallStartEvent
    | ToolCallDeltaEvent
    | StopEvent
    | UsageEvent
    | ErrorEvent
)


class StreamDecoder(Protocol):
    """Provider stream -> canonical events, one parsed SSE event at a time."""

    def feed(self, event: SSEEvent) -> list[Event]: ...

    def finish(self) -> list[Event]: ...


class StreamEncoder(Protocol):
    """Canonical events -> client SSE events, one event at a time."""

    def feed(self, event: Event) -> list[SSEEvent]: ...

    def finish(self) -> list[SSEEvent]: ...


def parse_arguments(text: str) -> tuple[dict[str, Any], str | None]:
    """Tool-call argument text -> ``(object, None)``, or ``({}, text)`` if not a JSON object."""
    if not text.strip():
        return {}, None
    try:
        value = json.loads(text)
    except ValueError:
        return {}, text
    return (value, None) if isinstance(value, dict) else ({}, text)


def tool_call(call_id: str, name: str, argument_text: str) -> ToolCall:
    """A canonical tool call from its argument text, keeping unparsable text verbatim."""
    arguments, raw = parse_arguments(argument_text)
    call: ToolCall = {"id": call_id, "name": name, "arguments": arguments}
    if raw is not None:
        call["raw_arguments"] = raw
    return call


def accumulate(events: list[Event]) -> CanonicalResponse:
    """Fold a complete event stream into the response it describes (for tests and audit)."""
    response: CanonicalResponse = {
        "id": "",
        "model": "",
        "content": [],
        "tool_calls": [],
        "stop_reason": "end",
        "usage": None,
    }
    texts: dict[int, list[str]] = {}
    calls: dict[int, tuple[str, str, list[str]]] = {}
    for event in events:
        if event["type"] == "start":
            response["id"], response["model"] = event["id"], event["model"]
        elif event["type"] == "text_delta":
            texts.setdefault(event["index"], []).append(event["text"])
        elif event["type"] == "tool_call_start":
            calls[event["index"]] = (event["id"], event["name"], [])
        elif event["type"] == "tool_call_delta":
            calls[event["index"]][2].append(event["arguments_json_fragment"])
        elif event["type"] == "stop":
            response["stop_reason"] = event["stop_reason"]
        elif event["type"] == "usage":
            response["usage"] = {
                "prompt_tokens": event["prompt_tokens"],
                "completion_tokens": event["completion_tokens"],
            }
    response["content"] = [{"type": "text", "text": "".join(texts[i])} for i in sorted(texts)]
    response["tool_calls"] = [
        tool_call(calls[i][0], calls[i][1], "".join(calls[i][2])) for i in sorted(calls)
    ]
    return response


def text_of(response: CanonicalResponse) -> str:
    """All text parts joined (formats with a single text field use this)."""
    return "".join(part["text"] for part in response["content"])
