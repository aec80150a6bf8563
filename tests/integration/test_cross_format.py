"""Cross-format routes: an OpenAI client served by Anthropic and Gemini providers, and
an Anthropic client served by an OpenAI provider, whole and streamed, usage included."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest
from anthropic.types import TextBlock, ToolParam, ToolUseBlock
from openai.types.chat import ChatCompletionMessageFunctionToolCall, ChatCompletionToolParam

from tests.integration.conftest import Upstream, chat, messages

QUESTION = "What is the capital of France?"


@pytest.mark.parametrize(
    ("model", "provider", "path"),
    [
        ("gpt-4o", "anthropic", "/v1/messages"),
        ("gpt-4.1-mini", "gemini", "/v1beta/models/gemini-2.0-flash:generateContent"),
    ],
)
def test_openai_client_is_served_by_another_provider(
    oai: openai.OpenAI, upstream: Upstream, model: str, provider: str, path: str
) -> None:
    reply = oai.chat.completions.create(
        model=model,
        max_tokens=100,
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": QUESTION},
        ],
    )

    assert reply.choices[0].message.content == f"echo: {QUESTION}"
    assert reply.choices[0].finish_reason == "stop"
    assert (
        reply.usage is not None
        and reply.usage.prompt_tokens > 0
        and reply.usage.completion_tokens > 0
    )
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    [sent] = upstream.received(provider)
    assert sent.path == path
    assert QUESTION in sent.raw.decode() and "Answer briefly." in sent.raw.decode()
    assert upstream.received("openai") == []


@pytest.mark.parametrize(
    ("model", "provider", "path"),
    [
        ("gpt-4o", "anthropic", "/v1/messages"),
        ("gpt-4.1-mini", "gemini", "/v1beta/models/gemini-2.0-flash:streamGenerateContent"),
    ],
)
def test_openai_client_streams_from_another_provider(
    oai: openai.OpenAI, upstream: Upstream, model: str, provider: str, path: str
) -> None:
    chunks = list(
        oai.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    content = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(content) > 1 and "".join(content) == f"echo: {QUESTION}"
    assert [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    [sent] = upstream.received(provider)
    assert sent.path == path


def test_anthropic_client_is_served_by_the_openai_provider(
    claude: anthropic.Anthropic, upstream: Upstream
) -> None:
    message = claude.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=100,
        system="Answer briefly.",
        messages=[{"role": "user", "content": QUESTION}],
    )

    assert message.content[0].type == "text" and message.content[0].text == f"echo: {QUESTION}"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    [sent] = upstream.received("openai")
    assert sent.path == "/v1/chat/completions" and sent.body["model"] == "gpt-4o-mini"
    assert sent.body["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert upstream.received("anthropic") == []


def test_anthropic_client_streams_from_the_openai_provider(
    claude: anthropic.Anthropic, upstream: Upstream
) -> None:
    with claude.messages.stream(
        model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": QUESTION}]
    ) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()

    assert len(deltas) > 1 and "".join(deltas) == f"echo: {QUESTION}"
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
    [sent] = upstream.received("openai")
    assert sent.body["stream"] is True


WEATHER_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4.1-mini"])
def test_openai_client_tool_call_round_trip_through_another_provider(
    oai: openai.OpenAI, upstream: Upstream, model: str
) -> None:
    tools: list[ChatCompletionToolParam] = [
        {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}
    ]
    ask = chat("!tool Paris")

    first = oai.chat.completions.create(model=model, messages=ask, tools=tools)
    [call] = first.choices[0].message.tool_calls or []
    assert first.choices[0].finish_reason == "tool_calls"
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {
        "city": "Paris"
    }

    second = oai.chat.completions.create(
        model=model,
        tools=tools,
        messages=[
            *ask,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert "sunny" in (second.choices[0].message.content or "")


def test_anthropic_client_tool_use_round_trip_through_the_openai_provider(
    claude: anthropic.Anthropic, upstream: Upstream
) -> None:
    tools: list[ToolParam] = [{"name": "get_weather", "input_schema": WEATHER_SCHEMA}]
    ask = messages("!tool Paris")

    first = claude.messages.create(
        model="claude-sonnet-4-6", max_tokens=100, messages=ask, tools=tools
    )
    [block] = first.content
    assert first.stop_reason == "tool_use"
    assert (
        isinstance(block, ToolUseBlock)
        and block.name == "get_weather"
        and block.input == {"city": "Paris"}
    )

    second = claude.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=100,
        tools=tools,
        messages=[
            *ask,
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "sunny"}],
            },
        ],
    )
    assert isinstance(second.content[0], TextBlock) and second.content[0].text == "echo: sunny"
    assert upstream.received("openai")[1].body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": block.id,
        "content": "sunny",
    }
