"""One request's journey through the gateway, and the audit event it becomes.

An ``Exchange`` is filled in as the request advances (principal, decision,
provider, usage, error); ``audit_event`` turns it into a Contract 4 event
(unsealed: the audit writer seals it into the chain). It never holds a
credential: the principal comes from the directory, which stores none.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.audit import audit_prompt
from engine.document import utc_now
from engine.pipeline import DecisionPipeline, Outcome


@dataclass
class Exchange:
    request_id: str
    api: str | None
    started: float = field(default_factory=time.perf_counter)
    time: str = field(default_factory=utc_now)
    principal: dict[str, Any] | None = None
    model: str | None = None
    outcome: Outcome | None = None
    pipeline: DecisionPipeline | None = (
        None  # the one that decided (the active one may change meanwhile)
    )
    provider: str | None = None
    upstream_model: str | None = None
    status: int = 200
    upstream_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    streaming: bool = False  # a stream audits (and settles its tokens) when it ends
    reservation: tuple[tuple[str, int], ...] = ()  # token counters charged, to settle later
    reserved_tokens: int = 0

    def fail(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.error_code = code
        self.error_message = message

    def audit_event(
        self,
        *,
        bundle_revision: str,
        bundle_digest: str,
        engine: str,
        prompt_level: Literal["none", "redacted", "full"],
    ) -> dict[str, Any]:
        outcome = self.outcome
        decision = outcome.decision if outcome else None
        findings = (
            {f["path"]: f["detector"] for f in outcome.request.get("findings", [])}
            if outcome
            else {}
        )
        redactions = (
            decision.get("redactions", []) if decision and outcome and outcome.allowed else []
        )
        detectors = sorted(
            {findings[r["path"]] for r in redactions if "start" in r and r.get("path") in findings}
        )
        event: dict[str, Any] = {
            "id": self.request_id,
            "time": self.time,
            "principal": self.principal,
            "api": self.api,
            "model": self.model,
            "action": decision["action"] if decision else None,
            "reasons": list(decision.get("reasons", [])) if decision else [],
            "redactions": {"count": len(redactions), "detectors": detectors},
            "route": [t.as_dict() for t in outcome.targets] if outcome else [],
            "provider": self.provider,
            "upstream_model": self.upstream_model,
            "status": self.status,
            "latency_ms": {
                "policy": round(outcome.policy_ms, 3) if outcome else None,
                "upstream": round(self.upstream_ms, 3) if self.upstream_ms is not None else None,
                "total": round((time.perf_counter() - self.started) * 1000, 3),
            },
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
            },
            "bundle": {"revision": bundle_revision, "digest": bundle_digest},
            "engine": engine,
        }
        if self.error_code is not None:
            event["error"] = {"code": self.error_code, "message": self.error_message or ""}
        if outcome is not None:
            prompt = audit_prompt(
                prompt_level,
                received=outcome.request.get("messages", []),
                forwarded=outcome.forward.get("messages", [])
                if outcome.forward is not None
                else None,
            )
            if prompt is not None:
                event["prompt"] = prompt
        return event
