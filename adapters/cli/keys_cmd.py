"""``regate keys new``: mint a caller key; only its hash goes into the config."""

from __future__ import annotations

import argparse

from adapters.cli.common import EXIT_USAGE, print_error
from engine.errors import ConfigError
from engine.secrets import hash_caller_key, new_caller_key


def run_new(args: argparse.Namespace) -> int:
    try:
        key = new_caller_key(args.principal)
    except ConfigError as exc:
        print_error(exc)
        return EXIT_USAGE
    print(
        f"# caller key for principal {args.principal!r}: shown once, store it in the app's secret store"
    )
    print(key)
    print("# add this line to the principal's keys in the regate config:")
    print(f'- "{hash_caller_key(key)}"')
    return 0
