"""Validate a policy's decision (Contract 2) and fail closed on any doubt.

A decision that is undefined, breaks ``decision.v1.json``, names the wrong
action, or routes to a provider that is not configured is a *policy error*:
the request is denied with reason ``policy.error`` and HTTP 503.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from functools import cache
from typing import Any

import jsonschema_rs

from engine.resources import schema_path

POLICY_ERROR = "policy.error"
POLICY_ERROR_STATUS = 503
DEFAULT_DENY_STATUS = 403
ACTIONS = ("allow", "redact", "route", "deny")


class DecisionError(ValueError):
    """The policy's output cannot be enforced."""


@cache
def _validator() -> Any:
    schema = json.loads(schema_path("decision.v1.json").read_text(encoding="utf-8"))
    return jsonschema_rs.Draft202012Validator(schema)


def expected_action(decision: Mapping[str, Any]) -> str:
    """The action the action rule requires for a non-deny decision."""
    if decision.get("route"):
        return "route"
    if decision.get("redactions"):
        return "redact"
    return "allow"


def validate_decision(value: Any, *, providers: Collection[str]) -> dict[str, Any]:
    """Return the decision when it is enforceable, else raise ``DecisionError``.

    >>> validate_decision({"action": "allow"}, providers={"echo"})
    {'action': 'allow'}
    """
    if value is None:
        raise DecisionError("the decision is undefined")
    errors = [e for e in _validator().iter_errors(value)]
    if errors:
        first = errors[0]
        pointer = "/" + "/".join(str(p) for p in first.instance_path)
        raise DecisionError(f"decision breaks decision.v1.json at {pointer}: {first.message}")
    action = value["action"]
    if action != "deny":
        required = expected_action(value)
        if action != required:
            raise DecisionError(
                f"action {action!r} does not match the decision's effects (expected {required!r})"
            )
    for target in value.get("route", {}).get("targets", []):
        if target["provider"] not in providers:
            raise DecisionError(
                f"route names provider {target['provider']!r}, which is not configured"
            )
    return dict(value)


def policy_error(message: str) -> dict[str, Any]:
    """The fail-closed decision that replaces a broken or missing one."""
    return {
        "action": "deny",
        "reasons": [{"code": POLICY_ERROR, "message": message}],
        "status": POLICY_ERROR_STATUS,
    }


def deny_status(decision: Mapping[str, Any]) -> int:
    return int(decision.get("status", DEFAULT_DENY_STATUS))
