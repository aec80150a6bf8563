"""The audit writer: events leave the request path through a bounded queue and are
sealed into the hash chain and appended by one task, in batches.

Backpressure instead of loss: when the queue is full, ``submit`` waits. A
failed write is retried with the same sealed events until it succeeds or the
writer is closed, so no event is dropped or re-sealed out of order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from engine.audit import AuditChain, AuditFileSink, FsyncPolicy

log = logging.getLogger("regate.audit")


class AuditWriter:
    def __init__(
        self,
        sink: AuditFileSink,
        chain: AuditChain,
        *,
        max_queue: int = 10_000,
        max_batch: int = 512,
    ) -> None:
        self._sink = sink
        self._chain = chain
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(max_queue)
        self._max_batch = max_batch
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.write_failures = 0

    @classmethod
    def for_file(cls, path: str, *, fsync: FsyncPolicy = "always", **kwargs: Any) -> AuditWriter:
        """A writer appending to ``path``, continuing the chain already in it."""
        return cls(AuditFileSink(path, fsync=fsync), AuditChain.resume(path), **kwargs)

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="regate-audit-writer"
            )

    async def submit(self, event: Mapping[str, Any]) -> None:
        """Queue one unsealed event; waits while the queue is full."""
        await self._queue.put(dict(event))

    async def close(self) -> None:
        """Write everything queued, then stop."""
        if self._task is None:
            return
        await self._queue.put(None)
        await self._task
        self._task = None
        self._sink.close()

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            batch = []
            if first is None:
                stopping = True
            else:
                batch.append(first)
            while len(batch) < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            if batch:
                sealed = [self._chain.seal(event) for event in batch]
                await self._write(sealed)

    async def _write(self, sealed: list[dict[str, Any]]) -> None:
        delay = 0.05
        while True:
            try:
                if self._sink.fsync == "never":
                    self._sink.write_many(sealed)  # a page-cache write: cheaper than a thread hop
                else:
                    await asyncio.to_thread(self._sink.write_many, sealed)
                self.written += len(sealed)
                return
            except OSError as exc:
                self.write_failures += 1
                log.error("audit write failed (%s); retrying in %.2fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
