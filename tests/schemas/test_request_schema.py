"""schemas/request.v1.json: Contract 1's documents validate, broken ones do not."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import jsonschema_rs
import pytest

from engine.document import complete, resolve, split_pointer
from engine.resources import schema_path

SCHEMA = json.loads(schema_path("request.v1.json").read_text())
VALIDATOR = jsonschema_rs.Draft202012Validator(SCHEMA, validate_formats=True)

# The example of DESIGN.md Contract 1, with one value chosen for each alternative.
EXAMPLE: dict[str, Any] = {
    "version": "regate.request/v1",
    "id": "req_01JDX3Q4ZK8V9R2M6T1B0C5N7P",
    "time": "2026-11-29T21:58:52.123Z",
    "principal": {
        "id": "billing-bot",
        "kind": "app",
        "team": "finance",
        "labels": {"region": "eu", "env": "prod"},
    },
    "api": "openai.chat",
    "operation": "chat",
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "Reach me at jane@example.com about the attached invoice.",
                },
                {"type": "image", "media_type": "image/png", "source": "base64", "bytes": 1234},
                {
                    "type": "image",
                    "media_type": "image/jpeg",
                    "source": "url",
                    "bytes": 0,
                    "url": "https://files.example.com/invoice.jpg",
                },
            ],
        },
        {
            "role": "assistant",
            "content": [],
            "tool_calls": [
                {"id": "call_1", "name": "send_email", "arguments": {"to": "jane@example.com"}},
                {"id": "call_2", "name": "send_email", "arguments": "{not json"},
            ],
        },
        {"role": "tool", "content": [{"type": "text", "text": "sent"}], "tool_call_id": "call_1"},
    ],
    "tools": [
        {"name": "send_email", "description": "Send an email", "parameters": {"type": "object"}}
    ],
    "params": {"max_tokens": 256, "temperature": 0.2, "top_p": 1, "stream": False, "stop": []},
    "metadata": {"ticket": "T-1"},
    "findings": [
        {
            "detector": "pii.email",
            "category": "pii",
            "path": "/messages/1/content/0/text",
            "start": 12,
            "end": 28,
        }
    ],
    "context": {
        "providers": {"openai": {"healthy": True, "region": "us", "latency_ms": 80}},
        "usage": {"requests_minute": 3, "tokens_day": 12000},
    },
    "size": {"bytes": 1234, "text_chars": 456, "estimated_tokens": 120},
}

EMBEDDINGS = {
    **EXAMPLE,
    "api": "openai.embeddings",
    "operation": "embeddings",
    "tools": [],
    "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}],
    "params": {"dimensions": 256, "encoding_format": "base64"},
    "findings": [],
}

_DELETE = object()


def mutate(doc: dict[str, Any], pointer: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    *parents, last = split_pointer(pointer)
    node: Any = out
    for token in parents:
        node = node[int(token)] if isinstance(node, list) else node[token]
    key: Any = int(last) if isinstance(node, list) else last
    if value is _DELETE:
        del node[key]
    else:
        node[key] = value
    return out


def test_schema_is_a_valid_2020_12_schema_with_its_id() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$id"] == "https://regate.dev/schemas/request.v1.json"
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("doc", [EXAMPLE, EMBEDDINGS], ids=["chat", "embeddings"])
def test_contract_examples_are_valid(doc: dict[str, Any]) -> None:
    VALIDATOR.validate(doc)
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)


def test_documents_completed_by_the_engine_are_valid() -> None:
    partial = {
        key: EXAMPLE[key]
        for key in ("api", "operation", "model", "messages", "tools", "params", "metadata")
    }
    VALIDATOR.validate(complete(partial))
    VALIDATOR.validate(
        complete(
            partial,
            principal={"id": "a", "kind": "agent", "labels": {}},
            context={"providers": {}, "usage": {}},
            body_bytes=99,
        )
    )


VALID_VARIANTS = [
    ("no team", "/principal/team", _DELETE),
    ("anthropic api", "/api", "anthropic.messages"),
    ("developer role", "/messages/0/role", "developer"),
    ("tool without description", "/tools/0/description", _DELETE),
    ("empty params", "/params", {}),
    ("metadata at its bounds", "/metadata", {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}),
    ("time with offset", "/time", "2026-11-29T21:58:52+01:00"),
]


@pytest.mark.parametrize(
    ("note", "pointer", "value"), VALID_VARIANTS, ids=[v[0] for v in VALID_VARIANTS]
)
def test_valid_variants(note: str, pointer: str, value: Any) -> None:
    VALIDATOR.validate(mutate(EXAMPLE, pointer, value))


INVALID = [
    ("missing version", "/version", _DELETE),
    ("other version", "/version", "regate.request/v2"),
    ("unknown top-level field", "/raw_body", "..."),
    ("id with spaces", "/id", "req 1"),
    ("time not RFC 3339", "/time", "yesterday"),
    ("principal kind", "/principal/kind", "service"),
    ("principal extra field", "/principal/key", "sk-..."),
    ("label not a string", "/principal/labels/env", 1),
    ("principal without labels", "/principal/labels", _DELETE),
    ("unknown api", "/api", "gemini.generate_content"),
    ("chat api, embeddings operation", "/operation", "embeddings"),
    ("empty model", "/model", ""),
    ("unknown role", "/messages/0/role", "function"),
    ("content a string", "/messages/0/content", "Be brief."),
    ("text part extra field", "/messages/0/content/0/cache_control", {"type": "ephemeral"}),
    ("image carries its data", "/messages/1/content/1/data", "iVBORw0KGgo="),
    ("base64 image with url", "/messages/1/content/1/url", "https://x.example/a.png"),
    ("url image without url", "/messages/1/content/2/url", _DELETE),
    ("image negative bytes", "/messages/1/content/1/bytes", -1),
    ("unknown part type", "/messages/1/content/0/type", "audio"),
    ("tool_calls on a user message", "/messages/1/tool_calls", []),
    ("tool_call_id on a user message", "/messages/1/tool_call_id", "call_1"),
    ("tool message without tool_call_id", "/messages/3/tool_call_id", _DELETE),
    ("arguments a number", "/messages/2/tool_calls/0/arguments", 3),
    ("tool call without name", "/messages/2/tool_calls/0/name", _DELETE),
    ("tool without name", "/tools/0/name", _DELETE),
    ("unknown param", "/params/seed", 7),
    ("temperature too high", "/params/temperature", 2.5),
    ("zero max_tokens", "/params/max_tokens", 0),
    ("stop a string", "/params/stop", "END"),
    ("unknown encoding", "/params/encoding_format", "int8"),
    ("metadata value not a string", "/metadata/ticket", 1),
    ("metadata value too long", "/metadata/ticket", "v" * 513),
    ("metadata key too long", "/metadata", {"k" * 65: "v"}),
    ("metadata too many keys", "/metadata", {str(i): "v" for i in range(17)}),
    ("finding without end", "/findings/0/end", _DELETE),
    ("finding path not a pointer", "/findings/0/path", "messages.1"),
    ("finding negative start", "/findings/0/start", -1),
    ("context extra field", "/context/secrets", {}),
    ("provider without healthy", "/context/providers/openai/healthy", _DELETE),
    ("size missing tokens", "/size/estimated_tokens", _DELETE),
    ("size negative", "/size/bytes", -5),
]


@pytest.mark.parametrize(("note", "pointer", "value"), INVALID, ids=[i[0] for i in INVALID])
def test_invalid_documents_are_rejected_where_they_break(
    note: str, pointer: str, value: Any
) -> None:
    doc = mutate(EXAMPLE, pointer, value)
    assert not jsonschema.Draft202012Validator(SCHEMA).is_valid(doc)
    where = {"".join(f"/{token}" for token in e.instance_path) for e in VALIDATOR.iter_errors(doc)}
    # A deleted or unknown field is reported on its object, a bad value on itself, and
    # anything inside a content part (a oneOf of text and image) on the whole part.
    parent = pointer.rsplit("/", 1)[0]
    try:
        resolve(EXAMPLE, pointer)
        expected = {parent if value is _DELETE else pointer}
    except KeyError:
        expected = {parent, pointer}
    if "/content/" in pointer:
        expected = {"/".join(pointer.split("/")[:5])}
    assert expected & where, (note, where)


@pytest.mark.parametrize(
    ("note", "pointer", "value"),
    [
        ("embeddings from an assistant", "/messages/0/role", "assistant"),
        (
            "embeddings of an image",
            "/messages/0/content/0",
            {"type": "image", "media_type": "image/png", "source": "base64", "bytes": 1},
        ),
        ("embeddings api, chat operation", "/operation", "chat"),
    ],
)
def test_invalid_embeddings_documents_are_rejected(note: str, pointer: str, value: Any) -> None:
    assert not VALIDATOR.is_valid(mutate(EMBEDDINGS, pointer, value))
