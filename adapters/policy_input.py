"""Turn a client's request (bytes, wire format or canonical) into the policy input document.

The one place where the gateway, ``/v1/decide``, ``regate eval`` and decision
test cases build Contract 1 documents, so they all decide on the same input,
and the one place where hostile input is refused: :func:`parse_body` reads the
body's bytes (media type, UTF-8, strict JSON), :func:`build_policy_input`
checks values the policy engines cannot take and the configured
``server.request_limits``. Every refusal is an :class:`InputError` (4xx).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, NoReturn

import jsonschema_rs

from adapters import wire
from engine.config import RequestLimits
from engine.document import VERSION, complete, measure, new_request_id, utc_now
from engine.errors import InputError
from engine.resources import schema_path

CANONICAL = "canonical"
LIMITS_KEY = "server.request_limits"
# Regorus reads integers as 64-bit and refuses (or saturates) anything beyond,
# so such a number would turn a client's mistake into a policy error.
MAX_NUMBER = 2**63
# The wire readers' own ceiling (adapters.wire.base.MAX_NESTING), for callers without limits.
DEFAULT_MAX_DEPTH = 100
_MAX_QUOTED = 120


class LimitExceeded(InputError):
    """A request over one of the configured size limits: 413, ``request_too_large``.

    ``limit`` names the configuration key, e.g. ``server.request_limits.max_tools``.
    """

    code = "request_too_large"

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message, status=413)
        self.limit = limit


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


# --- bytes -> JSON -----------------------------------------------------------------


def parse_body(raw: bytes, *, content_type: str | None = None) -> dict[str, Any]:
    """The JSON object in a request body, read strictly; ``InputError`` otherwise.

    Refused: a media type other than JSON (415; a missing ``Content-Type`` is
    read as JSON), an empty body, bytes that are not UTF-8, invalid JSON,
    ``NaN``/``Infinity``, duplicate keys (a reader downstream may take the other
    value than the policy saw), nesting beyond the parser's stack, and any JSON
    value other than an object.

    >>> parse_body(b'{"model": "m"}', content_type="application/json; charset=utf-8")
    {'model': 'm'}
    """
    _check_media_type(content_type)
    if not raw or raw.isspace():
        raise InputError("the request body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"the request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except RecursionError:
        raise InputError("the request body is nested too deeply") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise InputError(f"the request body is not valid JSON: {exc.msg} ({where})") from None
    except ValueError:  # an integer literal beyond Python's digit limit
        raise InputError("the request body holds a number too large to read") from None
    if not isinstance(value, dict):
        raise InputError("the request body must be a JSON object")
    return value


def _check_media_type(content_type: str | None) -> None:
    if not content_type or not content_type.strip():
        return
    media, *params = (part.strip().lower() for part in content_type.split(";"))
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        shown = _quote(media)
        raise InputError(
            f"content type {shown} is not supported; send application/json", status=415
        )
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            raise InputError("the request body must be UTF-8 (charset=utf-8)", status=415)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise InputError(f"the request body repeats the key {_quote(key)} in one object")
        seen.add(key)
    return obj


def _no_constant(name: str) -> NoReturn:
    raise InputError(f"the request body holds {name}, which is not JSON")


def _quote(text: str) -> str:
    return repr(text if len(text) <= _MAX_QUOTED else text[:_MAX_QUOTED] + "...")


# --- JSON -> canonical document ------------------------------------------------------


def build_policy_input(
    body: Mapping[str, Any],
    *,
    api: str | None = None,
    principal: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    body_bytes: int | None = None,
    request_id: str | None = None,
    limits: RequestLimits | None = None,
) -> PolicyInput:
    """Canonical document for ``body``; raises ``InputError`` on bad input.

    A canonical document given as input must have Contract 1's shape for its
    content (``api`` .. ``params``); it keeps that content but never its own
    ``findings`` (detectors recompute them), and takes ``principal``/``context``
    from the caller when given. ``limits`` (the gateway's
    ``server.request_limits``) bound sizes; without them only the engines' own
    bounds apply (nesting depth 100, numbers below 2^63), so a bundle's test
    cases may probe its own size schemas.
    """
    if not isinstance(body, Mapping):
        raise InputError("the request body must be a JSON object")
    check_values(body, max_depth=limits.max_json_depth if limits else DEFAULT_MAX_DEPTH)
    api = api or detect_api(body)
    if api == CANONICAL:
        result = _canonical_input(body, principal, context, body_bytes, request_id)
    elif api in wire.APIS:
        canonicalised = wire.to_canonical(api, body)
        doc = complete(
            canonicalised.partial,
            principal=principal,
            context=context,
            body_bytes=body_bytes,
            request_id=request_id,
        )
        result = PolicyInput(doc, canonicalised.attachments, api)
    else:
        raise InputError(
            f"unknown api {api!r}; expected one of {', '.join(sorted(wire.APIS))} or canonical"
        )
    if limits is not None:
        check_limits(result.document, limits)
    return result


def _canonical_input(
    body: Mapping[str, Any],
    principal: Mapping[str, Any] | None,
    context: Mapping[str, Any] | None,
    body_bytes: int | None,
    request_id: str | None,
) -> PolicyInput:
    error = next(iter(_canonical_validator().iter_errors(dict(body))), None)
    if error is not None:
        pointer = "/" + "/".join(str(p) for p in error.instance_path)
        message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
        raise InputError(
            f"the canonical document is not valid at {pointer}: {message}", param=pointer
        )
    doc = copy.deepcopy(dict(body))
    doc["version"] = VERSION
    if request_id is not None or not isinstance(doc.get("id"), str):
        doc["id"] = request_id or new_request_id()
    if not isinstance(doc.get("time"), str):
        doc["time"] = utc_now()
    if principal is not None:
        doc["principal"] = copy.deepcopy(dict(principal))
    if context is not None:
        doc["context"] = copy.deepcopy(dict(context))
    doc.setdefault("context", {"providers": {}, "usage": {}})
    doc.setdefault("tools", [])
    doc.setdefault("params", {})
    doc.setdefault("metadata", {})
    doc["findings"] = []
    doc["size"] = measure(doc, body_bytes)
    return PolicyInput(doc, {}, str(doc["api"]))


@cache
def _canonical_validator() -> jsonschema_rs.Draft202012Validator:
    """Contract 1's schema for the content fields the engine walks.

    Size bounds (``metadata`` entries, ...) are left to the bundle's request
    schemas and to ``server.request_limits``, so that a policy sees and decides
    on an oversized canonical document rather than the reader refusing it.
    """
    full = json.loads(schema_path("request.v1.json").read_text("utf-8"))
    content = ("api", "operation", "model", "messages", "tools", "params")
    schema = {
        "$defs": full["$defs"],
        "type": "object",
        "required": ["api", "operation", "model", "messages"],
        "properties": {
            **{key: full["properties"][key] for key in content},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "allOf": full["allOf"],
    }
    return jsonschema_rs.Draft202012Validator(schema)


# --- values and limits ------------------------------------------------------------------


def check_values(body: Mapping[str, Any] | list[Any], *, max_depth: int) -> None:
    """Refuse what no policy engine can take: nesting deeper than ``max_depth``
    (the top-level object is depth 1), numbers that are not finite or not below
    2^63 in magnitude, and strings holding lone surrogates (not Unicode text).

    Walks every value once, on the hot path: scalars are checked where they are
    met, and the slow ``Mapping`` check comes only after the concrete types.
    """
    stack: list[tuple[Iterable[Any], int]] = [(_children(body), 1)]
    while stack:
        children, depth = stack.pop()
        if depth > max_depth:
            limit = f"{LIMITS_KEY}.max_json_depth"
            raise InputError(f"the request is nested more than {max_depth} levels deep ({limit})")
        for child in children:
            if isinstance(child, str):
                if not child.isascii():
                    _check_text(child)
            elif isinstance(child, dict | list | tuple | Mapping):
                stack.append((_children(child), depth + 1))
            elif isinstance(child, int | float) and not _representable(child):
                raise InputError(
                    "the request holds a number that is not finite or not below 2^63 in magnitude"
                )


def _children(container: Mapping[str, Any] | list[Any] | tuple[Any, ...]) -> Iterable[Any]:
    """The values in ``container``, once its keys (texts too) are checked."""
    if isinstance(container, list | tuple):
        return container
    for key in container:
        if isinstance(key, str) and not key.isascii():
            _check_text(key)
    return container.values()


def _representable(number: float) -> bool:
    # Integers are compared exactly: math.isfinite overflows on ints beyond a float's range.
    finite = isinstance(number, int) or math.isfinite(number)
    return finite and -MAX_NUMBER < number < MAX_NUMBER


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(
            "the request holds a string with a lone surrogate, which is not Unicode text"
        ) from None


def check_limits(doc: Mapping[str, Any], limits: RequestLimits) -> None:
    """Raise :class:`LimitExceeded` naming the first of ``limits`` that ``doc`` exceeds."""
    messages = doc.get("messages", [])
    _at_most(len(messages), limits.max_messages, "max_messages", "the request has", "messages")
    for i, message in enumerate(messages):
        parts = len(message.get("content", []))
        _at_most(
            parts,
            limits.max_parts_per_message,
            "max_parts_per_message",
            f"messages[{i}] has",
            "content parts",
        )
    _at_most(
        len(doc.get("tools", [])), limits.max_tools, "max_tools", "the request defines", "tools"
    )
    metadata = doc.get("metadata", {})
    entries = len(metadata)
    _at_most(
        entries,
        limits.max_metadata_entries,
        "max_metadata_entries",
        "the request has",
        "metadata entries",
    )
    for key, value in metadata.items():
        subject = f"metadata value {_quote(key)} has"
        _at_most(
            len(value),
            limits.max_metadata_value_chars,
            "max_metadata_value_chars",
            subject,
            "characters",
        )
    text_chars = doc["size"]["text_chars"]
    _at_most(
        text_chars,
        limits.max_text_chars,
        "max_text_chars",
        "the request holds",
        "characters of text",
    )


def _at_most(n: int, limit: int, key: str, subject: str, unit: str) -> None:
    # ``subject`` may quote the client's text: it is joined, never used as a format string.
    if n > limit:
        name = f"{LIMITS_KEY}.{key}"
        message = f"{subject} {n} {unit}, more than this gateway's limit of {limit} ({name})"
        raise LimitExceeded(message, limit=name)
