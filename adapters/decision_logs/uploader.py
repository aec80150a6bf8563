"""The decision log uploader: a bounded in-memory buffer drained by one task that
POSTs gzip-compressed JSON arrays of ``EventV1`` to ``<url>/logs``, as OPA does.

- ``submit`` never waits: when the buffer holds ``buffer_size_limit_events``,
  the oldest event is dropped and counted (OPA's event buffer does the same).
- Uploads happen every ``min_delay_seconds``..``max_delay_seconds`` (jittered),
  and early once the buffer is half full, so a busy gateway drops less.
- A failed upload puts its events back at the head of the buffer and is
  retried with OPA's backoff (100 ms x 1.6^n, +-20 % jitter, capped at
  ``max_delay_seconds``); an event is sent again only when its chunk failed.
- An event too large for a chunk of its own loses its input
  (``erased: ["/input"]``); if it still does not fit it is dropped and counted.
- ``close`` stops the task and uploads what is left within a time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import deque
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import httpx

from adapters.decision_logs.encoder import Chunk, fits_alone, pack, serialize
from adapters.decision_logs.event import PromptLevel, bundle_name, decision_event, without_input
from adapters.http.metrics import Metrics
from adapters.opa_backoff import retry_delay
from engine.bundle.loader import Bundle
from engine.config import Config, DecisionLogsConfig
from engine.pipeline import Outcome

log = logging.getLogger("regate.decision_logs")

REQUEST_TIMEOUT_SECONDS = 10.0
UPLOAD_HEADERS = {"content-type": "application/json", "content-encoding": "gzip"}

Item = dict[str, Any] | bytes  # an event, or its encoding once it has been through a failed upload


def regate_version() -> str:
    try:
        return metadata.version("regate")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def decision_log_uploader(
    config: Config, metrics: Metrics, *, transport: httpx.AsyncBaseTransport | None = None
) -> DecisionLogUploader | None:
    """The uploader ``config.decision_logs`` asks for (None when absent), its gauges on ``metrics``."""
    if config.decision_logs is None:
        return None
    uploader = DecisionLogUploader(
        config.decision_logs, prompt_level=config.audit.prompt, transport=transport
    )
    dropped = "Decision log events dropped (buffer full, too large, or unsent at shutdown)."
    metrics.gauge("regate_decision_logs_dropped_total", dropped, lambda: uploader.dropped)
    metrics.gauge(
        "regate_decision_logs_buffer_depth",
        "Decision log events to upload.",
        lambda: uploader.depth,
    )
    metrics.gauge(
        "regate_decision_logs_uploaded_total",
        "Decision log events uploaded.",
        lambda: uploader.uploaded,
    )
    return uploader


class DecisionLogUploader:
    """Buffers decision log events and uploads them in the background."""

    def __init__(
        self,
        config: DecisionLogsConfig,
        *,
        prompt_level: PromptLevel = "none",
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        shutdown_timeout: float = 5.0,
    ) -> None:
        self.config = config
        self.prompt_level = prompt_level
        self.endpoint = config.url.rstrip("/") + "/logs"
        version = regate_version()
        # regate's own labels win over configured ones, as OPA's id and version do.
        self.labels: Mapping[str, str] = {
            **config.labels,
            "id": str(uuid.uuid4()),
            "version": version,
            "app": "regate",
        }
        self._headers = {"user-agent": f"regate/{version}", **config.headers}
        self._transport = transport
        self._rng = rng or random.Random()
        self._shutdown_timeout = shutdown_timeout
        self._buffer: deque[Item] = deque()
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._retries = 0
        self._stopping = False
        self._warned_drop = False
        self.dropped = 0  # events lost: buffer full, too large, unencodable, or left at shutdown
        self.uploaded = 0  # events delivered
        self.failed_uploads = 0

    @property
    def depth(self) -> int:
        """Events waiting to be uploaded."""
        return len(self._buffer)

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="regate-decision-logs"
            )

    def record(
        self,
        outcome: Outcome,
        *,
        decision_id: str,
        timestamp: str,
        bundle: Bundle,
        handler_ms: float | None = None,
    ) -> None:
        """Buffer the decision log event of one decision made with ``bundle``.

        Called on the request path, so it never raises: a failure is logged and
        counted as a dropped event.
        """
        try:
            event = decision_event(
                outcome,
                decision_id=decision_id,
                timestamp=timestamp,
                path=bundle.entrypoint,
                bundle=(bundle_name(bundle.source), bundle.revision),
                level=self.prompt_level,
                labels=self.labels,
                handler_ms=handler_ms,
            )
        except Exception:
            log.exception("decision log event for %s could not be built", decision_id)
            self.dropped += 1
            return
        self.submit(event)

    def submit(self, event: dict[str, Any]) -> None:
        """Buffer one event; never waits. A full buffer drops its oldest event."""
        self._buffer.append(event)
        self._trim()
        if self._retries == 0 and len(self._buffer) * 2 >= self.config.buffer_size_limit_events:
            self._wake.set()

    async def flush(self, *, timeout: float = REQUEST_TIMEOUT_SECONDS) -> bool:
        """Upload everything buffered now, once; True when it all arrived (or there was nothing).

        Whatever was not delivered (a failed chunk and those after it, or all
        of it when cancelled) goes back to the head of the buffer.
        """
        async with self._lock:
            if not self._buffer:
                return True
            unsent: list[Item] = list(self._buffer)
            self._buffer.clear()
            try:
                chunks, lost = await asyncio.to_thread(self._encode, unsent)
                self.dropped += lost
                unsent = [event for chunk in chunks for event in chunk.events]
                for chunk in chunks:
                    if not await self._post(chunk, timeout):
                        return False
                    del unsent[: len(chunk.events)]
                    self.uploaded += len(chunk.events)
            finally:
                self._requeue(unsent)
            self._warned_drop = False
            return True

    async def close(self) -> None:
        """Stop the background task, then upload what is left, all within the shutdown timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._shutdown_timeout
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            with contextlib.suppress(TimeoutError):  # an upload still running then is cancelled
                await asyncio.wait_for(self._task, self._shutdown_timeout)
            self._task = None
        retries = 0
        while self._buffer and deadline > loop.time():
            if await self.flush(timeout=max(0.05, deadline - loop.time())):
                break
            retries += 1
            pause = min(
                retry_delay(retries, self.config.max_delay_seconds, self._rng),
                deadline - loop.time(),
            )
            if pause <= 0:
                break
            await asyncio.sleep(pause)
        if self._buffer:
            log.error(
                "decision logs: %d event(s) could not be uploaded before shutdown",
                len(self._buffer),
            )
            self.dropped += len(self._buffer)
            self._buffer.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- internals ------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            if self._retries:
                delay = retry_delay(self._retries, self.config.max_delay_seconds, self._rng)
            else:
                delay = self._rng.uniform(
                    self.config.min_delay_seconds, self.config.max_delay_seconds
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            if self._stopping:
                return
            try:
                ok = await self.flush()
            except Exception:  # a bug must not end uploads for the life of the process
                log.exception("decision log upload failed unexpectedly")
                ok = False
            self._retries = 0 if ok else self._retries + 1

    def _encode(self, items: list[Item]) -> tuple[list[Chunk], int]:
        """The chunks to upload, and how many events could not be encoded.

        Runs in a thread (a full buffer is a lot of JSON and gzip), so it only
        reads shared state; the caller does the counting.
        """
        limit = self.config.upload_size_limit_bytes
        encoded: list[bytes] = []
        for item in items:
            data = item if isinstance(item, bytes) else _serialize(item, limit)
            if data is not None:
                encoded.append(data)
        chunks, too_large = pack(encoded, limit)
        return chunks, len(items) - len(encoded) + len(too_large)

    async def _post(self, chunk: Chunk, timeout: float) -> bool:
        if self._client is None:
            self._client = httpx.AsyncClient(
                headers=self._headers, transport=self._transport, timeout=REQUEST_TIMEOUT_SECONDS
            )
        try:
            response = await self._client.post(
                self.endpoint, content=chunk.body, headers=UPLOAD_HEADERS, timeout=timeout
            )
        except httpx.HTTPError as exc:
            why = type(exc).__name__
        else:
            if 200 <= response.status_code < 300:
                return True
            why = f"HTTP {response.status_code}"
        self.failed_uploads += 1
        log.warning(
            "decision log upload of %d event(s) failed (%s); will retry", len(chunk.events), why
        )
        return False

    def _requeue(self, events: list[Item]) -> None:
        self._buffer.extendleft(reversed(events))
        self._trim()

    def _trim(self) -> None:
        excess = len(self._buffer) - self.config.buffer_size_limit_events
        if excess <= 0:
            return
        for _ in range(excess):
            self._buffer.popleft()
        self.dropped += excess
        if not self._warned_drop:
            self._warned_drop = True
            log.warning(
                "decision log buffer full (%d events): dropping the oldest; raise buffer_size_limit_events "
                "or lower the delays",
                self.config.buffer_size_limit_events,
            )


def _serialize(event: dict[str, Any], limit: int) -> bytes | None:
    """``event`` as JSON that fits a chunk of its own (without its input if need be), or None."""
    decision_id = event.get("decision_id")
    try:
        data = serialize(event)
        if fits_alone(data, limit):
            return data
        data = serialize(without_input(event))
        if fits_alone(data, limit):
            log.warning("decision log %s: input erased to fit upload_size_limit_bytes", decision_id)
            return data
        why = "too large for upload_size_limit_bytes even without its input"
    except (TypeError, ValueError) as exc:
        why = f"not encodable as JSON ({type(exc).__name__})"
    log.error("decision log %s dropped: %s", decision_id, why)
    return None
