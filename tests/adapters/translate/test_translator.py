"""Every provider format to every client format, whole and streamed, as the SDKs see it."""

from __future__ import annotations

import copy
import json
from typing import Any

import anthropic
import openai
import pytest
from anthropic.types import Message
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from adapters.translate import anthropic_messages, gemini, openai_chat
from adapters.translate.canonical import CanonicalResponse, Event, StopReason, accumulate
from adapters.translate.errors import TranslateError
from adapters.translate.sse import serialize_all
from adapters.translate.translator import CHAT_FORMATS, StreamTranslator, translate_response

from .recorded import (
    CHAT,
    CLIENT_APIS,
    MESSAGES,
    PREFIX,
    PROVIDER_APIS,
    anthropic_client,
    decode_stream,
    essentials,
    load_bytes,
    load_json,
    openai_client,
    parse_sse,
)

PAIRS = [(p, c) for p in PROVIDER_APIS for c in CLIENT_APIS]
KINDS = ["text", "tools"]


def source(provider_api: str, kind: str) -> CanonicalResponse:
    return accumulate(decode_stream(provider_api, load_bytes(f"{PREFIX[provider_api]}_{kind}.sse")))


def run(translator: StreamTranslator, data: bytes, size: int) -> bytes:
    out = b"".join(translator.feed(data[i : i + size]) for i in range(0, len(data), size))
    return out + translator.finish()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("provider_api", "client_api"), PAIRS)
def test_whole_responses(provider_api: str, client_api: str, kind: str) -> None:
    body = load_json(f"{PREFIX[provider_api]}_{kind}.json")
    pristine = copy.deepcopy(body)
    out = translate_response(provider_api, client_api, body, created=1700000000)
    assert body == pristine  # never mutated: a retry can re-send it
    if client_api == "openai.chat":
        ChatCompletion.model_validate(out)
        sdk_view = openai_client(200, json.dumps(out).encode()).chat.completions.create(**CHAT)
        assert sdk_view.choices[0].message.content == (out["choices"][0]["message"]["content"])
    else:
        Message.model_validate(out)
        anthropic_client(200, json.dumps(out).encode()).messages.create(**MESSAGES)
    expected = CHAT_FORMATS[provider_api].response_to_canonical(body)
    assert essentials(CHAT_FORMATS[client_api].response_to_canonical(out)) == essentials(expected)
    if provider_api == client_api:
        assert out is body


@pytest.mark.parametrize("size", [1, 7, 10**6])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("provider_api", "client_api"), PAIRS)
def test_streams(provider_api: str, client_api: str, kind: str, size: int) -> None:
    data = load_bytes(f"{PREFIX[provider_api]}_{kind}.sse")
    translator = StreamTranslator(provider_api, client_api, include_usage=True, created=1)
    out = run(translator, data, size)
    expected = source(provider_api, kind)
    assert essentials(accumulate(decode_stream(client_api, out))) == essentials(expected)
    assert (translator.usage, translator.stop_reason, translator.error) == (
        expected["usage"],
        expected["stop_reason"],
        None,
    )
    if client_api == "openai.chat":
        events = parse_sse(out)
        assert events[-1].data == "[DONE]"
        for event in events[:-1]:
            ChatCompletionChunk.model_validate(event.json())
        with openai_client(200, out, "text/event-stream").chat.completions.stream(**CHAT) as s:
            final = s.get_final_completion()
        assert (final.choices[0].message.content or "") == essentials(expected)["text"]
    else:
        with anthropic_client(200, out, "text/event-stream").messages.stream(**MESSAGES) as s:
            message = s.get_final_message()
        assert [b.input for b in message.content if b.type == "tool_use"] == [
            call["arguments"] for call in expected["tool_calls"]
        ]


def test_openai_usage_chunk_only_when_the_client_asked() -> None:
    data = load_bytes("anthropic_text.sse")
    for include_usage in (False, True):
        out = parse_sse(
            run(StreamTranslator("anthropic.messages", "openai.chat", include_usage), data, 50)
        )
        usage_chunks = [e for e in out if openai_chat.is_usage_only_chunk(e)]
        assert len(usage_chunks) == int(include_usage)


def test_same_api_streams_pass_through_but_drop_an_unrequested_usage_chunk() -> None:
    data = load_bytes("openai_chat_text.sse")
    original = parse_sse(data)
    translator = StreamTranslator("openai.chat", "openai.chat", include_usage=False)
    out = parse_sse(run(translator, data, 13))
    assert out == [e for e in original if not openai_chat.is_usage_only_chunk(e)]
    assert len(out) == len(original) - 1
    assert translator.usage == {"prompt_tokens": 19, "completion_tokens": 10}  # seen anyway
    anthropic_data = load_bytes("anthropic_tools.sse")
    same = StreamTranslator("anthropic.messages", "anthropic.messages")
    assert parse_sse(run(same, anthropic_data, 5)) == parse_sse(anthropic_data)


