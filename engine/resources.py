"""Locate the data that ships with regate: schemas, the Rego library and bundles.

In a source checkout they sit at the repository root; in an installed wheel they
are copied under ``engine/_data`` (see ``pyproject.toml``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """Directory of shipped data: ``schemas``, ``rules`` or ``policy-bundles``."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"regate data directory {name!r} is missing from this installation")


def schema_path(file_name: str) -> Path:
    return data_dir("schemas") / file_name


def default_bundle_path() -> Path:
    return data_dir("policy-bundles") / "default"
