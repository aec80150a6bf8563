"""Conformance suite fixtures: both engines on each shipped bundle, on one event loop,
and a tally of what was compared, printed at the end of every run that compared anything."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import pytest

from engine.bundle.loader import Bundle, load_bundle
from engine.config import Config, default_config
from engine.evaluators.embedded import EmbeddedEvaluator
from engine.evaluators.opa import OpaEvaluator
from engine.resources import data_dir

T = TypeVar("T")
SHIPPED = {
    "rules": data_dir("rules"),
    "default": data_dir("policy-bundles") / "default",
    "strict": data_dir("policy-bundles") / "strict",
}


@dataclass
class Tally:
    """What the suite compared; every divergence is also a test failure."""

    documents: dict[str, int] = field(default_factory=dict)
    cases: int = 0
    rego_tests: int = 0
    divergences: int = 0

    def __bool__(self) -> bool:
        return bool(self.documents or self.cases or self.rego_tests)


TALLY = pytest.StashKey[Tally]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[TALLY] = Tally()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    tally = config.stash.get(TALLY, None)
    if not tally:
        return
    per_bundle = ", ".join(f"{name} {count:,}" for name, count in sorted(tally.documents.items()))
    terminalreporter.write_sep("-", "engine conformance (embedded VM + interpreter vs OPA)")
    terminalreporter.write_line(
        f"generated documents: {sum(tally.documents.values()):,} ({per_bundle or 'none'}); "
        f"YAML cases: {tally.cases}; Rego tests: {tally.rego_tests}; divergences: {tally.divergences}"
    )


@pytest.fixture(scope="session")
def tally(request: pytest.FixtureRequest) -> Tally:
    return request.config.stash[TALLY]


@pytest.fixture(scope="session")
def run() -> Iterator[Callable[[Awaitable[T]], T]]:
    """Run a coroutine on the suite's one event loop (OPA sessions live on it)."""
    loop = asyncio.new_event_loop()
    yield lambda awaitable: loop.run_until_complete(awaitable)  # type: ignore[arg-type]
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


def opa_config(opa_url: str) -> Config:
    """The embedded defaults, with the opa engine at ``opa_url`` (a generous time-out:
    the suite compares decisions, not speed)."""
    config = default_config({})
    return replace(
        config, policy=replace(config.policy, engine="opa", opa_url=opa_url, timeout_ms=10_000)
    )


@dataclass(frozen=True)
class Engines:
    """One shipped bundle on both engines. ``embedded`` is built as the gateway builds
    it (decision rule compiled for the VM); ``embedded_tests`` also holds the test
    modules, as ``opa`` does (they define no decision, and each module written to
    OPA costs a recompilation of everything it holds)."""

    bundle: Bundle
    embedded: EmbeddedEvaluator
    embedded_tests: EmbeddedEvaluator
    opa: OpaEvaluator


EnginesFor = Callable[[str], Engines]


@pytest.fixture(scope="session")
def engines(opa_server: str, run: Callable[[Awaitable[Any]], Any]) -> Iterator[EnginesFor]:
    """``engines(name)``: a shipped bundle on both engines, loaded once per session."""
    cache: dict[str, Engines] = {}
    config = opa_config(opa_server)

    def get(name: str) -> Engines:
        if name not in cache:
            bundle = load_bundle(SHIPPED[name])
            opa = OpaEvaluator.from_bundle(bundle, config, tests=True, private=True)
            run(opa.prepare())
            cache[name] = Engines(
                bundle,
                EmbeddedEvaluator.from_bundle(bundle, config),
                EmbeddedEvaluator(bundle.policy_modules(tests=True), bundle.data),
                opa,
            )
        return cache[name]

    yield get
    for pair in cache.values():  # the session's OPA server goes with its namespaces
        run(pair.opa.close())
