"""The decision path end to end on small bundles: fail closed on every policy fault."""

from __future__ import annotations

from typing import Any

import pytest

from engine.bundle.loader import load_bundle
from engine.document import complete
from engine.enforce import Target
from engine.evaluators.embedded import EmbeddedEvaluator
from engine.pipeline import DecisionPipeline
from tests.conftest import BundleFactory

MANIFEST = {"revision": "t", "roots": ["regate"]}
ROUTES = {"*": (Target("echo", "echo"),)}


def request(text: str = "hello", **extra: Any) -> dict[str, Any]:
    partial = {
        "api": "openai.chat",
        "operation": "chat",
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
        "tools": [],
        "params": {},
        "metadata": {},
    } | extra
    return complete(partial)


def pipeline_for(
    make_bundle: BundleFactory, rego: str, data: dict | None = None, **kwargs: Any
) -> DecisionPipeline:
    files: dict[str, Any] = {
        ".manifest": MANIFEST,
        "policy.rego": "package regate\n\nimport rego.v1\n\n" + rego,
    }
    if data is not None:
        files["data.json"] = data
    bundle = load_bundle(make_bundle(files))
    return DecisionPipeline(
        bundle,
        EmbeddedEvaluator.from_bundle(bundle),
        providers={"echo", "eu"},
        routes=ROUTES,
        **kwargs,
    )


@pytest.mark.parametrize(
    "rego",
    [
        "x := 1\n",  # decision undefined
        'decision := {"action": "redact"}\n',  # action rule broken (no redactions)
        'decision := {"action": "route", "route": {"targets": [{"provider": "ghost"}]}}\n',
        'decision := {"action": "allow", "unexpected": true}\n',
        'decision := {"action": "redact", "redactions": '
        '[{"path": "/nope", "start": 0, "end": 1, "replacement": "x"}]}\n',
        'decision := {"action": "allow"} if { 1 / 0 }\n',
    ],
    ids=[
        "undefined",
        "action-rule",
        "unknown-provider",
        "schema",
        "bad-redaction",
        "runtime-error",
    ],
)
async def test_policy_faults_fail_closed(make_bundle: BundleFactory, rego: str) -> None:
    outcome = await pipeline_for(make_bundle, rego).decide(request())
    assert outcome.action == "deny"
    assert outcome.decision["reasons"][0]["code"] == "policy.error"
    assert outcome.status == 503
    assert outcome.forward is None


async def test_fail_open_is_explicit_and_keeps_the_reason(make_bundle: BundleFactory) -> None:
    outcome = await pipeline_for(make_bundle, "x := 1\n", on_error="allow").decide(request())
    assert outcome.failed_open and outcome.allowed
    assert outcome.decision["reasons"][0]["code"] == "policy.error"


async def test_deny_uses_policy_status(make_bundle: BundleFactory) -> None:
    rego = 'decision := {"action": "deny", "status": 451, "reasons": [{"code": "x.y", "message": "no"}]}\n'
    outcome = await pipeline_for(make_bundle, rego).decide(request())
    assert (outcome.status, outcome.forward) == (451, None)


async def test_redact_route_and_limits_are_enforced(make_bundle: BundleFactory) -> None:
    rego = (
        "decision := {\n"
        '  "action": "route",\n'
        '  "redactions": [{"path": "/messages/0/content/0/text", "start": 0, "end": 5, "replacement": "[X]"}],\n'
        '  "route": {"targets": [{"provider": "eu", "model": "small"}]},\n'
        '  "limits": {"max_tokens": 64, "quotas": [{"scope": "principal", "requests_per_minute": 5}]},\n'
        "}\n"
    )
    doc = request("hello world", params={"max_tokens": 1000})
    outcome = await pipeline_for(make_bundle, rego).decide(doc)
    assert outcome.forward is not None
    assert outcome.forward["messages"][0]["content"][0]["text"] == "[X] world"
    assert outcome.forward["params"]["max_tokens"] == 64
    assert outcome.targets == (Target("eu", "small"),)
    assert outcome.quotas == ({"scope": "principal", "requests_per_minute": 5},)
    assert doc["messages"][0]["content"][0]["text"] == "hello world"


async def test_request_schema_violation_denies_400_naming_pointer(
    make_bundle: BundleFactory,
) -> None:
    schema = {
        "type": "object",
        "required": ["metadata"],
        "properties": {"metadata": {"required": ["ticket"]}},
    }
    data = {"regate": {"request_schemas": {"tickets": schema}}}
    outcome = await pipeline_for(make_bundle, 'decision := {"action": "allow"}\n', data).decide(
        request()
    )
    assert outcome.status == 400
    reason = outcome.decision["reasons"][0]
    assert reason["code"] == "schema.tickets"
    assert "/metadata" in reason["message"]


async def test_detector_findings_reach_the_policy(make_bundle: BundleFactory) -> None:
    data = {
        "regate": {
            "detectors": [
                {
                    "id": "demo.word",
                    "category": "demo",
                    "pattern": "secret-[0-9]+",
                    "validator": "none",
                }
            ]
        }
    }
    rego = (
        'decision := {"action": "deny", "reasons": [{"code": f.detector, "message": "found"}]} if {\n'
        "  some f in input.findings\n}\n"
        'default decision := {"action": "allow"}\n'
    )
    pipeline = pipeline_for(make_bundle, rego, data)
    denied = await pipeline.decide(request("my secret-42 here"))
    assert denied.decision["reasons"][0]["code"] == "demo.word"
    assert denied.request["findings"][0]["start"] == 3
    assert (await pipeline.decide(request("nothing"))).action == "allow"


async def test_unrouted_model_is_denied(make_bundle: BundleFactory) -> None:
    bundle = load_bundle(
        make_bundle(
            {
                ".manifest": MANIFEST,
                "policy.rego": 'package regate\n\ndecision := {"action": "allow"}\n',
            }
        )
    )
    pipeline = DecisionPipeline(
        bundle, EmbeddedEvaluator.from_bundle(bundle), providers={"echo"}, routes={}
    )
    outcome = await pipeline.decide(request())
    assert outcome.decision["reasons"][0]["code"] == "route.none"
