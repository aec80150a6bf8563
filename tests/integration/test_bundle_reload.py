"""A gateway fed by a bundle service: hot reload under load, bad bundles refused, cold start from cache."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from adapters.fake_provider.server import run_in_thread
from adapters.http.app import create_app
from adapters.http.gateway import Gateway
from engine.config import Config, parse_config
from tests.conftest import free_port
from tests.engine.bundle.bundle_server import (
    PATH,
    BundleServer,
    default_files,
    es256_keys,
    signed,
    with_compile_error,
)

KEY, PUBLIC = es256_keys()
FORGER, _ = es256_keys()
TOKEN = "bundle-token-6b1e0f"  # noqa: S105 - in the URL's query: must never show in logs, /readyz or /metrics
NEW_MODEL = "gpt-5-preview"  # denied by v1, allowed by v4
CHAT = "/v1/chat/completions"


def gateway_config(tmp_path: Path, bundle_url: str) -> Config:
    (tmp_path / "bundle.pub").write_bytes(PUBLIC)
    data = {
        "server": {"host": "127.0.0.1"},
        "policy": {
            "bundle": f"{bundle_url}?token={TOKEN}",
            "verification_key": {"file": "bundle.pub"},
            "polling": {"min_delay_seconds": 0.05, "max_delay_seconds": 0.1},
            "bundle_cache": "cache",
        },
        "audit": {"path": "audit/regate.jsonl", "fsync": "never"},
        "limits": {"quotas": []},
    }
    text = yaml.safe_dump(data)
    return parse_config(text, source=str(tmp_path / "regate.yaml"), env={}, base_dir=tmp_path)


@contextlib.contextmanager
def serve_gateway(config: Config) -> Iterator[str]:
    with run_in_thread(create_app(Gateway(config, env={}))) as url:
        yield url


def chat(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16}


async def wait_until(
    client: httpx.AsyncClient, check: Callable[[dict[str, Any]], bool], timeout: float = 10
) -> dict[str, Any]:
    """Poll ``/readyz`` until ``check`` holds for its body; returns that body."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = (await client.get("/readyz")).json()
        if check(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz never satisfied the check: {body}")
        await asyncio.sleep(0.02)


def last_error(body: dict[str, Any]) -> dict[str, Any]:
    return body["bundle"]["service"]["last_error"] or {}


def read_audit(path: Path) -> dict[str, dict[str, Any]]:
    return {event["id"]: event for event in map(json.loads, path.read_text().splitlines())}


async def test_gateway_under_load_survives_three_swaps_with_two_bad_bundles(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="regate.bundle")
    bundles = BundleServer()
    v1 = default_files("v1")
    bundles.publish(signed(v1, KEY))
    sent: list[tuple[str, int, str, str]] = []  # (model, status, first reason code, decision id)

    with run_in_thread(bundles.app) as service_url:
        config = gateway_config(tmp_path, service_url + PATH)
        with serve_gateway(config) as url:
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                ready = await wait_until(client, lambda b: b["ready"])
                assert ready["bundle"]["revision"] == "v1"
                stop = asyncio.Event()

                async def traffic(worker: int) -> None:
                    n = 0
                    while not stop.is_set():
                        model = NEW_MODEL if (n + worker) % 2 else "echo"
                        n += 1
                        response = await client.post(CHAT, json=chat(model))
                        reasons = response.json().get("error", {}).get("reasons") or [{"code": ""}]
                        decision_id = response.headers["x-regate-decision-id"]
                        sent.append((model, response.status_code, reasons[0]["code"], decision_id))

                async def more_traffic(count: int = 40, timeout: float = 10) -> None:
                    """Let ``count`` more requests through (the phase under test serves real traffic)."""
                    target, deadline = len(sent) + count, time.monotonic() + timeout
                    while len(sent) < target and time.monotonic() < deadline:
                        await asyncio.sleep(0.02)

                workers = [asyncio.create_task(traffic(i)) for i in range(4)]
                await more_traffic()

                # Swap 1: a bundle signed with the wrong key.
                bundles.publish(signed(default_files("v2-forged", allow=(NEW_MODEL,)), FORGER))
                refused = await wait_until(
                    client, lambda b: last_error(b).get("reason") == "signature"
                )
                assert refused["ready"] is True and refused["bundle"]["revision"] == "v1"
                assert refused["bundle"]["service"]["failing"] is True
                await more_traffic()

                # Swap 2: properly signed, but it does not compile.
                bundles.publish(
                    signed(with_compile_error(default_files("v3-broken", allow=(NEW_MODEL,))), KEY)
                )
                refused = await wait_until(
                    client, lambda b: last_error(b).get("reason") == "invalid_bundle"
                )
                assert (
                    refused["bundle"]["revision"] == "v1"
                    and "rego compile error" in last_error(refused)["message"]
                )
                await more_traffic()

                # Swap 3: a good bundle activates without a restart.
                v4 = default_files("v4", allow=(NEW_MODEL,))
                bundles.publish(signed(v4, KEY))
                active = await wait_until(client, lambda b: b["bundle"]["revision"] == "v4")
                assert active["bundle"]["service"]["failing"] is False
                assert last_error(active)["reason"] == "invalid_bundle"  # the history stays visible
                await more_traffic()
                stop.set()
                await asyncio.gather(*workers)
                metrics = (await client.get("/metrics")).text

    statuses = {status for _, status, _, _ in sent}
    print(f"\nbundle swaps under load: {len(sent)} requests, statuses {sorted(statuses)}, 0 failed")
    assert len(sent) >= 160
    assert statuses <= {200, 403}, "no request may fail (5xx) because of a bad bundle"
    assert all(status == 200 for model, status, _, _ in sent if model == "echo")
    assert all(code == "model.not_allowed" for _, status, code, _ in sent if status == 403)

    # Every decision was made by a good bundle, and answered as that bundle says.
    audit = read_audit(config.audit.path)
    revisions: dict[str, int] = {}
    for model, status, _, decision_id in sent:
        revision = audit[decision_id]["bundle"]["revision"]
        revisions[revision] = revisions.get(revision, 0) + 1
        if model == NEW_MODEL:
            assert status == (200 if revision == "v4" else 403), (revision, status)
    assert set(revisions) == {"v1", "v4"} and min(revisions.values()) > 20

    assert "regate_bundle_activations_total 2" in metrics
    assert 'regate_bundle_failures_total{reason="signature"}' in metrics
    assert 'regate_bundle_failures_total{reason="invalid_bundle"}' in metrics
    assert 'regate_bundle_info{revision="v4",digest="sha256:' in metrics
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("(signature, bundle_signature_error)" in line for line in failures)
    assert any("(invalid_bundle, bundle_error)" in line and "v1" in line for line in failures)
    assert TOKEN not in metrics + json.dumps(active) + caplog.text


async def test_not_ready_until_the_service_answers_then_cold_start_from_cache(
    tmp_path: Path,
) -> None:
    port = free_port()
    service_url = f"http://127.0.0.1:{port}"
    config = gateway_config(tmp_path, service_url + PATH)
    bundles = BundleServer()
    bundles.publish(signed(default_files("c1"), KEY))

    with serve_gateway(config) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            # No service, no cache: not ready, and every request fails closed.
            readyz = await client.get("/readyz")
            assert readyz.status_code == 503
            assert readyz.json()["bundle"]["service"]["active"] is False
            assert last_error(readyz.json())["reason"] == "network"
            denied = await client.post(CHAT, json=chat("echo"))
            assert denied.status_code == 503 and denied.json()["error"]["code"] == "policy.error"
            decided = await client.post("/v1/decide", json=chat("echo"))
            assert decided.json()["decision"]["reasons"][0]["code"] == "policy.error"

            # The service comes up: the bundle activates without a restart.
            with run_in_thread(bundles.app, port=port):
                body = await wait_until(client, lambda b: b["ready"])
                assert (
                    body["bundle"]["revision"] == "c1"
                    and body["bundle"]["service"]["source"] == "service"
                )
                assert (await client.post(CHAT, json=chat("echo"))).status_code == 200
    assert (config.policy.bundle_cache / "bundle.tar.gz").is_file()

    # A cold start while the service is down serves the cached bundle (verified again).
    with serve_gateway(config) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            readyz = await client.get("/readyz")
            assert readyz.status_code == 200
            service = readyz.json()["bundle"]["service"]
            assert service["source"] == "cache" and service["revision"] == "c1"
            assert service["last_error"]["reason"] == "network"
            assert (await client.post(CHAT, json=chat("echo"))).status_code == 200
