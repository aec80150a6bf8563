"""Decision logs in OPA's format: event fields and masking, size-capped gzip chunks,
the uploader's buffer, retries and shutdown, and the config section that turns it on.

The gateway end to end (a real receiver on loopback) is in
``test_decision_logs_gateway.py``.
"""

from __future__ import annotations

import asyncio
import doctest
import gzip
import json
import os
import random
import re
from collections.abc import Callable, Collection
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.decision_logs import DecisionLogUploader, decision_log_uploader, encoder, event
from adapters.decision_logs.encoder import pack, serialize
from adapters.decision_logs.event import PromptLevel, decision_event, masked_input
from adapters.http.metrics import Metrics
from adapters.opa_backoff import retry_delay
from engine.config import DecisionLogsConfig, parse_config
from engine.errors import ConfigError
from engine.pipeline import Outcome

URL = "http://logs.test"
TEXT = "/messages/0/content/0/text"


def _gunzip(body: bytes) -> list[dict[str, Any]]:
    value = json.loads(gzip.decompress(body))
    assert isinstance(value, list)
    return value


def _noise(rng: random.Random, size: int) -> str:
    """Text that compresses poorly, so chunks fill up after a few events."""
    return rng.randbytes(size // 2).hex()


def _events(count: int, *, text_size: int = 300, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    return [
        serialize({"decision_id": f"req_{i}", "input": {"text": _noise(rng, text_size)}})
        for i in range(count)
    ]


def _outcome(*, allowed: bool = True) -> Outcome:
    request = {
        "version": "regate.request/v1",
        "id": "req_1",
        "time": "2026-01-01T00:00:00.000Z",
        "principal": {"id": "billing-bot", "kind": "app", "labels": {}},
        "api": "openai.chat",
        "operation": "chat",
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "mail jane@example.com"}]}
        ],
        "params": {"stop": ["secret stop text"]},
        "metadata": {"ticket": "T-1"},
        "findings": [
            {"detector": "pii.email", "category": "pii", "path": TEXT, "start": 5, "end": 21}
        ],
        "size": {"bytes": 99, "text_chars": 21, "estimated_tokens": 6},
    }
    if not allowed:
        denial = {"action": "deny", "reasons": [{"code": "model.not_allowed"}], "status": 403}
        return Outcome(request, denial, None, policy_ms=1.5)
    forward = {
        **request,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "mail [EMAIL]"}]}],
    }
    decision = {
        "action": "redact",
        "reasons": [{"code": "pii.email"}],
        "redactions": [{"path": TEXT}],
    }
    return Outcome(request, decision, forward, policy_ms=1.5)


def _config(**overrides: Any) -> DecisionLogsConfig:
    values: dict[str, Any] = {
        "url": URL,
        "min_delay_seconds": 100.0,
        "max_delay_seconds": 200.0,
        **overrides,
    }
    return DecisionLogsConfig(**values)


