"""Shared pieces of the request-side wire translators (client API <-> Contract 1).

Strict readers turn every malformed body into :class:`engine.errors.InputError`;
image helpers keep base64 payloads out of the policy input; :func:`carry_over`
brings a same-API original's unmodelled fields back into a re-emitted body.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NoReturn, ParamSpec, TypeVar
from urllib.parse import urlsplit

from engine.errors import InputError

EMPTY: Mapping[str, str] = MappingProxyType({})

METADATA_MAX_KEYS = 16
METADATA_MAX_KEY_CHARS = 64
METADATA_MAX_VALUE_CHARS = 512
# A ceiling for every caller; the gateway bounds depth lower with
# server.request_limits.max_json_depth (see adapters.policy_input).
MAX_NESTING = 100

# Raster formats the providers accept; anything else (SVG, PDF, audio, ...)
# carries content the policy cannot inspect.
IMAGE_MEDIA_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/heic", "image/heif"}
)
UNKNOWN_MEDIA_TYPE = "application/octet-stream"
_EXTENSION_MEDIA_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "heic": "image/heic",
    "heif": "image/heif",
}
_DATA_URL = re.compile(
    r"data:(?P<type>[\w.+-]+/[\w.+-]+)(?:;[\w.+-]+=[\w.+-]+)*;base64,(?P<data>.*)", re.S
)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Canonicalised:
    """A wire request read into Contract 1.

    ``partial`` holds the ``api`` .. ``metadata`` fields (api, operation, model,
    messages, tools, params, metadata) for :func:`engine.document.complete`;
    ``attachments`` maps the JSON pointer of each base64 image part (e.g.
    ``"/messages/1/content/2"``) to its payload, which never enters the policy input.
    """

    partial: dict[str, Any]
    attachments: Mapping[str, str] = field(default_factory=lambda: EMPTY)


def fail(message: str, param: str | None) -> NoReturn:
    raise InputError(message, param=param or None)


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Report absurdly nested input as InputError rather than RecursionError."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except RecursionError:
            fail("the request is nested too deeply", None)

    return wrapper


def mapping(value: Any, param: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        fail(f"{param or 'the request body'} must be a JSON object", param)
    return value


def array(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        fail(f"{param} must be an array", param)
    return list(value)


def optional_array(value: Any, param: str) -> list[Any]:
    """An array, or ``[]`` for an absent (``null``) one."""
    return [] if value is None else array(value, param)


def json_body(body: Any) -> Mapping[str, Any]:
    """A request body that is a JSON object of plain JSON values (no NaN, bounded depth).

    Checked once up front, so fields that travel on unread are sound too.
    """
    checked = mapping(body, "")
    _check_json(checked, [])
    return checked


def _check_json(value: Any, path: list[str | int]) -> None:
    if isinstance(value, str | bool | int) or value is None:
        return
    if len(path) > MAX_NESTING:
        fail("the request is nested too deeply", _param(path))
    if isinstance(value, float):
        if not math.isfinite(value):
            fail(f"{_param(path)} must not be NaN or infinity", _param(path))
        return
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            fail(f"{_param(path) or 'the request'} has a non-string key", _param(path))
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        fail(f"{_param(path) or 'the request'} must be JSON", _param(path))
    for key, item in items:
        path.append(key)
        _check_json(item, path)
        path.pop()


def _param(path: list[str | int]) -> str:
    """``["tools", 0, "function"]`` -> ``"tools[0].function"``, as OpenAI names params."""
    text = "".join(f"[{t}]" if isinstance(t, int) else f".{t}" for t in path)
    return text.removeprefix(".")


def string(value: Any, param: str, *, non_empty: bool = False) -> str:
    if not isinstance(value, str):
        fail(f"{param} must be a string", param)
    if non_empty and not value:
        fail(f"{param} must not be empty", param)
    return value


def integer(value: Any, param: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        fail(f"{param} must be an integer >= {minimum}", param)
    return value


def number(value: Any, param: str, low: float, high: float) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail(f"{param} must be a number", param)
    if not (math.isfinite(value) and low <= value <= high):
        fail(f"{param} must be between {low:g} and {high:g}", param)
    return value


def boolean(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        fail(f"{param} must be a boolean", param)
    return value


def strings(value: Any, param: str) -> list[str]:
    return [string(item, f"{param}[{i}]") for i, item in enumerate(array(value, param))]


def check_keys(obj: Mapping[str, Any], allowed: frozenset[str], param: str, what: str) -> None:
    """Refuse fields regate does not know: the policy could not have inspected them."""
    for key in obj:
        if key not in allowed:
            where = f"{param}.{key}" if param else str(key)
            fail(f"{what} field {key!r} is not supported by regate", where)


def require_none(obj: Mapping[str, Any], keys: tuple[str, ...], param: str) -> None:
    """Accept SDK-echoed response fields (``refusal: null``) only when they are empty."""
    for key in keys:
        if obj.get(key) not in (None, []):
            fail(f"{key!r} content cannot be inspected by policy", f"{param}.{key}")


def copy_json(value: Any, param: str) -> Any:
    """Deep copy of a plain JSON value; anything else is refused as in :func:`json_body`."""
    _check_json(value, [param] if param else [])
    return _copy(value)


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(item) for item in value]
    return value


def json_object(value: Any, param: str) -> dict[str, Any]:
    copied = copy_json(mapping(value, param), param)
    assert isinstance(copied, dict)
    return copied


def metadata(value: Any, param: str) -> dict[str, str]:
    """Client tags, bounded as Contract 1 requires (16 keys, 64/512 characters)."""
    if value is None:
        return {}
    tags = mapping(value, param)
    if len(tags) > METADATA_MAX_KEYS:
        fail(f"{param} holds more than {METADATA_MAX_KEYS} keys", param)
    out: dict[str, str] = {}
    for key, item in tags.items():
        if not isinstance(key, str) or len(key) > METADATA_MAX_KEY_CHARS:
            fail(
                f"{param} keys must be strings of at most {METADATA_MAX_KEY_CHARS} characters",
                param,
            )
        text = string(item, f"{param}.{key}")
        if len(text) > METADATA_MAX_VALUE_CHARS:
            fail(
                f"{param}.{key} is longer than {METADATA_MAX_VALUE_CHARS} characters",
                f"{param}.{key}",
            )
        out[key] = text
    return out


def tool_arguments(raw: str) -> dict[str, Any] | str:
    """Parsed tool-call arguments; text that is not a JSON object stays a string."""
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        return raw
    if not isinstance(parsed, dict):
        return raw
    try:
        _check_json(parsed, [])  # json.loads accepts NaN and Infinity; JSON does not
    except InputError:
        return raw
    return parsed


def dump_arguments(arguments: Any, param: str) -> str:
    if isinstance(arguments, str):
        return arguments
    return json.dumps(json_object(arguments, param), ensure_ascii=False)


# --- images ---------------------------------------------------------------


def base64_image(data: Any, media_type: Any, param: str) -> tuple[dict[str, Any], str]:
    """Canonical image part for an inline image, and its payload for the attachments."""
    media = string(media_type, f"{param}.media_type").lower()
    if media not in IMAGE_MEDIA_TYPES:
        fail(f"media type {media!r} cannot be inspected by policy", param)
    payload = string(data, f"{param}.data")
    try:
        size = len(base64.b64decode(payload, validate=True))
    except (binascii.Error, ValueError):
        fail("image data is not valid base64", param)
    return {"type": "image", "media_type": media, "source": "base64", "bytes": size}, payload


def url_image(url: Any, param: str, media_type: Any = None) -> dict[str, Any]:
    """Canonical image part for an http(s) image; ``bytes`` is 0 (unknown to regate)."""
    text = string(url, param)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        fail("image URLs must be http(s) URLs or base64 data", param)
    if media_type is None:
        extension = parts.path.rsplit(".", 1)[-1].lower() if "." in parts.path else ""
        media = _EXTENSION_MEDIA_TYPES.get(extension, UNKNOWN_MEDIA_TYPE)
    else:
        media = string(media_type, param).lower()
        if media not in IMAGE_MEDIA_TYPES and media != UNKNOWN_MEDIA_TYPE:
            fail(f"media type {media!r} cannot be inspected by policy", param)
    return {"type": "image", "media_type": media, "source": "url", "bytes": 0, "url": text}


def data_url_image(url: Any, param: str) -> tuple[dict[str, Any], str | None]:
    """An OpenAI ``image_url``: ``data:`` URLs become base64 parts, others url parts."""
    text = string(url, param)
    if not text.startswith("data:"):
        return url_image(text, param), None
    match = _DATA_URL.fullmatch(text)
    if match is None:
        fail("image data URLs must be base64 encoded", param)
    return base64_image(match["data"], match["type"], param)


def image_payload(pointer: str, attachments: Mapping[str, str]) -> str:
    """The base64 payload of an image part, held apart from the document."""
    payload = attachments.get(pointer)
    if payload is None:
        fail(f"no image payload for {pointer}", pointer)
    return payload


# --- building and reading canonical documents ----------------------------------

Part = tuple[dict[str, Any], str | None]
"""A canonical content part and, for base64 images, its payload."""


class MessageBuilder:
    """Collects canonical messages and files image payloads under their JSON pointers."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.attachments: dict[str, str] = {}

    def add(self, role: str, parts: list[Part], **fields: Any) -> None:
        index = len(self.messages)
        for j, (_, payload) in enumerate(parts):
            if payload is not None:
                self.attachments[f"/messages/{index}/content/{j}"] = payload
        self.messages.append({"role": role, "content": [part for part, _ in parts], **fields})

    def result(self, **fields: Any) -> Canonicalised:
        """The partial document, keys in Contract 1 order, with the collected attachments."""
        fields["messages"] = self.messages
        order = ("api", "operation", "model", "messages", "tools", "params", "metadata")
        partial = {key: fields[key] for key in order}
        return Canonicalised(partial, MappingProxyType(self.attachments))


