"""The fault campaign of ``bench/fault_campaign.py``, smaller and in-process.

The fake fails 30% of the primary's (``flaky``) requests with mixed faults while
OpenAI and Anthropic SDK clients, some streaming, send load through regate.
With the fallback (``anthropic``) allowed, every request that can succeed does
(at least 99.9%), a stream cut mid-answer ends in an SDK error, and each request
is one audit event; with the fallback forbidden by the decision, no request
reaches it. ``REGATE_CAMPAIGN_REQUESTS`` scales the load (default 1,000).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from typing import Any

import pytest

from bench.fault_campaign import (
    CUT_MID_ANSWER,
    PRIMARY_READ_TIMEOUT_S,
    ROUTING,
    Tally,
    bundle_files,
    fault_schedule,
    routes,
    run_load,
)
from tests.conftest import BundleFactory
from tests.integration.conftest import PROVIDERS, Regate, StartRegate, Upstream

REQUESTS = int(os.environ.get("REGATE_CAMPAIGN_REQUESTS", "1000"))
PRIMARY, FALLBACK = "flaky", "anthropic"

pytestmark = pytest.mark.slow


@pytest.fixture
def gateway(start_regate: StartRegate, upstream: Upstream, make_bundle: BundleFactory) -> Regate:
    """A gateway routing the campaign's models to ``[flaky, anthropic]``; ``eu-bot`` may use flaky only."""
    providers: dict[str, Any] = {
        name: {
            "type": kind,
            "base_url": upstream.url + path,
            "region": region,
            "api_key": {"env": var},
        }
        for name, (kind, path, region, var) in PROVIDERS.items()
    }
    providers[PRIMARY]["timeout"] = {"connect": 1, "read": PRIMARY_READ_TIMEOUT_S, "total": 30}
    return start_regate(
        policy={"bundle": str(make_bundle(bundle_files(PRIMARY, ["eu-bot"]))), "timeout_ms": 2000},
        providers=providers,
        routes=routes(PRIMARY, FALLBACK, "claude-haiku-4-5"),
        routing=ROUTING,
        limits={"quotas": []},
    )


def _finish(regate: Regate) -> tuple[list[dict[str, Any]], str]:
    """The audit events and the final ``/metrics`` of a gateway, which is stopped."""
    with regate.http() as http:
        metrics = http.get("/metrics").text
    regate.stop()
    lines = regate.audit_path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines], metrics


def _total(metrics: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}\{{[^}}]*\}} (\S+)$", metrics, re.M))


def _report(title: str, tally: Tally, upstream: Upstream) -> None:
    by_provider = Counter(r.provider for r in upstream.fake.recorder.requests)
    print(f"\n  [fault campaign] {title}: {tally.summary()}; upstream requests {dict(by_provider)}")


def test_with_an_allowed_fallback_every_request_that_can_succeed_does(
    gateway: Regate, upstream: Upstream
) -> None:
    upstream.fake.faults.load(fault_schedule(PRIMARY, seed=7))

    tally = run_load(
        lambda: (gateway.openai(), gateway.anthropic()), requests=REQUESTS, concurrency=16
    )

    _report(f"{REQUESTS} requests, fallback allowed", tally, upstream)
    record = upstream.fake.recorder.requests
    primary = [r for r in record if r.provider == PRIMARY]
    faulted = sum(1 for r in primary if r.fault)
    assert 0.2 < faulted / len(primary) < 0.4  # the primary really failed about 30% of the time
    assert {r.provider for r in record} == {PRIMARY, FALLBACK}
    # A stream cut mid-answer cannot fall back: each one, and only those, ends in an SDK error.
    assert tally.count("cut") == sum(1 for r in record if r.fault == CUT_MID_ANSWER)
    assert tally.sent == REQUESTS and tally.success_rate >= 0.999, tally.summary()
    events, metrics = _finish(gateway)
    assert len(events) == REQUESTS
    assert sum(1 for e in events if e["status"] == 200 and "error" not in e) == tally.count("ok")
    cut = [e for e in events if e["status"] == 200 and "error" in e]
    assert len(cut) == tally.count("cut") and all(
        e["error"]["code"].startswith("upstream_") for e in cut
    )
    assert _total(metrics, "regate_upstream_retries_total") > 0
    assert _total(metrics, "regate_upstream_fallbacks_total") > 0


def test_with_the_fallback_forbidden_none_reaches_it(gateway: Regate, upstream: Upstream) -> None:
    upstream.fake.faults.load(fault_schedule(PRIMARY, seed=11))
    requests = max(200, REQUESTS // 5)

    tally = run_load(
        lambda: (gateway.openai("eu-bot"), gateway.anthropic("eu-bot")),
        requests=requests,
        concurrency=16,
    )

    _report(f"{requests} requests, fallback forbidden", tally, upstream)
    assert upstream.received(FALLBACK) == []
    assert tally.count("failed") > 0  # the primary did fail, and nothing else was tried
    assert {r.detail for r in tally.results if r.outcome == "failed"} <= {"429", "502", "503"}
    events, _ = _finish(gateway)
    assert len(events) == requests
    assert all(e["route"] == [{"provider": PRIMARY, "model": e["model"]}] for e in events)
    assert {e["provider"] for e in events} <= {PRIMARY, None}
