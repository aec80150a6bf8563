"""``regate check``: everything the gateway would refuse at load time, before it ships."""

from __future__ import annotations

import argparse
import json
from typing import Any

from adapters.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    load_bundle_arg,
    missing_bundles,
    print_error,
    problem,
)
from adapters.policy_input import build_policy_input
from engine.bundle.cases import load_cases
from engine.errors import BundleError, InputError, RegateError


def check_bundle(path: str, args: argparse.Namespace) -> dict[str, Any]:
    """Check one bundle; returns ``{"bundle", "ok", "problems", ...}``."""
    problems: list[dict[str, Any]] = []
    summary: dict[str, Any] = {"bundle": path}
    try:
        bundle = load_bundle_arg(path, args)
    except RegateError as exc:
        problems.append(problem(exc))
    else:
        summary.update(
            revision=bundle.revision,
            entrypoint=bundle.entrypoint,
            modules=sum(1 for m in bundle.modules if not m.from_library),
            detectors=len(bundle.detectors),
            request_schemas=sorted(bundle.request_schemas),
            verified=bundle.verified,
        )
        try:
            cases = load_cases(bundle.source_dir)
        except BundleError as exc:
            problems.append(problem(exc))
        else:
            summary["cases"] = len(cases)
            for case in cases:
                try:
                    build_policy_input(case.request, api=case.api, principal=case.principal)
                except InputError as exc:
                    problems.append(
                        {
                            "file": case.file,
                            "line": case.line,
                            "code": exc.code,
                            "message": f"case {case.note!r}: request is not valid: {exc.message}",
                        }
                    )
    summary["ok"] = not problems
    summary["problems"] = problems
    return summary


def run(args: argparse.Namespace) -> int:
    if missing_bundles(args.bundles):
        return EXIT_USAGE
    try:
        results = [check_bundle(path, args) for path in args.bundles]
    except OSError as exc:  # the verification key file
        print_error(exc)
        return EXIT_USAGE
    if args.format == "json":
        print(json.dumps({"ok": all(r["ok"] for r in results), "bundles": results}, indent=2))
    else:
        for result in results:
            if result["ok"]:
                print(
                    f"ok     {result['bundle']}  revision={result['revision'] or '-'} "
                    f"entrypoint={result['entrypoint']} modules={result['modules']} "
                    f"detectors={result['detectors']} cases={result.get('cases', 0)}"
                )
                continue
            print(f"FAILED {result['bundle']}")
            for p in result["problems"]:
                where = (
                    f"{p['file']}:{p['line']}"
                    if p.get("line")
                    else (p.get("file") or result["bundle"])
                )
                print(f"  {where}: {p['message']}")
    return EXIT_OK if all(r["ok"] for r in results) else EXIT_PROBLEMS
