"""Engine comparison (not a test): decision latency of the embedded engine vs an OPA
server, on the default bundle, for the same requests in the same run.

    python bench/engines.py [--iterations N] [--opa-bin PATH]

Starts its own ``opa run --server`` on a free loopback port. Each request goes
through the whole decision path (detectors, request schemas, Rego, validation,
enforcement) once per engine, in alternating order; the Rego call alone is timed
too. Prints p50/p99 per engine and the OPA / embedded ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import shutil
import socket
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from adapters.policy_input import build_policy_input
from engine.bundle.loader import load_bundle
from engine.config import Config, default_config
from engine.evaluators.embedded import EmbeddedEvaluator
from engine.evaluators.opa import OpaEvaluator
from engine.pipeline import DecisionPipeline
from engine.resources import default_bundle_path
from engine.runtime import provider_context, routes_from_config

US = {"id": "support-bot", "kind": "app", "labels": {"region": "us"}}
EU = {"id": "billing-bot", "kind": "app", "team": "finance", "labels": {"region": "eu"}}
TEXTS = [
    "Please summarise the customer's ticket: the order arrived late and the box was damaged.",
    "Reach me at jane.doe@example.com or +1 415 555 0100 about the refund.",
    "My SSN is 123-45-6789 and my card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00.",
    "Use key AKIAIOSFODNN7EXAMPLE to read the bucket.",
    "Translate to French: the meeting moves to Thursday at 10.",
]


def requests() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(OpenAI chat body, principal) pairs covering allow, redact, route and deny."""
    out = []
    for i, text in enumerate(TEXTS):
        for principal in (US, EU):
            for model in ("gpt-4o-mini", "llama-3" if i == 0 else "gpt-4o"):
                body = {
                    "model": model,
                    "max_tokens": 256,
                    "messages": [
                        {"role": "system", "content": "You are a helpful support agent."},
                        {"role": "user", "content": text},
                    ],
                }
                out.append((body, principal))
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def opa_server(opa_bin: str) -> Iterator[str]:
    """A fresh ``opa run --server`` on a free loopback port, stopped on exit."""
    url = f"http://127.0.0.1:{_free_port()}"
    command = [
        opa_bin,
        "run",
        "--server",
        "--addr",
        url[7:],
        "--disable-telemetry",
        "--log-level",
        "error",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=0.5):  # noqa: S310 (loopback)
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"OPA did not start ({opa_bin})") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.99) - 1)]


async def measure(config: Config, iterations: int) -> dict[str, dict[str, list[float]]]:
    bundle = load_bundle(default_bundle_path())
    evaluators: dict[str, Any] = {
        "embedded": EmbeddedEvaluator.from_bundle(bundle, config),
        "opa": OpaEvaluator.from_bundle(bundle, config, private=True),
    }
    await evaluators["opa"].prepare()
    pipelines = {
        name: DecisionPipeline(
            bundle,
            ev,
            providers=config.providers.keys(),
            routes=routes_from_config(config),
            timeout_ms=5_000,
        )
        for name, ev in evaluators.items()
    }
    context = {"providers": provider_context(config), "usage": {}}
    docs = [
        build_policy_input(body, principal=p, context=context).document for body, p in requests()
    ]
    samples: dict[str, dict[str, list[float]]] = {
        name: {"decide": [], "rego": []} for name in pipelines
    }
    actions: dict[str, set[str]] = {name: set() for name in pipelines}
    warmup = max(1, iterations // 10)
    try:
        for i in range(iterations + warmup):
            doc = docs[i % len(docs)]
            order = list(pipelines) if i % 2 else list(reversed(pipelines))
            for name in order:
                fresh = copy.deepcopy(doc)  # decide() fills in findings
                started = time.perf_counter()
                outcome = await pipelines[name].decide(fresh)
                decided = time.perf_counter()
                await evaluators[name].evaluate(bundle.query, outcome.request)
                evaluated = time.perf_counter()
                actions[name].add(outcome.action)
                if i >= warmup:
                    samples[name]["decide"].append((decided - started) * 1e6)
                    samples[name]["rego"].append((evaluated - decided) * 1e6)
    finally:
        await evaluators["opa"].unload()
        await evaluators["opa"].close()
    if actions["embedded"] != actions["opa"]:
        raise SystemExit(f"the engines disagree: {actions}")
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--opa-bin", default=shutil.which("opa") or str(Path.home() / "go/bin/opa"))
    args = parser.parse_args()
    with opa_server(args.opa_bin) as url:
        config = default_config(os.environ)
        config = replace(config, policy=replace(config.policy, engine="opa", opa_url=url))
        samples = asyncio.run(measure(config, args.iterations))
    n = len(samples["embedded"]["decide"])
    print(
        f"default bundle, {len(requests())} distinct requests, {n} decisions per engine (same requests, same run)"
    )
    print(
        f"{'':14}{'embedded p50':>14}{'p99':>10}{'OPA p50':>12}{'p99':>10}{'ratio p50':>11}{'p99':>8}"
    )
    for row, label in (("decide", "decision path"), ("rego", "Rego only")):
        e50, e99 = _percentiles(samples["embedded"][row])
        o50, o99 = _percentiles(samples["opa"][row])
        print(
            f"{label:14}{e50:>12.0f}µs{e99:>8.0f}µs{o50:>10.0f}µs{o99:>8.0f}µs{o50 / e50:>10.1f}x{o99 / e99:>7.1f}x"
        )


if __name__ == "__main__":
    main()
