"""schemas/audit-event.v1.json (Contract 4) against example events and sealed events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import pytest

from engine.audit import GENESIS, AuditChain

REPO = Path(__file__).resolve().parents[2]
SCHEMA: dict[str, Any] = json.loads((REPO / "schemas" / "audit-event.v1.json").read_text("utf-8"))
DECISION_SCHEMA: dict[str, Any] = json.loads(
    (REPO / "schemas" / "decision.v1.json").read_text("utf-8")
)
EXAMPLES = Path(__file__).parent / "examples" / "audit-event"
VALID = sorted((EXAMPLES / "valid").glob("*.json"))
INVALID = sorted((EXAMPLES / "invalid").glob("*.json"))
CONTRACT_FIELDS = [
    "id",
    "time",
    "principal",
    "api",
    "model",
    "action",
    "reasons",
    "redactions",
    "route",
    "provider",
    "upstream_model",
    "status",
    "latency_ms",
    "usage",
    "bundle",
    "engine",
    "prev",
    "hash",
]


def _pointer(path: Any) -> str:
    return "".join(f"/{token}" for token in path)


def test_schema_is_draft_2020_12_with_its_id() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$id"] == "https://regate.dev/schemas/audit-event.v1.json"
    assert SCHEMA["additionalProperties"] is False


def test_every_contract_field_is_required_and_prompt_and_error_are_optional() -> None:
    assert SCHEMA["required"] == CONTRACT_FIELDS
    assert set(SCHEMA["properties"]) == set(CONTRACT_FIELDS) | {"prompt", "error"}


def test_reasons_are_the_same_shape_as_in_decisions() -> None:
    assert SCHEMA["$defs"]["reason"] == DECISION_SCHEMA["$defs"]["reason"]


def test_the_genesis_value_is_a_valid_prev() -> None:
    event = json.loads((EXAMPLES / "valid" / "allow.json").read_text("utf-8"))
    assert event["prev"] == GENESIS
    assert jsonschema_rs.Draft202012Validator(SCHEMA).is_valid(event)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_example_is_accepted_by_both_validators(path: Path) -> None:
    event = json.loads(path.read_text("utf-8"))
    assert [e.message for e in jsonschema_rs.Draft202012Validator(SCHEMA).iter_errors(event)] == []
    assert [e.message for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(event)] == []


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_example_fails_where_it_says(path: Path) -> None:
    case = json.loads(path.read_text("utf-8"))
    errors = list(jsonschema_rs.Draft202012Validator(SCHEMA).iter_errors(case["document"]))
    assert case["error_at"] in {_pointer(e.instance_path) for e in errors}, case["note"]
    assert not jsonschema.Draft202012Validator(SCHEMA).is_valid(case["document"])


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_a_sealed_example_still_matches_the_schema(path: Path) -> None:
    event = json.loads(path.read_text("utf-8"))
    del event["prev"], event["hash"]
    chain = AuditChain()
    sealed = [chain.seal(event), chain.seal(event)]
    validator = jsonschema_rs.Draft202012Validator(SCHEMA)
    assert all(validator.is_valid(e) for e in sealed)
    assert sealed[1]["prev"] == sealed[0]["hash"] != sealed[1]["hash"]
