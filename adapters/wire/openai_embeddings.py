"""OpenAI Embeddings request body <-> canonical request document (Contract 1).

Each input string becomes one ``user`` message with one text part. Token-array
inputs are refused: policy cannot inspect token ids, so regate fails closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.wire import base
from adapters.wire.base import EMPTY, Canonicalised, MessageBuilder, fail

API = "openai.embeddings"

PASSTHROUGH = frozenset({"user"})
"""Top-level parameters kept when re-emitting to openai.embeddings."""

_MODELLED = frozenset({"model", "input", "dimensions", "encoding_format"})
_ENCODINGS = ("float", "base64")


@base.guarded
def to_canonical(body: Mapping[str, Any]) -> Canonicalised:
    """Read a ``POST /v1/embeddings`` body; the input is left untouched."""
    body = base.json_body(body)
    base.check_keys(body, _MODELLED | PASSTHROUGH, "", "request")
    model = base.string(body.get("model"), "model", non_empty=True)
    raw = body.get("input")
    if isinstance(raw, str):
        inputs = [raw]
    else:
        inputs = base.array(raw, "input")
        if not inputs:
            fail("input must not be empty", "input")
        for i, item in enumerate(inputs):
            if isinstance(item, int | list) and not isinstance(item, bool):
                fail("token-array input cannot be inspected by policy; send text", "input")
            base.string(item, f"input[{i}]")
    builder = MessageBuilder()
    for text in inputs:
        builder.add("user", [({"type": "text", "text": text}, None)])
    params: dict[str, Any] = {}
    if body.get("dimensions") is not None:
        params["dimensions"] = base.integer(body["dimensions"], "dimensions", minimum=1)
    if body.get("encoding_format") is not None:
        if body["encoding_format"] not in _ENCODINGS:
            fail("encoding_format must be 'float' or 'base64'", "encoding_format")
        params["encoding_format"] = body["encoding_format"]
    return builder.result(
        api=API, operation="embeddings", model=model, tools=[], params=params, metadata={}
    )


@base.guarded
def from_canonical(
    doc: Mapping[str, Any],
    attachments: Mapping[str, str] = EMPTY,
    *,
    original: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Emit an Embeddings body: one input per canonical message.

    A single input is sent as a string unless the same-API ``original`` sent a list.
    """
    doc = base.mapping(doc, "doc")
    base.expect_operation(doc, "embeddings", API)
    inputs = []
    for index, message in enumerate(base.canonical_messages(doc)):
        parts = base.canonical_parts(message, index)
        texts = base.only_text(parts, f"messages[{index}].content", API)
        if message.get("role") != "user" or len(texts) != 1:
            fail(
                f"messages[{index}] must be a user message with one text part", f"messages[{index}]"
            )
        inputs.append(texts[0])
    if not inputs:
        fail("an embeddings request needs at least one input", "messages")
    body: dict[str, Any] = {
        "model": base.string(doc.get("model"), "model", non_empty=True),
        "input": inputs if len(inputs) > 1 else inputs[0],
    }
    params = base.mapping(doc.get("params", {}), "params")
    for name in ("dimensions", "encoding_format"):
        if name in params:
            body[name] = params[name]
    if original is not None and doc.get("api") == API:
        body = base.carry_over(body, original, PASSTHROUGH)
    return body
