"""The fake provider's Anthropic Messages surface, read back through the official SDK."""

from __future__ import annotations

import json
import math

import anthropic
import httpx
import pytest

from adapters.fake_provider import FakeProvider

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        "required": ["city"],
    },
}


def _events(http: httpx.Client, body: dict[str, object]) -> list[tuple[str, dict[str, object]]]:
    with http.stream("POST", "/v1/messages", json={**body, "stream": True}) as response:
        text = response.read().decode()
    events = []
    for block in text.strip().split("\n\n"):
        head, data = block.split("\n")
        assert head.startswith("event: ") and data.startswith("data: ")
        payload = json.loads(data[6:])
        assert payload["type"] == head[7:]  # the SSE name repeats the data's type
        events.append((head[7:], payload))
    return events


def test_messages_create_echoes_with_usage(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="claude-haiku",
        max_tokens=256,
        system="sys",
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "hi claude"}]},
        ],
    )

    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text == "echo: hi claude"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == math.ceil(len("sysfirstokhi claude") / 4)
    assert message.usage.output_tokens == math.ceil(len("echo: hi claude") / 4)


def test_messages_stream_with_sdk_helper(claude: anthropic.Anthropic, fake: FakeProvider) -> None:
    fake.settings.chunk_size = 3
    with claude.messages.stream(
        model="claude-haiku", max_tokens=256, messages=[{"role": "user", "content": "streamed"}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert "".join(pieces) == "echo: streamed"
    assert len(pieces) == math.ceil(len("echo: streamed") / 3)
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == math.ceil(len("echo: streamed") / 4)


def test_stream_event_sequence(http: httpx.Client) -> None:
    events = _events(
        http, {"model": "c", "max_tokens": 50, "messages": [{"role": "user", "content": "hey"}]}
    )

    names = [name for name, _ in events]
    deltas = names.count("content_block_delta")
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert deltas == math.ceil(len("echo: hey") / 8)
    start = events[0][1]["message"]
    assert isinstance(start, dict) and start["content"] == [] and start["stop_reason"] is None
    assert events[-2][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[-2][1]["usage"] == {"output_tokens": math.ceil(len("echo: hey") / 4)}


def test_tool_use_create(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="claude-haiku",
        max_tokens=256,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "!tool Lisbon"}],
    )

    block = message.content[0]
    assert message.stop_reason == "tool_use"
    assert block.type == "tool_use"
    assert block.name == "get_weather"
    assert block.input == {"city": "Lisbon", "unit": "c"}
    assert block.id.startswith("toolu_")


def test_tool_use_stream_sends_input_json_deltas(
    claude: anthropic.Anthropic, http: httpx.Client
) -> None:
    body = {
        "model": "claude-haiku",
        "max_tokens": 256,
        "tools": [WEATHER_TOOL],
        "messages": [{"role": "user", "content": "!tool Lisbon"}],
    }
    with claude.messages.stream(**body) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    events = _events(http, body)

    assert final.content[0].type == "tool_use"
    assert final.content[0].input == {"city": "Lisbon", "unit": "c"}
    assert final.stop_reason == "tool_use"
    start = events[1][1]["content_block"]
    assert isinstance(start, dict) and start["type"] == "tool_use" and start["input"] == {}
    delta_types = {e[1]["delta"]["type"] for e in events if e[0] == "content_block_delta"}  # type: ignore[index]
    assert delta_types == {"input_json_delta"}


def test_tool_result_is_echoed(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="claude-haiku",
        max_tokens=256,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[
            {"role": "user", "content": "!tool Lisbon"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "22C"}],
            },
        ],
    )

    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text == "echo: 22C"


def test_invalid_requests_get_anthropic_400_bodies(
    claude: anthropic.Anthropic, http: httpx.Client
) -> None:
    bad_json = http.post("/v1/messages", content=b"{", headers={"content-type": "application/json"})
    with pytest.raises(anthropic.BadRequestError) as missing:
        http_body = {"model": "c", "messages": [{"role": "user", "content": "x"}]}
        claude.post("/v1/messages", body=http_body, cast_to=object)

    assert bad_json.status_code == 400
    assert bad_json.json()["type"] == "error"
    assert bad_json.json()["error"]["type"] == "invalid_request_error"
    assert bad_json.headers["request-id"] == bad_json.json()["request_id"]
    assert missing.value.status_code == 400
    assert missing.value.body["error"] == {  # type: ignore[index]
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }


def test_models_list_in_anthropic_shape(claude: anthropic.Anthropic, fake: FakeProvider) -> None:
    fake.settings.models = ("claude-a", "claude-b")

    page = claude.models.list()

    assert [m.id for m in page.data] == ["claude-a", "claude-b"]
    assert {m.type for m in page.data} == {"model"}