class LogService:
    """An ``httpx.MockTransport`` log service: records every upload; the calls numbered in
    ``failing`` (1-based; default the first ``failures``) fail with 500 or ``error``."""

    def __init__(
        self,
        failures: int = 0,
        *,
        failing: Collection[int] = (),
        error: Callable[[], Exception] | None = None,
    ) -> None:
        self.failing = set(failing) or set(range(1, failures + 1))
        self.error = error
        self.calls: list[httpx.Request] = []
        self.accepted: list[dict[str, Any]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        if len(self.calls) in self.failing:
            if self.error is not None:
                raise self.error()
            return httpx.Response(500)
        self.accepted.extend(_gunzip(request.content))
        return httpx.Response(204)

    def uploader(
        self, config: DecisionLogsConfig | None = None, **kwargs: Any
    ) -> DecisionLogUploader:
        return DecisionLogUploader(
            config or _config(),
            transport=httpx.MockTransport(self.handler),
            rng=random.Random(1),
            **kwargs,
        )

    def ids(self) -> list[str]:
        return [e["decision_id"] for e in self.accepted]


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("module", [encoder, event], ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    failures, tried = doctest.testmod(module)
    assert tried > 0 and failures == 0


# -- events ---------------------------------------------------------------------------------


def test_event_has_opa_fields() -> None:
    labels = {"id": "p-1", "version": "0.1.0", "app": "regate"}
    out = decision_event(
        _outcome(),
        decision_id="req_1",
        timestamp="2026-01-01T00:00:00.123Z",
        bundle=("default", "rev-7"),
        path="regate/decision",
        level="full",
        labels=labels,
        handler_ms=4.25,
    )
    assert (
        out["labels"] == labels
        and out["decision_id"] == "req_1"
        and out["path"] == "regate/decision"
    )
    assert out["bundles"] == {"default": {"revision": "rev-7"}}
    assert out["result"]["action"] == "redact"
    assert out["requested_by"] == "billing-bot"
    assert out["timestamp"] == "2026-01-01T00:00:00.123Z"
    assert out["metrics"] == {
        "timer_rego_query_eval_ns": 1_500_000,
        "timer_server_handler_ns": 4_250_000,
    }
    assert "erased" not in out


def test_level_full_logs_the_document_as_received() -> None:
    value, erased = masked_input(_outcome(), "full")
    assert value["messages"][0]["content"][0]["text"] == "mail jane@example.com" and erased == []


def test_level_redacted_logs_the_document_as_forwarded() -> None:
    value, erased = masked_input(_outcome(), "redacted")
    assert value["messages"][0]["content"][0]["text"] == "mail [EMAIL]" and erased == []


@pytest.mark.parametrize(("level", "allowed"), [("none", True), ("redacted", False)])
def test_content_is_erased_at_level_none_and_for_denied_requests_at_redacted(
    level: Any, allowed: bool
) -> None:
    value, erased = masked_input(_outcome(allowed=allowed), level)  # a denial has no redacted form
    assert erased == ["/input/messages", "/input/params", "/input/metadata"]
    assert set(value) == {
        "version",
        "id",
        "time",
        "principal",
        "api",
        "operation",
        "model",
        "findings",
        "size",
    }
    text = json.dumps(value)
    assert "jane" not in text and "secret stop text" not in text and "T-1" not in text
    assert value["findings"][0]["detector"] == "pii.email"


def test_masking_never_mutates_the_outcome() -> None:
    outcome = _outcome()
    before = json.dumps(outcome.as_dict(), sort_keys=True)
    levels: list[PromptLevel] = ["none", "redacted", "full"]
    for level in levels:
        decision_event(
            outcome,
            decision_id="r",
            timestamp="t",
            bundle=("b", ""),
            path="p",
            level=level,
            labels={},
        )
    assert json.dumps(outcome.as_dict(), sort_keys=True) == before


# -- chunks ---------------------------------------------------------------------------------


def test_chunks_stay_within_the_limit_and_keep_every_event_in_order() -> None:
    events = _events(120)
    chunks, too_large = pack(events, 4096)
    assert too_large == [] and len(chunks) > 5
    assert all(len(c.body) <= 4096 for c in chunks)
    assert all(len(c.body) > 4096 // 2 for c in chunks[:-1])  # full chunks, not one event each
    decoded = [e for c in chunks for e in _gunzip(c.body)]
    assert [e["decision_id"] for e in decoded] == [f"req_{i}" for i in range(120)]
    assert [serialize(e) for e in decoded] == events
    assert [e for c in chunks for e in c.events] == events


def test_compressible_events_share_a_chunk_beyond_the_uncompressed_limit() -> None:
    events = [
        serialize({"decision_id": f"req_{i}", "input": {"text": "hello " * 50}}) for i in range(200)
    ]
    chunks, _ = pack(events, 4096)
    assert sum(len(e) for e in chunks[0].events) > 4 * 4096  # sizes are measured after compression
    assert all(len(c.body) <= 4096 for c in chunks)


def test_an_event_too_large_for_any_chunk_is_set_apart() -> None:
    big = serialize({"decision_id": "big", "input": {"text": os.urandom(3000).hex()}})
    small = _events(3)
    chunks, too_large = pack([small[0], big, small[1], small[2]], 2048)
    assert too_large == [big]
    assert [e for c in chunks for e in c.events] == small


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=1500), min_size=1, max_size=40),
    limit=st.integers(min_value=512, max_value=6000),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_any_events_and_limit_pack_within_the_limit(
    sizes: list[int], limit: int, seed: int
) -> None:
    rng = random.Random(seed)
    events = [
        serialize({"i": i, "t": _noise(rng, n) if i % 2 else "ab" * n}) for i, n in enumerate(sizes)
    ]
    chunks, too_large = pack(events, limit)
    assert all(
        len(c.body) <= limit and _gunzip(c.body) == [json.loads(e) for e in c.events]
        for c in chunks
    )
    assert sorted([e for c in chunks for e in c.events] + too_large) == sorted(events)
    assert all(len(gzip.compress(b"[" + e + b"]")) > limit - 64 for e in too_large)


# -- uploads --------------------------------------------------------------------------------


async def test_upload_is_gzip_json_posted_to_logs() -> None:
    service = LogService()
    uploader = service.uploader(_config(url=URL + "/base/", headers={"x-tenant": "t1"}))
    uploader.submit({"decision_id": "req_1"})
    assert await uploader.flush() is True
    [call] = service.calls
    assert str(call.url) == URL + "/base/logs" and call.method == "POST"
    assert (
        call.headers["content-encoding"] == "gzip"
        and call.headers["content-type"] == "application/json"
    )
    assert call.headers["x-tenant"] == "t1" and call.headers["user-agent"].startswith("regate/")
    assert service.ids() == ["req_1"] and uploader.uploaded == 1 and uploader.depth == 0
    await uploader.close()


async def test_failed_uploads_are_retried_and_arrive_exactly_once() -> None:
    service = LogService(failures=2)
    uploader = service.uploader(_config(upload_size_limit_bytes=2048))
    for i in range(30):
        uploader.submit({"decision_id": f"req_{i}"})
    assert await uploader.flush() is False
    assert await uploader.flush() is False
    assert uploader.depth == 30 and service.accepted == []
    assert await uploader.flush() is True
    assert service.ids() == [f"req_{i}" for i in range(30)]
    assert len(service.calls) == 3 and uploader.failed_uploads == 2 and uploader.dropped == 0
    await uploader.close()


async def test_only_the_chunks_that_failed_are_sent_again() -> None:
    service = LogService(failing=[2, 3])  # the first chunk gets through, the second fails twice
    uploader = service.uploader(_config(upload_size_limit_bytes=1024))
    rng = random.Random(5)
    for i in range(12):
        uploader.submit({"decision_id": f"req_{i}", "input": {"text": _noise(rng, 400)}})
    assert await uploader.flush() is False
    first = service.ids()
    assert 0 < len(first) < 12 and uploader.depth == 12 - len(first)
    assert await uploader.flush() is False
    assert await uploader.flush() is True
    assert service.ids() == [f"req_{i}" for i in range(12)]  # each exactly once, in order
    assert all(len(call.content) <= 1024 for call in service.calls)
    await uploader.close()


async def test_background_task_backs_off_after_failures_then_delivers() -> None:
    service = LogService(failures=2, error=lambda: httpx.ConnectError("refused"))
    uploader = service.uploader(_config(min_delay_seconds=0.01, max_delay_seconds=0.02))
    uploader.start()
    uploader.submit({"decision_id": "req_a"})
    uploader.submit({"decision_id": "req_b"})
    await _until(lambda: len(service.accepted) == 2)
    assert service.ids() == ["req_a", "req_b"] and len(service.calls) == 3
    await uploader.close()
    assert len(service.calls) == 3  # nothing left to send at shutdown


def test_backoff_grows_by_1_6_up_to_the_cap_with_jitter() -> None:
    rng = random.Random(3)
    assert retry_delay(0, 10.0, rng) == 0.0
    for retries, expected in [(1, 0.16), (2, 0.256), (3, 0.4096), (20, 10.0)]:
        delays = [retry_delay(retries, 10.0, rng) for _ in range(50)]
        assert all(expected * 0.8 <= d <= expected * 1.2 for d in delays), retries
        assert max(delays) - min(delays) > 0


async def test_a_full_buffer_drops_the_oldest_and_counts_it() -> None:
    service = LogService()
    uploader = service.uploader(_config(buffer_size_limit_events=3))
    for i in range(5):
        uploader.submit({"decision_id": f"req_{i}"})
    assert uploader.depth == 3 and uploader.dropped == 2
    assert await uploader.flush() is True
    assert service.ids() == ["req_2", "req_3", "req_4"]
    await uploader.close()


async def test_events_put_back_after_a_failure_count_against_the_buffer() -> None:
    service = LogService(failures=1)
    uploader = service.uploader(_config(buffer_size_limit_events=3))
    for i in range(3):
        uploader.submit({"decision_id": f"req_{i}"})
    assert await uploader.flush() is False
    uploader.submit({"decision_id": "req_3"})
    assert uploader.depth == 3 and uploader.dropped == 1
    assert await uploader.flush() is True
    assert service.ids() == ["req_1", "req_2", "req_3"]
    await uploader.close()


async def test_an_oversized_event_loses_its_input_and_one_still_too_large_is_dropped() -> None:
    service = LogService()
    uploader = service.uploader(_config(upload_size_limit_bytes=1024))
    big = os.urandom(2000).hex()
    uploader.submit(
        {"decision_id": "big-input", "input": {"text": big}, "result": {"action": "allow"}}
    )
    uploader.submit({"decision_id": "big-result", "result": {"text": os.urandom(2000).hex()}})
    uploader.submit({"decision_id": "nan", "result": {"score": float("nan")}})
    uploader.submit({"decision_id": "small"})
    assert await uploader.flush() is True
    assert service.ids() == ["big-input", "small"]
    assert service.accepted[0]["erased"] == ["/input"] and "input" not in service.accepted[0]
    assert service.accepted[0]["result"] == {"action": "allow"}
    assert uploader.dropped == 2 and uploader.uploaded == 2
    await uploader.close()


async def test_a_half_full_buffer_uploads_before_the_delay() -> None:
    service = LogService()
    uploader = service.uploader(_config(buffer_size_limit_events=4))  # delays of 100 s and more
    uploader.start()
    uploader.submit({"decision_id": "req_0"})
    await asyncio.sleep(0.05)
    assert service.calls == []
    uploader.submit({"decision_id": "req_1"})
    await _until(lambda: len(service.accepted) == 2, timeout=2.0)
    await uploader.close()


async def test_close_flushes_what_is_buffered() -> None:
    service = LogService()
    uploader = service.uploader()
    uploader.start()
    for i in range(3):
        uploader.submit({"decision_id": f"req_{i}"})
    await uploader.close()
    assert service.ids() == ["req_0", "req_1", "req_2"] and uploader.depth == 0


async def test_close_gives_up_after_the_shutdown_timeout_and_counts_the_loss() -> None:
    service = LogService(failures=1_000_000)
    uploader = service.uploader(shutdown_timeout=0.3)
    uploader.submit({"decision_id": "req_0"})
    uploader.submit({"decision_id": "req_1"})
    started = asyncio.get_running_loop().time()
    await uploader.close()
    assert asyncio.get_running_loop().time() - started < 1.5
    assert len(service.calls) >= 2 and uploader.dropped == 2 and uploader.depth == 0


async def test_close_cancels_an_upload_that_hangs_and_counts_its_events() -> None:
    calls: list[httpx.Request] = []

    async def hang(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        await asyncio.sleep(30)
        return httpx.Response(204)

    uploader = DecisionLogUploader(
        _config(buffer_size_limit_events=2),
        transport=httpx.MockTransport(hang),
        shutdown_timeout=0.3,
    )
    uploader.start()
    uploader.submit({"decision_id": "req_0"})  # half full: the upload starts at once, and hangs
    await _until(lambda: len(calls) == 1, timeout=2.0)
    started = asyncio.get_running_loop().time()
    await uploader.close()
    assert asyncio.get_running_loop().time() - started < 1.0
    assert uploader.dropped == 1 and uploader.uploaded == 0 and uploader.depth == 0


def test_labels_carry_a_process_id_and_configured_labels_cannot_override_it() -> None:
    first = LogService().uploader(_config(labels={"env": "prod", "id": "spoofed"}))
    second = LogService().uploader()
    assert first.labels["env"] == "prod" and first.labels["app"] == "regate"
    assert (
        re.fullmatch(r"[0-9a-f-]{36}", first.labels["id"])
        and first.labels["id"] != second.labels["id"]
    )
    assert first.labels["version"] == second.labels["version"] != ""


# -- config and metrics -----------------------------------------------------------------------


def _parse(text: str) -> Any:
    return parse_config(text, source="regate.yaml", env={}, base_dir=Path("."))


def test_decision_logs_are_off_unless_configured() -> None:
    config = _parse("")
    assert config.decision_logs is None
    assert decision_log_uploader(config, Metrics()) is None


def test_decision_logs_config_takes_opa_defaults() -> None:
    config = _parse("decision_logs: {url: 'https://logs.example/v1', labels: {env: prod}}\n")
    logs = config.decision_logs
    assert logs == DecisionLogsConfig(url="https://logs.example/v1", labels={"env": "prod"})
    assert (logs.upload_size_limit_bytes, logs.buffer_size_limit_events) == (32768, 10000)
    assert (logs.min_delay_seconds, logs.max_delay_seconds) == (300.0, 600.0)


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ("{url: 'https://u:pw@logs.example'}", "decision_logs.url: must not contain a password"),
        ("{url: 'https://logs.example', headers: {Authorization: x}}", "carries a credential"),
        ("{url: 'https://logs.example', min_delay_seconds: 5}", "set both"),
        (
            "{url: 'https://logs.example', min_delay_seconds: 5, max_delay_seconds: 1}",
            "not be greater",
        ),
        ("{url: 'ftp://logs.example'}", "decision_logs.url"),
        ("{url: 'https://logs.example', upload_size_limit_bytes: 10}", "upload_size_limit_bytes"),
    ],
)
def test_bad_decision_logs_config_is_refused_at_its_line(section: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        _parse(f"server: {{port: 1}}\ndecision_logs: {section}\n")
    assert words in str(info.value) and "regate.yaml:2" in str(info.value)
    assert "pw@" not in str(info.value)


async def test_gauges_expose_drops_and_depth() -> None:
    metrics = Metrics()
    config = _parse("decision_logs: {url: 'http://logs.test', buffer_size_limit_events: 1}\n")
    uploader = decision_log_uploader(config, metrics)
    assert uploader is not None
    uploader.submit({"decision_id": "a"})
    uploader.submit({"decision_id": "b"})
    text = metrics.render()
    assert "regate_decision_logs_dropped_total 1\n" in text
    assert "regate_decision_logs_buffer_depth 1\n" in text
    assert "# TYPE regate_decision_logs_uploaded_total gauge" in text
