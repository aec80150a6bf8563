"""``run_in_thread``: any ASGI app on a free loopback port, stopped on exit."""

from __future__ import annotations

import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from adapters.fake_provider import run_in_thread


async def _hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"hello {request.url.path}")


APP = Starlette(routes=[Route("/{name}", _hello)])


def test_serves_any_asgi_app_on_distinct_free_ports() -> None:
    with run_in_thread(APP) as first, run_in_thread(APP) as second:
        assert first != second
        assert first.startswith("http://127.0.0.1:")
        assert httpx.get(first + "/a").text == "hello /a"
        assert httpx.get(second + "/b").text == "hello /b"


def test_stops_on_exit() -> None:
    with run_in_thread(APP) as url:
        assert httpx.get(url + "/up").status_code == 200

    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/up", timeout=1.0)


def test_keep_alive_requests_do_not_wait_for_delayed_acks() -> None:
    # Responses go out as two writes; without TCP_NODELAY each one costs ~40 ms.
    with run_in_thread(APP) as url, httpx.Client(base_url=url) as client:
        client.get("/warm")
        started = time.monotonic()
        for _ in range(20):
            client.get("/x")
        elapsed = time.monotonic() - started

    assert elapsed < 0.5
