"""OpenAI Chat Completions <-> canonical, checked against recorded payloads and the OpenAI SDK."""

from __future__ import annotations

import json

import openai
import pytest
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessageFunctionToolCall,
)

from adapters.translate import openai_chat
from adapters.translate.canonical import CanonicalResponse, Event, accumulate
from adapters.translate.errors import TranslateError
from adapters.translate.sse import SSEEvent, serialize_all

from .recorded import CHAT, decode_stream, essentials, load_bytes, load_json, openai_client


def test_text_response_to_canonical() -> None:
    body = load_json("openai_chat_text.json")
    canonical = openai_chat.response_to_canonical(body)
    assert canonical["content"] == [
        {"type": "text", "text": body["choices"][0]["message"]["content"]}
    ]
    assert canonical["stop_reason"] == "end"
    assert canonical["usage"] == {
        "prompt_tokens": body["usage"]["prompt_tokens"],
        "completion_tokens": body["usage"]["completion_tokens"],
    }
    assert (canonical["id"], canonical["model"]) == (body["id"], body["model"])


def test_tool_call_response_to_canonical_parses_arguments() -> None:
    body = load_json("openai_chat_tools.json")
    canonical = openai_chat.response_to_canonical(body)
    recorded = body["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["name"], c["arguments"]) for c in canonical["tool_calls"]] == [
        (call["id"], call["function"]["name"], json.loads(call["function"]["arguments"]))
        for call in recorded
    ]
    assert canonical["stop_reason"] == "tool_use"
    assert canonical["content"] == []


@pytest.mark.parametrize("name", ["openai_chat_text", "openai_chat_tools"])
def test_recorded_stream_decodes_to_the_recorded_response(name: str) -> None:
    streamed = accumulate(decode_stream("openai.chat", load_bytes(f"{name}.sse")))
    whole = openai_chat.response_to_canonical(load_json(f"{name}.json"))
    assert essentials(streamed) == essentials(whole)


def test_from_canonical_is_a_valid_chat_completion_for_the_sdk() -> None:
    canonical: CanonicalResponse = {
        "id": "msg_1",
        "model": "claude-x",
        "stop_reason": "tool_use",
        "content": [{"type": "text", "text": "Let me "}, {"type": "text", "text": "check."}],
        "tool_calls": [{"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Oslo"}}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3},
    }
    body = openai_chat.response_from_canonical(canonical, created=1700000000)
    parsed = ChatCompletion.model_validate(body)
    via_sdk = openai_client(200, json.dumps(body).encode()).chat.completions.create(**CHAT)
    assert via_sdk == parsed
    message = parsed.choices[0].message
    assert message.content == "Let me check."
    assert message.tool_calls is not None
    call = message.tool_calls[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    assert parsed.choices[0].finish_reason == "tool_calls"
    assert parsed.usage is not None and parsed.usage.total_tokens == 10


def test_unparsable_arguments_survive_a_round_trip_verbatim() -> None:
    body = load_json("openai_chat_tools.json")
    body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = '{"city": "Os'
    canonical = openai_chat.response_to_canonical(body)
    assert canonical["tool_calls"][0]["arguments"] == {}
    again = openai_chat.response_from_canonical(canonical, created=0)
    assert (
        again["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == '{"city": "Os'
    )


def test_refusal_becomes_text() -> None:
    body = load_json("openai_chat_text.json")
    body["choices"][0]["message"] |= {"content": None, "refusal": "I can't help with that."}
    assert openai_chat.response_to_canonical(body)["content"] == [
        {"type": "text", "text": "I can't help with that."}
    ]


def test_response_without_choices_is_a_coded_error() -> None:
    with pytest.raises(TranslateError) as caught:
        openai_chat.response_to_canonical({"id": "x", "choices": []})
    assert caught.value.code == "upstream_malformed_response"


EVENTS: list[Event] = [
    {"type": "start", "id": "msg_9", "model": "claude-x"},
    {"type": "text_delta", "index": 0, "text": "Checking"},
    {"type": "tool_call_start", "index": 0, "id": "toolu_9", "name": "lookup"},
    {"type": "tool_call_delta", "index": 0, "arguments_json_fragment": '{"q": '},
    {"type": "tool_call_delta", "index": 0, "arguments_json_fragment": '"x"}'},
    {"type": "stop", "stop_reason": "tool_use"},
    {"type": "usage", "prompt_tokens": 11, "completion_tokens": 5},
]


def encode(events: list[Event], include_usage: bool) -> list[SSEEvent]:
    encoder = openai_chat.StreamEncoder(include_usage=include_usage, created=1700000001)
    return [out for event in events for out in encoder.feed(event)] + encoder.finish()


@pytest.mark.parametrize("include_usage", [False, True])
def test_encoded_chunks_are_valid_and_consistent(include_usage: bool) -> None:
    out = encode(EVENTS, include_usage)
    assert out[-1] == SSEEvent(data="[DONE]")
    chunks = [ChatCompletionChunk.model_validate(event.json()) for event in out[:-1]]
    assert {(c.id, c.created, c.model) for c in chunks} == {("msg_9", 1700000001, "claude-x")}
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "tool_calls" and finishes.count(None) == len(finishes) - 1
    usage_chunks = [c for c in chunks if c.usage is not None]
    if include_usage:
        last = chunks[-1]
        assert usage_chunks == [last] and last.choices == [] and last.usage is not None
        assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (11, 5)
    else:
        assert usage_chunks == []
        assert all("usage" not in event.json() for event in out[:-1])


def test_the_sdk_stream_helper_rebuilds_the_completion() -> None:
    client = openai_client(200, serialize_all(encode(EVENTS, True)), "text/event-stream")
    with client.chat.completions.stream(**CHAT) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Checking"
    assert message.tool_calls is not None
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls] == [
        ("toolu_9", "lookup", '{"q": "x"}')
    ]
    assert final.usage is not None and final.usage.total_tokens == 16


def test_encoder_round_trips_through_the_decoder() -> None:
    wire = serialize_all(encode(EVENTS, True))
    assert accumulate(decode_stream("openai.chat", wire)) == accumulate(EVENTS)


def test_error_chunk_from_openai_becomes_an_error_event() -> None:
    decoder = openai_chat.StreamDecoder()
    error = {
        "error": {
            "message": "The server had an error",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    assert decoder.feed(SSEEvent(data=json.dumps(error))) == [
        {
            "type": "error",
            "status": 500,
            "code": "upstream_error",
            "message": "The server had an error",
        }
    ]


def test_encoded_error_makes_the_sdk_raise() -> None:
    events: list[Event] = [
        EVENTS[0],
        EVENTS[1],
        {
            "type": "error",
            "status": 529,
            "code": "upstream_error",
            "message": "provider overloaded",
        },
    ]
    out = encode(events, False)
    assert out[-1].json()["error"]["code"] == "upstream_error"
    client = openai_client(200, serialize_all(out), "text/event-stream")
    received = []
    with pytest.raises(openai.APIError, match="provider overloaded"):
        for chunk in client.chat.completions.create(**CHAT, stream=True):
            received.append(chunk)
    assert received[-1].choices[0].delta.content == "Checking"


def test_usage_only_chunk_is_recognised() -> None:
    chunks = encode(EVENTS, True)
    assert [openai_chat.is_usage_only_chunk(event) for event in chunks].count(True) == 1
    assert openai_chat.is_usage_only_chunk(chunks[-2])
