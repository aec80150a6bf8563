"""schemas/config.v1.json (Contract 6): examples, and agreement with engine.config's defaults."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
import yaml

from engine.config import default_config
from engine.secrets import PRINCIPAL_ID_PATTERN

REPO = Path(__file__).resolve().parents[2]
SCHEMA: dict[str, Any] = json.loads((REPO / "schemas" / "config.v1.json").read_text("utf-8"))
EXAMPLES = Path(__file__).parent / "examples" / "config"
VALID = sorted((EXAMPLES / "valid").glob("*.yaml"))
INVALID = sorted((EXAMPLES / "invalid").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: line (\d+) at (.+)$", re.M)


def _pointer(path: Any) -> str:
    return "".join(f"/{token}" for token in path)


def test_schema_is_draft_2020_12_with_its_id() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$id"] == "https://regate.dev/schemas/config.v1.json"
    assert set(SCHEMA["properties"]) == {
        "server",
        "policy",
        "principals",
        "providers",
        "routes",
        "audit",
        "limits",
        "decision_logs",
        "routing",
    }


def _objects(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every object schema (one with ``properties``) in the config schema."""
    found = []
    if isinstance(node, dict):
        if "properties" in node:
            found.append((path, node))
        for key, child in node.items():
            found.extend(_objects(child, f"{path}/{key}"))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            found.extend(_objects(child, f"{path}/{i}"))
    return found


def test_unknown_keys_are_errors_in_every_object() -> None:
    objects = _objects(SCHEMA)
    assert len(objects) >= 12
    for path, node in objects:
        assert node.get("additionalProperties") is False, path or "(root)"


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_example_is_accepted_by_both_validators(path: Path) -> None:
    data = yaml.safe_load(path.read_text("utf-8")) or {}
    assert [e.message for e in jsonschema_rs.Draft202012Validator(SCHEMA).iter_errors(data)] == []
    assert [e.message for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(data)] == []


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_example_fails_at_the_key_it_names(path: Path) -> None:
    text = path.read_text("utf-8")
    match = EXPECT.search(text)
    assert match is not None, "invalid examples start with '# expect: line N at /pointer'"
    data = yaml.safe_load(text)
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data))
    assert errors, "the example should be invalid"
    # An unknown or badly named key is reported on its parent object.
    at = {_pointer(e.absolute_path) for e in errors}
    expected = match.group(2)
    assert expected in at or expected.rsplit("/", 1)[0] in at, (expected, at)


def _schema_defaults(node: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    found: dict[tuple[str, ...], Any] = {}
    for key, child in node.get("properties", {}).items():
        if "default" in child:
            found[(*path, key)] = child["default"]
        found.update(_schema_defaults(child, (*path, key)))
    if isinstance(node.get("additionalProperties"), dict):
        found.update(_schema_defaults(node["additionalProperties"], (*path, "*")))
    return found


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: v for k, v in dataclasses.asdict(value).items() if v is not None}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def test_schema_defaults_are_the_defaults_engine_config_applies() -> None:
    config = default_config({})
    defaults = _schema_defaults(SCHEMA)
    assert len(defaults) >= 14
    for path, documented in defaults.items():
        node: Any = config
        for step in path:
            node = node["echo"] if step == "*" else getattr(node, step)
        assert _plain(node) == documented, path


def test_principal_id_pattern_is_the_one_new_caller_key_checks() -> None:
    principal = SCHEMA["properties"]["principals"]["items"]["properties"]["id"]
    assert principal["pattern"] == PRINCIPAL_ID_PATTERN
