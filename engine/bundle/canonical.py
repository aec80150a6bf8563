"""Canonical JSON of structured bundle files, byte for byte as OPA hashes them for signatures.

OPA parses ``data.json``, ``data.yaml``/``data.yml`` and ``.manifest`` (JSON
first, YAML if that fails, after dropping a UTF-8 BOM) and hashes the value
re-encoded as Go's ``encoding/json`` would with HTML escaping off: object keys
sorted, no whitespace, JSON numbers kept as written, YAML numbers as Go
formats them. This module reproduces that; what it cannot reproduce exactly
(uncommon YAML tags, float map keys) raises ``ValueError`` instead of guessing.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from decimal import Decimal
from typing import Any

import yaml

_BOM = b"\xef\xbb\xbf"
_MAX_ALIASED = 100_000  # nodes reached again through aliases ("billion laughs" stops here)
_ESCAPE = re.compile('[\x00-\x1f"\\\\\u2028\u2029\ud800-\udfff]')
_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SURROGATE = re.compile("[\ud800-\udfff]")
_GO_INT = re.compile(
    r"([+-]?)(?:0[xX]([0-9a-fA-F]+)|0[oO]([0-7]+)|0[bB]([01]+)|0([0-7]*)|([1-9][0-9]*))"
)
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_YAML_CONSTANTS: dict[str, Any] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
}
_NON_FINITE = frozenset(
    [".nan", ".NaN", ".NAN"]
    + [f"{sign}.{word}" for sign in ("", "+", "-") for word in ("inf", "Inf", "INF")]
)
_TAG = "tag:yaml.org,2002:"
_PLAIN = "regate:plain"  # an untagged plain scalar, resolved below by go-yaml's rules


def _go_replace(error: UnicodeError) -> tuple[str, int]:
    """Go replaces each invalid UTF-8 byte with U+FFFD (Python would merge some)."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return "\ufffd" * (error.end - error.start), error.end


codecs.register_error("regate.go_replace", _go_replace)


class Number(str):
    """A number, held as the exact text Go will write for it."""


def canonical_json(content: bytes) -> bytes:
    """The bytes OPA hashes for a structured bundle file.

    >>> canonical_json(b'{ "b": [1.50, "x"], "a": null }')
    b'{"a":null,"b":[1.50,"x"]}'
    """
    if content.startswith(_BOM):
        content = content[len(_BOM) :]
    text = content.decode("utf-8", "regate.go_replace")
    try:
        value = _parse_json(text)
    except ValueError:
        value = _parse_yaml(text)
    try:
        return _encode(value).encode("utf-8")
    except RecursionError:
        raise ValueError("document nested too deeply") from None


