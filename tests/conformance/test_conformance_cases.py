"""Every YAML decision case of the shipped bundles decides identically on both engines:
the full decision, the forwarded request, the route and the status, and both pass."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from adapters.cli.test_cmd import check_outcome, decide_case
from engine.bundle.cases import Case, load_cases
from engine.config import default_config
from engine.pipeline import DecisionPipeline, Outcome
from engine.runtime import routes_from_config
from tests.conformance.conftest import SHIPPED, EnginesFor, Tally

CASES = [(name, case) for name in ("default", "strict") for case in load_cases(SHIPPED[name])]
GATEWAY_OWNED = ("id", "time")  # fresh for every request, so not compared


def comparable(outcome: Outcome) -> dict[str, Any]:
    def strip(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if doc is None else {k: v for k, v in doc.items() if k not in GATEWAY_OWNED}

    return {
        "decision": outcome.decision,
        "request": strip(outcome.request),
        "forward": strip(outcome.forward),
        "targets": [t.as_dict() for t in outcome.targets],
        "status": outcome.status,
    }


def test_every_shipped_bundle_has_cases() -> None:
    assert {name for name, _ in CASES} == {"default", "strict"}


@pytest.mark.parametrize(("bundle", "case"), CASES, ids=[f"{n}:{c.line}" for n, c in CASES])
def test_case_decides_the_same_on_both_engines(
    bundle: str, case: Case, engines: EnginesFor, run: Callable[[Awaitable[Any]], Any], tally: Tally
) -> None:
    pair = engines(bundle)
    config = default_config({})
    outcomes = {}
    for name, evaluator in (("embedded", pair.embedded), ("opa", pair.opa)):
        pipeline = DecisionPipeline(
            pair.bundle,
            evaluator,
            providers=config.providers.keys(),
            routes=routes_from_config(config),
        )
        outcomes[name] = run(decide_case(case, pipeline, config))
    tally.cases += 1
    same = comparable(outcomes["embedded"]) == comparable(outcomes["opa"])
    tally.divergences += not same
    assert comparable(outcomes["opa"]) == comparable(outcomes["embedded"])
    assert check_outcome(case, outcomes["opa"]) == []
    assert check_outcome(case, outcomes["embedded"]) == []
