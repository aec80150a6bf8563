"""Anthropic Messages <-> canonical, from recorded request bodies."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from adapters.wire import anthropic_messages, openai_chat
from engine.document import complete
from engine.errors import InputError

PAYLOADS = Path(__file__).parent / "payloads"
RECORDED = ["anthropic_messages_vision", "anthropic_messages_tools"]


def load(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def messages(*items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": list(items), **extra}


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_body_reads_to_the_expected_canonical_document(name: str) -> None:
    body = load(f"{name}.json")
    want = load(f"{name}.canonical.json")
    pristine = copy.deepcopy(body)
    got = anthropic_messages.to_canonical(body)
    assert got.partial == want["partial"]
    assert dict(got.attachments) == want["attachments"]
    assert body == pristine


@pytest.mark.parametrize("name", RECORDED)
def test_same_api_re_emission_restores_the_original_body(name: str) -> None:
    body = load(f"{name}.json")
    canon = anthropic_messages.to_canonical(body)
    doc = complete(canon.partial)
    pristine_doc = copy.deepcopy(doc)
    assert anthropic_messages.from_canonical(doc, canon.attachments, original=body) == body
    assert doc == pristine_doc


def test_redaction_lands_in_the_split_out_user_text_and_cache_control_survives() -> None:
    body = load("anthropic_messages_tools.json")
    canon = anthropic_messages.to_canonical(body)
    doc = complete(canon.partial)
    doc["messages"][5]["content"][0]["text"] = "[REDACTED]"
    doc["params"]["max_tokens"] = 100
    out = anthropic_messages.from_canonical(doc, canon.attachments, original=body)
    assert out["messages"][2]["content"][2] == {"type": "text", "text": "[REDACTED]"}
    assert out["messages"][2]["content"][1]["is_error"] is True
    assert out["max_tokens"] == 100
    assert out["tools"][1]["cache_control"] == {"type": "ephemeral"}


def test_tool_results_split_out_of_a_user_message_in_order() -> None:
    body = messages(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "before"},
                {"type": "tool_result", "tool_use_id": "t1", "content": "r1"},
                {"type": "text", "text": "after"},
            ],
        }
    )
    assert anthropic_messages.to_canonical(body).partial["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "before"}]},
        {"role": "tool", "content": [{"type": "text", "text": "r1"}], "tool_call_id": "t1"},
        {"role": "user", "content": [{"type": "text", "text": "after"}]},
    ]


def test_openai_conversation_becomes_anthropic_shapes() -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Use metric units."},
            {"role": "user", "content": "Weather in Oslo and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "w", "arguments": '{"city":"Oslo"}'},
                    },
                    {
                        "id": "c2",
                        "type": "function",
                        "function": {"name": "w", "arguments": '{"city":"Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "3C"},
            {"role": "tool", "tool_call_id": "c2", "content": "19C"},
            {"role": "user", "content": "Thanks. Which is warmer?"},
        ],
        "tools": [{"type": "function", "function": {"name": "w", "description": "Weather"}}],
        "temperature": 0.3,
        "stop": "##",
        "seed": 1,
        "metadata": {"ticket": "T-1"},
    }
    canon = openai_chat.to_canonical(body)
    out = anthropic_messages.from_canonical(
        complete(canon.partial), canon.attachments, original=body
    )
    assert out == {
        "model": "gpt-4o-mini",
        "max_tokens": anthropic_messages.DEFAULT_MAX_TOKENS,
        "system": [
            {"type": "text", "text": "Be brief."},
            {"type": "text", "text": "Use metric units."},
        ],
        "messages": [
            {"role": "user", "content": "Weather in Oslo and Rome?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "c1", "name": "w", "input": {"city": "Oslo"}},
                    {"type": "tool_use", "id": "c2", "name": "w", "input": {"city": "Rome"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "c1", "content": "3C"},
                    {"type": "tool_result", "tool_use_id": "c2", "content": "19C"},
                    {"type": "text", "text": "Thanks. Which is warmer?"},
                ],
            },
        ],
        "tools": [
            {
                "name": "w",
                "description": "Weather",
                "input_schema": {"type": "object", "properties": {}},
            }
        ],
        "temperature": 0.3,
        "stop_sequences": ["##"],
    }


def test_trailing_tool_results_form_their_own_user_message() -> None:
    doc = {
        "api": "openai.chat",
        "operation": "chat",
        "model": "m",
        "messages": [
            {
                "role": "assistant",
                "content": [],
                "tool_calls": [{"id": "c", "name": "f", "arguments": {}}],
            },
            {"role": "tool", "tool_call_id": "c", "content": []},
        ],
    }
    assert anthropic_messages.from_canonical(doc)["messages"][1] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "c"}],
    }


def test_string_arguments_cannot_become_tool_use_input() -> None:
    doc = {
        "operation": "chat",
        "model": "m",
        "messages": [
            {
                "role": "assistant",
                "content": [],
                "tool_calls": [{"id": "c", "name": "f", "arguments": "{oops"}],
            }
        ],
    }
    with pytest.raises(InputError, match="not a JSON object") as err:
        anthropic_messages.from_canonical(doc)
    assert err.value.param == "messages[0].tool_calls"


def test_images_in_system_messages_cannot_be_sent() -> None:
    doc = {
        "operation": "chat",
        "model": "m",
        "messages": [
            {
                "role": "system",
                "content": [
                    {
                        "type": "image",
                        "media_type": "image/png",
                        "source": "url",
                        "bytes": 0,
                        "url": "https://a.b/c.png",
                    }
                ],
            }
        ],
    }
    with pytest.raises(InputError, match="cannot carry image"):
        anthropic_messages.from_canonical(doc)


USER = {"role": "user", "content": "hi"}

REFUSED = [
    (
        "document block",
        messages(
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "secret"},
                    }
                ],
            }
        ),
        "messages[0].content[0].type",
    ),
    (
        "thinking block",
        messages(
            USER,
            {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"}],
            },
        ),
        "messages[1].content[0].type",
    ),
    (
        "file image source",
        messages(
            {
                "role": "user",
                "content": [{"type": "image", "source": {"type": "file", "file_id": "file_1"}}],
            }
        ),
        "messages[0].content[0].source.type",
    ),
    (
        "pdf as image",
        messages(
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "application/pdf",
                            "data": "JVBERi0=",
                        },
                    }
                ],
            }
        ),
        "messages[0].content[0]",
    ),
    (
        "citations",
        messages(
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "text",
                        "text": "x",
                        "citations": [{"type": "char_location", "cited_text": "x"}],
                    }
                ],
            }
        ),
        "messages[0].content[0].citations",
    ),
    (
        "document in tool result",
        messages(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "content": [{"type": "document", "source": {}}],
                    }
                ],
            }
        ),
        "messages[0].content[0].content[0].type",
    ),
    (
        "server tool",
        messages(USER, tools=[{"type": "web_search_20250305", "name": "web_search"}]),
        "tools[0].type",
    ),
    (
        "mcp servers",
        messages(USER, mcp_servers=[{"type": "url", "url": "https://mcp.example"}]),
        "mcp_servers",
    ),
    (
        "tool_use in a user message",
        messages(
            {"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}
        ),
        "messages[0].content[0].type",
    ),
]


@pytest.mark.parametrize(("note", "body", "param"), REFUSED, ids=[r[0] for r in REFUSED])
def test_uninspectable_content_is_refused(note: str, body: dict[str, Any], param: str) -> None:
    with pytest.raises(InputError) as err:
        anthropic_messages.to_canonical(body)
    assert err.value.param == param


MALFORMED = [
    ("no max_tokens", {"model": "m", "messages": [USER]}, "max_tokens"),
    ("system role in messages", messages({"role": "system", "content": "x"}), "messages[0].role"),
    ("system a number", messages(USER, system=3), "system"),
    ("temperature above one", messages(USER, temperature=1.5), "temperature"),
    (
        "tool_use input not an object",
        messages(
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "f", "input": "x"}],
            }
        ),
        "messages[0].content[0].input",
    ),
    (
        "tool_result without id",
        messages({"role": "user", "content": [{"type": "tool_result"}]}),
        "messages[0].content[0].tool_use_id",
    ),
    ("tool without schema", messages(USER, tools=[{"name": "f"}]), "tools[0].input_schema"),
    ("unknown metadata", messages(USER, metadata={"ticket": "x"}), "metadata.ticket"),
    ("stop_sequences a string", messages(USER, stop_sequences="x"), "stop_sequences"),
    ("block not an object", messages({"role": "user", "content": ["x"]}), "messages[0].content[0]"),
]


@pytest.mark.parametrize(("note", "body", "param"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_bodies_raise_input_error(note: str, body: Any, param: str) -> None:
    with pytest.raises(InputError) as err:
        anthropic_messages.to_canonical(body)
    assert err.value.param == param