def _parse_json(text: str) -> Any:
    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    def obj(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        return {_fix(key): value for key, value in pairs}

    try:
        return json.loads(
            text,
            parse_float=Number,
            parse_int=Number,
            parse_constant=constant,
            object_pairs_hook=obj,
        )
    except RecursionError:
        raise ValueError("document nested too deeply") from None


def _fix(text: str) -> str:
    """Lone surrogates (from ``\\ud800`` escapes) decode to U+FFFD in Go."""
    return _SURROGATE.sub("\ufffd", text)


def _encode(value: Any) -> str:
    if isinstance(value, dict):
        items = (_string(key) + ":" + _encode(value[key]) for key in sorted(value))
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    if isinstance(value, Number):
        return str.__str__(value)
    if isinstance(value, str):
        return _string(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    raise ValueError(f"cannot encode {type(value).__name__}")


def _string(text: str) -> str:
    return '"' + _ESCAPE.sub(_escape_char, text) + '"'


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return "\ufffd"
    return f"\\u{code:04x}"


def go_float(value: float) -> str:
    """Format a float as Go's ``json.Marshal`` does (ES6-style shortest form).

    >>> [go_float(x) for x in (1.0, 0.5, 1e21, 1e-7, 123456789.0)]
    ['1', '0.5', '1e+21', '1e-7', '123456789']
    """
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a JSON number")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    exact = Decimal(repr(value)).normalize()
    if 1e-6 <= abs(value) < 1e21:
        return format(exact, "f")
    sign, digits, exponent = exact.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    power = exponent + len(text) - 1
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    # Go writes at least two exponent digits, then trims "e-07" to "e-7".
    shown = f"-{-power}" if power < 0 else f"+{power:02d}"
    return ("-" if sign else "") + mantissa + "e" + shown


class _NodeLoader(yaml.SafeLoader):
    """Composes YAML nodes, marking untagged plain scalars so go-yaml's rules can type them."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return _PLAIN
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]


def _parse_yaml(text: str) -> Any:
    try:
        first = next(iter(yaml.compose_all(text, Loader=_NodeLoader)), None)
        return None if first is None else _YamlWalk().value(first, ())
    except yaml.YAMLError as exc:
        raise ValueError(f"neither JSON nor YAML: {exc}") from None
    except RecursionError:
        raise ValueError("document nested too deeply") from None


class _YamlWalk:
    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.aliased = 0

    def value(self, node: yaml.Node, path: tuple[int, ...]) -> Any:
        if id(node) in self.seen:
            self.aliased += 1
            if self.aliased > _MAX_ALIASED:
                raise ValueError("YAML document expands too far through aliases")
        self.seen.add(id(node))
        if id(node) in path:
            raise ValueError("recursive YAML alias")
        inner = (*path, id(node))
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node.tag, node.value)
        if isinstance(node, yaml.SequenceNode) and node.tag == _TAG + "seq":
            return [self.value(item, inner) for item in node.value]
        if isinstance(node, yaml.MappingNode) and node.tag == _TAG + "map":
            return self.mapping(node, inner)
        raise ValueError(f"unsupported YAML tag {node.tag}")

    def mapping(self, node: yaml.MappingNode, path: tuple[int, ...]) -> dict[str, Any]:
        own: dict[str, Any] = {}
        merged: list[dict[str, Any]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _PLAIN and key_node.value == "<<":
                many = isinstance(value_node, yaml.SequenceNode)
                for source in value_node.value if many else [value_node]:
                    value = self.value(source, path)
                    if not isinstance(value, dict):
                        raise ValueError("YAML merge key needs a mapping")
                    merged.append(value)
                continue
            own[_key(self.value(key_node, path))] = self.value(value_node, path)
        # go-yaml: the mapping's own keys win, then earlier merge sources over later ones
        for source in merged:
            for key, value in source.items():
                own.setdefault(key, value)
        return own


def _key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Number) and re.fullmatch(r"-?[0-9]+", value):
        return str.__str__(value)
    if isinstance(value, str) and not isinstance(value, Number):
        return _fix(value)
    raise ValueError(f"unsupported YAML map key {value!r}")


def _scalar(tag: str, text: str) -> Any:
    if tag == _TAG + "str":
        return text
    resolved = _resolve_plain(text)
    if tag == _PLAIN:
        return resolved
    if tag == _TAG + "float" and isinstance(resolved, Number):
        return Number(go_float(float(resolved)))
    if tag == _TAG + "int" and _go_int(text.replace("_", "")) is not None:
        return resolved
    if (tag == _TAG + "bool" and isinstance(resolved, bool)) or (
        tag == _TAG + "null" and resolved is None
    ):
        return resolved
    raise ValueError(f"unsupported YAML scalar {tag} {text!r}")


def _resolve_plain(text: str) -> Any:
    """Type an untagged plain scalar as go-yaml v3 does (timestamps stay strings in OPA)."""
    if text in _YAML_CONSTANTS:
        return _YAML_CONSTANTS[text]
    if text in _NON_FINITE:
        raise ValueError(f"{text} is not a JSON number")
    if text[0] == ".":
        return _float(text) if _DOT_FLOAT.fullmatch(text) else text
    if text[0] not in "+-0123456789":
        return text
    plain = text.replace("_", "")
    number = _go_int(plain)
    if number is not None:
        return Number(str(number))
    if _YAML_FLOAT.fullmatch(plain):
        return _float(plain)
    return text


def _float(text: str) -> Any:
    value = float(text)
    # Go's ParseFloat fails on overflow, and go-yaml then keeps the text.
    return Number(go_float(value)) if math.isfinite(value) else text


def _go_int(text: str) -> int | None:
    """``strconv.ParseInt(text, 0, 64)``, then ``ParseUint``; None if neither parses."""
    match = _GO_INT.fullmatch(text)
    if match is None:
        return None
    sign, hexa, octal, binary, legacy_octal, decimal = match.groups()
    if hexa is not None:
        value = int(hexa, 16)
    elif octal is not None:
        value = int(octal, 8)
    elif binary is not None:
        value = int(binary, 2)
    elif decimal is not None:
        value = int(decimal)
    else:
        value = int(legacy_octal or "0", 8)
    value = -value if sign == "-" else value
    if -(2**63) <= value < 2**63 or (not sign and value < 2**64):
        return value
    return None
