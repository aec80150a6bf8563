"""YAML with line numbers: load a document, remember where each key sits, and turn
JSON-Schema errors into messages that name the line and never quote a value.

Values are never quoted because a value in the wrong place may be a secret
(``api_key: sk-...`` where a reference was expected).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
import yaml

from engine.errors import ConfigError

Pointer = tuple[str | int, ...]

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Only what JSON can hold: timestamps, binary, sets and the like would reach the
# schema validator as Python types it cannot check.
_JSON_TAGS = {
    yaml.ScalarNode: {
        _STR_TAG,
        *(f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "null")),
    },
    yaml.MappingNode: {"tag:yaml.org,2002:map"},
    yaml.SequenceNode: {"tag:yaml.org,2002:seq"},
}
_MAX_DEPTH = 64
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# Error kinds whose generic message says nothing useful; the schema's description does.
_DESCRIBED_KINDS = {
    "AnyOf",
    "OneOfNotValid",
    "OneOfMultipleValid",
    "MinProperties",
    "MaxProperties",
}


@dataclass(frozen=True)
class Problem:
    line: int | None
    message: str


class Located:
    """Line numbers (1-based) of every key and list item of one YAML document."""

    def __init__(self, source: str, lines: dict[Pointer, int]) -> None:
        self.source = source
        self._lines = lines

    def line(self, pointer: Pointer) -> int | None:
        """Line of ``pointer``, or of its nearest ancestor that has one."""
        for end in range(len(pointer), -1, -1):
            if pointer[:end] in self._lines:
                return self._lines[pointer[:end]]
        return None

    def error(self, pointer: Pointer, message: str) -> ConfigError:
        return ConfigError(
            f"{display(pointer)}: {message}", file=self.source, line=self.line(pointer)
        )


def display(pointer: Pointer) -> str:
    """``("providers", "a.b", "timeout", 0)`` -> ``providers["a.b"].timeout[0]``."""
    out = ""
    for token in pointer:
        if isinstance(token, int):
            out += f"[{token}]"
        elif _PLAIN_KEY.fullmatch(token):
            out += f".{token}" if out else token
        else:
            out += f"[{json.dumps(token)}]"
    return out or "(top level)"


def load_yaml(text: str, source: str) -> tuple[Any, Located]:
    """Parse one YAML document; keys must be unique strings. Returns data and lines."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Pointer, int] = {}
        if node is None:
            return None, Located(source, lines)
        lines[()] = node.start_mark.line + 1
        _index(node, (), lines, source, 0)
        return loader.construct_document(node), Located(source, lines)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(
            f"invalid YAML: {exc.problem or exc.context}", file=source, line=line
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {type(exc).__name__}", file=source) from None
    finally:
        loader.dispose()


def _index(
    node: yaml.Node, path: Pointer, lines: dict[Pointer, int], source: str, depth: int
) -> None:
    if depth > _MAX_DEPTH:
        raise ConfigError(f"{display(path)}: nested too deeply", file=source, line=lines.get(path))
    if node.tag not in _JSON_TAGS.get(type(node), ()):
        kind = node.tag.rsplit(":", 1)[-1]
        raise ConfigError(
            f"{display(path)}: the value is read as {kind}, which JSON cannot hold; quote it",
            file=source,
            line=node.start_mark.line + 1,
        )
    if isinstance(node, yaml.MappingNode):
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:  # `<<: *anchor`; the merged keys keep the anchor's lines
                _index(value_node, path, lines, source, depth + 1)
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR_TAG:
                kind = key_node.tag.rsplit(":", 1)[-1]
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "here"
                raise ConfigError(
                    f"{display(path)}: key {shown} is read as {kind}, not text; quote it",
                    file=source,
                    line=line,
                )
            key = key_node.value
            if key in first_seen:
                raise ConfigError(
                    f"{display((*path, key))}: duplicate key (first at line {first_seen[key]})",
                    file=source,
                    line=line,
                )
            first_seen[key] = line
            lines[(*path, key)] = line
            _index(value_node, (*path, key), lines, source, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _index(item, (*path, i), lines, source, depth + 1)


def schema_problem(error: jsonschema_rs.ValidationError, schema: Any, located: Located) -> Problem:
    """A schema error as ``Problem(line, "<key path>: <what is wrong>")``."""
    pointer: Pointer = tuple(error.instance_path)
    kind = type(error.kind).__name__
    facts: dict[str, Any] = error.kind.as_dict()
    schema_path = list(error.schema_path)
    node = _schema_node(schema, schema_path[:-1])
    if kind == "AdditionalProperties":
        key = facts["unexpected"][0]
        allowed = ", ".join(node.get("properties", {}))
        pointer = (*pointer, key)
        message = f"unknown key; expected one of: {allowed}" if allowed else "unknown key"
    elif kind == "PropertyNames":
        pointer = (*pointer, facts["error"].instance)
        names = _schema_node(schema, schema_path[: schema_path.index("propertyNames") + 1])
        message = f"name not allowed; names must match {names.get('pattern', '')}"
    elif kind == "Required":
        message = f"missing required key {facts['property']!r}"
    elif kind == "Type":
        message = f"must be {' or '.join(facts['types'])}, not {_json_type(error.instance)}"
    elif kind == "Enum":
        message = "must be one of: " + ", ".join(str(option) for option in facts["options"])
    elif kind == "Pattern":
        message = f"does not have the expected form {facts['pattern']}"
    elif kind in ("Minimum", "Maximum", "ExclusiveMinimum", "ExclusiveMaximum"):
        relation = {
            "Minimum": ">=",
            "Maximum": "<=",
            "ExclusiveMinimum": ">",
            "ExclusiveMaximum": "<",
        }
        message = f"must be {relation[kind]} {facts['limit']}"
    elif kind == "MinLength":
        limit = facts["limit"]
        message = "must not be empty" if limit == 1 else f"needs at least {limit} characters"
    elif kind == "MinItems":
        message = f"needs at least {facts['limit']} item(s)"
    elif kind in _DESCRIBED_KINDS and "description" in node:
        message = node["description"]
    else:
        message = f"is not valid ({kind})"
    return Problem(located.line(pointer), f"{display(pointer)}: {message}")


def _schema_node(schema: Any, path: list[str | int]) -> dict[str, Any]:
    node = schema
    for token in path:
        if isinstance(node, dict) and "$ref" in node and token not in node:
            node = _schema_node(schema, node["$ref"].removeprefix("#/").split("/"))
        node = node[token] if isinstance(node, dict) else node[int(token)]
    return node if isinstance(node, dict) else {}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    names = {int: "integer", float: "number", str: "string", list: "array", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
