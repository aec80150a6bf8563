"""Gemini generateContent <-> canonical (provider side), from a recorded request body."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from adapters.wire import anthropic_messages, gemini
from engine.document import complete
from engine.errors import InputError

PAYLOADS = Path(__file__).parent / "payloads"
PNG = (  # a 1x1 PNG, as recorded in the payloads
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
)


def load(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def test_recorded_body_reads_to_the_expected_canonical_document() -> None:
    body = load("gemini_generate_content.json")
    want = load("gemini_generate_content.canonical.json")
    pristine = copy.deepcopy(body)
    got = gemini.to_canonical(body, model="gemini-2.5-flash")
    assert got.partial == want["partial"]
    assert dict(got.attachments) == want["attachments"]
    assert body == pristine


def test_same_api_re_emission_restores_the_original_body() -> None:
    body = load("gemini_generate_content.json")
    canon = gemini.to_canonical(body, model="models/gemini-2.5-flash")
    assert canon.partial["model"] == "gemini-2.5-flash"
    assert gemini.from_canonical(canon.partial, canon.attachments, original=body) == body


def test_anthropic_request_becomes_a_generate_content_body() -> None:
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 200,
        "system": "Answer tersely.",
        "stream": True,
        "top_k": 5,
        "metadata": {"user_id": "u-1"},
        "stop_sequences": ["END"],
        "tools": [
            {
                "name": "lookup",
                "description": "Find an order",
                "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}},
            }
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Where is order 42?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"id": "42"}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "shipped"},
                    {"type": "text", "text": "And when does it arrive?"},
                ],
            },
        ],
    }
    canon = anthropic_messages.to_canonical(body)
    doc = complete(canon.partial)
    pristine = copy.deepcopy(doc)
    assert gemini.from_canonical(doc, canon.attachments, original=body) == {
        "systemInstruction": {"parts": [{"text": "Answer tersely."}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Where is order 42?"},
                    {"inlineData": {"mimeType": "image/png", "data": PNG}},
                ],
            },
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"id": "toolu_1", "name": "lookup", "args": {"id": "42"}}}
                ],
            },
            {
                "role": "user",
                "parts": [
                    {
                        "functionResponse": {
                            "id": "toolu_1",
                            "name": "lookup",
                            "response": {"result": "shipped"},
                        }
                    },
                    {"text": "And when does it arrive?"},
                ],
            },
        ],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "lookup",
                        "description": "Find an order",
                        "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
                    }
                ]
            }
        ],
        "generationConfig": {"maxOutputTokens": 200, "stopSequences": ["END"]},
    }
    assert doc == pristine


@pytest.mark.parametrize(
    ("response", "texts"),
    [
        ({"result": "ok"}, ["ok"]),
        ({"result": ["a", "b"]}, ["a", "b"]),
        ({"temperature": 21, "unit": "C"}, ['{"temperature": 21, "unit": "C"}']),
    ],
)
def test_function_responses_become_tool_text(response: dict[str, Any], texts: list[str]) -> None:
    body = {
        "contents": [
            {"role": "model", "parts": [{"functionCall": {"name": "w", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "w", "response": response}}]},
        ]
    }
    messages = gemini.to_canonical(body, model="g").partial["messages"]
    assert messages[0]["tool_calls"] == [{"id": "call_0_0", "name": "w", "arguments": {}}]
    assert messages[1] == {
        "role": "tool",
        "tool_call_id": "call_0_0",
        "content": [{"type": "text", "text": t} for t in texts],
    }


def test_tool_results_must_answer_a_known_call() -> None:
    doc = {
        "operation": "chat",
        "model": "g",
        "messages": [
            {"role": "tool", "tool_call_id": "nope", "content": [{"type": "text", "text": "x"}]}
        ],
    }
    with pytest.raises(InputError) as err:
        gemini.from_canonical(doc)
    assert err.value.param == "messages[0].tool_call_id"


REFUSED = [
    (
        "audio inline data",
        {
            "contents": [
                {
                    "role": "user",
                    "parts": [{"inlineData": {"mimeType": "audio/wav", "data": "AAAA"}}],
                }
            ]
        },
        "contents[0].parts[0].inlineData",
    ),
    (
        "executable code",
        {
            "contents": [
                {
                    "role": "model",
                    "parts": [{"executableCode": {"language": "PYTHON", "code": "print(1)"}}],
                }
            ]
        },
        "contents[0].parts[0]",
    ),
    (
        "thought part",
        {"contents": [{"role": "model", "parts": [{"text": "x", "thought": True}]}]},
        "contents[0].parts[0]",
    ),
    (
        "cached content",
        {"contents": [{"parts": [{"text": "x"}]}], "cachedContent": "cachedContents/1"},
        "cachedContent",
    ),
    (
        "gs URI",
        {"contents": [{"parts": [{"fileData": {"mimeType": "image/png", "fileUri": "gs://b/o"}}]}]},
        "contents[0].parts[0].fileData.fileUri",
    ),
    ("bad role", {"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "contents[0].role"),
    ("no contents", {"contents": []}, "contents"),
]


@pytest.mark.parametrize(("note", "body", "param"), REFUSED, ids=[r[0] for r in REFUSED])
def test_unreadable_bodies_are_refused(note: str, body: dict[str, Any], param: str) -> None:
    with pytest.raises(InputError) as err:
        gemini.to_canonical(body, model="g")
    assert err.value.param == param


def test_model_is_required() -> None:
    with pytest.raises(InputError) as err:
        gemini.to_canonical({"contents": [{"parts": [{"text": "x"}]}]})
    assert err.value.param == "model"