def canonical_messages(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        mapping(m, f"messages[{i}]") for i, m in enumerate(array(doc.get("messages"), "messages"))
    ]


def canonical_parts(message: Mapping[str, Any], index: int) -> list[Mapping[str, Any]]:
    param = f"messages[{index}].content"
    return [
        mapping(p, f"{param}[{j}]") for j, p in enumerate(array(message.get("content", []), param))
    ]


def canonical_tools(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [mapping(t, f"tools[{i}]") for i, t in enumerate(array(doc.get("tools", []), "tools"))]


def expect_operation(doc: Mapping[str, Any], operation: str, api: str) -> None:
    if doc.get("operation", operation) != operation:
        fail(f"a {doc.get('operation')} request cannot be sent to {api}", "operation")


def only_text(parts: list[Mapping[str, Any]], param: str, api: str) -> list[str]:
    """Texts of parts where the target API takes text only (system prompts, tool results)."""
    texts = []
    for part in parts:
        if part.get("type") != "text":
            fail(f"{api} cannot carry {part.get('type')} content in {param}", param)
        texts.append(string(part.get("text"), param))
    return texts


# --- same-API re-emission -------------------------------------------------------


def carry_over(emitted: Any, original: Any, keep: frozenset[str]) -> Any:
    """Bring the original's unmodelled fields (``keep``) back where both have one shape.

    Walks both bodies in step: lists only when they have the same length, objects
    only when their ``type`` and ``role`` agree; so a field lands only on the
    element it came from. Also restores the original's spelling of equal values
    (string vs one-part list, compact vs spaced tool-call JSON).
    """
    if isinstance(emitted, dict) and isinstance(original, Mapping):
        if any(emitted.get(tag) != original.get(tag) for tag in ("type", "role")):
            return emitted
        for key, value in original.items():
            if key in emitted:
                emitted[key] = carry_over(_restyle(key, emitted[key], value), value, keep)
            elif key in keep:
                emitted[key] = copy_json(value, key)
        for key in [k for k, v in emitted.items() if v is None and k not in original]:
            del emitted[key]
        return emitted
    if isinstance(emitted, list) and isinstance(original, list) and len(emitted) == len(original):
        return [carry_over(e, o, keep) for e, o in zip(emitted, original, strict=True)]
    return emitted


def _restyle(key: str, emitted: Any, original: Any) -> Any:
    if isinstance(original, str) and isinstance(emitted, list) and len(emitted) == 1:
        only = emitted[0]
        if isinstance(only, str):
            return only
        if isinstance(only, dict) and only.keys() == {"type", "text"} and only["type"] == "text":
            return only["text"]
    if isinstance(original, list) and isinstance(emitted, str):
        if not original and not emitted:
            return []
        if original and isinstance(original[0], Mapping):
            return [{"type": "text", "text": emitted}]
        return [emitted]
    if key == "arguments" and isinstance(original, str) and isinstance(emitted, str):
        parsed = tool_arguments(original)
        if isinstance(parsed, dict) and parsed == tool_arguments(emitted):
            return original
    return emitted
