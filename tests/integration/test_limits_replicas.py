"""Quotas shared by two ``regate serve`` processes through one Redis: a limit of N requests
per minute holds as N in total under concurrent load, token budgets hold across replicas,
and a gateway whose Redis is away fails closed (503 ``limit.store_unavailable``).

Each test prints its figures (requests sent, served, refused, tokens) to the terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
import redis
import yaml

from engine.secrets import hash_caller_key, new_caller_key
from tests.conftest import free_port
from tests.integration.conftest import StartRegate, Upstream

REGATE = Path(sys.executable).with_name("regate")
N = 30  # requests per minute for principal rpm-bot
TOKENS = 1000  # tokens per minute for each budget team
PRINCIPALS: Mapping[str, str | None] = {
    "rpm-bot": None,
    "embed-bot": "embed-budget",
    "chat-bot": "chat-budget",
    "warm-up": None,
}
# 231 characters: an estimate of 58 tokens.
TEXT = "The quick brown fox jumps over the lazy dog, then naps in the afternoon sun. " * 3


@dataclass(frozen=True)
class Replicas:
    urls: tuple[str, str]
    keys: Mapping[str, str]  # principal id -> caller key
    redis_url: str

    def headers(self, principal: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[principal]}"}


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, (
            f"regate serve exited at start-up:\n{log.read_text(errors='replace')[-2000:]}"
        )
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "regate serve did not start"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def replicas(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    """Two ``regate serve`` processes with one config: the echo provider, limits in Redis."""
    root = tmp_path_factory.mktemp("replicas")
    keys = {pid: new_caller_key(pid) for pid in PRINCIPALS}
    config = {
        "server": {"host": "127.0.0.1"},
        "principals": [
            {
                "id": pid,
                "kind": "app",
                **({"team": team} if team else {}),
                "keys": [hash_caller_key(keys[pid])],
            }
            for pid, team in PRINCIPALS.items()
        ],
        "audit": {"path": str(root / "audit.jsonl"), "fsync": "never"},
        "limits": {
            "store": "redis",
            "redis_url": redis_url,
            "quotas": [
                {"scope": "principal", "requests_per_minute": N},
                {"scope": "team", "tokens_per_minute": TOKENS},
            ],
        },
    }
    config_path = root / "regate.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    with contextlib.ExitStack() as stack:
        started = []
        for i in range(2):
            port, log = free_port(), root / f"regate-{i}.log"
            sink = stack.enter_context(log.open("wb"))
            process = subprocess.Popen(
                [str(REGATE), "serve", "--config", str(config_path), "--port", str(port)],
                env=env,
                cwd=root,
                stdout=sink,
                stderr=sink,
            )
            stack.callback(_stop, process)
            started.append((process, f"http://127.0.0.1:{port}", log))
        for process, url, log in started:
            _wait_until_healthy(process, url, log)
            # One request each, so neither replica is still warming up when a burst starts.
            warm = httpx.post(
                url + "/v1/chat/completions",
                json={"model": "echo", "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": f"Bearer {keys['warm-up']}"},
                timeout=20,
            )
            assert warm.status_code == 200, warm.text
        yield Replicas((started[0][1], started[1][1]), keys, redis_url)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _fresh_window(needed: float = 8.0) -> int:
    """The current minute's number, after waiting for the next minute when fewer than
    ``needed`` seconds are left (a burst must not straddle two fixed windows)."""
    left = 60 - time.time() % 60
    if left < needed:
        time.sleep(left + 0.05)
    return int(time.time() // 60)


async def _burst(
    replicas: Replicas, principal: str, path: str, bodies: list[dict[str, Any]]
) -> list[tuple[int, httpx.Response]]:
    """Send every body at once, alternating replicas; ``(replica index, response)`` each."""
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=20, limits=limits) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    replicas.urls[i % 2] + path, json=body, headers=replicas.headers(principal)
                )
                for i, body in enumerate(bodies)
            )
        )
    return [(i % 2, r) for i, r in enumerate(responses)]


def _report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n  [limits across replicas] {line}")


def _check_refusal(response: httpx.Response, code: str, kind: str) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]  # OpenAI's error format
    assert (error["code"], error["type"]) == (code, kind)
    assert 1 <= int(response.headers["retry-after"]) <= 61
    assert response.headers["x-regate-decision-id"].startswith("req_")


async def test_requests_per_minute_hold_in_total_across_two_replicas(
    replicas: Replicas, capsys: pytest.CaptureFixture[str]
) -> None:
    minute = _fresh_window()
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
    results = await _burst(replicas, "rpm-bot", "/v1/chat/completions", [body] * (3 * N))

    served = [replica for replica, r in results if r.status_code == 200]
    refused = [r for _replica, r in results if r.status_code != 200]
    counter = redis.Redis.from_url(replicas.redis_url).get(
        f"regate:q:p:rpm-bot:requests_per_minute:{minute}"
    )
    _report(
        capsys,
        f"requests_per_minute={N}: sent {3 * N} over 2 replicas, served {len(served)} "
        f"(replica 0: {served.count(0)}, replica 1: {served.count(1)}), refused {len(refused)}; "
        f"redis counter {counter!r}",
    )
    assert len(served) == N, f"limit {N}/min across 2 replicas: {len(served)} served of {3 * N}"
    assert len(refused) == 2 * N
    for response in refused:
        _check_refusal(response, "limit.requests_per_minute", "requests")
    assert counter == str(N).encode()


async def test_a_token_budget_is_not_overspent_by_concurrent_requests(
    replicas: Replicas, capsys: pytest.CaptureFixture[str]
) -> None:
    """Embeddings, because the echo provider reports exactly the gateway's estimate for
    them: whatever is spent was reserved, so the budget bounds the real spend."""
    minute = _fresh_window()
    estimate = (len(TEXT) + 3) // 4
    results = await _burst(
        replicas,
        "embed-bot",
        "/v1/embeddings",
        [{"model": "text-embedding-3-small", "input": TEXT}] * 60,
    )

    served = [r for _replica, r in results if r.status_code == 200]
    spent = sum(r.json()["usage"]["prompt_tokens"] for r in served)
    counter = int(
        redis.Redis.from_url(replicas.redis_url).get(
            f"regate:q:t:embed-budget:tokens_per_minute:{minute}"
        )
        or 0
    )
    _report(
        capsys,
        f"tokens_per_minute={TOKENS}, {estimate} tokens a request: sent 60, served {len(served)}, "
        f"spent {spent} tokens (overspend {max(0, spent - TOKENS)}), redis counter {counter}",
    )
    assert all(r.json()["usage"]["prompt_tokens"] == estimate for r in served)
    assert spent <= TOKENS, f"spent {spent} of a {TOKENS}-token budget"
    assert len(served) == TOKENS // estimate, "the budget admitted fewer requests than fit"
    assert counter == spent
    for response in (r for _replica, r in results if r.status_code != 200):
        _check_refusal(response, "limit.tokens_per_minute", "tokens")


async def test_usage_settles_exactly_across_replicas(
    replicas: Replicas, capsys: pytest.CaptureFixture[str]
) -> None:
    """Chat reserves the prompt estimate plus ``max_tokens`` before the call; each replica
    then replaces its reservation with the reported usage, so the shared counter ends
    equal to what was really used and the budget is never overspent."""
    minute = _fresh_window()
    estimate = (len(TEXT) + 3) // 4
    max_tokens = 64
    body = {
        "model": "gpt-4o-mini",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": TEXT}],
    }
    results = await _burst(replicas, "chat-bot", "/v1/chat/completions", [body] * 40)

    served = [r for _replica, r in results if r.status_code == 200]
    used = sum(r.json()["usage"]["total_tokens"] for r in served)
    counter = int(
        redis.Redis.from_url(replicas.redis_url).get(
            f"regate:q:t:chat-budget:tokens_per_minute:{minute}"
        )
        or 0
    )
    reservation = estimate + max_tokens  # prompt estimate + the completion's ceiling
    _report(
        capsys,
        f"tokens_per_minute={TOKENS}, reservation {reservation} a request: sent 40, served {len(served)}, "
        f"reserved {len(served) * reservation}, reported usage {used} "
        f"(over budget by {max(0, used - TOKENS)}), redis counter {counter}",
    )
    assert 0 < len(served) * reservation <= TOKENS, "reservations went past the budget"
    assert used <= TOKENS + estimate, f"used {used} tokens of a {TOKENS}-token budget"
    assert counter == used, f"settled counter {counter} != reported usage {used}"
    for response in (r for _replica, r in results if r.status_code != 200):
        _check_refusal(response, "limit.tokens_per_minute", "tokens")


def test_an_unreachable_redis_fails_closed_in_each_clients_format(
    start_regate: StartRegate, upstream: Upstream
) -> None:
    regate = start_regate(
        limits={"store": "redis", "redis_url": f"redis://127.0.0.1:{free_port()}/0"}
    )
    hi = [{"role": "user", "content": "hi"}]
    try:
        with regate.openai() as oai, pytest.raises(openai.APIStatusError) as from_openai:
            oai.chat.completions.create(model="gpt-4o-mini", messages=hi)  # type: ignore[arg-type]
        with (
            regate.anthropic() as claude,
            pytest.raises(anthropic.APIStatusError) as from_anthropic,
        ):
            claude.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=hi)  # type: ignore[arg-type]
    finally:
        regate.stop()

    assert (
        from_openai.value.status_code == 503 and from_openai.value.code == "limit.store_unavailable"
    )
    body = from_anthropic.value.body
    assert from_anthropic.value.status_code == 503
    assert (
        isinstance(body, dict)
        and body["type"] == "error"
        and body["error"]["code"] == "limit.store_unavailable"
    )
    assert upstream.received("openai") == [] and upstream.received("anthropic") == []
