"""A non-editable install works: schemas, the rules library and the bundles travel in the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("regate-*.whl")
    return built


def test_wheel_carries_schemas_rules_and_bundles(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "engine/_data/schemas/request.v1.json",
        "engine/_data/schemas/decision.v1.json",
        "engine/_data/schemas/config.v1.json",
        "engine/_data/schemas/audit-event.v1.json",
        "engine/_data/rules/regate/lib/pii.rego",
        "engine/_data/policy-bundles/default/.manifest",
        "engine/_data/policy-bundles/default/data.json",
        "engine/_data/policy-bundles/strict/policy/decision.rego",
        "engine/bundle/capabilities.json",
    ):
        assert expected in names, expected


def test_installed_wheel_checks_and_decides_outside_the_checkout(
    wheel: Path, tmp_path: Path
) -> None:
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with zipfile.ZipFile(wheel) as archive:  # a wheel install is an unzip into site-packages
        archive.extractall(site)
    # Dependencies come from the test environment, after the fresh site-packages;
    # PYTHONPATH entries are not scanned for .pth files, so the editable checkout stays out.
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    where = subprocess.run(
        [
            str(python),
            "-c",
            "from engine.resources import default_bundle_path; print(default_bundle_path())",
        ],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert where.startswith(site) and "_data" in where
    check = subprocess.run(
        [
            str(python),
            "-m",
            "adapters.cli.main",
            "check",
            where,
            str(Path(where).parent / "strict"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    request = tmp_path / "request.json"
    request.write_text(
        '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "mail a@b.co"}]}'
    )
    decided = subprocess.run(
        [
            str(python),
            "-m",
            "adapters.cli.main",
            "eval",
            where,
            "--request",
            str(request),
            "--format",
            "json",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert decided.returncode == 0, decided.stderr
    assert '"action": "redact"' in decided.stdout
