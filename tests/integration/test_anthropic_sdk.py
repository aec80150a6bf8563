"""The official ``anthropic`` SDK against a running regate, only ``base_url`` and key changed."""

from __future__ import annotations

import anthropic

from tests.integration.conftest import Upstream, messages

HELLO = messages("Hello from the anthropic SDK")


def test_messages_create_round_trips_through_the_anthropic_provider(
    claude: anthropic.Anthropic, upstream: Upstream
) -> None:
    message = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=64, system="Be brief.", messages=HELLO
    )

    assert (
        message.content[0].type == "text"
        and message.content[0].text == "echo: Hello from the anthropic SDK"
    )
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    [sent] = upstream.received("anthropic")
    assert sent.path == "/v1/messages"
    assert sent.body["system"] == "Be brief." and sent.body["max_tokens"] == 64


def test_messages_stream_helper_accumulates_the_text(
    claude: anthropic.Anthropic, upstream: Upstream
) -> None:
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=HELLO) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()

    assert len(deltas) > 1
    assert "".join(deltas) == "echo: Hello from the anthropic SDK"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    assert upstream.received("anthropic")[0].body["stream"] is True


def test_messages_create_stream_true_yields_the_event_sequence(
    claude: anthropic.Anthropic, upstream: Upstream
) -> None:
    events = list(
        claude.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=HELLO, stream=True)
    )

    types = [e.type for e in events]
    assert types[0] == "message_start" and types[-1] == "message_stop"
    assert (
        "content_block_start" in types
        and "content_block_stop" in types
        and "message_delta" in types
    )
    text = "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert text == "echo: Hello from the anthropic SDK"
    [delta] = [e for e in events if e.type == "message_delta"]
    assert delta.delta.stop_reason == "end_turn" and delta.usage.output_tokens > 0
