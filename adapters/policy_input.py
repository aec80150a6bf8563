"""Turn a client's request (wire format or canonical) into the policy input document.

The one place where the gateway, ``/v1/decide``, ``regate eval`` and decision
test cases build Contract 1 documents, so they all decide on the same input.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters import wire
from engine.document import VERSION, complete, measure
from engine.errors import InputError

CANONICAL = "canonical"


@dataclass(frozen=True)
class PolicyInput:
    """A complete canonical document plus what re-emission needs."""

    document: dict[str, Any]
    attachments: Mapping[str, str]
    api: str


def detect_api(body: Mapping[str, Any]) -> str:
    """``canonical`` for a canonical document, else the guessed wire API."""
    if body.get("version") == VERSION:
        return CANONICAL
    return wire.guess_api(body)


def build_policy_input(
    body: Mapping[str, Any],
    *,
    api: str | None = None,
    principal: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    body_bytes: int | None = None,
    request_id: str | None = None,
) -> PolicyInput:
    """Canonical document for ``body``; raises ``InputError`` on bad input.

    A canonical document given as input keeps its content but never its own
    ``findings`` (detectors recompute them) and takes ``principal``/``context``
    from the caller when given.
    """
    if not isinstance(body, Mapping):
        raise InputError("the request body must be a JSON object")
    api = api or detect_api(body)
    if api == CANONICAL:
        doc = copy.deepcopy(dict(body))
        if principal is not None:
            doc["principal"] = copy.deepcopy(dict(principal))
        if context is not None:
            doc["context"] = copy.deepcopy(dict(context))
        doc.setdefault("context", {"providers": {}, "usage": {}})
        doc["findings"] = []
        doc["size"] = measure(doc, body_bytes)
        return PolicyInput(doc, {}, str(doc.get("api", "openai.chat")))
    if api not in wire.APIS:
        raise InputError(f"unknown api {api!r}; expected one of {', '.join(sorted(wire.APIS))} or canonical")
    canonicalised = wire.to_canonical(api, body)
    doc = complete(
        canonicalised.partial,
        principal=principal,
        context=context,
        body_bytes=body_bytes,
        request_id=request_id,
    )
    return PolicyInput(doc, canonicalised.attachments, api)
