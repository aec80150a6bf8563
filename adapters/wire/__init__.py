"""Request-side wire translation: client and provider API bodies <-> Contract 1.

One pure module per API format, registered by name in :data:`APIS`::

    canon = to_canonical("openai.chat", body)        # Canonicalised(partial, attachments)
    doc = engine.document.complete(canon.partial, principal=...)
    wire = from_canonical("anthropic.messages", doc, canon.attachments, original=body)

Translators never mutate their input and raise only
:class:`engine.errors.InputError` on bodies they cannot read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from adapters.wire import anthropic_messages, gemini, openai_chat, openai_embeddings
from adapters.wire.base import EMPTY, Canonicalised, fail

__all__ = [
    "APIS",
    "CLIENT_APIS",
    "Canonicalised",
    "WireAPI",
    "from_canonical",
    "guess_api",
    "to_canonical",
]


class FromCanonical(Protocol):
    def __call__(
        self,
        doc: Mapping[str, Any],
        attachments: Mapping[str, str] = ...,
        *,
        original: Mapping[str, Any] | None = ...,
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class WireAPI:
    """One API format: its name and its two pure translators."""

    name: str
    to_canonical: Callable[[Mapping[str, Any]], Canonicalised]
    from_canonical: FromCanonical


APIS: Mapping[str, WireAPI] = MappingProxyType(
    {
        module.API: WireAPI(module.API, module.to_canonical, module.from_canonical)
        for module in (openai_chat, openai_embeddings, anthropic_messages, gemini)
    }
)
"""Every format by name: the three client APIs of Contract 1 plus ``gemini.generate_content``."""

CLIENT_APIS = (openai_chat.API, openai_embeddings.API, anthropic_messages.API)
"""The formats clients speak to regate (the ``api`` enum of Contract 1)."""

_ANTHROPIC_KEYS = ("system", "stop_sequences", "top_k", "thinking")
_ANTHROPIC_BLOCKS = frozenset(
    {
        "image",
        "tool_use",
        "tool_result",
        "document",
        "thinking",
        "redacted_thinking",
        "search_result",
        "server_tool_use",
        "container_upload",
    }
)


def guess_api(body: Any) -> str:
    """Name the client API a body is written in, from its shape alone.

    - ``openai.embeddings`` when it has ``input`` and no ``messages``;
    - ``anthropic.messages`` when it has a key only Anthropic uses (``system``,
      ``stop_sequences``, ``top_k``, ``thinking``) or a message content block of a
      type only Anthropic uses (``image`` with a ``source``, ``tool_use``,
      ``tool_result``, ``document``, ``thinking``, ...);
    - ``openai.chat`` otherwise. Plain-text chats are valid in both chat
      formats and are read as OpenAI: callers that know the endpoint should
      name the API instead of guessing.

    >>> guess_api({"model": "m", "input": "hi"})
    'openai.embeddings'
    >>> guess_api({"model": "m", "max_tokens": 9, "system": "s", "messages": []})
    'anthropic.messages'
    """
    if not isinstance(body, Mapping):
        fail("the request body must be a JSON object", None)
    if "input" in body and "messages" not in body:
        return openai_embeddings.API
    if any(key in body for key in _ANTHROPIC_KEYS):
        return anthropic_messages.API
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, Mapping) else None
        for block in content if isinstance(content, list) else ():
            if isinstance(block, Mapping) and block.get("type") in _ANTHROPIC_BLOCKS:
                return anthropic_messages.API
    return openai_chat.API


def _api(name: str) -> WireAPI:
    if name not in APIS:
        fail(f"unknown API {name!r}; expected one of {', '.join(APIS)}", "api")
    return APIS[name]


def to_canonical(api: str, body: Mapping[str, Any]) -> Canonicalised:
    """Read ``body``, written in ``api``, into the canonical partial document."""
    return _api(api).to_canonical(body)


def from_canonical(
    api: str,
    doc: Mapping[str, Any],
    attachments: Mapping[str, str] = EMPTY,
    original: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``doc`` as an ``api`` request body.

    ``original`` is the client's body, as :func:`to_canonical` read it: its
    unmodelled fields come back only when ``doc["api"] == api``; re-emitting into
    another API drops what that API cannot express. The result shares nothing
    with ``doc`` or ``original``, so callers may change it freely.
    """
    return _api(api).from_canonical(doc, attachments, original=original)
