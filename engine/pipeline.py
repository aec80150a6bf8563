"""The decision path: detect -> request schemas -> Rego -> validate -> enforce.

``DecisionPipeline.decide`` takes a complete canonical document and returns an
``Outcome``: the decision, and the document to forward (``None`` on deny).
Every failure inside policy evaluation fails closed unless the operator set
``on_error: allow`` explicitly.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.bundle.loader import Bundle
from engine.decision import DecisionError, deny_status, policy_error, validate_decision
from engine.enforce import Target, apply_redactions, clamp_max_tokens, resolve_route
from engine.errors import EvaluationError
from engine.evaluators.base import Evaluator

SCHEMA_STATUS = 400
NO_ROUTE_STATUS = 404


@dataclass
class Outcome:
    """What the policy decided for one request, and what to forward."""

    request: dict[str, Any]
    decision: dict[str, Any]
    forward: dict[str, Any] | None
    targets: tuple[Target, ...] = ()
    quotas: tuple[Mapping[str, Any], ...] = ()
    policy_ms: float = 0.0
    failed_open: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def action(self) -> str:
        return str(self.decision["action"])

    @property
    def allowed(self) -> bool:
        return self.forward is not None

    @property
    def status(self) -> int:
        return 200 if self.allowed else deny_status(self.decision)

    def as_dict(self) -> dict[str, Any]:
        return {"request": self.request, "decision": self.decision, "forward": self.forward}


def _schema_denial(name: str, error: Any) -> dict[str, Any]:
    pointer = "/" + "/".join(str(p) for p in error.instance_path)
    return {
        "action": "deny",
        "reasons": [
            {
                "code": f"schema.{name}",
                "message": f"request violates schema {name} at {pointer}: {error.message}",
            }
        ],
        "status": SCHEMA_STATUS,
    }


class DecisionPipeline:
    """The whole decision path for one active bundle."""

    def __init__(
        self,
        bundle: Bundle,
        evaluator: Evaluator,
        *,
        providers: Collection[str],
        routes: Mapping[str, Sequence[Target]],
        on_error: str = "deny",
        timeout_ms: float = 250.0,
    ) -> None:
        self.bundle = bundle
        self.evaluator = evaluator
        self.providers = frozenset(providers)
        self.routes = dict(routes)
        self.fail_open = on_error == "allow"
        self.timeout_ms = timeout_ms

    async def decide(self, doc: dict[str, Any]) -> Outcome:
        """Decide on ``doc`` (its ``findings`` are filled in place by the detectors)."""
        started = time.perf_counter()
        doc["findings"] = self.bundle.detectors.scan(doc)
        detected = time.perf_counter()
        for name, validator in self.bundle.request_schemas.items():
            error = next(iter(validator.iter_errors(doc)), None)
            if error is not None:
                return self._finish(doc, _schema_denial(name, error), None, (), started)
        try:
            value = await self.evaluator.evaluate(self.bundle.query, doc)
            evaluated = time.perf_counter()
            if (evaluated - detected) * 1000 > self.timeout_ms:
                raise DecisionError(f"policy evaluation took longer than {self.timeout_ms:g} ms")
            decision = validate_decision(value, providers=self.providers)
            if decision["action"] == "deny":
                return self._finish(doc, decision, None, (), started)
            forward = apply_redactions(doc, decision.get("redactions", ()))
            clamp_max_tokens(forward, decision.get("limits", {}).get("max_tokens"))
            targets = resolve_route(
                decision, str(doc.get("model", "")), self.routes, self.providers
            )
        except (EvaluationError, DecisionError) as exc:
            return self._policy_failure(doc, str(exc), started)
        if not targets:
            denial = {
                "action": "deny",
                "reasons": [
                    {
                        "code": "route.none",
                        "message": f"no route is configured for model {doc.get('model')!r}",
                    }
                ],
                "status": NO_ROUTE_STATUS,
            }
            return self._finish(doc, denial, None, (), started)
        quotas = tuple(decision.get("limits", {}).get("quotas", ()))
        return self._finish(doc, decision, forward, targets, started, quotas=quotas)

    def _policy_failure(self, doc: dict[str, Any], message: str, started: float) -> Outcome:
        decision = policy_error(message)
        if not self.fail_open:
            return self._finish(doc, decision, None, (), started)
        # Explicit fail-open (config ``on_error: allow``): forward unchanged on the
        # configured route, but keep the policy error visible in the decision.
        decision = {"action": "allow", "reasons": decision["reasons"]}
        try:
            targets = resolve_route({}, str(doc.get("model", "")), self.routes, self.providers)
        except DecisionError:
            targets = ()
        outcome = self._finish(doc, decision, dict(doc) if targets else None, targets, started)
        outcome.failed_open = True
        return outcome

    def _finish(
        self,
        doc: dict[str, Any],
        decision: dict[str, Any],
        forward: dict[str, Any] | None,
        targets: tuple[Target, ...],
        started: float,
        *,
        quotas: tuple[Mapping[str, Any], ...] = (),
    ) -> Outcome:
        return Outcome(
            doc, decision, forward, targets, quotas, (time.perf_counter() - started) * 1000
        )
