"""OpenAI embeddings <-> canonical, float and base64, checked with the OpenAI SDK."""

from __future__ import annotations

import json

import pytest
from openai.types import CreateEmbeddingResponse

from adapters.translate import openai_embeddings
from adapters.translate.canonical import CanonicalEmbeddings
from adapters.translate.errors import TranslateError
from adapters.translate.openai_embeddings import EncodingFormat

from .recorded import load_json, openai_client

VECTORS = [[0.25, -1.5, 3.0], [0.0, 0.125, -0.5]]  # exact in float32
CANONICAL: CanonicalEmbeddings = {
    "model": "text-embedding-004",
    "vectors": VECTORS,
    "usage": {"prompt_tokens": 6, "completion_tokens": 0},
}


def test_recorded_response_to_canonical() -> None:
    body = load_json("openai_embeddings.json")
    canonical = openai_embeddings.response_to_canonical(body)
    assert canonical["vectors"] == [item["embedding"] for item in body["data"]]
    assert canonical["usage"] == {"prompt_tokens": 8, "completion_tokens": 0}


def test_items_are_ordered_by_index() -> None:
    body = load_json("openai_embeddings.json")
    body["data"].reverse()
    vectors = openai_embeddings.response_to_canonical(body)["vectors"]
    assert vectors == [item["embedding"] for item in reversed(body["data"])]


ENCODINGS: list[EncodingFormat] = ["float", "base64"]


@pytest.mark.parametrize("encoding_format", ENCODINGS)
def test_both_encodings_round_trip_and_validate(encoding_format: EncodingFormat) -> None:
    body = openai_embeddings.response_from_canonical(CANONICAL, encoding_format=encoding_format)
    if encoding_format == "float":  # the SDK type knows floats only; base64 is decoded first
        CreateEmbeddingResponse.model_validate(body)
    assert isinstance(body["data"][0]["embedding"], list if encoding_format == "float" else str)
    assert openai_embeddings.response_to_canonical(body)["vectors"] == VECTORS


@pytest.mark.parametrize("encoding_format", ENCODINGS)
def test_the_sdk_reads_either_encoding(encoding_format: EncodingFormat) -> None:
    body = openai_embeddings.response_from_canonical(CANONICAL, encoding_format=encoding_format)
    result = openai_client(200, json.dumps(body).encode()).embeddings.create(
        model="m", input=["a", "b"]
    )  # the SDK asks for base64 and decodes it if it gets it
    assert [item.embedding for item in result.data] == VECTORS
    assert result.usage.prompt_tokens == 6


@pytest.mark.parametrize("embedding", ["AAA=", "not base64!", {"values": [1.0]}])
def test_malformed_embedding_is_a_coded_error(embedding: object) -> None:
    body = {"object": "list", "model": "m", "data": [{"index": 0, "embedding": embedding}]}
    with pytest.raises(TranslateError) as caught:
        openai_embeddings.response_to_canonical(body)
    assert caught.value.code == "upstream_malformed_response"
