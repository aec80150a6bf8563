"""The wire registry: API names, shape guessing and dispatch (adapters/wire/__init__.py)."""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from typing import Any

import pytest

import adapters.wire as wire
from engine.errors import InputError

PAYLOADS = Path(__file__).parent / "payloads"

GUESSES = [
    ("embeddings", {"model": "m", "input": ["a"]}, "openai.embeddings"),
    ("plain chat", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}, "openai.chat"),
    (
        "chat with max_tokens only",
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        "openai.chat",
    ),
    ("system key", {"model": "m", "system": "s", "messages": []}, "anthropic.messages"),
    (
        "stop_sequences",
        {"model": "m", "stop_sequences": ["x"], "messages": []},
        "anthropic.messages",
    ),
    (
        "tool_result block",
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}],
                }
            ],
        },
        "anthropic.messages",
    ),
    (
        "image with source",
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "url", "url": "https://a/b.png"}}
                    ],
                }
            ],
        },
        "anthropic.messages",
    ),
    (
        "image_url part",
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://a/b.png"}}],
                }
            ],
        },
        "openai.chat",
    ),
    ("junk messages", {"model": "m", "messages": "x"}, "openai.chat"),
]


@pytest.mark.parametrize(("note", "body", "api"), GUESSES, ids=[g[0] for g in GUESSES])
def test_guess_api_reads_the_shape(note: str, body: dict[str, Any], api: str) -> None:
    assert wire.guess_api(body) == api


@pytest.mark.parametrize(
    "name",
    [
        "openai_chat_vision",
        "openai_chat_tools",
        "openai_embeddings_batch",
        "openai_embeddings_single",
        "anthropic_messages_vision",
        "anthropic_messages_tools",
    ],
)
def test_guess_api_names_each_recorded_payload(name: str) -> None:
    body = json.loads((PAYLOADS / f"{name}.json").read_text())
    expected = json.loads((PAYLOADS / f"{name}.canonical.json").read_text())["partial"]["api"]
    assert wire.guess_api(body) == expected


def test_guess_api_refuses_non_objects() -> None:
    with pytest.raises(InputError):
        wire.guess_api([1, 2])


def test_registry_holds_every_format_by_its_own_name() -> None:
    assert set(wire.APIS) == {
        "openai.chat",
        "openai.embeddings",
        "anthropic.messages",
        "gemini.generate_content",
    }
    assert all(api.name == name for name, api in wire.APIS.items())
    assert set(wire.CLIENT_APIS) == set(wire.APIS) - {"gemini.generate_content"}


def test_dispatch_round_trips_through_the_named_api() -> None:
    body = json.loads((PAYLOADS / "anthropic_messages_tools.json").read_text())
    canon = wire.to_canonical("anthropic.messages", body)
    assert canon.partial["api"] == "anthropic.messages"
    assert wire.from_canonical("anthropic.messages", canon.partial, canon.attachments, body) == body
    as_openai = wire.from_canonical("openai.chat", canon.partial, canon.attachments, body)
    assert "tool_choice" not in as_openai and as_openai["max_tokens"] == 2048


def test_unknown_api_is_an_input_error() -> None:
    with pytest.raises(InputError) as err:
        wire.to_canonical("cohere.chat", {})
    assert err.value.param == "api"
    with pytest.raises(InputError):
        wire.from_canonical("cohere.chat", {})


def test_docstring_examples_hold() -> None:
    results = doctest.testmod(wire)
    assert results.attempted >= 2 and results.failed == 0
