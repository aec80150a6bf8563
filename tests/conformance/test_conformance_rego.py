"""Every Rego test of ``rules/`` and the shipped bundles gives the same result on both
engines, and ``regate test --engine opa`` counts what ``opa test`` counts."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from adapters.cli.main import main
from tests.conformance.conftest import SHIPPED, EnginesFor, Tally
from tests.conftest import REPO, running_opa

NAMES = ("rules", "default", "strict")


def _relative(name: str) -> str:
    return SHIPPED[name].relative_to(REPO).as_posix()


@pytest.mark.parametrize("name", NAMES)
def test_rego_tests_agree(
    name: str, engines: EnginesFor, run: Callable[[Awaitable[Any]], Any], tally: Tally
) -> None:
    pair = engines(name)
    own = [m.path for m in pair.bundle.modules if m.is_test and not m.from_library]
    found = pair.embedded_tests.test_rules(own)
    assert sorted(run(pair.opa.test_rules(own))) == sorted(found)
    embedded = {(r.package, r.name): r.passed for r in pair.embedded_tests.run_tests(found)}
    opa = {(r.package, r.name): r.passed for r in run(pair.opa.run_tests(found))}
    tally.rego_tests += len(found)
    tally.divergences += sum(opa.get(key) != passed for key, passed in embedded.items())
    assert opa == embedded
    assert len(embedded) > 5
    assert all(embedded.values())


def _opa_test(opa_bin: str, name: str) -> tuple[int, int]:
    """(passed, failed) of ``opa test`` over the bundle's own test files."""
    paths = [_relative(name)] if name == "rules" else [_relative(name), _relative("rules")]
    result = subprocess.run(
        [opa_bin, "test", "--format", "json", "--ignore", "cases", *paths],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    ran = [
        t
        for t in json.loads(result.stdout)
        if t["location"]["file"].startswith(_relative(name) + "/")
    ]
    failed = sum(1 for t in ran if t.get("fail") or t.get("error"))
    return len(ran) - failed, failed


@pytest.fixture(scope="module")
def empty_opa(opa_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An OPA server holding nothing else: every module ``regate test`` writes makes OPA
    recompile all it holds, so the session's busy server would make this slow."""
    with running_opa(opa_bin, tmp_path_factory.mktemp("opa") / "opa.log") as url:
        yield url


@pytest.mark.parametrize("name", NAMES)
def test_regate_test_on_opa_counts_what_opa_test_counts(
    name: str, opa_bin: str, empty_opa: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["test", str(SHIPPED[name]), "--engine", "opa", "--opa-url", empty_opa, "--format", "json"]
    )
    report = json.loads(capsys.readouterr().out)["bundles"][0]
    rego = [r for r in report["results"] if r["kind"] == "rego"]
    regate = (sum(r["passed"] for r in rego), sum(not r["passed"] for r in rego))
    assert regate == _opa_test(opa_bin, name)
    assert code == 0
    assert report["failed"] == 0
    assert regate[0] > 5
