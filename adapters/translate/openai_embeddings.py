"""OpenAI embeddings responses (``{"object": "list", "data": [...]}``) <-> canonical.

The OpenAI SDKs ask for ``encoding_format: "base64"`` by default (little-endian
float32), so the client's encoding is honoured on the way out and either is
read on the way in.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Mapping
from typing import Any, Literal

from adapters.translate.canonical import CanonicalEmbeddings, Usage
from adapters.translate.errors import TranslateError

API = "openai.embeddings"
EncodingFormat = Literal["float", "base64"]


def response_to_canonical(body: Mapping[str, Any]) -> CanonicalEmbeddings:
    """An embeddings list -> canonical embeddings, ordered by ``index``."""
    data = body.get("data")
    if not isinstance(data, list):
        raise TranslateError("upstream_malformed_response", "embeddings response has no data")
    items = sorted(
        (item for item in data if isinstance(item, Mapping)),
        key=lambda item: int(item.get("index") or 0),
    )
    usage = body.get("usage")
    canonical_usage: Usage | None = None
    if isinstance(usage, Mapping):
        canonical_usage = {
            "prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "completion_tokens": 0,
        }
    return {
        "model": str(body.get("model") or ""),
        "vectors": [_vector(item.get("embedding")) for item in items],
        "usage": canonical_usage,
    }


def response_from_canonical(
    embeddings: CanonicalEmbeddings, *, encoding_format: EncodingFormat = "float"
) -> dict[str, Any]:
    """Canonical embeddings -> the list object the OpenAI SDK accepts."""
    prompt_tokens = embeddings["usage"]["prompt_tokens"] if embeddings["usage"] else 0
    return {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": index,
                "embedding": _encode(vector) if encoding_format == "base64" else vector,
            }
            for index, vector in enumerate(embeddings["vectors"])
        ],
        "model": embeddings["model"],
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def _encode(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def _vector(value: Any) -> list[float]:
    if isinstance(value, list):
        return [float(number) for number in value]
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else None
    except binascii.Error:
        raw = None
    if raw is None or len(raw) % 4:
        raise TranslateError(
            "upstream_malformed_response",
            "embedding is neither a list of floats nor base64 float32",
        )
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))
