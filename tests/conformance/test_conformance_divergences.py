"""Known divergences of the embedded engine from OPA (docs/engines.md): each reproducer
still diverges, and ``regate check`` refuses the builtins involved.

When a reproducer stops diverging (a regorus upgrade fixed it), this test fails so the
builtin can be admitted again in ``engine/bundle/capabilities.json``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import regorus

from adapters.cli.main import main
from tests.conftest import BundleFactory

REPRODUCERS = {
    # builtin: Rego module whose data.repro.out differs between the engines
    "json.marshal": 'package repro\n\nout := [json.marshal("<a href=x>&amp;</a>"), json.marshal(1.0)]\n',
    "json.marshal_with_options": 'package repro\n\nout := json.marshal_with_options("<b>", {"pretty": false})\n',
}


def _opa(opa_bin: str, module: Path) -> Any:
    result = subprocess.run(
        [opa_bin, "eval", "--format", "json", "-d", str(module), "data.repro.out"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(result.stdout)["result"][0]["expressions"][0]["value"]


def _regorus(text: str) -> Any:
    engine = regorus.Engine()
    engine.set_rego_v0(False)
    engine.add_policy("repro.rego", text)
    return engine.eval_rule("data.repro.out")


@pytest.mark.parametrize("builtin", sorted(REPRODUCERS))
def test_reproducer_still_diverges(builtin: str, opa_bin: str, tmp_path: Path) -> None:
    module = tmp_path / "repro.rego"
    module.write_text(REPRODUCERS[builtin])
    assert _opa(opa_bin, module) != _regorus(REPRODUCERS[builtin])


@pytest.mark.parametrize("builtin", sorted(REPRODUCERS))
def test_regate_check_refuses_the_builtin(
    builtin: str, make_bundle: BundleFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = make_bundle({"policy/repro.rego": REPRODUCERS[builtin]})
    assert main(["check", str(bundle), "--format", "json"]) == 1
    assert f"builtin {builtin} is not supported" in capsys.readouterr().out