@pytest.mark.parametrize(("provider_api", "client_api"), PAIRS)
def test_a_stream_that_ends_early_ends_with_an_error(provider_api: str, client_api: str) -> None:
    data = load_bytes(f"{PREFIX[provider_api]}_tools.sse")
    stop_at = max(
        data.find(marker)
        for marker in (
            b'"finish_reason":"tool_calls"',
            b'"stop_reason":"tool_use"',
            b'"finishReason"',
        )
    )
    cut = data[: data.rindex(b"data:", 0, stop_at)]  # lost from the event with the stop on
    translator = StreamTranslator(provider_api, client_api)
    out = run(translator, cut, 64)
    assert translator.error is not None and translator.error["code"] == "upstream_incomplete"
    if client_api == "openai.chat":
        with pytest.raises(openai.APIError, match="ended early"):
            list(
                openai_client(200, out, "text/event-stream").chat.completions.create(
                    **CHAT, stream=True
                )
            )
    else:
        with pytest.raises(anthropic.APIStatusError, match="ended early"):
            list(
                anthropic_client(200, out, "text/event-stream").messages.create(
                    **MESSAGES, stream=True
                )
            )


@pytest.mark.parametrize("client_api", CLIENT_APIS)
def test_malformed_event_stops_the_stream_with_an_error(client_api: str) -> None:
    translator = StreamTranslator("gemini.generate_content", client_api)
    first = translator.feed(load_bytes("gemini_text.sse")[:200] + b"\r\n\r\ndata: {oops\r\n\r\n")
    assert translator.error is not None
    assert translator.error["code"] == "upstream_malformed_event"
    assert b"upstream_malformed_event" in first
    assert translator.feed(load_bytes("gemini_text.sse")) == b""
    assert translator.finish() == b""


def test_oversized_event_stops_the_stream_with_an_error() -> None:
    translator = StreamTranslator("openai.chat", "anthropic.messages", max_event_chars=100)
    out = translator.feed(b"data: " + b"x" * 200)
    assert b"event: error" in out and b"sse_event_too_large" in out


def test_embeddings_from_gemini_for_an_openai_client() -> None:
    body = load_json("gemini_batch_embed.json")
    for encoding_format in ("float", "base64"):
        out = translate_response(
            "gemini.embed_content",
            "openai.embeddings",
            body,
            model="text-embedding-004",
            encoding_format=encoding_format,
        )
        result = openai_client(200, json.dumps(out).encode()).embeddings.create(
            model="m", input=["a", "b"]
        )
        assert result.model == "text-embedding-004"
        for item, recorded in zip(result.data, body["embeddings"], strict=True):
            assert item.embedding == pytest.approx(recorded["values"], rel=1e-6)


def test_openai_embeddings_are_re_encoded_only_when_asked() -> None:
    body = load_json("openai_embeddings.json")
    assert translate_response("openai.embeddings", "openai.embeddings", body) is body
    out = translate_response(
        "openai.embeddings", "openai.embeddings", body, encoding_format="base64"
    )
    assert all(isinstance(item["embedding"], str) for item in out["data"])


def test_unknown_pairs_are_refused() -> None:
    with pytest.raises(TranslateError) as caught:
        translate_response("cohere.chat", "openai.chat", {})
    assert caught.value.code == "unsupported_translation"
    with pytest.raises(TranslateError):
        StreamTranslator("openai.chat", "cohere.chat")


def test_fallback_id_and_model_fill_what_the_provider_left_out() -> None:
    body = load_json("gemini_text.json")
    del body["responseId"], body["modelVersion"]
    out = translate_response(
        "gemini.generate_content",
        "openai.chat",
        body,
        model="gemini-x",
        response_id="req_1",
        created=0,
    )
    assert (out["id"], out["model"]) == ("req_1", "gemini-x")


# Property: whatever a provider streams, every client format receives the same response.
_ENCODERS: dict[str, Any] = {
    "openai.chat": lambda: openai_chat.StreamEncoder(include_usage=True, created=0),
    "anthropic.messages": anthropic_messages.StreamEncoder,
    "gemini.generate_content": gemini.StreamEncoder,
}
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=6,
)


