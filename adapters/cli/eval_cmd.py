"""``regate eval``: decide on one request and print request, decision and forward."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from dataclasses import replace
from typing import Any

from adapters.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    load_bundle_arg,
    print_error,
    read_structured_file,
)
from adapters.policy_input import build_policy_input
from engine.config import Config, load_config
from engine.document import DEFAULT_PRINCIPAL, iter_texts
from engine.errors import RegateError
from engine.pipeline import Outcome
from engine.runtime import make_pipeline, provider_context


async def evaluate(
    bundle_path: str, body: Any, args: argparse.Namespace, config: Config, principal: dict[str, Any]
) -> Outcome:
    bundle = load_bundle_arg(bundle_path, args)
    pipeline = make_pipeline(bundle, config, args.engine)
    try:
        prepare = getattr(pipeline.evaluator, "prepare", None)
        if prepare is not None:
            # The opa engine pushes the bundle first; that is not part of the decision's time budget.
            await prepare()
        policy_input = build_policy_input(
            body,
            api=args.api,
            principal=principal,
            context={"providers": provider_context(config), "usage": {}},
        )
        return await pipeline.decide(policy_input.document)
    finally:
        await pipeline.evaluator.close()


def render_pretty(outcome: Outcome) -> str:
    d = outcome.decision
    lines = [
        f"action:   {d['action']}" + (f"  (status {outcome.status})" if not outcome.allowed else "")
    ]
    for reason in d.get("reasons", []):
        lines.append(f"reason:   {reason['code']}: {reason.get('message', '')}")
    findings = outcome.request.get("findings", [])
    for f in findings:
        lines.append(f"finding:  {f['detector']} at {f['path']} [{f['start']}:{f['end']}]")
    if outcome.targets:
        lines.append("route:    " + " -> ".join(f"{t.provider}/{t.model}" for t in outcome.targets))
    if outcome.forward is not None:
        lines.append("forward:")
        for pointer, text in iter_texts(outcome.forward):
            lines.append(f"  {pointer}: {text}")
        if "max_tokens" in outcome.forward.get("params", {}):
            lines.append(f"  max_tokens: {outcome.forward['params']['max_tokens']}")
    else:
        lines.append("forward:  nothing (denied)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, env=os.environ)
        if getattr(args, "opa_url", None):
            config = replace(config, policy=replace(config.policy, opa_url=args.opa_url))
        body = read_structured_file(args.request)
        principal = (
            read_structured_file(args.principal) if args.principal else dict(DEFAULT_PRINCIPAL)
        )
        outcome = asyncio.run(evaluate(args.bundle, body, args, config, principal))
    except ImportError:
        print_error(RuntimeError("--engine opa needs the opa extra (pip install 'regate[opa]')"))
        return EXIT_USAGE
    except (RegateError, OSError, ValueError) as exc:
        print_error(exc)
        return EXIT_USAGE
    if args.format == "json":
        print(json.dumps(outcome.as_dict(), indent=2, ensure_ascii=False))
    else:
        print(render_pretty(outcome))
    return EXIT_OK
