"""Paths and helpers shared by the CLI suites."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
DEFAULT_BUNDLE = REPO / "policy-bundles" / "default"
STRICT_BUNDLE = REPO / "policy-bundles" / "strict"
EXAMPLES = REPO / "examples"


@dataclass(frozen=True)
class Result:
    """What a ``regate`` run left: exit code, standard output, standard error."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Regate = Callable[..., Result]


def write_files(root: Path, files: Mapping[str, str]) -> Path:
    """Write ``{relative path: text}`` under ``root``; returns ``root``."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root
