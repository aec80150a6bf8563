"""Gemini generateContent / streamGenerateContent / embedContent <-> canonical."""

from __future__ import annotations

import json

import pytest

from adapters.translate import gemini
from adapters.translate.canonical import Event, accumulate
from adapters.translate.errors import TranslateError
from adapters.translate.sse import SSEEvent, serialize_all

from .recorded import decode_stream, essentials, load_bytes, load_json


def test_text_response_to_canonical() -> None:
    body = load_json("gemini_text.json")
    canonical = gemini.response_to_canonical(body)
    metadata = body["usageMetadata"]
    assert canonical["content"] == [
        {"type": "text", "text": body["candidates"][0]["content"]["parts"][0]["text"]}
    ]
    assert canonical["usage"] == {
        "prompt_tokens": metadata["promptTokenCount"],
        "completion_tokens": metadata["candidatesTokenCount"],
    }
    assert (canonical["id"], canonical["model"]) == (body["responseId"], body["modelVersion"])
    assert canonical["stop_reason"] == "end"


def test_function_calls_get_stable_ids_and_stop_as_tool_use() -> None:
    body = load_json("gemini_tools.json")
    canonical = gemini.response_to_canonical(body)
    parts = body["candidates"][0]["content"]["parts"]
    assert [(c["name"], c["arguments"]) for c in canonical["tool_calls"]] == [
        (part["functionCall"]["name"], part["functionCall"]["args"]) for part in parts[1:]
    ]
    ids = [call["id"] for call in canonical["tool_calls"]]
    assert len(set(ids)) == 2 and all(i.startswith("call_") for i in ids)
    assert gemini.response_to_canonical(body)["tool_calls"] == canonical["tool_calls"]
    assert canonical["stop_reason"] == "tool_use"  # Gemini says STOP even for function calls
    metadata = body["usageMetadata"]
    assert canonical["usage"] == {
        "prompt_tokens": metadata["promptTokenCount"],
        "completion_tokens": metadata["candidatesTokenCount"] + metadata["thoughtsTokenCount"],
    }


def test_thought_parts_are_not_text() -> None:
    body = load_json("gemini_text.json")
    body["candidates"][0]["content"]["parts"].insert(0, {"text": "secret plan", "thought": True})
    assert all(
        "secret" not in part["text"] for part in gemini.response_to_canonical(body)["content"]
    )


@pytest.mark.parametrize(
    "reason, expected",
    [
        ("MAX_TOKENS", "max_tokens"),
        ("SAFETY", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "end"),
    ],
)
def test_finish_reasons(reason: str, expected: str) -> None:
    body = load_json("gemini_text.json")
    body["candidates"][0]["finishReason"] = reason
    assert gemini.response_to_canonical(body)["stop_reason"] == expected


def test_blocked_prompt_has_no_candidates_and_stops_as_content_filter() -> None:
    body = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": "gemini-2.0-flash",
        "responseId": "r1",
    }
    canonical = gemini.response_to_canonical(body)
    assert (canonical["content"], canonical["stop_reason"]) == ([], "content_filter")


def test_recorded_text_stream_matches_its_final_usage() -> None:
    events = decode_stream("gemini.generate_content", load_bytes("gemini_text.sse"))
    streamed = accumulate(events)
    assert streamed["content"][0]["text"].startswith("The sky looks blue")
    assert "«Rayleigh scattering» ☀️" in streamed["content"][0]["text"]
    assert streamed["usage"] == {"prompt_tokens": 8, "completion_tokens": 19}
    assert [e["type"] for e in events].count("usage") == 1
    assert [e["type"] for e in events][-2:] == ["stop", "usage"]


def test_recorded_tool_stream_equals_the_non_streamed_response() -> None:
    streamed = accumulate(decode_stream("gemini.generate_content", load_bytes("gemini_tools.sse")))
    whole = gemini.response_to_canonical(load_json("gemini_tools.json"))
    assert [(c["name"], c["arguments"]) for c in streamed["tool_calls"]] == [
        (c["name"], c["arguments"]) for c in whole["tool_calls"]
    ]
    assert (streamed["stop_reason"], streamed["usage"]) == (whole["stop_reason"], whole["usage"])


def test_stream_error_payload_becomes_an_error_event() -> None:
    data = json.dumps(
        {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    )
    assert gemini.StreamDecoder().feed(SSEEvent(data=data)) == [
        {
            "type": "error",
            "status": 503,
            "code": "upstream_error",
            "message": "The model is overloaded.",
        }
    ]


EVENTS: list[Event] = [
    {"type": "start", "id": "resp-1", "model": "gemini-2.0-flash"},
    {"type": "text_delta", "index": 0, "text": "One "},
    {"type": "text_delta", "index": 0, "text": "moment."},
    {"type": "tool_call_start", "index": 0, "id": "call_x", "name": "lookup"},
    {"type": "tool_call_delta", "index": 0, "arguments_json_fragment": '{"k": '},
    {"type": "tool_call_delta", "index": 0, "arguments_json_fragment": "[1, 2]}"},
    {"type": "stop", "stop_reason": "tool_use"},
    {"type": "usage", "prompt_tokens": 4, "completion_tokens": 6},
]


def test_encoder_sends_whole_calls_and_finishes_with_usage() -> None:
    encoder = gemini.StreamEncoder()
    out = [o for event in EVENTS for o in encoder.feed(event)] + encoder.finish()
    bodies = [event.json() for event in out]
    assert [list(b["candidates"][0]["content"]["parts"]) for b in bodies] == [
        [{"text": "One "}],
        [{"text": "moment."}],
        [{"functionCall": {"id": "call_x", "name": "lookup", "args": {"k": [1, 2]}}}],
        [],
    ]
    assert bodies[-1]["candidates"][0]["finishReason"] == "STOP"
    assert bodies[-1]["usageMetadata"]["totalTokenCount"] == 10
    assert accumulate(decode_stream("gemini.generate_content", serialize_all(out))) == accumulate(
        EVENTS
    )


def test_non_stream_round_trip() -> None:
    original = gemini.response_to_canonical(load_json("gemini_tools.json"))
    again = gemini.response_to_canonical(gemini.response_from_canonical(original))
    assert essentials(again) == essentials(original)


def test_embeddings_single_and_batch() -> None:
    batch = load_json("gemini_batch_embed.json")
    canonical = gemini.embeddings_to_canonical(batch, model="text-embedding-004")
    assert canonical["vectors"] == [item["values"] for item in batch["embeddings"]]
    assert canonical["model"] == "text-embedding-004"
    single = gemini.embeddings_to_canonical({"embedding": batch["embeddings"][0]}, model="m")
    assert single["vectors"] == canonical["vectors"][:1]
    assert gemini.embeddings_from_canonical(canonical) == batch
    with pytest.raises(TranslateError):
        gemini.embeddings_to_canonical({"nothing": 1}, model="m")
