"""One decision as an OPA decision log event (``EventV1``), with the input masked
as the audit level says. Pure functions: no I/O, inputs never mutated.

The field names and shapes are OPA's (``labels``, ``decision_id``,
``bundles.<name>.revision``, ``path``, ``input``, ``result``, ``erased``,
``requested_by``, ``timestamp``, ``metrics``), so tools that read OPA decision
logs read regate's. Levels (``audit.prompt``):

- ``none``: ``input`` keeps only fields without client content (principal,
  api, operation, model, findings, size, ...) and ``erased`` lists the JSON
  pointers of what was taken out, as OPA's masking does;
- ``redacted``: the canonical document as forwarded (after redaction); a
  denied request has no forwarded form, so it is logged as under ``none``;
- ``full``: the canonical document as received.

The canonical document never holds a provider credential or a caller's key
(Contract 1), so no level can put one in a decision log.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

from engine.pipeline import Outcome

PromptLevel = Literal["none", "redacted", "full"]

# Top-level canonical fields that carry no client-written content.
CONTENT_FREE = (
    "version",
    "id",
    "time",
    "principal",
    "api",
    "operation",
    "model",
    "findings",
    "context",
    "size",
)
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")


def bundle_name(source: str) -> str:
    """The name a bundle goes by in ``bundles``: its directory or archive name.

    >>> bundle_name("/srv/policy-bundles/default"), bundle_name("https://b.example/bundles/prod.tar.gz")
    ('default', 'prod')
    """
    path = urlsplit(source).path if "://" in source else source
    name = PurePosixPath(path.rstrip("/")).name
    for suffix in ARCHIVE_SUFFIXES:
        name = name.removesuffix(suffix)
    return name or "regate"


def masked_input(outcome: Outcome, level: PromptLevel) -> tuple[dict[str, Any], list[str]]:
    """The ``input`` the level allows, and the ``erased`` pointers (empty when nothing was).

    >>> from engine.pipeline import Outcome
    >>> doc = {"id": "req_1", "model": "m", "messages": [{"role": "user", "content": []}], "size": {"bytes": 9}}
    >>> masked_input(Outcome(doc, {"action": "deny"}, None), "none")
    ({'id': 'req_1', 'model': 'm', 'size': {'bytes': 9}}, ['/input/messages'])
    """
    if level == "full":
        return outcome.request, []
    if level == "redacted" and outcome.forward is not None:
        return outcome.forward, []
    kept = {key: outcome.request[key] for key in CONTENT_FREE if key in outcome.request}
    erased = [f"/input/{key}" for key in outcome.request if key not in kept]
    return kept, erased


def decision_event(
    outcome: Outcome,
    *,
    decision_id: str,
    timestamp: str,
    bundle: tuple[str, str],
    path: str,
    level: PromptLevel,
    labels: Mapping[str, str],
    handler_ms: float | None = None,
) -> dict[str, Any]:
    """The ``EventV1`` for one decision; ``bundle`` is ``(name, revision)``.

    ``timestamp`` is RFC 3339 (OPA writes RFC3339Nano, which omits trailing
    zeros, so millisecond precision is a valid form of it). ``metrics`` are
    OPA-named timers in nanoseconds: ``timer_rego_query_eval_ns`` is regate's
    whole decision (detectors, schemas, Rego, enforcement), and
    ``timer_server_handler_ns`` the request's time in the gateway so far.
    """
    name, revision = bundle
    event: dict[str, Any] = {
        "labels": dict(labels),
        "decision_id": decision_id,
        "bundles": {name: {"revision": revision} if revision else {}},
        "path": path,
    }
    value, erased = masked_input(outcome, level)
    event["input"] = value
    event["result"] = outcome.decision
    if erased:
        event["erased"] = erased
    principal = outcome.request.get("principal")
    if isinstance(principal, Mapping) and principal.get("id"):
        event["requested_by"] = str(principal["id"])
    event["timestamp"] = timestamp
    metrics = {"timer_rego_query_eval_ns": int(outcome.policy_ms * 1e6)}
    if handler_ms is not None:
        metrics["timer_server_handler_ns"] = int(handler_ms * 1e6)
    event["metrics"] = metrics
    return event


def without_input(event: Mapping[str, Any]) -> dict[str, Any]:
    """``event`` with its whole input erased (``erased: ["/input"]``), for events too
    large to upload otherwise."""
    out = {key: value for key, value in event.items() if key not in ("input", "erased")}
    out["erased"] = ["/input"]
    return out
