"""schemas/decision.v1.json (Contract 2) against valid and invalid example decisions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import pytest

REPO = Path(__file__).resolve().parents[2]
SCHEMA: dict[str, Any] = json.loads((REPO / "schemas" / "decision.v1.json").read_text("utf-8"))
EXAMPLES = Path(__file__).parent / "examples" / "decision"
VALID = sorted((EXAMPLES / "valid").glob("*.json"))
INVALID = sorted((EXAMPLES / "invalid").glob("*.json"))


def _pointer(path: Any) -> str:
    return "".join(f"/{token}" for token in path)


def test_schema_is_draft_2020_12_with_its_id() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"] == "https://regate.dev/schemas/decision.v1.json"
    assert SCHEMA["additionalProperties"] is False
    assert SCHEMA["required"] == ["action"]


def test_there_are_examples_of_both_kinds() -> None:
    assert len(VALID) >= 5 and len(INVALID) >= 15


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_example_is_accepted_by_both_validators(path: Path) -> None:
    decision = json.loads(path.read_text("utf-8"))
    assert [
        e.message for e in jsonschema_rs.Draft202012Validator(SCHEMA).iter_errors(decision)
    ] == []
    assert [e.message for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(decision)] == []


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_example_fails_where_it_says(path: Path) -> None:
    case = json.loads(path.read_text("utf-8"))
    errors = list(jsonschema_rs.Draft202012Validator(SCHEMA).iter_errors(case["document"]))
    assert case["error_at"] in {_pointer(e.instance_path) for e in errors}, case["note"]
    assert not jsonschema.Draft202012Validator(SCHEMA).is_valid(case["document"])


@pytest.mark.parametrize(
    "code",
    [
        "pii.ssn",
        "policy.error",
        "limit.requests_per_minute",
        "schema.chat_request",
        "route.none",
        "tool",
    ],
)
def test_reason_codes_used_across_regate_match_the_pattern(code: str) -> None:
    decision = {"action": "deny", "reasons": [{"code": code, "message": "m"}]}
    assert jsonschema_rs.Draft202012Validator(SCHEMA).is_valid(decision)


@pytest.mark.parametrize("code", ["PII.ssn", "pii..ssn", ".pii", "pii-ssn", "pii ssn", "1pii"])
def test_reason_codes_that_are_not_dotted_snake_case_are_refused(code: str) -> None:
    decision = {"action": "deny", "reasons": [{"code": code, "message": "m"}]}
    assert not jsonschema_rs.Draft202012Validator(SCHEMA).is_valid(decision)


def test_each_quota_limit_alone_is_enough() -> None:
    validator = jsonschema_rs.Draft202012Validator(SCHEMA)
    for field in ("requests_per_minute", "tokens_per_minute", "tokens_per_day"):
        decision = {"action": "allow", "limits": {"quotas": [{"scope": "model", field: 1}]}}
        assert validator.is_valid(decision), field
