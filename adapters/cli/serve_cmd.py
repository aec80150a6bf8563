"""``regate serve`` and ``regate fake-provider``: run the gateway, or the fake upstream."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys

from adapters.cli.common import EXIT_USAGE, print_error
from engine.config import load_config
from engine.errors import RegateError

log = logging.getLogger("regate")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_serve(args: argparse.Namespace) -> int:
    # The gateway (Starlette, uvicorn, provider SDKs) loads only for this command,
    # so `regate check` and friends start fast in CI.
    import uvicorn

    from adapters.http.app import create_app
    from adapters.http.gateway import Gateway

    logging.basicConfig(
        level=os.environ.get("REGATE_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = load_config(args.config, env=os.environ)
        host = args.host or config.server.host
        port = args.port if args.port is not None else config.server.port
        if not is_loopback(host) and not config.principals:
            raise RegateError(
                f"refusing to listen on {host}: a non-loopback address needs principals with caller keys in the config"
            )
        gateway = Gateway(config, env=os.environ)
    except (RegateError, OSError) as exc:
        print_error(exc)
        return EXIT_USAGE
    bundle = gateway.pipeline.bundle
    log.info(
        "policy bundle %s revision=%r digest=%s engine=%s",
        bundle.source,
        bundle.revision,
        bundle.digest,
        gateway.pipeline.evaluator.name,
    )
    if config.policy.on_error == "allow":
        log.warning(
            "policy.on_error is 'allow': policy errors FAIL OPEN and requests are forwarded unchecked"
        )
    uvicorn.run(
        create_app(gateway),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    return 0


def run_fake_provider(args: argparse.Namespace) -> int:
    from adapters.fake_provider import serve

    print(f"fake provider on http://{args.host}:{args.port}", file=sys.stderr)
    serve(args.host, args.port)
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", metavar="FILE", help="YAML config (default: embedded defaults)")
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")
    serve.set_defaults(run=run_serve)

    fake = commands.add_parser(
        "fake-provider", help="run the fake OpenAI/Anthropic/Gemini upstream (tests, demos)"
    )
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=18081)
    fake.set_defaults(run=run_fake_provider)
