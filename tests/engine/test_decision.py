"""Decision validation: schema, action rule, providers; fail-closed decision."""

from __future__ import annotations

from typing import Any

import pytest

from engine.decision import POLICY_ERROR, DecisionError, policy_error, validate_decision

PROVIDERS = {"echo", "openai"}
SPAN = {"path": "/messages/0/content/0/text", "start": 0, "end": 1, "replacement": "x"}
ROUTE = {"targets": [{"provider": "openai", "model": "gpt-4o-mini"}]}


@pytest.mark.parametrize(
    "decision",
    [
        {"action": "allow"},
        {"action": "redact", "redactions": [SPAN]},
        {"action": "route", "route": ROUTE, "redactions": [SPAN]},
        {"action": "deny", "reasons": [{"code": "pii.ssn", "message": "m"}], "status": 451},
        {"action": "deny", "route": ROUTE},
        {
            "action": "allow",
            "limits": {"max_tokens": 10, "quotas": [{"scope": "team", "tokens_per_day": 5}]},
        },
    ],
)
def test_valid_decisions_pass(decision: dict[str, Any]) -> None:
    assert validate_decision(decision, providers=PROVIDERS) == decision


@pytest.mark.parametrize(
    ("decision", "why"),
    [
        (None, "undefined"),
        ("allow", "decision.v1.json"),
        ({"action": "permit"}, "decision.v1.json"),
        ({"action": "allow", "redactions": [SPAN]}, "expected 'redact'"),
        ({"action": "redact", "route": ROUTE, "redactions": [SPAN]}, "expected 'route'"),
        ({"action": "route"}, "expected 'allow'"),
        ({"action": "deny", "status": 500}, "decision.v1.json"),
        ({"action": "allow", "extra": 1}, "decision.v1.json"),
        ({"action": "route", "route": {"targets": [{"provider": "ghost"}]}}, "not configured"),
    ],
)
def test_broken_decisions_raise(decision: Any, why: str) -> None:
    with pytest.raises(DecisionError, match=why):
        validate_decision(decision, providers=PROVIDERS)


def test_policy_error_decision_denies_with_503() -> None:
    decision = policy_error("boom")
    assert decision["action"] == "deny"
    assert decision["reasons"][0]["code"] == POLICY_ERROR
    assert decision["status"] == 503