@st.composite
def event_streams(draw: st.DrawFn) -> list[Event]:
    events: list[Event] = [
        {
            "type": "start",
            "id": draw(st.from_regex(r"[a-z0-9_-]{1,12}", fullmatch=True)),
            "model": "m",
        }
    ]
    for text in draw(st.lists(st.text(min_size=1, max_size=12), max_size=4)):
        events.append({"type": "text_delta", "index": 0, "text": text})
    tools = draw(
        st.lists(st.dictionaries(st.text(max_size=5), _json_values, max_size=3), max_size=2)
    )
    for index, arguments in enumerate(tools):
        events.append(
            {
                "type": "tool_call_start",
                "index": index,
                "id": f"call_{index}",
                "name": draw(st.from_regex(r"[a-z_]{1,10}", fullmatch=True)),
            }
        )
        text = json.dumps(arguments)
        cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=3)))
        for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True):
            if end > start:
                events.append(
                    {
                        "type": "tool_call_delta",
                        "index": index,
                        "arguments_json_fragment": text[start:end],
                    }
                )
    stops: list[StopReason] = ["end", "max_tokens", "content_filter"]
    stop: StopReason = "tool_use" if tools else draw(st.sampled_from(stops))
    events.append({"type": "stop", "stop_reason": stop})
    events.append(
        {
            "type": "usage",
            "prompt_tokens": draw(st.integers(0, 10**6)),
            "completion_tokens": draw(st.integers(0, 10**6)),
        }
    )
    return events


@settings(max_examples=40, deadline=None)
@given(
    events=event_streams(),
    provider_api=st.sampled_from(PROVIDER_APIS),
    client_api=st.sampled_from(CLIENT_APIS),
    size=st.integers(1, 300),
)
def test_any_provider_stream_reaches_any_client_intact(
    events: list[Event], provider_api: str, client_api: str, size: int
) -> None:
    encoder = _ENCODERS[provider_api]()
    upstream = serialize_all(
        [out for event in events for out in encoder.feed(event)] + encoder.finish()
    )
    translator = StreamTranslator(provider_api, client_api, include_usage=True, created=0)
    received = accumulate(decode_stream(client_api, run(translator, upstream, size)))
    assert essentials(received) == essentials(accumulate(events))
    assert translator.error is None


def test_whole_response_of_an_unexpected_shape_is_a_coded_error() -> None:
    body = {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "many"}}
    with pytest.raises(TranslateError) as caught:
        translate_response("openai.chat", "anthropic.messages", body)
    assert caught.value.code == "upstream_malformed_response"


@pytest.mark.parametrize("client_api", CLIENT_APIS)
def test_upstream_stream_errors_are_cleaned_even_when_passed_through(client_api: str) -> None:
    leak = (
        'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
        '"message":"Overloaded for key sk-ant-api03-SECRETSECRET and hunter2hunter2"}}\n\n'
    )
    translator = StreamTranslator(
        "anthropic.messages", client_api, provider_name="claude-eu", secrets=["hunter2hunter2"]
    )
    head = load_bytes("anthropic_text.sse")
    head = head[: head.index(b"\n\n", 600) + 2]
    out = run(translator, head + leak.encode(), 100)
    assert b"SECRET" not in out and b"hunter2" not in out
    error = parse_sse(out)[-1].json()["error"]
    assert error["message"].startswith("provider 'claude-eu' failed: Overloaded for key ")
    assert translator.error is not None and translator.error["status"] == 529


_KEYS = st.sampled_from(
    [
        "choices",
        "delta",
        "index",
        "tool_calls",
        "function",
        "arguments",
        "usage",
        "candidates",
        "content",
        "parts",
        "functionCall",
        "args",
        "message",
        "content_block",
        "error",
        "text",
        "finish_reason",
        "finishReason",
        "usageMetadata",
        "stop_reason",
        "type",
    ]
)
_garbage = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
    | st.sampled_from(
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "message_delta",
            "text_delta",
            "input_json_delta",
            "tool_use",
            "STOP",
        ]
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    payloads=st.lists(st.dictionaries(_KEYS, _garbage, min_size=1), min_size=1, max_size=3),
    provider_api=st.sampled_from(PROVIDER_APIS),
    client_api=st.sampled_from(CLIENT_APIS),
)
def test_garbage_from_a_provider_never_crashes_the_stream(
    payloads: list[Any], provider_api: str, client_api: str
) -> None:
    wire = b"".join(b"event: x\ndata: " + json.dumps(p).encode() + b"\n\n" for p in payloads)
    translator = StreamTranslator(provider_api, client_api)
    out = parse_sse(run(translator, wire, 17))
    if translator.error is not None:  # the client is told, in its own format
        assert "error" in out[-1].json()
