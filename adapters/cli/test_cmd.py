"""``regate test``: Rego ``test_`` rules and YAML decision cases, with coverage."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from adapters.cli.common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, load_bundle_arg
from adapters.cli.reports import BundleReport, TestResult, render
from adapters.policy_input import build_policy_input
from engine.bundle.cases import Case, load_cases
from engine.bundle.loader import Bundle
from engine.config import Config, load_config
from engine.document import DEFAULT_PRINCIPAL, iter_texts
from engine.errors import RegateError
from engine.evaluators.base import RegoTestResult, evaluator_class
from engine.evaluators.embedded import EmbeddedEvaluator
from engine.pipeline import DecisionPipeline, Outcome
from engine.runtime import provider_context, routes_from_config


def check_outcome(case: Case, outcome: Outcome) -> list[str]:
    """Every way ``outcome`` differs from the case's ``want`` (empty: pass)."""
    want = case.want
    problems = []
    decision = outcome.decision
    if decision["action"] != want["action"]:
        reasons = ", ".join(r["code"] for r in decision.get("reasons", [])) or "none"
        problems.append(
            f"action: want {want['action']}, got {decision['action']} (reasons: {reasons})"
        )
    if "reasons" in want:
        got = sorted({r["code"] for r in decision.get("reasons", [])})
        if got != sorted(set(want["reasons"])):
            problems.append(f"reasons: want {sorted(set(want['reasons']))}, got {got}")
    if "status" in want and outcome.status != want["status"]:
        problems.append(f"status: want {want['status']}, got {outcome.status}")
    if "route" in want:
        got_route = [t.as_dict() for t in outcome.targets]
        wanted_route = [
            {"provider": t["provider"], "model": t.get("model", case.request.get("model"))}
            for t in want["route"]
        ]
        if got_route != wanted_route:
            problems.append(f"route: want {wanted_route}, got {got_route}")
    forward_want: Mapping[str, Any] = want.get("forward") or {}
    if forward_want:
        if outcome.forward is None:
            problems.append("forward: want a forwarded request, got none (denied)")
        else:
            texts = "\n".join(text for _, text in iter_texts(outcome.forward))
            problems.extend(
                f"forward: missing {s!r}"
                for s in forward_want.get("contains", [])
                if s not in texts
            )
            problems.extend(
                f"forward: still contains {s!r}"
                for s in forward_want.get("excludes", [])
                if s in texts
            )
    return problems


async def decide_case(case: Case, pipeline: DecisionPipeline, config: Config) -> Outcome:
    """The outcome of a case's request on ``pipeline``'s bundle and evaluator
    (the conformance suite decides every case on both engines this way)."""
    context = (
        dict(case.context) if case.context else {"providers": provider_context(config), "usage": {}}
    )
    context.setdefault("providers", {})
    context.setdefault("usage", {})
    case_pipeline = DecisionPipeline(
        pipeline.bundle,
        pipeline.evaluator,
        providers=set(config.providers) | set(context["providers"]),
        routes=pipeline.routes,
        timeout_ms=60_000,  # cases check decisions, not speed (coverage slows evaluation)
    )
    policy_input = build_policy_input(
        case.request, api=case.api, principal=case.principal or DEFAULT_PRINCIPAL, context=context
    )
    return await case_pipeline.decide(policy_input.document)


async def run_case(case: Case, pipeline: DecisionPipeline, config: Config) -> TestResult:
    started = time.perf_counter()
    try:
        problems = check_outcome(case, await decide_case(case, pipeline, config))
    except RegateError as exc:
        problems = [f"error: {exc}"]
    return TestResult(
        kind="case",
        name=case.note,
        file=case.file,
        line=case.line,
        passed=not problems,
        message="; ".join(problems) or None,
        duration_ms=(time.perf_counter() - started) * 1000,
    )


def _own_files(bundle: Bundle, *, tests: bool) -> list[str]:
    return [m.path for m in bundle.modules if not m.from_library and m.is_test == tests]


async def test_bundle(path: str, args: argparse.Namespace, config: Config) -> BundleReport:
    bundle = load_bundle_arg(path, args)
    if args.engine == "opa":
        return await _test_bundle_on_opa(path, bundle, args, config)
    evaluator = EmbeddedEvaluator(
        bundle.policy_modules(tests=True), bundle.data, coverage=args.coverage
    )
    rego = evaluator.run_tests(evaluator.test_rules(_own_files(bundle, tests=True)))
    results = await _results(bundle, rego, evaluator, args, config)
    coverage = evaluator.coverage(_own_files(bundle, tests=False)) if args.coverage else None
    return BundleReport(path, results, coverage)


async def _test_bundle_on_opa(
    path: str, bundle: Bundle, args: argparse.Namespace, config: Config
) -> BundleReport:
    """Rego tests and cases on the OPA server, in a namespace of this run's own."""
    opa = evaluator_class("opa").from_bundle(bundle, config, tests=True, private=True)
    try:
        rego = await opa.run_tests(await opa.test_rules(_own_files(bundle, tests=True)))
        return BundleReport(path, await _results(bundle, rego, opa, args, config), None)
    finally:
        with contextlib.suppress(RegateError):
            await opa.unload()
        await opa.close()


async def _results(
    bundle: Bundle,
    rego: Sequence[RegoTestResult],
    evaluator: Any,
    args: argparse.Namespace,
    config: Config,
) -> list[TestResult]:
    results = [
        TestResult(
            "rego",
            f"data.{r.package}.{r.name}",
            r.file and f"{bundle.source}/{r.file}",
            r.line,
            r.passed,
            r.error,
            r.duration_ms,
        )
        for r in rego
    ]
    pipeline = DecisionPipeline(
        bundle, evaluator, providers=config.providers.keys(), routes=routes_from_config(config)
    )
    for case in load_cases(bundle.source_dir):
        results.append(await run_case(case, pipeline, config))
    if args.run_filter:
        results = [r for r in results if args.run_filter in r.name]
    return results


def run(args: argparse.Namespace) -> int:
    if args.engine == "opa" and args.coverage:
        # OPA reports coverage only from `opa test --coverage`, not through its REST API.
        print(
            "regate: error: --coverage needs --engine embedded (for OPA, run `opa test --coverage`)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.threshold is not None and not args.coverage:
        print("regate: error: --threshold needs --coverage", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = load_config(None, env=os.environ)
        if args.engine == "opa":
            # Cases check decisions, not speed: the OPA time-out is the case pipeline's.
            opa_url = getattr(args, "opa_url", None) or config.policy.opa_url
            config = replace(
                config,
                policy=replace(config.policy, engine="opa", opa_url=opa_url, timeout_ms=60_000),
            )
        reports = [asyncio.run(test_bundle(path, args, config)) for path in args.bundles]
    except ImportError:
        print(
            "regate: error: --engine opa needs the opa extra (pip install 'regate[opa]')",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except (RegateError, OSError) as exc:
        print(f"regate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(render(reports, args.format, threshold=args.threshold))
    failed = any(not r.passed for report in reports for r in report.results)
    below = args.threshold is not None and any(
        report.coverage is not None and report.coverage.percent < args.threshold
        for report in reports
    )
    return EXIT_PROBLEMS if failed or below or not any(_count(reports)) else EXIT_OK


def _count(reports: Sequence[BundleReport]) -> list[int]:
    return [len(r.results) for r in reports]
