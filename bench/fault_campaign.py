"""Fault campaign (a benchmark, not a test): load through regate while its primary provider fails.

The fake provider (one process playing ``primary`` and ``fallback`` through
``/p/{name}``) fails 30% of the primary's requests with mixed faults: 500, 503,
429 with a retry-after of 0-1 s, connection resets, time-outs, a first byte
later than the read time-out, and connections cut before the first byte or, for
streams, mid-answer. ``regate serve`` (a subprocess, so its RSS is its own)
routes every model to ``[primary, fallback]``; OpenAI and Anthropic SDK clients,
some streaming, send the load. Phases::

    baseline  N requests, no faults                 -> latency without faults
    campaign  N requests, faults on                 -> success rate, added latency
    forbidden N/10 requests from a principal whose decision allows the primary only
                                                    -> requests reaching the fallback (must be 0)
    soak      the campaign's faults for --soak-seconds, unpaced -> gateway RSS over time

Then regate stops and its audit events are counted against the requests sent.
A stream cut mid-answer cannot fall back (its first bytes reached the client);
it must end in an SDK error, so the success rate is given over the other
requests, next to the raw one. ``tests/integration/test_fault_campaign.py``
runs the same campaign, smaller, in-process.

    python bench/fault_campaign.py [--requests 10000] [--soak-seconds 600] [--rate 50]
                                   [--concurrency 64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anthropic
import openai
import yaml
from anthropic.types import MessageParam
from openai.types.chat import ChatCompletionMessageParam

from bench.gateway import free_port, start_process, wait_for_port
from engine.secrets import hash_caller_key

FAULT_RATE = 0.30
SLOW_MS = 2000  # a first byte this late is beyond the primary's read time-out
PRIMARY_READ_TIMEOUT_S = 0.5
CUT_MID_ANSWER = "disconnect_after_chunks=2"
# (share of all requests of that kind, fault); each list sums to FAULT_RATE.
_COMMON: list[tuple[float, dict[str, Any]]] = [
    (0.06, {"status": 500}),
    (0.05, {"status": 503}),
    (0.02, {"status": 429, "retry-after": 0}),
    (0.02, {"status": 429, "retry-after": 0.5}),
    (0.02, {"status": 429, "retry-after": 1}),
    (0.04, {"reset": True}),
    (0.03, {"timeout": True}),
    (0.03, {"first_byte_ms": SLOW_MS}),
]
PLAIN_FAULTS = [*_COMMON, (0.03, {"disconnect_after_chunks": 0})]
STREAM_FAULTS = [
    *_COMMON,
    (0.015, {"disconnect_after_chunks": 0}),
    (0.015, {"disconnect_after_chunks": 2}),
]
PLAIN_MODEL, STREAM_MODEL = "campaign-plain", "campaign-stream"  # faults match on the model

CAMPAIGN_POLICY = """package regate

import rego.v1

# Principals in data.campaign.primary_only may use the primary provider only.
decision := {
	"action": "route",
	"reasons": [{"code": "route.primary_only", "message": "this principal may use the primary provider only"}],
	"route": {"targets": [{"provider": data.campaign.primary, "model": input.model}]},
} if {
	input.principal.id in data.campaign.primary_only
} else := {"action": "allow"}
"""


def fault_schedule(primary: str, *, seed: int = 1) -> dict[str, Any]:
    """The fake provider's schedule: each share of ``primary``'s requests gets its fault."""
    rules: list[dict[str, Any]] = []
    for model, faults in ((PLAIN_MODEL, PLAIN_FAULTS), (STREAM_MODEL, STREAM_FAULTS)):
        left = 1.0
        for share, fault in faults:
            # Rules are tried in order: each fires on its share of what the ones before let through.
            rules.append(
                {
                    "match": {"provider": primary, "model": model},
                    "fault": fault,
                    "probability": share / left,
                }
            )
            left -= share
    return {"seed": seed, "rules": rules}


def bundle_files(primary: str, primary_only: list[str]) -> dict[str, Any]:
    """The campaign's policy bundle, ``{relative path: text or JSON value}``."""
    return {
        ".manifest": {"revision": "campaign", "roots": ["regate", "campaign"]},
        "policy.rego": CAMPAIGN_POLICY,
        "data.json": {"campaign": {"primary": primary, "primary_only": primary_only}},
    }


