"""``regate audit verify``: check an audit file's hash chain; name the first bad line."""

from __future__ import annotations

import argparse
import json
import sys

from engine.audit import verify_chain


def run_verify(args: argparse.Namespace) -> int:
    try:
        result = verify_chain(args.file)
    except OSError as exc:
        print(f"regate: error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(result.as_dict(), indent=2))
    elif result.ok:
        print(f"ok: {args.file}: {result.lines} events, chain intact")
    else:
        print(f"broken: {args.file}:{result.bad_line}: {result.reason}")
    return 0 if result.ok else 1
