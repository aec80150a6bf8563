"""The canonical request document (Contract 1): ids, JSON pointers, text walking, size.

Adapters build the API-specific part of the document (``api`` .. ``metadata``);
:func:`complete` adds what the gateway owns (id, time, principal, size, context).
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

VERSION = "regate.request/v1"
DEFAULT_PRINCIPAL: dict[str, Any] = {"id": "cli", "kind": "user", "labels": {}}

_TO_CROCKFORD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)

Document = dict[str, Any]


def new_request_id() -> str:
    """``req_`` + 26 Crockford base32 characters: 48 bits of milliseconds, then 80
    random bits, so ids sort by time (ULID-like)."""
    raw = int(time.time() * 1000).to_bytes(6, "big") + os.urandom(10)
    return "req_" + base64.b32encode(raw)[:26].translate(_TO_CROCKFORD).decode("ascii")


def utc_now() -> str:
    """RFC 3339 UTC time with milliseconds, e.g. ``2026-11-29T21:58:52.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iter_texts(doc: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Yield ``(json_pointer, text)`` for every text part of every message."""
    for m_index, message in enumerate(doc.get("messages", ())):
        for p_index, part in enumerate(message.get("content", ())):
            if part.get("type") == "text":
                yield f"/messages/{m_index}/content/{p_index}/text", part["text"]


def estimate_tokens(text_chars: int) -> int:
    """Rough token estimate used for budgets before the provider reports usage."""
    return (text_chars + 3) // 4


def measure(doc: Mapping[str, Any], body_bytes: int | None = None) -> dict[str, int]:
    """The ``size`` block: request bytes, text characters and estimated tokens."""
    text_chars = sum(len(text) for _, text in iter_texts(doc))
    for tool in doc.get("tools", ()):
        text_chars += len(tool.get("description", ""))
    return {
        "bytes": body_bytes if body_bytes is not None else text_chars,
        "text_chars": text_chars,
        "estimated_tokens": estimate_tokens(text_chars),
    }


def complete(
    partial: Mapping[str, Any],
    *,
    principal: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    body_bytes: int | None = None,
    request_id: str | None = None,
) -> Document:
    """Turn an adapter's partial document into a full canonical document.

    The document takes ``partial``'s values as they are (adapters build them
    fresh for each request), so nothing is copied on the hot path.

    >>> doc = complete({"api": "openai.chat", "operation": "chat", "model": "m",
    ...                 "messages": [], "tools": [], "params": {}, "metadata": {}})
    >>> doc["version"], doc["findings"]
    ('regate.request/v1', [])
    """
    doc: Document = {
        "version": VERSION,
        "id": request_id or new_request_id(),
        "time": utc_now(),
        "principal": dict(principal or DEFAULT_PRINCIPAL),
    }
    for key in ("api", "operation", "model", "messages", "tools", "params", "metadata"):
        doc[key] = partial.get(key, [] if key in ("messages", "tools") else {})
    doc["findings"] = []
    doc["context"] = dict(context or {"providers": {}, "usage": {}})
    doc["size"] = measure(doc, body_bytes)
    return doc


def split_pointer(pointer: str) -> list[str]:
    """RFC 6901 pointer -> unescaped tokens (``"/a~1b/0"`` -> ``["a/b", "0"]``)."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer must start with '/': {pointer!r}")
    return [tok.replace("~1", "/").replace("~0", "~") for tok in pointer[1:].split("/")]


def resolve(doc: Any, pointer: str) -> Any:
    """Value at ``pointer``; raises ``KeyError`` when it does not exist."""
    node = doc
    for token in split_pointer(pointer):
        if isinstance(node, list):
            if not token.isdigit() or int(token) >= len(node):
                raise KeyError(pointer)
            node = node[int(token)]
        elif isinstance(node, dict):
            if token not in node:
                raise KeyError(pointer)
            node = node[token]
        else:
            raise KeyError(pointer)
    return node


def assign(doc: Any, pointer: str, value: Any) -> None:
    """Replace the existing value at ``pointer`` (the parent must exist)."""
    tokens = split_pointer(pointer)
    if not tokens:
        raise KeyError(pointer)
    parent = (
        resolve(doc, "/" + "/".join(t.replace("~", "~0").replace("/", "~1") for t in tokens[:-1]))
        if len(tokens) > 1
        else doc
    )
    last = tokens[-1]
    if isinstance(parent, list):
        if not last.isdigit() or int(last) >= len(parent):
            raise KeyError(pointer)
        parent[int(last)] = value
    elif isinstance(parent, dict) and last in parent:
        parent[last] = value
    else:
        raise KeyError(pointer)
