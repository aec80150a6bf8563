"""The fake provider's OpenAI surface, read back through the official ``openai`` SDK."""

from __future__ import annotations

import base64
import json
import math
import struct

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam

from adapters.fake_provider import FakeProvider

WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        },
    },
}


def test_chat_completion_echoes_last_user_message_with_usage(oai: openai.OpenAI) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "hello there"}]},
    ]
    result = oai.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]

    assert result.object == "chat.completion"
    assert result.model == "gpt-4o-mini"
    assert result.choices[0].message.content == "echo: hello there"
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None
    assert result.usage.prompt_tokens == math.ceil(len("be brieffirstokhello there") / 4)
    assert result.usage.completion_tokens == math.ceil(len("echo: hello there") / 4)
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens


def test_stream_sends_text_in_chunks_and_a_final_usage_chunk(
    oai: openai.OpenAI, fake: FakeProvider
) -> None:
    fake.settings.chunk_size = 4
    stream = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "stream me"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    content = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert "".join(content) == "echo: stream me"
    assert len(content) == math.ceil(len("echo: stream me") / 4)
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == math.ceil(len("echo: stream me") / 4)


def test_stream_wire_framing_ends_with_done(http: httpx.Client) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]

    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    payloads = [json.loads(line[6:]) for line in lines[:-1]]
    assert all("usage" not in p for p in payloads)  # only with stream_options.include_usage
    assert payloads[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }


def test_tool_call_when_tools_and_trigger(oai: openai.OpenAI) -> None:
    result = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Paris please !tool:get_weather"}],
        tools=[WEATHER_TOOL],
    )

    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris please", "days": 1}


def test_streamed_tool_call_arrives_as_argument_deltas(
    oai: openai.OpenAI, fake: FakeProvider
) -> None:
    fake.settings.chunk_size = 5
    stream = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Rome !tool"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    deltas = [d for c in stream for d in (c.choices[0].delta.tool_calls or [])]

    assert deltas[0].id is not None and deltas[0].function is not None
    assert deltas[0].function.name == "get_weather"
    arguments = "".join((d.function.arguments or "") for d in deltas if d.function)
    assert json.loads(arguments) == {"city": "Rome", "days": 1}
    assert len(deltas) > 2  # split into several argument fragments


def test_tool_result_is_echoed_not_called_again(oai: openai.OpenAI) -> None:
    messages = [
        {"role": "user", "content": "Oslo !tool"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    result = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL],
    )

    assert result.choices[0].message.tool_calls is None
    assert result.choices[0].message.content == "echo: sunny"


def test_configured_reply_and_max_tokens_truncation(oai: openai.OpenAI, fake: FakeProvider) -> None:
    fake.settings.reply = "x" * 40
    full = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
    cut = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "q"}], max_tokens=3
    )

    assert full.choices[0].message.content == "x" * 40
    assert cut.choices[0].message.content == "x" * 12
    assert cut.choices[0].finish_reason == "length"


def test_embeddings_float_and_base64_agree(oai: openai.OpenAI, http: httpx.Client) -> None:
    floats = oai.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta", "alpha"])
    raw = http.post(
        "/v1/embeddings",
        json={"model": "text-embedding-3-small", "input": "alpha", "encoding_format": "base64"},
    ).json()

    vectors = [d.embedding for d in floats.data]
    assert [d.index for d in floats.data] == [0, 1, 2]
    assert len(vectors[0]) == 8
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]
    assert floats.usage.prompt_tokens == 2 + 1 + 2
    decoded = struct.unpack("<8f", base64.b64decode(raw["data"][0]["embedding"]))
    assert decoded == pytest.approx(vectors[0], abs=1e-6)


def test_embeddings_dimensions_are_honoured(oai: openai.OpenAI) -> None:
    result = oai.embeddings.create(model="text-embedding-3-small", input="x", dimensions=40)

    assert len(result.data[0].embedding) == 40


def test_models_list(oai: openai.OpenAI, fake: FakeProvider) -> None:
    fake.settings.models = ("m-one", "m-two")

    models = list(oai.models.list())

    assert [m.id for m in models] == ["m-one", "m-two"]
    assert {m.owned_by for m in models} == {"fake"}


def test_invalid_requests_get_openai_400_bodies(oai: openai.OpenAI, http: httpx.Client) -> None:
    with pytest.raises(openai.BadRequestError) as missing:
        oai.chat.completions.create(model="gpt-4o-mini", messages=[])
    bad_json = http.post(
        "/v1/chat/completions", content=b"{nope", headers={"content-type": "application/json"}
    )
    no_input = http.post("/v1/embeddings", json={"model": "e"})

    assert missing.value.status_code == 400
    assert missing.value.body == {
        "message": missing.value.body["message"],  # type: ignore[index]
        "type": "invalid_request_error",
        "param": "messages",
        "code": "empty_array",
    }
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["type"] == "invalid_request_error"
    assert no_input.json()["error"]["param"] == "input"


async def test_async_client_streams_too(base_url: str) -> None:
    async with openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="k", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "async"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream])

    assert text == "echo: async"
