"""A streamed answer: provider SSE in, client SSE out, event by event, never buffered whole.

The response watches for the client going away and then stops reading the
provider (closing the upstream connection). When it ends — completed, failed
mid-stream or abandoned — it reports once, so the request is audited once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.types import Message, Receive, Scope, Send

from adapters.providers.upstream import UpstreamError, UpstreamResponse
from adapters.translate.translator import StreamTranslator


@dataclass
class StreamResult:
    completed: bool
    client_disconnected: bool
    error_code: str | None
    error_message: str | None


class TranslatedStream:
    """ASGI response for one upstream stream whose first chunk already arrived."""

    def __init__(
        self,
        upstream: UpstreamResponse,
        first_chunk: bytes,
        translator: StreamTranslator,
        headers: dict[str, str],
        on_done: Callable[[StreamResult], Awaitable[None]],
    ) -> None:
        self._upstream = upstream
        self._first = first_chunk
        self._translator = translator
        self._headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self._headers.append((b"content-type", b"text/event-stream; charset=utf-8"))
        self._headers.append((b"cache-control", b"no-cache"))
        self._on_done = on_done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pump = asyncio.ensure_future(self._pump(send))
        watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
        result = StreamResult(False, False, None, None)
        try:
            done, _ = await asyncio.wait({pump, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if pump in done:
                result = pump.result()
            else:
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)
                result = StreamResult(
                    False, True, "client_disconnected", "the client closed the stream"
                )
        finally:
            watcher.cancel()
            await self._upstream.aclose()
            await self._on_done(result)

    async def _pump(self, send: Send) -> StreamResult:
        await send({"type": "http.response.start", "status": 200, "headers": self._headers})
        translator = self._translator
        failure: UpstreamError | None = None
        chunk = self._first
        chunks = self._upstream.chunks
        try:
            while True:
                out = translator.feed(chunk)
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
                if chunks is None:
                    break
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
        except UpstreamError as exc:
            failure = exc
        except OSError:
            return StreamResult(False, True, "client_disconnected", "the client closed the stream")
        tail = translator.finish()
        await send({"type": "http.response.body", "body": tail, "more_body": False})
        error = translator.error
        if failure is not None and error is not None:
            return StreamResult(False, False, f"upstream_{failure.kind}", str(failure))
        if error is not None:
            return StreamResult(False, False, error["code"], error["message"])
        return StreamResult(True, False, None, None)


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return
