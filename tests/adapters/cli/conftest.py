"""Fixtures for the CLI suites: run ``regate`` in-process (fast) or as a real process (exit codes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from adapters.cli.main import main

from .support import REPO, Regate, Result


@pytest.fixture
def regate(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Regate:
    """``regate(*argv)`` runs ``adapters.cli.main.main`` in this process.

    argparse's usage errors leave through ``SystemExit``; they come back as the
    exit code, as a shell would see them.
    """
    # main() sets RUST_BACKTRACE for regorus; monkeypatch puts the old value back.
    monkeypatch.setenv("RUST_BACKTRACE", "0")

    def run(*argv: str | Path) -> Result:
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture
def regate_process() -> Regate:
    """``regate_process(*argv)`` runs ``python -m adapters.cli.main`` as a child process."""

    def run(*argv: str | Path) -> Result:
        done = subprocess.run(
            [sys.executable, "-m", "adapters.cli.main", *map(str, argv)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return run
