"""Decision-path micro-benchmark (not a test): canonicalise + detect + schemas + Rego
+ validate + enforce on the default bundle, for 1 KB, 16 KB and 128 KB requests.

    python bench/decision.py [--iterations N] [--engine embedded]

Prints p50/p99 per size and the 128 KB / 1 KB ratio (linear growth means <= 128).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any

from adapters.policy_input import build_policy_input
from engine.bundle.loader import load_bundle
from engine.config import default_config
from engine.resources import default_bundle_path
from engine.runtime import make_pipeline, provider_context

SENTENCE = (
    "Please summarise the customer's ticket: the order arrived late and the box was damaged; "
    "they ask for a refund to the card on file and a call back next week. "
)
PII = "Reach me at jane.doe@example.com or +1 415 555 0100. "


def make_request(size: int, *, pii: bool) -> dict[str, Any]:
    """An OpenAI chat request whose body is about ``size`` bytes. With ``pii``, every
    third sentence carries an email address and a phone number (about 8 findings per
    KB: a dense case); without, the text is clean."""
    text = ""
    while len(text) < size - 200:
        text += PII if pii and len(text) % 3 == 0 else SENTENCE
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a helpful support agent."},
            {"role": "user", "content": text},
        ],
        "max_tokens": 256,
    }
    return body


async def measure(size: int, iterations: int, engine: str, *, pii: bool) -> dict[str, float]:
    config = default_config(os.environ)
    pipeline = make_pipeline(load_bundle(default_bundle_path()), config, engine)
    context = {"providers": provider_context(config), "usage": {}}
    principal = {"id": "bench", "kind": "app", "labels": {"region": "us"}}
    raw = json.dumps(make_request(size, pii=pii)).encode()
    samples = []
    action = ""
    for i in range(iterations + iterations // 10):
        started = time.perf_counter()
        body = json.loads(raw)
        policy_input = build_policy_input(
            body, principal=principal, context=context, body_bytes=len(raw)
        )
        outcome = await pipeline.decide(policy_input.document)
        elapsed = time.perf_counter() - started
        action = outcome.action
        if i >= iterations // 10:  # warm-up excluded
            samples.append(elapsed * 1e6)
    samples.sort()
    return {
        "bytes": len(raw),
        "p50_us": statistics.median(samples),
        "p99_us": samples[int(len(samples) * 0.99) - 1],
        "action": action,  # type: ignore[dict-item]
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--engine", default="embedded")
    args = parser.parse_args()
    for pii in (False, True):
        rows = {}
        for label, size, n in (
            ("1 KB", 1024, args.iterations),
            ("16 KB", 16 * 1024, args.iterations // 2),
            ("128 KB", 128 * 1024, max(50, args.iterations // 10)),
        ):
            rows[label] = asyncio.run(measure(size, n, args.engine, pii=pii))
        print(f"{'clean text' if not pii else 'PII-dense text (~8 findings per KB)'}:")
        print(f"{'size':>8} {'bytes':>8} {'p50 µs':>10} {'p99 µs':>10}  action")
        for label, r in rows.items():
            print(
                f"{label:>8} {r['bytes']:>8} {r['p50_us']:>10.1f} {r['p99_us']:>10.1f}  {r['action']}"
            )
        ratio = rows["128 KB"]["p50_us"] / rows["1 KB"]["p50_us"]
        print(f"128 KB / 1 KB p50 ratio: {ratio:.1f}x (linear growth: <= 128x)\n")


if __name__ == "__main__":
    main()
