"""Anthropic Messages <-> canonical, checked against recorded payloads and the Anthropic SDK."""

from __future__ import annotations

import json

import anthropic
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from adapters.translate import anthropic_messages
from adapters.translate.canonical import CanonicalResponse, Event, accumulate
from adapters.translate.sse import SSEEvent, serialize_all

from .recorded import MESSAGES, anthropic_client, decode_stream, load_bytes, load_json

STREAM_EVENT = TypeAdapter[RawMessageStreamEvent](RawMessageStreamEvent)


def test_text_response_to_canonical_counts_cached_prompt_tokens() -> None:
    body = load_json("anthropic_text.json")
    canonical = anthropic_messages.response_to_canonical(body)
    usage = body["usage"]
    assert canonical["content"] == [{"type": "text", "text": body["content"][0]["text"]}]
    assert canonical["usage"] == {
        "prompt_tokens": usage["input_tokens"]
        + usage["cache_creation_input_tokens"]
        + usage["cache_read_input_tokens"],
        "completion_tokens": usage["output_tokens"],
    }
    assert canonical["stop_reason"] == "end"


def test_tool_use_response_to_canonical() -> None:
    body = load_json("anthropic_tools.json")
    canonical = anthropic_messages.response_to_canonical(body)
    block = body["content"][1]
    assert canonical["tool_calls"] == [
        {"id": block["id"], "name": block["name"], "arguments": block["input"]}
    ]
    assert canonical["content"][0]["text"] == body["content"][0]["text"]
    assert canonical["stop_reason"] == "tool_use"


def test_recorded_text_stream_skips_thinking_and_matches_usage() -> None:
    events = decode_stream("anthropic.messages", load_bytes("anthropic_text.sse"))
    streamed = accumulate(events)
    assert streamed["content"] == [{"type": "text", "text": "Hello! How can I help you today?"}]
    assert streamed["usage"] == {"prompt_tokens": 25, "completion_tokens": 15}
    assert events[0] == {
        "type": "start",
        "id": "msg_01Tq2KxL3Xg2ksj9yJ1Q2ZgB",
        "model": "claude-sonnet-4-20250514",
    }


def test_recorded_tool_stream_assembles_the_arguments() -> None:
    streamed = accumulate(decode_stream("anthropic.messages", load_bytes("anthropic_tools.sse")))
    assert streamed["tool_calls"] == [
        {
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "arguments": {"location": "San Francisco, CA", "unit": "fahrenheit"},
        }
    ]
    assert streamed["stop_reason"] == "tool_use"
    assert streamed["usage"] == {"prompt_tokens": 472, "completion_tokens": 89}


def test_from_canonical_is_a_valid_message_for_the_sdk() -> None:
    canonical: CanonicalResponse = {
        "id": "chatcmpl-1",
        "model": "gpt-4o-mini",
        "stop_reason": "content_filter",
        "content": [{"type": "text", "text": ""}, {"type": "text", "text": "Sorry."}],
        "tool_calls": [{"id": "call_1", "name": "f", "arguments": {"a": [1, 2]}}],
        "usage": None,
    }
    body = anthropic_messages.response_from_canonical(canonical)
    parsed = Message.model_validate(body)
    via_sdk = anthropic_client(200, json.dumps(body).encode()).messages.create(**MESSAGES)
    assert via_sdk == parsed
    assert [block.type for block in parsed.content] == ["text", "tool_use"]  # empty text dropped
    assert parsed.stop_reason == "refusal"
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens) == (0, 0)


def test_non_stream_round_trip_keeps_the_essentials() -> None:
    original = anthropic_messages.response_to_canonical(load_json("anthropic_tools.json"))
    again = anthropic_messages.response_to_canonical(
        anthropic_messages.response_from_canonical(original)
    )
    assert again == original


# OpenAI's order: the stop comes before the usage, and tool calls follow text.
EVENTS: list[Event] = [
    {"type": "start", "id": "chatcmpl-7", "model": "gpt-4o-mini"},
    {"type": "text_delta", "index": 0, "text": "Let me "},
    {"type": "text_delta", "index": 0, "text": "look."},
    {"type": "tool_call_start", "index": 0, "id": "call_a", "name": "search"},
    {"type": "tool_call_delta", "index": 0, "arguments_json_fragment": '{"q":'},
    {"type": "tool_call_delta", "index": 0, "arguments_json_fragment": '"cats"}'},
    {"type": "tool_call_start", "index": 1, "id": "call_b", "name": "time"},
    {"type": "stop", "stop_reason": "tool_use"},
    {"type": "usage", "prompt_tokens": 30, "completion_tokens": 12},
]


def encode(events: list[Event]) -> list[SSEEvent]:
    encoder = anthropic_messages.StreamEncoder()
    return [out for event in events for out in encoder.feed(event)] + encoder.finish()


def test_encoded_events_follow_the_protocol() -> None:
    out = encode(EVENTS)
    parsed = [STREAM_EVENT.validate_python(event.json()) for event in out]
    assert [event.event for event in out] == [p.type for p in parsed]
    assert [p.type for p in parsed] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    starts = [p.index for p in parsed if p.type == "content_block_start"]
    stops = [p.index for p in parsed if p.type == "content_block_stop"]
    assert starts == stops == [0, 1, 2]
    delta = parsed[-2]
    assert delta.type == "message_delta"
    assert delta.delta.stop_reason == "tool_use"
    assert (delta.usage.input_tokens, delta.usage.output_tokens) == (30, 12)


def test_the_sdk_stream_helper_rebuilds_the_message() -> None:
    client = anthropic_client(200, serialize_all(encode(EVENTS)), "text/event-stream")
    with client.messages.stream(**MESSAGES) as stream:
        final = stream.get_final_message()
    assert final.id == "chatcmpl-7"
    blocks = [block.model_dump(exclude_none=True) for block in final.content]
    assert blocks == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "call_a", "name": "search", "input": {"q": "cats"}},
        {"type": "tool_use", "id": "call_b", "name": "time", "input": {}},
    ]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (30, 12)
    assert final.stop_reason == "tool_use"


def test_stream_without_usage_still_closes_with_message_delta() -> None:
    out = encode([EVENTS[0], EVENTS[1], {"type": "stop", "stop_reason": "max_tokens"}])
    assert [event.event for event in out][-2:] == ["message_delta", "message_stop"]
    assert out[-2].json()["delta"]["stop_reason"] == "max_tokens"


def test_encoder_round_trips_through_the_decoder() -> None:
    wire = serialize_all(encode(EVENTS))
    assert accumulate(decode_stream("anthropic.messages", wire)) == accumulate(EVENTS)


def test_error_event_in_both_directions() -> None:
    recorded = SSEEvent(
        event="error",
        data=json.dumps(
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        ),
    )
    canonical = anthropic_messages.StreamDecoder().feed(recorded)
    assert canonical == [
        {"type": "error", "status": 529, "code": "upstream_error", "message": "Overloaded"}
    ]
    out = encode([EVENTS[0], EVENTS[1], *canonical, EVENTS[-1]])
    assert out[-1].event == "error"
    assert out[-1].json()["error"]["type"] == "overloaded_error"
    client = anthropic_client(200, serialize_all(out), "text/event-stream")
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
        list(client.messages.create(**MESSAGES, stream=True))


def test_unknown_and_ping_events_are_ignored() -> None:
    decoder = anthropic_messages.StreamDecoder()
    assert decoder.feed(SSEEvent(event="ping", data='{"type": "ping"}')) == []
    assert decoder.feed(SSEEvent(event="future", data='{"type": "future_event"}')) == []
