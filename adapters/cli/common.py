"""Helpers shared by the CLI commands: loading bundles and request files, printing problems."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from engine.bundle.loader import Bundle, load_bundle
from engine.errors import RegateError

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2


def load_bundle_arg(path: str, args: argparse.Namespace) -> Bundle:
    """Load ``path``, verifying it first when ``--verification-key`` was given."""
    key_file = getattr(args, "verification_key", None)
    key = Path(key_file).read_bytes() if key_file else None
    return load_bundle(
        path,
        verification_key=key,
        verification_alg=getattr(args, "verification_alg", None),
        scope=getattr(args, "scope", None),
    )


def missing_bundles(paths: list[str]) -> bool:
    """Print a usage error for each bundle path that does not exist; whether any is missing."""
    missing = [path for path in paths if not Path(path).exists()]
    for path in missing:
        print(f"regate: error: {path}: no such bundle (directory or .tar.gz)", file=sys.stderr)
    return bool(missing)


def read_structured_file(path: str) -> Any:
    """A JSON or YAML file (``-`` for standard input)."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    if path.endswith(".json") or text.lstrip().startswith(("{", "[")):
        return json.loads(text)
    return yaml.safe_load(text)


def problem(err: RegateError) -> dict[str, Any]:
    return {"file": err.file, "line": err.line, "code": err.code, "message": err.message}


def print_error(err: BaseException) -> None:
    print(f"regate: error: {err}", file=sys.stderr)
