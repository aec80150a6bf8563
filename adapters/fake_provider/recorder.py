"""The fake provider's record of every request it received, exactly as received.

Headers are kept verbatim, credentials included (``authorization``,
``x-api-key``, ``x-goog-api-key``), so tests can check which key reached which
provider. This is a test fake on loopback: nothing here is logged.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    """One request: ``headers`` lower-cased (repeats joined by ``", "``), ``body`` parsed JSON."""

    method: str
    path: str
    provider: str
    headers: dict[str, str]
    query: dict[str, str]
    body: Any
    raw: bytes
    time: float
    model: str | None = None
    fault: str | None = None

    def match_keys(self) -> dict[str, str | None]:
        """What fault rules may match on."""
        return {
            "path": self.path,
            "provider": self.provider,
            "method": self.method,
            "model": self.model,
        }

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form; ``raw`` appears (as text) only when the body was not JSON."""
        out: dict[str, Any] = {
            "method": self.method,
            "path": self.path,
            "provider": self.provider,
            "headers": self.headers,
            "query": self.query,
            "body": self.body,
            "time": self.time,
            "model": self.model,
            "fault": self.fault,
        }
        if self.body is None and self.raw:
            out["raw"] = self.raw.decode("utf-8", "replace")
        return out


class Recorder:
    """Thread-safe, append-only list of :class:`RecordedRequest` (the server thread writes)."""

    def __init__(self) -> None:
        self._items: list[RecordedRequest] = []
        self._lock = threading.Lock()

    def add(self, request: RecordedRequest) -> None:
        with self._lock:
            self._items.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot, oldest first."""
        with self._lock:
            return list(self._items)

    def last(self) -> RecordedRequest:
        """The most recent request; ``LookupError`` when none arrived."""
        with self._lock:
            if not self._items:
                raise LookupError("the fake provider has received no request")
            return self._items[-1]

    def for_provider(self, provider: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._items if r.provider == provider]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.requests]