def routes(primary: str, fallback: str, fallback_model: str) -> dict[str, list[dict[str, str]]]:
    return {
        model: [
            {"provider": primary, "model": model},
            {"provider": fallback, "model": fallback_model},
        ]
        for model in (PLAIN_MODEL, STREAM_MODEL)
    }


# One retry per target; retry-afters up to 1 s are waited for. A primary failing 30% of the time at
# hundreds of requests a second has 5 failures in a row (the default threshold) every second or
# so: the breaker asks for 10 and cools down in 2 s, so that the load keeps reaching the faults.
ROUTING: dict[str, Any] = {
    "max_retries_per_target": 1,
    "backoff_base_ms": 50,
    "backoff_max_ms": 1000,
    "breaker": {"failure_threshold": 10, "cooldown_seconds": 2},
}


# ---- the load ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    outcome: str  # ok | cut (failed after the stream began: an SDK error, as it must) | failed
    seconds: float
    detail: str = ""  # status code or exception, when not ok


@dataclass
class Tally:
    results: list[Result] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def sent(self) -> int:
        return len(self.results)

    @property
    def success_rate(self) -> float:
        """Successes over the requests that could succeed (all but streams cut mid-answer)."""
        could = self.sent - self.count("cut")
        return self.count("ok") / could if could else 1.0

    def percentile(self, q: float) -> float:
        times = sorted(r.seconds for r in self.results if r.outcome == "ok")
        return times[min(len(times) - 1, int(q * len(times)))] * 1000 if times else 0.0

    def summary(self) -> str:
        failures = Counter(r.detail for r in self.results if r.outcome == "failed")
        ok = [r.seconds for r in self.results if r.outcome == "ok"]
        return (
            f"sent {self.sent}, ok {self.count('ok')}, cut mid-answer {self.count('cut')}, "
            f"failed {self.count('failed')} {dict(failures.most_common(5))}; success "
            f"{100 * self.success_rate:.3f}% (raw {100 * self.count('ok') / max(1, self.sent):.3f}%); "
            f"latency ms mean {1000 * statistics.fmean(ok) if ok else 0:.1f} p50 {self.percentile(0.5):.1f} "
            f"p95 {self.percentile(0.95):.1f} p99 {self.percentile(0.99):.1f}"
        )


Clients = tuple[openai.OpenAI, anthropic.Anthropic]


def send(index: int, clients: Clients) -> Result:
    """Request ``index`` of the mix: OpenAI and Anthropic clients alternate; 2 in 5 stream."""
    oai, claude = clients
    stream = index % 5 in (1, 3)
    model = STREAM_MODEL if stream else PLAIN_MODEL
    text = f"campaign request {index}"
    chat: list[ChatCompletionMessageParam] = [{"role": "user", "content": text}]
    question: list[MessageParam] = [{"role": "user", "content": text}]
    started = time.perf_counter()
    began = False  # the HTTP answer was 200 and the stream started
    try:
        if index % 2 == 0 and not stream:
            got = (
                oai.chat.completions.create(model=model, messages=chat).choices[0].message.content
                or ""
            )
        elif index % 2 == 0:
            chunks = oai.chat.completions.create(model=model, messages=chat, stream=True)
            began = True
            got = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        elif not stream:
            message = claude.messages.create(model=model, max_tokens=64, messages=question)
            got = "".join(b.text for b in message.content if b.type == "text")
        else:
            with claude.messages.stream(model=model, max_tokens=64, messages=question) as out:
                began = True
                got = "".join(out.text_stream)
    except (openai.APIStatusError, anthropic.APIStatusError) as exc:
        return Result(
            "cut" if began else "failed", time.perf_counter() - started, str(exc.status_code)
        )
    except (openai.APIError, anthropic.APIError) as exc:
        return Result(
            "cut" if began else "failed", time.perf_counter() - started, type(exc).__name__
        )
    seconds = time.perf_counter() - started
    return (
        Result("ok", seconds)
        if got == f"echo: {text}"
        else Result("failed", seconds, "wrong answer")
    )


