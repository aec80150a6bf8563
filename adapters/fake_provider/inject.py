"""Carrying out one :class:`~adapters.fake_provider.faults.Fault` around an ASGI app.

Delays and stream cuts wrap ``send``. Cutting or resetting a connection needs
the server's socket, which ASGI does not expose: under uvicorn the server's
``send`` is a bound method of the request cycle, which holds the asyncio
transport. Behind any other server a cut raises :class:`ConnectionAbortedError`
instead, which in-process clients (``httpx.ASGITransport``) see as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.fake_provider.faults import Fault

_DISCONNECT_WAIT_S = 2.0


@dataclass(frozen=True)
class Wire:
    """How one provider format writes errors; ``stream_status`` is its usual in-stream error."""

    name: str
    error_body: Callable[[int, str | None], dict[str, Any]]
    stream_error: Callable[[int, str | None], bytes]
    stream_status: int


async def send_json(
    send: Send, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> None:
    """A complete JSON response, written straight to ``send``."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    head += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


def _seconds(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


async def inject(
    fault: Fault,
    wire: Wire,
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    server_receive: Receive,
    send: Send,
    hang_s: float,
) -> None:
    """Answer one request through ``app`` the way ``fault`` says.

    ``receive`` replays the request body for ``app``; ``server_receive`` is the
    server's own, used to notice the client going away.
    """
    if fault.latency_ms:
        await asyncio.sleep(fault.latency_ms / 1000)
    if fault.reset:
        await _cut(send, server_receive, reset=True)
        return
    if fault.timeout:
        try:
            await asyncio.wait_for(_until_disconnect(server_receive), hang_s)
        except TimeoutError:
            await _cut(send, server_receive, reset=False)
        return
    if fault.status is not None and fault.error_after_chunks is None:
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["retry-after"] = _seconds(fault.retry_after)
            headers["retry-after-ms"] = str(math.ceil(fault.retry_after * 1000))
        await send_json(send, fault.status, wire.error_body(fault.status, fault.message), headers)
        return
    shaped = _ShapedSend(send, fault, wire)
    await app(scope, receive, shaped)
    if shaped.cut:
        await _wait(server_receive)


class _ShapedSend:
    """A ``send`` that delays, counts and cuts the response body."""

    def __init__(self, send: Send, fault: Fault, wire: Wire) -> None:
        self._send = send
        self._fault = fault
        self._wire = wire
        self.chunks = 0
        self.cut = False
        self.ended = False

    async def __call__(self, message: Message) -> None:
        if self.cut or self.ended:
            return
        fault = self._fault
        if message["type"] == "http.response.start":
            if fault.error_after_chunks is not None and not _is_event_stream(message):
                # A plain JSON answer has no in-stream error: fail it with the HTTP status.
                self.ended = True
                status = fault.status or self._wire.stream_status
                await send_json(self._send, status, self._wire.error_body(status, fault.message))
                return
            await self._send(message)
            return
        if message["type"] != "http.response.body":
            await self._send(message)
            return
        if self.chunks == fault.disconnect_after_chunks:
            self.cut = True
            await _cut(self._send, None, reset=False)
            return
        delay = fault.first_byte_ms if self.chunks == 0 else fault.chunk_delay_ms
        if delay:
            await asyncio.sleep(delay / 1000)
        if self.chunks == fault.error_after_chunks:
            self.ended = True
            frame = self._wire.stream_error(fault.status or self._wire.stream_status, fault.message)
            await self._send({"type": "http.response.body", "body": frame, "more_body": False})
            return
        self.chunks += 1
        await self._send(message)


def _is_event_stream(start: Message) -> bool:
    for key, value in start.get("headers", []):
        if key.lower() == b"content-type":
            return bool(value.startswith(b"text/event-stream"))
    return False


def _transport_of(send: Send) -> asyncio.Transport | None:
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    return transport if isinstance(transport, asyncio.Transport) else None


async def _cut(send: Send, server_receive: Receive | None, *, reset: bool) -> None:
    """Close the connection without finishing the response; ``reset`` sends a TCP RST."""
    transport = _transport_of(send)
    if transport is None:
        raise ConnectionAbortedError("fake provider cut the connection")
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER 0 turns close() into an RST rather than an orderly FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()
    if server_receive is not None:
        await _wait(server_receive)


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _wait(receive: Receive) -> None:
    # Let the server see the disconnect, so it does not report an unfinished response.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_until_disconnect(receive), _DISCONNECT_WAIT_S)
