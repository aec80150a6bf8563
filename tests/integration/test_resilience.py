"""Resilience over loopback: retries that wait what the provider asked, breakers a policy can
see and route around, fallbacks that never leave the decision's route, and streams cut
mid-answer that the SDKs raise on and the audit log records as failed.

Routes (see conftest): ``o4-mini`` falls back from ``flaky`` to ``backup``. The bundle
here routes ``o4-mini`` by the health of ``flaky``, and for ``eu-bot`` to ``flaky`` only.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import BundleFactory
from tests.integration.conftest import Regate, StartRegate, Upstream, chat, messages

HI, HI_MESSAGES = chat("hi"), messages("hi")
LONG = "a long enough answer please"

ROUTE_BY_HEALTH = """package regate

import rego.v1

flaky := [{"provider": "flaky", "model": "gpt-4o-mini"}]

backup := [{"provider": "backup", "model": "gpt-4o-mini"}]

# eu-bot may use flaky only, whatever its health: backup is forbidden to it.
targets := flaky if {
	input.principal.id == "eu-bot"
} else := flaky if {
	input.context.providers.flaky.healthy
} else := backup

decision := {
	"action": "route",
	"reasons": [{"code": "route.test", "message": sprintf("flaky is %s", [input.context.providers.flaky.state])}],
	"route": {"targets": targets},
}
"""


@pytest.fixture
def gateway(start_regate: StartRegate, make_bundle: BundleFactory) -> Regate:
    bundle = make_bundle(
        {
            ".manifest": {"revision": "resilience", "roots": ["regate"]},
            "policy.rego": ROUTE_BY_HEALTH,
        }
    )
    return start_regate(
        policy={"bundle": str(bundle), "timeout_ms": 2000},
        routing={
            "max_retries_per_target": 1,
            "backoff_base_ms": 10,
            "breaker": {"failure_threshold": 2, "cooldown_seconds": 2},
        },
    )


def _events(regate: Regate) -> list[dict[str, Any]]:
    regate.stop()  # flushes the audit writer
    return [json.loads(line) for line in regate.audit_path.read_text(encoding="utf-8").splitlines()]


def _breaker_state(regate: Regate, provider: str) -> float:
    with regate.http() as http:
        text = http.get("/metrics").text
    match = re.search(
        rf'^regate_circuit_breaker_state\{{provider="{provider}"\}} (\S+)$', text, re.M
    )
    assert match is not None, text
    return float(match.group(1))


def test_a_retry_waits_the_retry_after_the_provider_asked_for(
    gateway: Regate, upstream: Upstream
) -> None:
    upstream.fail("flaky", "status=429;retry-after=0.3")

    with gateway.openai() as oai:
        reply = oai.chat.completions.create(model="o4-mini", messages=HI)

    first, second = upstream.received("flaky")
    assert reply.choices[0].message.content == "echo: hi"
    assert second.time - first.time >= 0.3
    assert upstream.received("backup") == []


def test_policy_routes_around_an_open_breaker_until_a_probe_closes_it(
    gateway: Regate, upstream: Upstream
) -> None:
    upstream.fail(
        "flaky", "status=503", times=2
    )  # the first attempt and its retry: the breaker opens

    with gateway.openai() as oai:
        with pytest.raises(openai.InternalServerError):
            oai.chat.completions.create(model="o4-mini", messages=HI)
        assert _breaker_state(gateway, "flaky") == 2.0
        around = oai.chat.completions.create(model="o4-mini", messages=HI)
        time.sleep(2.05)  # the cool-down: half-open, healthy to policy again
        assert _breaker_state(gateway, "flaky") == 1.0
        probed = oai.chat.completions.create(model="o4-mini", messages=HI)
    assert _breaker_state(gateway, "flaky") == 0.0

    assert around.choices[0].message.content == probed.choices[0].message.content == "echo: hi"
    assert [r.provider for r in upstream.fake.recorder.requests] == [
        "flaky",
        "flaky",
        "backup",
        "flaky",
    ]
    events = _events(gateway)
    assert [e["route"] for e in events] == [
        [{"provider": "flaky", "model": "gpt-4o-mini"}],
        [{"provider": "backup", "model": "gpt-4o-mini"}],  # the decision itself left flaky out
        [{"provider": "flaky", "model": "gpt-4o-mini"}],
    ]
    assert [e["reasons"][0]["message"] for e in events] == [
        "flaky is closed",
        "flaky is open",
        "flaky is half_open",
    ]


def test_a_fallback_the_decision_forbids_is_never_reached(
    gateway: Regate, upstream: Upstream
) -> None:
    upstream.fail("flaky", "status=500", times=1)
    upstream.fail("flaky", "status=429;retry-after=0", times=None)

    with gateway.openai("eu-bot") as oai, pytest.raises(openai.RateLimitError) as limited:
        oai.chat.completions.create(model="o4-mini", messages=HI)
    with gateway.anthropic("eu-bot") as claude, pytest.raises(anthropic.APIStatusError) as refused:
        claude.messages.create(model="o4-mini", max_tokens=10, messages=HI_MESSAGES)

    assert limited.value.status_code == 429 and limited.value.code == "upstream_rate_limited"
    # The breaker opened after two failures in a row: the Anthropic client is told in its format.
    assert refused.value.status_code == 503 and isinstance(refused.value.body, dict)
    assert (
        refused.value.body["type"] == "error"
        and refused.value.body["error"]["code"] == "upstream_circuit_open"
    )
    assert upstream.received("backup") == [] and len(upstream.received("flaky")) == 2
    events = _events(gateway)
    assert [(e["status"], e["provider"], e["route"]) for e in events] == [
        (429, None, [{"provider": "flaky", "model": "gpt-4o-mini"}]),
        (503, None, [{"provider": "flaky", "model": "gpt-4o-mini"}]),
    ]


def test_a_fallback_carries_no_header_or_key_of_the_provider_before(
    start_regate: StartRegate, upstream: Upstream
) -> None:
    regate = start_regate()
    upstream.fail("flaky", "reset")

    with regate.openai() as oai:
        oai.chat.completions.create(model="o4-mini", messages=HI)
    regate.stop()

    [to_flaky], [to_backup] = upstream.received("flaky"), upstream.received("backup")
    assert to_flaky.headers["authorization"] == f"Bearer {upstream.keys['flaky']}"
    assert to_backup.headers["authorization"] == f"Bearer {upstream.keys['backup']}"
    sent = to_backup.raw + repr(to_backup.headers).encode() + repr(to_backup.query).encode()
    assert upstream.keys["flaky"].encode() not in sent and to_backup.body == to_flaky.body


def test_streams_cut_mid_answer_raise_in_both_sdks_and_are_audited_as_failed(
    start_regate: StartRegate, upstream: Upstream
) -> None:
    regate = start_regate()
    upstream.fail("flaky", "disconnect_after_chunks=2", times=2)
    openai_text: list[str] = []
    anthropic_text: list[str] = []

    with regate.openai() as oai, pytest.raises(openai.APIError) as cut_openai:
        for chunk in oai.chat.completions.create(model="o4-mini", messages=chat(LONG), stream=True):
            openai_text += [chunk.choices[0].delta.content or ""] if chunk.choices else []
    with (
        regate.anthropic() as claude,
        pytest.raises(anthropic.APIStatusError) as cut_anthropic,
        claude.messages.stream(model="o4-mini", max_tokens=100, messages=messages(LONG)) as stream,
    ):
        for text in stream.text_stream:
            anthropic_text.append(text)

    assert "'flaky'" in cut_openai.value.message and "'flaky'" in str(cut_anthropic.value)
    assert "".join(openai_text) != f"echo: {LONG}" and "".join(anthropic_text) != f"echo: {LONG}"
    # Cut after the first byte: no fallback (backup never asked), the failure is in the audit.
    assert upstream.received("backup") == []
    events = _events(regate)
    assert [(e["api"], e["provider"]) for e in events] == [
        ("openai.chat", "flaky"),
        ("anthropic.messages", "flaky"),
    ]
    for event in events:
        assert event["error"]["code"].startswith("upstream_"), event