def run_load(
    make_clients: Callable[[], Clients],
    *,
    requests: int | None = None,
    seconds: float | None = None,
    concurrency: int = 16,
    start_index: int = 0,
    rate: float | None = None,
) -> Tally:
    """Send ``requests`` requests, or as many as fit in ``seconds``, from ``concurrency``
    threads: as fast as they answer, or paced at ``rate`` requests a second (the same
    offered load with and without faults, so that latencies compare)."""
    made: list[Clients] = []
    lock = threading.Lock()
    counter = iter(range(start_index, start_index + (requests if requests is not None else 10**12)))
    began = time.monotonic()
    deadline = began + seconds if seconds is not None else float("inf")
    tally = Tally()

    def worker() -> None:
        clients = make_clients()
        with lock:
            made.append(clients)
        while time.monotonic() < deadline:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            if rate is not None:
                time.sleep(max(0.0, began + (index - start_index) / rate - time.monotonic()))
            result = send(index, clients)
            with lock:
                tally.results.append(result)

    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    for oai, claude in made:
        oai.close()
        claude.close()
    return tally


# ---- the benchmark: fake and regate as processes -------------------------------------------


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


@contextmanager
def _sampling_rss(
    pid: int, samples: list[tuple[float, int]], fake: str, every: float = 1.0
) -> Iterator[None]:
    """Sample ``pid``'s RSS every second; every 30 s, empty the fake's record (its memory, not ours)."""
    stop = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not stop.wait(every):
            samples.append((time.monotonic() - started, _rss_kib(pid)))
            if len(samples) % 30 == 0:
                _control(fake + "/_fake/requests", "DELETE")

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _control(url: str, method: str = "GET", body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, {"content-type": "application/json"}, method=method)  # noqa: S310
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (the fake, on loopback)
        return json.loads(response.read())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--soak-seconds", type=float, default=600.0)
    parser.add_argument("--concurrency", type=int, default=64)
    # Two cores here run the gateway, the fake and the SDK clients: at 50/s none of them queues.
    parser.add_argument("--rate", type=float, default=50.0, help="requests a second (default 50)")
    args = parser.parse_args()
    keys = {"primary": "sk-camp-primary-0123456789", "fallback": "sk-camp-fallback-0123456789"}
    callers = {
        "camp": "rgk_campaign_caller_0123456789",
        "primary-only": "rgk_campaign_primary_only_012345",
    }
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="regate-campaign-") as tmp:
        directory = Path(tmp)
        fake_port, regate_port = free_port(), free_port()
        fake = f"http://127.0.0.1:{fake_port}"
        # asyncio and h11: the fake cuts and resets connections through the asyncio transport.
        start_process(
            stack,
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "adapters.fake_provider:create_fake_provider",
                "--port",
                str(fake_port),
                "--loop",
                "asyncio",
                "--http",
                "h11",
                "--log-level",
                "critical",
            ],
            directory / "fake.log",
        )
        wait_for_port(fake_port)
        _control(fake + "/_fake/settings", "PUT", {"api_keys": keys})
        bundle = directory / "bundle"
        for name, content in bundle_files("primary", ["primary-only"]).items():
            (bundle / name).parent.mkdir(parents=True, exist_ok=True)
            (bundle / name).write_text(content if isinstance(content, str) else json.dumps(content))
        config = {
            "policy": {"bundle": str(bundle)},
            "principals": [
                {"id": pid, "kind": "app", "keys": [hash_caller_key(key)]}
                for pid, key in callers.items()
            ],
            "providers": {
                "primary": {
                    "type": "openai",
                    "base_url": f"{fake}/p/primary/v1",
                    "api_key": {"env": "CAMP_PRIMARY_KEY"},
                    "timeout": {"connect": 1, "read": PRIMARY_READ_TIMEOUT_S, "total": 30},
                },
                "fallback": {
                    "type": "anthropic",
                    "base_url": f"{fake}/p/fallback",
                    "api_key": {"env": "CAMP_FALLBACK_KEY"},
                },
            },
            "routes": routes("primary", "fallback", "claude-haiku-4-5"),
            "routing": ROUTING,
            "audit": {"path": str(directory / "audit.jsonl"), "fsync": "never"},
            "limits": {"quotas": []},
        }
        (directory / "regate.yaml").write_text(yaml.safe_dump(config))
        env = {
            **os.environ,
            "CAMP_PRIMARY_KEY": keys["primary"],
            "CAMP_FALLBACK_KEY": keys["fallback"],
            "REGATE_LOG_LEVEL": "ERROR",
        }
        gateway = start_process(
            stack,
            [
                sys.executable,
                "-m",
                "adapters.cli.main",
                "serve",
                "--config",
                str(directory / "regate.yaml"),
                "--port",
                str(regate_port),
            ],
            directory / "regate.log",
            env=env,
            cwd=directory,
        )
        wait_for_port(regate_port)

        url = f"http://127.0.0.1:{regate_port}"

        def clients(caller: str) -> Callable[[], Clients]:
            key = callers[caller]
            return lambda: (
                openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=30),
                anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, timeout=30),
            )

        n, sent = args.requests, 0
        run = partial(run_load, concurrency=args.concurrency, rate=args.rate)
        print(
            f"load: {args.rate:g} requests/s from {args.concurrency} threads; OpenAI and Anthropic "
            "SDK clients alternate, 2 in 5 requests stream",
            flush=True,
        )
        run(clients("camp"), requests=200)  # warm-up
        sent += 200
        baseline = run(clients("camp"), requests=n)
        sent += n
        print(f"baseline (no faults): {baseline.summary()}", flush=True)
        _control(fake + "/_fake/faults", "POST", fault_schedule("primary"))
        _control(fake + "/_fake/requests", "DELETE")
        campaign = run(clients("camp"), requests=n)
        sent += n
        record = _control(fake + "/_fake/requests")["requests"]
        by_provider = Counter(r["provider"] for r in record)
        cuts = sum(1 for r in record if r["fault"] == CUT_MID_ANSWER)
        faulted = sum(1 for r in record if r["provider"] == "primary" and r["fault"])
        print(f"campaign (30% faults): {campaign.summary()}", flush=True)
        print(
            f"  upstream: {dict(by_provider)}; primary faults injected {faulted} "
            f"({100 * faulted / max(1, by_provider['primary']):.1f}% of its requests); "
            f"mid-answer cuts injected {cuts}, seen by clients {campaign.count('cut')}",
            flush=True,
        )
        print(
            f"  added latency vs baseline: p50 +{campaign.percentile(0.5) - baseline.percentile(0.5):.1f} ms, "
            f"p95 +{campaign.percentile(0.95) - baseline.percentile(0.95):.1f} ms, "
            f"p99 +{campaign.percentile(0.99) - baseline.percentile(0.99):.1f} ms",
            flush=True,
        )
        _control(fake + "/_fake/requests", "DELETE")
        forbidden = run(clients("primary-only"), requests=max(100, n // 10))
        sent += forbidden.sent
        reached = Counter(r["provider"] for r in _control(fake + "/_fake/requests")["requests"])
        print(
            f"forbidden fallback: {forbidden.summary()}; upstream {dict(reached)}; "
            f"requests reaching the forbidden fallback: {reached['fallback']}",
            flush=True,
        )
        _control(fake + "/_fake/requests", "DELETE")
        samples: list[tuple[float, int]] = []
        with _sampling_rss(gateway.pid, samples, fake):
            # As fast as the gateway answers: the more requests, the surer a leak shows.
            soak = run_load(
                clients("camp"), seconds=args.soak_seconds, concurrency=args.concurrency
            )
        sent += soak.sent
        _control(fake + "/_fake/requests", "DELETE")
        warm = [kib for t, kib in samples if t <= max(10.0, args.soak_seconds * 0.1)]
        tail = [kib for t, kib in samples if t >= args.soak_seconds * 0.9]
        rss_warm, rss_end, rss_max = warm[-1], max(tail), max(kib for _, kib in samples)
        print(f"soak {args.soak_seconds:.0f} s: {soak.summary()}", flush=True)
        growth = 100 * (rss_end - rss_warm) / rss_warm
        print(
            f"  gateway RSS: after warm-up {rss_warm / 1024:.1f} MiB, last 10% max {rss_end / 1024:.1f} MiB, "
            f"peak {rss_max / 1024:.1f} MiB; growth after warm-up {growth:+.1f}%",
            flush=True,
        )
        stack.close()  # stops regate: its audit writer flushes
        events = (directory / "audit.jsonl").read_text().splitlines()
        print(
            f"audit events {len(events)} for {sent} requests: {'equal' if len(events) == sent else 'MISMATCH'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
