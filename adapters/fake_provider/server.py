"""Running ASGI apps on real loopback sockets: in a thread for tests, in the foreground for the CLI.

:func:`run_in_thread` works for any ASGI app (the fake provider, regate itself)::

    with run_in_thread(create_fake_provider().app) as base_url:
        httpx.get(base_url + "/v1/models")
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from adapters.fake_provider.app import create_fake_provider


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY only on sockets that do, and without it
    # every response written in two parts (head, body) waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


@contextlib.contextmanager
def run_in_thread(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout: float = 10.0,
    graceful_timeout: int = 2,
    http: str = "h11",
) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a daemon thread; yield its URL, e.g. ``http://127.0.0.1:41234``.

    ``http`` defaults to uvicorn's pure-Python ``h11`` protocol: the fake
    provider's ``reset`` and mid-stream cuts reach the socket through it.

    ``port=0`` picks a free port: the socket is bound before the server starts,
    so the URL is known and no other process can take the port in between.
    On exit the server stops; requests still running after ``graceful_timeout``
    seconds (a hanging ``timeout`` fault, an unread stream) are cancelled.
    """
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="auto",
        ws="none",
        http=http,
        loop="asyncio",
        timeout_graceful_shutdown=graceful_timeout,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn:{bound_port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {host}:{bound_port} did not start")
            time.sleep(0.005)
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=graceful_timeout + startup_timeout)
        sock.close()


def serve(host: str, port: int) -> None:
    """Run a fake provider in the foreground until interrupted (``regate fake-provider``)."""
    uvicorn.run(create_fake_provider().app, host=host, port=port, ws="none", log_level="info")
