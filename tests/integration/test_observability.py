"""``/metrics`` (Prometheus text), ``/healthz`` and ``/readyz`` of a running gateway."""

from __future__ import annotations

import re

import openai
import pytest

from tests.integration.conftest import Regate, Upstream


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_metrics_count_requests_by_action_provider_and_status(
    regate: Regate, upstream: Upstream, oai: openai.OpenAI
) -> None:
    oai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "mail a@example.com"}]
    )
    with pytest.raises(openai.PermissionDeniedError):
        oai.chat.completions.create(
            model="gpt-unknown", messages=[{"role": "user", "content": "hi"}]
        )
    with regate.http() as http:
        response = http.get("/metrics")

    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    assert (
        samples[
            'regate_requests_total{api="openai.chat",action="redact",provider="openai",status="200"}'
        ]
        >= 1
    )
    assert (
        samples[
            'regate_requests_total{api="openai.chat",action="deny",provider="none",status="403"}'
        ]
        >= 1
    )
    assert samples["regate_decision_seconds_count"] >= 2
    assert (
        samples['regate_decision_seconds_bucket{le="+Inf"}']
        == samples["regate_decision_seconds_count"]
    )
    assert samples['regate_upstream_seconds_count{provider="openai"}'] >= 1
    assert any(
        re.fullmatch(r'regate_upstream_seconds_bucket\{provider="openai",le="[0-9.e+-]+"\}', k)
        for k in samples
    )
    assert samples["regate_audit_queue_depth"] >= 0
    assert "# TYPE regate_decision_seconds histogram" in response.text
    assert "# TYPE regate_audit_queue_depth gauge" in response.text


def test_upstream_failures_are_counted_per_provider(
    regate: Regate, upstream: Upstream, oai: openai.OpenAI
) -> None:
    with regate.http() as http:
        before = _samples(http.get("/metrics").text).get(
            'regate_upstream_errors_total{provider="flaky",kind="500"}', 0.0
        )
        upstream.fail("flaky", "status=500")
        oai.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "hi"}])
        after = _samples(http.get("/metrics").text)

    assert after['regate_upstream_errors_total{provider="flaky",kind="500"}'] == before + 1


def test_healthz_and_readyz(regate: Regate) -> None:
    with regate.http() as http:
        health = http.get("/healthz")
        ready = http.get("/readyz")

    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True and body["engine"] == "embedded"
    assert body["bundle"]["digest"]
    assert {"openai", "anthropic", "gemini", "azure-eu"} <= set(body["providers"])
    assert health.headers["x-regate-decision-id"].startswith("req_")
