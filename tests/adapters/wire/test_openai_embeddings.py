"""OpenAI Embeddings <-> canonical, from recorded request bodies."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from adapters.wire import openai_embeddings
from engine.document import complete
from engine.errors import InputError

PAYLOADS = Path(__file__).parent / "payloads"
RECORDED = ["openai_embeddings_batch", "openai_embeddings_single"]


def load(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_body_reads_to_the_expected_canonical_document(name: str) -> None:
    body = load(f"{name}.json")
    want = load(f"{name}.canonical.json")
    pristine = copy.deepcopy(body)
    got = openai_embeddings.to_canonical(body)
    assert got.partial == want["partial"]
    assert dict(got.attachments) == want["attachments"]
    assert body == pristine


@pytest.mark.parametrize("name", RECORDED)
def test_same_api_re_emission_restores_the_original_body(name: str) -> None:
    body = load(f"{name}.json")
    doc = complete(openai_embeddings.to_canonical(body).partial)
    assert openai_embeddings.from_canonical(doc, original=body) == body


def test_redacted_inputs_are_emitted_and_a_listed_single_input_stays_a_list() -> None:
    body = {"model": "text-embedding-3-small", "input": ["call 555-0100"], "user": "u1"}
    doc = complete(openai_embeddings.to_canonical(body).partial)
    doc["messages"][0]["content"][0]["text"] = "call [PHONE]"
    assert openai_embeddings.from_canonical(doc, original=body) == {
        "model": "text-embedding-3-small",
        "input": ["call [PHONE]"],
        "user": "u1",
    }
    assert openai_embeddings.from_canonical(doc)["input"] == "call [PHONE]"


@pytest.mark.parametrize("tokens", [[1212, 318], [[1212, 318], [257]], ["text", [1, 2]]])
def test_token_array_input_fails_closed(tokens: Any) -> None:
    with pytest.raises(InputError, match="cannot be inspected by policy") as err:
        openai_embeddings.to_canonical({"model": "m", "input": tokens})
    assert err.value.param == "input"


MALFORMED = [
    ("no input", {"model": "m"}, "input"),
    ("empty input list", {"model": "m", "input": []}, "input"),
    ("input of objects", {"model": "m", "input": [{"text": "x"}]}, "input[0]"),
    ("no model", {"input": "x"}, "model"),
    ("zero dimensions", {"model": "m", "input": "x", "dimensions": 0}, "dimensions"),
    (
        "unknown encoding",
        {"model": "m", "input": "x", "encoding_format": "int8"},
        "encoding_format",
    ),
    ("unknown field", {"model": "m", "input": "x", "messages": []}, "messages"),
]


@pytest.mark.parametrize(("note", "body", "param"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_bodies_raise_input_error(note: str, body: Any, param: str) -> None:
    with pytest.raises(InputError) as err:
        openai_embeddings.to_canonical(body)
    assert err.value.param == param


@pytest.mark.parametrize(
    ("doc", "param"),
    [
        ({"operation": "chat", "model": "m", "messages": []}, "operation"),
        ({"operation": "embeddings", "model": "m", "messages": []}, "messages"),
        (
            {
                "operation": "embeddings",
                "model": "m",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                    }
                ],
            },
            "messages[0]",
        ),
        (
            {
                "operation": "embeddings",
                "model": "m",
                "messages": [{"role": "assistant", "content": [{"type": "text", "text": "a"}]}],
            },
            "messages[0]",
        ),
    ],
)
def test_documents_that_are_not_embedding_inputs_are_refused(
    doc: dict[str, Any], param: str
) -> None:
    with pytest.raises(InputError) as err:
        openai_embeddings.from_canonical(doc)
    assert err.value.param == param
