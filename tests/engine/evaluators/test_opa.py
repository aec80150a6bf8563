"""The opa evaluator: namespacing, evaluation on a real OPA server, and failing closed."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from engine.bundle.loader import load_bundle
from engine.config import default_config
from engine.errors import BundleError, EvaluationError
from engine.evaluators.base import evaluator_class
from engine.evaluators.opa import OpaEvaluator, namespace_for, rewrite_module
from engine.pipeline import DecisionPipeline
from tests.conftest import BundleFactory, free_port

POLICY = """package app
import rego.v1
import data.app.lib

answer := lib.double(input.n) if input.n
greeting := data.app.words[input.lang]
conflict := 1 if input.a
conflict := 2 if input.b
"""
LIBRARY = "package app.lib\nimport rego.v1\ndouble(x) := x * 2\n"
TESTS = """package app_test
import rego.v1
import data.app

test_ok if app.answer == 4 with input.n as 2

test_wrong if app.answer == 5 with input.n as 2
"""
DATA = {"app": {"words": {"en": "hello", "fr": "bonjour"}}}
MODULES = [("policy.rego", POLICY), ("lib/lib.rego", LIBRARY)]


@pytest.fixture
async def opa(opa_server: str) -> AsyncIterator[OpaEvaluator]:
    evaluator = OpaEvaluator(MODULES, DATA, url=opa_server, timeout_ms=5_000)
    yield evaluator
    await evaluator.unload()
    await evaluator.close()


def test_rewrite_moves_package_and_data_roots_only() -> None:
    text = (
        "# package x, data.y\n"
        "package a.b\n"
        "import data.c.d\n"
        'x := [data, data.e, data["f"], input.data, data_g, my.data]\n'
        's := "data.h \\" data"\n'
        "r := `data.i`\n"
    )
    out = rewrite_module(text, "ns.n1")
    assert out.splitlines() == [
        "# package x, data.y",
        "package ns.n1.a.b",
        "import data.ns.n1.c.d",
        'x := [data.ns.n1, data.ns.n1.e, data.ns.n1["f"], input.data, data_g, my.data]',
        's := "data.h \\" data"',
        "r := `data.i`",
    ]


def test_namespace_is_addressed_by_content() -> None:
    assert namespace_for(MODULES, DATA) == namespace_for(list(reversed(MODULES)), DATA)
    assert namespace_for(MODULES, DATA) != namespace_for(MODULES, {"app": {"words": {}}})
    assert namespace_for(MODULES, DATA) != namespace_for(MODULES[:1], DATA)


def test_registered_as_opa() -> None:
    assert evaluator_class("opa") is OpaEvaluator


def test_from_bundle_takes_url_and_time_out_from_config(make_bundle: BundleFactory) -> None:
    bundle = load_bundle(
        make_bundle({"policy.rego": POLICY, "lib/lib.rego": LIBRARY, "data.json": DATA})
    )
    config = default_config({})
    config = replace(
        config, policy=replace(config.policy, opa_url="http://127.0.0.1:9", timeout_ms=42)
    )
    evaluator = OpaEvaluator.from_bundle(bundle, config)
    assert (evaluator.where, evaluator.timeout_ms) == ("127.0.0.1:9", 42)
    assert evaluator.prefix == OpaEvaluator.from_bundle(bundle, config).prefix
    assert evaluator.prefix != OpaEvaluator.from_bundle(bundle, config, private=True).prefix


def test_a_url_with_a_path_is_refused() -> None:
    with pytest.raises(BundleError, match="opa_url"):
        OpaEvaluator(MODULES, DATA, url="http://127.0.0.1:8181/v1")


async def test_evaluates_values_and_undefined(opa: OpaEvaluator) -> None:
    assert await opa.evaluate("data.app.answer", {"n": 21}) == 42
    assert await opa.evaluate("data.app.greeting", {"lang": "fr"}) == "bonjour"
    assert await opa.evaluate("data.app.greeting", {"lang": "de"}) is None
    assert await opa.evaluate("data.app.answer", {}) is None


async def test_an_evaluation_error_raises(opa: OpaEvaluator) -> None:
    assert await opa.evaluate("data.app.conflict", {"a": True}) == 1
    with pytest.raises(EvaluationError, match="HTTP 500"):
        await opa.evaluate("data.app.conflict", {"a": True, "b": True})


async def test_only_rule_paths_are_queries(opa: OpaEvaluator) -> None:
    with pytest.raises(EvaluationError, match="rule paths"):
        await opa.evaluate("data.app.answer == 1", {})


async def test_bundles_with_the_same_packages_do_not_collide(
    opa: OpaEvaluator, opa_server: str
) -> None:
    other = OpaEvaluator(MODULES, {"app": {"words": {"en": "hi"}}}, url=opa_server)
    try:
        assert await other.evaluate("data.app.greeting", {"lang": "en"}) == "hi"
        assert await opa.evaluate("data.app.greeting", {"lang": "en"}) == "hello"
    finally:
        await other.unload()
        await other.close()


async def test_the_same_content_shares_one_namespace(opa: OpaEvaluator, opa_server: str) -> None:
    await opa.prepare()
    twin = OpaEvaluator(list(reversed(MODULES)), DATA, url=opa_server)
    try:
        assert twin.prefix == opa.prefix
        assert await twin.evaluate("data.app.answer", {"n": 1}) == 2
    finally:
        await twin.close()  # closing leaves the namespace to the other evaluator
    assert await opa.evaluate("data.app.answer", {"n": 3}) == 6


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
        return str(response.read().decode())


async def test_unload_removes_the_namespace(opa_server: str) -> None:
    evaluator = OpaEvaluator(MODULES, DATA, url=opa_server, namespace="unload_me")
    try:
        assert await evaluator.evaluate("data.app.answer", {"n": 1}) == 2
        assert "regate_bundles/unload_me/lib/lib.rego" in _get(f"{opa_server}/v1/policies")
        await evaluator.unload()
    finally:
        await evaluator.close()
    assert "unload_me" not in _get(f"{opa_server}/v1/policies")
    assert "unload_me" not in _get(f"{opa_server}/v1/data/regate_bundles")


async def test_a_module_opa_refuses_names_file_and_line(opa_server: str) -> None:
    broken = OpaEvaluator(
        [("bad.rego", "package bad\n\nx := undefined_fn(1)\n")], {}, url=opa_server
    )
    try:
        with pytest.raises(BundleError) as refused:
            await broken.prepare()
        assert (refused.value.file, refused.value.line) == ("bad.rego", 3)
        assert "regate_bundles" not in str(refused.value)
        with pytest.raises(EvaluationError, match="not ready"):
            await broken.evaluate("data.bad.x", {})
    finally:
        await broken.unload()
        await broken.close()


async def test_rego_tests_run_on_opa(opa_server: str) -> None:
    evaluator = OpaEvaluator([*MODULES, ("policy_test.rego", TESTS)], DATA, url=opa_server)
    try:
        tests = await evaluator.test_rules(["policy_test.rego"])
        assert tests == [
            ("app_test", "test_ok", "policy_test.rego", 5),
            ("app_test", "test_wrong", "policy_test.rego", 7),
        ]
        results = {r.name: (r.passed, r.error) for r in await evaluator.run_tests(tests)}
        assert results == {"test_ok": (True, None), "test_wrong": (False, "undefined")}
    finally:
        await evaluator.unload()
        await evaluator.close()


async def test_unreachable_opa_raises() -> None:
    evaluator = OpaEvaluator(MODULES, DATA, url=f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(EvaluationError, match="unreachable"):
            await evaluator.evaluate("data.app.answer", {"n": 1})
    finally:
        await evaluator.close()


@pytest.fixture
async def slow_opa() -> AsyncIterator[str]:
    """A stand-in OPA that accepts pushes at once and holds decisions until torn down."""
    released = asyncio.Event()

    async def accept(request: web.Request) -> web.Response:
        if request.method == "GET":
            return web.json_response({"result": []})
        return web.Response(status=204 if request.path.startswith("/v1/data") else 200)

    async def stall(request: web.Request) -> web.Response:
        await released.wait()
        return web.json_response({"result": {"action": "allow", "reasons": []}})

    app = web.Application()
    app.router.add_route("POST", "/v1/data/{path:.*}", stall)
    app.router.add_route("*", "/{path:.*}", accept)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    released.set()
    await runner.cleanup()


async def test_slow_opa_times_out(slow_opa: str) -> None:
    evaluator = OpaEvaluator(MODULES, DATA, url=slow_opa, timeout_ms=100)
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(EvaluationError, match="within 100 ms"):
            await evaluator.evaluate("data.app.answer", {"n": 1})
        assert asyncio.get_running_loop().time() - started < 2
    finally:
        await evaluator.close()


def _pipeline(bundle_dir: Path, url: str, timeout_ms: int) -> tuple[DecisionPipeline, OpaEvaluator]:
    bundle = load_bundle(bundle_dir)
    config = default_config({})
    config = replace(
        config, policy=replace(config.policy, engine="opa", opa_url=url, timeout_ms=timeout_ms)
    )
    evaluator = OpaEvaluator.from_bundle(bundle, config)
    return DecisionPipeline(
        bundle, evaluator, providers=["echo"], routes={}, timeout_ms=timeout_ms
    ), evaluator


DOC: dict[str, Any] = {
    "model": "m",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
}


@pytest.mark.parametrize("where", ["unreachable", "slow"])
async def test_the_pipeline_denies_with_policy_error(
    where: str, slow_opa: str, make_bundle: BundleFactory
) -> None:
    policy = 'package regate\nimport rego.v1\ndecision := {"action": "allow", "reasons": []}\n'
    url = slow_opa if where == "slow" else f"http://127.0.0.1:{free_port()}"
    pipeline, evaluator = _pipeline(make_bundle({"policy.rego": policy}), url, 100)
    try:
        outcome = await pipeline.decide(json.loads(json.dumps(DOC)))
    finally:
        await evaluator.close()
    assert outcome.decision["reasons"][0]["code"] == "policy.error"
    assert (outcome.status, outcome.forward) == (503, None)


async def test_the_pipeline_decides_on_opa(opa_server: str, make_bundle: BundleFactory) -> None:
    policy = """package regate
import rego.v1
decision := {"action": "deny", "reasons": [{"code": "x.y", "message": input.model}], "status": 451}
"""
    pipeline, evaluator = _pipeline(make_bundle({"policy.rego": policy}), opa_server, 5_000)
    try:
        outcome = await pipeline.decide(json.loads(json.dumps(DOC)))
    finally:
        await evaluator.unload()
        await evaluator.close()
    assert outcome.decision == {
        "action": "deny",
        "reasons": [{"code": "x.y", "message": "m"}],
        "status": 451,
    }
    assert outcome.status == 451
