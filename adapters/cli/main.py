"""``regate`` command line (Contract 7): one sub-command per module in this package."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from adapters.cli import (
    audit_cmd,
    build_cmd,
    check_cmd,
    demo_cmd,
    eval_cmd,
    keys_cmd,
    serve_cmd,
    test_cmd,
)


def _verification_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verification-key",
        metavar="FILE",
        help="verify the bundle's .signatures.json with this key first",
    )
    parser.add_argument(
        "--verification-alg",
        metavar="ALG",
        help="signature algorithm (default: from the signature)",
    )
    parser.add_argument("--scope", metavar="S", help="required signature scope")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="regate", description="Policy-as-code gateway for LLM traffic."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check",
        help="check bundles: structure, roots, compile, capabilities, schemas, detectors, cases",
    )
    check.add_argument("bundles", nargs="+", metavar="BUNDLE")
    check.add_argument("--format", choices=("pretty", "json"), default="pretty")
    _verification_options(check)
    check.set_defaults(run=check_cmd.run)

    test = commands.add_parser("test", help="run Rego test_ rules and YAML decision cases")
    test.add_argument("bundles", nargs="+", metavar="BUNDLE")
    test.add_argument("--coverage", action="store_true", help="report Rego line coverage")
    test.add_argument(
        "--threshold", type=float, metavar="PCT", help="fail when coverage is below PCT"
    )
    test.add_argument("--format", choices=("pretty", "json", "junit", "github"), default="pretty")
    test.add_argument("--engine", choices=("embedded", "opa"), default="embedded")
    test.add_argument("--opa-url", metavar="URL", help="OPA server for --engine opa")
    test.add_argument(
        "--run",
        dest="run_filter",
        metavar="SUBSTRING",
        help="only tests whose name contains SUBSTRING",
    )
    _verification_options(test)
    test.set_defaults(run=test_cmd.run)

    ev = commands.add_parser(
        "eval", help="decide on one request and print request, decision and forward"
    )
    ev.add_argument("bundle", metavar="BUNDLE")
    ev.add_argument(
        "--request", required=True, metavar="FILE", help="JSON or YAML request ('-' for stdin)"
    )
    ev.add_argument("--principal", metavar="FILE")
    ev.add_argument("--config", metavar="FILE", help="providers and routes to resolve against")
    ev.add_argument("--engine", choices=("embedded", "opa"))
    ev.add_argument(
        "--opa-url",
        metavar="URL",
        help="OPA server for --engine opa (default: the config's policy.opa_url)",
    )
    ev.add_argument(
        "--api", choices=("openai.chat", "openai.embeddings", "anthropic.messages", "canonical")
    )
    ev.add_argument("--format", choices=("pretty", "json"), default="pretty")
    _verification_options(ev)
    ev.set_defaults(run=eval_cmd.run)

    build = commands.add_parser("build", help="build an OPA-format bundle .tar.gz, signed if asked")
    build.add_argument("bundle", metavar="BUNDLE")
    build.add_argument("-o", "--output", required=True, metavar="OUT.tar.gz")
    build.add_argument("--revision", metavar="R")
    build.add_argument("--signing-key", metavar="FILE")
    build.add_argument("--signing-alg", metavar="ALG", default="RS256")
    build.add_argument("--signing-key-id", metavar="ID")
    build.add_argument("--scope", metavar="S", help="scope to put in the signature")
    build.set_defaults(run=build_cmd.run)

    keys = commands.add_parser("keys", help="caller keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    new = keys_sub.add_parser(
        "new", help="print a new caller key once, and its sha256: line for the config"
    )
    new.add_argument("--principal", required=True, metavar="ID")
    new.set_defaults(run=keys_cmd.run_new)

    audit = commands.add_parser("audit", help="audit log tools")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_sub.add_parser("verify", help="check an audit file's hash chain")
    verify.add_argument("file", metavar="FILE")
    verify.add_argument("--format", choices=("pretty", "json"), default="pretty")
    verify.set_defaults(run=audit_cmd.run_verify)

    serve_cmd.register(commands)
    demo_cmd.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # regorus prints a Rust backtrace into every error message unless told not to.
    os.environ["RUST_BACKTRACE"] = "0"
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
