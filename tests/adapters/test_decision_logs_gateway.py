"""A running gateway uploads OPA decision logs to a log service on loopback: one event
per decided request, with OPA's fields, input masked as the audit level says, and
never a provider key or a caller key in the bytes that leave regate."""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.fake_provider import Settings, create_fake_provider, run_in_thread
from adapters.http.app import create_app
from adapters.http.gateway import Gateway
from engine.config import parse_config
from engine.resources import default_bundle_path
from engine.secrets import hash_caller_key, new_caller_key

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
EMAIL = "jane.doe@example.com"
LABELS = {"env": "t"}


@dataclass
class LogService:
    """What the log service received: raw bodies as sent, and the events in them."""

    bodies: list[bytes] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def logs(request: Request) -> Response:
            body = await request.body()
            events = json.loads(gzip.decompress(body))
            with self.lock:
                self.bodies.append(body)
                self.events.extend(events)
                self.headers.append(dict(request.headers))
            return Response(status_code=204)

        return Starlette(routes=[Route("/logs", logs, methods=["POST"])])

    def wait_for(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            assert time.monotonic() < deadline, f"only {len(self.events)} of {count} events arrived"
            time.sleep(0.02)


@dataclass
class Running:
    url: str
    caller_key: str
    provider_key: str
    log: LogService
    stop: Callable[[], None]


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[[str], Running]]:
    stack = contextlib.ExitStack()

    def start(level: str) -> Running:
        provider_key = f"sk-provider-{secrets.token_hex(16)}"
        caller_key = new_caller_key("billing-bot")
        fake = create_fake_provider(
            name="upstream", settings=Settings(api_keys={"upstream": provider_key})
        )
        upstream_url = stack.enter_context(run_in_thread(fake.app))
        log = LogService()
        log_url = stack.enter_context(run_in_thread(log.app()))
        upstream = {
            "type": "openai",
            "base_url": upstream_url + "/v1",
            "api_key": {"env": "DL_KEY"},
        }
        config_text = yaml.safe_dump(
            {
                "principals": [
                    {"id": "billing-bot", "kind": "app", "keys": [hash_caller_key(caller_key)]}
                ],
                "providers": {"upstream": upstream},
                "routes": {
                    "gpt-4o-mini": [{"provider": "upstream"}],
                    "*": [{"provider": "echo", "model": "echo"}],
                },
                "audit": {"path": str(tmp_path / "audit.jsonl"), "prompt": level, "fsync": "never"},
                "decision_logs": {
                    "url": log_url,
                    "min_delay_seconds": 0.05,
                    "max_delay_seconds": 0.1,
                    "labels": LABELS,
                },
            }
        )
        env = {"DL_KEY": provider_key}
        config = parse_config(
            config_text, source=str(tmp_path / "regate.yaml"), env=env, base_dir=tmp_path
        )
        gateway = stack.enter_context(contextlib.ExitStack())
        url = gateway.enter_context(run_in_thread(create_app(Gateway(config, env=env))))
        return Running(url, caller_key, provider_key, log, gateway.close)

    yield start
    stack.close()


def _send_requests(running: Running) -> dict[str, str]:
    """One allowed, one redacted, one denied and one echoed request; decision id -> what it was."""
    sent: dict[str, str] = {}
    with openai.OpenAI(
        base_url=running.url + "/v1", api_key=running.caller_key, max_retries=0
    ) as client:
        for name, model, text in [
            ("allow", "gpt-4o-mini", "What is the capital of France?"),
            ("redact", "gpt-4o-mini", f"mail me at {EMAIL} please"),
            ("echo", "echo", "hello echo"),
        ]:
            messages: Any = [{"role": "user", "content": text}]
            raw = client.chat.completions.with_raw_response.create(model=model, messages=messages)
            assert raw.http_response.status_code == 200
            sent[raw.headers["x-regate-decision-id"]] = name
        with pytest.raises(openai.PermissionDeniedError) as denied:
            client.chat.completions.create(
                model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}]
            )
        sent[denied.value.response.headers["x-regate-decision-id"]] = "deny"
    return sent


@pytest.mark.parametrize("level", ["full", "none"])
def test_gateway_uploads_one_opa_event_per_decision_without_secrets(
    start_gateway: Callable[[str], Running], level: str
) -> None:
    running = start_gateway(level)
    sent = _send_requests(running)
    running.log.wait_for(len(sent))  # by the periodic upload, before shutdown
    metrics = httpx.get(running.url + "/metrics").text
    running.stop()  # the shutdown flush must not send anything twice

    events = {e["decision_id"]: e for e in running.log.events}
    assert len(running.log.events) == len(sent) and set(events) == set(sent)
    labels = {e["labels"]["id"] for e in running.log.events}
    assert len(labels) == 1 and running.log.events[0]["labels"]["app"] == "regate"
    assert running.log.events[0]["labels"]["env"] == "t"
    bundle = default_bundle_path().name
    for decision_id, what in sent.items():
        event = events[decision_id]
        assert event["path"] == "regate/decision"
        assert event["bundles"] == {bundle: {"revision": "regate-default-1"}}
        assert RFC3339.match(event["timestamp"]), event["timestamp"]
        assert event["requested_by"] == "billing-bot"
        assert event["result"]["action"] == {"echo": "allow"}.get(what, what)
        assert (
            event["input"]["id"] == decision_id
            and event["input"]["principal"]["id"] == "billing-bot"
        )
        assert event["metrics"]["timer_rego_query_eval_ns"] > 0
    assert events_by(sent, events, "deny")["result"]["reasons"][0]["code"] == "model.not_allowed"
    assert events_by(sent, events, "deny")["result"]["status"] == 403

    redacted = events_by(sent, events, "redact")
    assert (
        redacted["result"]["redactions"]
        and redacted["input"]["findings"][0]["detector"] == "pii.email"
    )
    everything = b"".join(gzip.decompress(body) for body in running.log.bodies)
    if level == "full":
        assert (
            redacted["input"]["messages"][0]["content"][0]["text"] == f"mail me at {EMAIL} please"
        )
    else:
        assert "/input/messages" in redacted["erased"] and "messages" not in redacted["input"]
        assert EMAIL.encode() not in everything and b"capital of France" not in everything

    for secret in (running.provider_key, running.caller_key):
        for blob in (everything, *running.log.bodies, json.dumps(running.log.headers).encode()):
            assert secret.encode() not in blob
    assert "regate_decision_logs_dropped_total 0\n" in metrics
    assert re.search(r"^regate_decision_logs_buffer_depth \d+$", metrics, re.M)


def events_by(sent: dict[str, str], events: dict[str, dict[str, Any]], what: str) -> dict[str, Any]:
    [decision_id] = [d for d, w in sent.items() if w == what]
    return events[decision_id]
