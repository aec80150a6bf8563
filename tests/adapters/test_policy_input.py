"""Reading hostile bodies and bounding requests: ``parse_body``, ``build_policy_input`` with
``server.request_limits``, and canonical documents that are not Contract 1."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from adapters.policy_input import LimitExceeded, build_policy_input, parse_body
from engine.config import RequestLimits, parse_config
from engine.errors import InputError

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
CANONICAL: dict[str, Any] = {
    "version": "regate.request/v1",
    "api": "openai.chat",
    "operation": "chat",
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
}


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "words"),
    [
        (b"", None, 400, "empty"),
        (b" \r\n\t", "application/json", 400, "empty"),
        (b'{"model": "\xff"}', None, 400, "not valid UTF-8 (byte 11)"),
        (b'\xef\xbb\xbf{"model": "m"}', None, 400, "not valid JSON"),
        (b'{"model": ', None, 400, "not valid JSON"),
        (b'{"model": "a", "model": "b"}', None, 400, "repeats the key 'model'"),
        (b'{"t": NaN}', None, 400, "NaN"),
        (b'{"t": -Infinity}', None, 400, "-Infinity"),
        (b'{"n": ' + b"9" * 5000 + b"}", None, 400, "number too large"),
        (b"[" * 50_000 + b"]" * 50_000, None, 400, "nested too deeply"),
        (b"[1, 2]", None, 400, "must be a JSON object"),
        (b'"text"', None, 400, "must be a JSON object"),
        (b"null", None, 400, "must be a JSON object"),
        (b"{}", "text/plain", 415, "'text/plain' is not supported"),
        (b"{}", "application/x-www-form-urlencoded", 415, "not supported"),
        (b"{}", "multipart/form-data; boundary=x", 415, "not supported"),
        (b"{}", "application/json; charset=latin-1", 415, "charset=utf-8"),
    ],
)
def test_hostile_bytes_are_input_errors(
    raw: bytes, content_type: str | None, status: int, words: str
) -> None:
    with pytest.raises(InputError) as caught:
        parse_body(raw, content_type=content_type)

    assert caught.value.status == status
    assert words in caught.value.message


JSON_TYPES = [
    None,
    "",
    "application/json",
    "Application/JSON; charset=UTF-8",
    'application/json; charset="utf8"',
    "application/vnd.api+json",
]


@pytest.mark.parametrize("content_type", JSON_TYPES)
def test_json_media_types_are_read(content_type: str | None) -> None:
    assert parse_body(json.dumps(CHAT).encode(), content_type=content_type) == CHAT


def test_the_same_key_in_different_objects_is_not_a_duplicate() -> None:
    raw = b'{"a": {"k": 1}, "b": {"k": 2}}'
    assert parse_body(raw) == {"a": {"k": 1}, "b": {"k": 2}}


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"max_tokens": 2**63}, "2^63"),
        ({"seed": -(2**63)}, "2^63"),
        ({"metadata": {"k": "\ud800"}}, "lone surrogate"),
        ({"metadata": {"\udfff": "v"}}, "lone surrogate"),
        (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": "f", "parameters": {"maximum": 1e300}},
                    }
                ]
            },
            "2^63",
        ),
        ({"temperature": float("inf")}, "not finite"),
    ],
)
def test_values_no_policy_engine_can_take_are_refused(extra: dict[str, Any], words: str) -> None:
    with pytest.raises(InputError) as caught:
        build_policy_input({**CHAT, **extra}, api="openai.chat")

    assert caught.value.status == 400 and words in caught.value.message


def test_numbers_just_inside_the_engines_range_are_read() -> None:
    doc = build_policy_input(
        {**CHAT, "seed": 2**63 - 1, "max_tokens": 9}, api="openai.chat"
    ).document
    assert doc["params"]["max_tokens"] == 9


def _nested(depth: int) -> dict[str, Any]:
    """A chat body whose deepest container sits at ``depth`` (the body itself is depth 1)."""
    value: Any = {}
    for _ in range(depth - 5):  # body 1, tools 2, tool 3, function 4, parameters 5, ...
        value = {"x": value}
    return {**CHAT, "tools": [{"type": "function", "function": {"name": "f", "parameters": value}}]}


def test_nesting_depth_is_bounded_by_the_configured_limit() -> None:
    limits = replace(RequestLimits(), max_json_depth=12)
    build_policy_input(_nested(12), api="openai.chat", limits=limits)

    with pytest.raises(InputError) as caught:
        build_policy_input(_nested(13), api="openai.chat", limits=limits)

    assert caught.value.status == 400
    assert "more than 12 levels" in caught.value.message
    assert "server.request_limits.max_json_depth" in caught.value.message


TIGHT = RequestLimits(
    max_messages=3,
    max_parts_per_message=2,
    max_tools=1,
    max_json_depth=20,
    max_metadata_entries=2,
    max_metadata_value_chars=5,
    max_text_chars=50,
)
TEXT = {"type": "text", "text": "a"}
TOOL = {"type": "function", "function": {"name": "f"}}


@pytest.mark.parametrize(
    ("body", "limit", "words"),
    [
        (
            {**CHAT, "messages": [{"role": "user", "content": "a"}] * 4},
            "max_messages",
            "4 messages",
        ),
        ({"model": "e", "input": ["a"] * 4}, "max_messages", "4 messages"),
        (
            {**CHAT, "messages": [{"role": "user", "content": [TEXT] * 3}]},
            "max_parts_per_message",
            "messages[0] has 3",
        ),
        ({**CHAT, "tools": [TOOL, TOOL]}, "max_tools", "2 tools"),
        (
            {**CHAT, "metadata": {"a": "1", "b": "2", "c": "3"}},
            "max_metadata_entries",
            "3 metadata",
        ),
        ({**CHAT, "metadata": {"a": "123456"}}, "max_metadata_value_chars", "'a' has 6 characters"),
        (
            {**CHAT, "messages": [{"role": "user", "content": "x" * 51}]},
            "max_text_chars",
            "51 characters",
        ),
        (
            {**CHAT, "tools": [{**TOOL, "function": {"name": "f", "description": "d" * 49}}]},
            "max_text_chars",
            "51",
        ),
        ({**CANONICAL, "messages": CANONICAL["messages"] * 4}, "max_messages", "4 messages"),
    ],
)
def test_each_limit_refuses_with_413_naming_it(
    body: dict[str, Any], limit: str, words: str
) -> None:
    with pytest.raises(LimitExceeded) as caught:
        build_policy_input(body, limits=TIGHT)

    error = caught.value
    assert (error.status, error.code) == (413, "request_too_large")
    assert error.limit == f"server.request_limits.{limit}"
    assert words in error.message and error.limit in error.message


def test_a_limit_message_quotes_the_clients_text_verbatim() -> None:
    body = {**CHAT, "metadata": {"{x} {n}": "123456"}}
    with pytest.raises(LimitExceeded) as caught:
        build_policy_input(body, limits=TIGHT)

    assert caught.value.message.startswith("metadata value '{x} {n}' has 6 characters, more than")


def test_a_request_at_every_limit_passes() -> None:
    body = {
        **CHAT,
        "messages": [{"role": "user", "content": [TEXT, TEXT]}] * 3,
        "tools": [TOOL],
        "metadata": {"a": "12345", "b": ""},
    }
    doc = build_policy_input(body, limits=TIGHT).document
    assert len(doc["messages"]) == 3 and doc["size"]["text_chars"] == 6


def test_without_limits_a_canonical_document_reaches_the_bundles_own_bounds() -> None:
    # Bundle test cases probe their size schemas with oversized canonical documents.
    tags = {f"t{i}": "a" for i in range(17)}
    doc = build_policy_input({**CANONICAL, "metadata": tags}).document
    assert len(doc["metadata"]) == 17


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"messages": "hi"}, "/messages"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "/messages/0/content"),
        ({"messages": [{"role": "wizard", "content": []}]}, "/messages/0/role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 7}]}]},
            "/messages/0/content/0",
        ),
        ({"tools": [{"description": "no name"}]}, "/tools/0"),
        ({"params": {"temperature": 9}}, "/params/temperature"),
        ({"metadata": {"k": 1}}, "/metadata/k"),
        ({"api": "gemini.generate_content"}, "/api"),
        ({"model": ""}, "/model"),
    ],
)
def test_a_canonical_document_must_have_contract_1_content(
    change: dict[str, Any], pointer: str
) -> None:
    with pytest.raises(InputError) as caught:
        build_policy_input({**CANONICAL, **change})

    assert caught.value.status == 400 and caught.value.param == pointer


def test_a_canonical_document_gets_the_gateways_id_and_its_own_fields() -> None:
    body = {
        **CANONICAL,
        "id": "client-chosen",
        "principal": {"id": "forged", "kind": "app", "labels": {}},
    }
    doc = build_policy_input(
        body, principal={"id": "p", "kind": "user", "labels": {}}, request_id="req_X"
    ).document

    assert doc["id"] == "req_X" and doc["principal"]["id"] == "p"
    assert (doc["tools"], doc["params"], doc["metadata"], doc["findings"]) == ([], {}, {}, [])
    assert doc["size"]["text_chars"] == 2


def test_request_limits_come_from_config_with_safe_defaults() -> None:
    text = "server: {request_limits: {max_tools: 4, max_json_depth: 30}}"
    config = parse_config(text, source="regate.yaml", env={}, base_dir=Path("."))

    assert config.server.request_limits == replace(RequestLimits(), max_tools=4, max_json_depth=30)
    defaults = parse_config("", source="x", env={}, base_dir=Path(".")).server.request_limits
    assert (
        defaults == RequestLimits()
        and defaults.max_messages == 2048
        and defaults.max_json_depth == 64
    )
