"""Fixtures shared by every suite: small bundles on disk, and the real components."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

BundleFactory = Callable[..., Path]


def require_component(name: str, found: str | None) -> str:
    """Path of a real component; skips the test when absent, except in CI where it fails."""
    if found:
        return found
    message = f"{name} is not installed (run scripts/test-components)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def opa_bin() -> str:
    candidates = [os.environ.get("REGATE_OPA_BIN"), shutil.which("opa"), str(Path.home() / "go/bin/opa")]
    return require_component("OPA", next((c for c in candidates if c and Path(c).is_file()), None))


@pytest.fixture
def make_bundle(tmp_path: Path) -> BundleFactory:
    """Write a bundle directory from ``{relative path: text or JSON-able value}``."""

    def factory(files: Mapping[str, Any], *, name: str = "bundle") -> Path:
        root = tmp_path / name
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            text = content if isinstance(content, str) else json.dumps(content)
            path.write_text(text, encoding="utf-8")
        root.mkdir(parents=True, exist_ok=True)
        return root

    return factory
