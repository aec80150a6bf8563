"""Chunking for decision log uploads: serialized events -> gzip-compressed JSON arrays
no larger than ``upload_size_limit_bytes``, as OPA uploads them.

Sizes are exact, not estimated: an event goes into the open chunk when a
worst-case bound on the compressed size says it fits; otherwise the compressor
is synced (so the bytes written so far are known) and, if the bound still says
no, a copy of the compressor is finished with the event to measure the real
size. Chunks therefore never exceed the limit, and the costly measurement only
happens for the last few events of each chunk.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GZIP_WBITS = 31  # zlib's "gzip wrapper" window setting
GZIP_WRAPPER = 18  # 10-byte header + 8-byte trailer


def deflate_bound(size: int) -> int:
    """An upper bound on the deflate stream (stored blocks at worst) for ``size`` input bytes."""
    return size + (size >> 3) + (size >> 6) + 16


def serialize(event: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON of one event. Raises ``ValueError``/``TypeError`` for values
    JSON cannot hold (NaN, non-JSON types); lone surrogates fall back to ``\\u`` escapes."""
    try:
        text = json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(event, separators=(",", ":"), allow_nan=False).encode("ascii")


@dataclass(frozen=True)
class Chunk:
    """One upload: ``body`` is the gzip of a JSON array of ``events`` (kept for requeueing)."""

    body: bytes
    events: tuple[bytes, ...]


class _ChunkWriter:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._z = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, GZIP_WBITS)
        self._out = [self._z.compress(b"[")]
        self._written = len(self._out[0])
        self._pending = 1  # input bytes that may not be in ``_out`` yet
        self.events: list[bytes] = []

    def add(self, event: bytes) -> bool:
        """Append ``event`` if the finished chunk would stay within the limit.

        A refused event leaves the stream untouched: the sync flush that makes
        the written size exact is tried on a copy and kept only on success.
        """
        piece = b"," + event if self.events else event
        # ``piece`` and the closing "]" as input; the gzip header may still be pending too.
        if (
            self._written + deflate_bound(self._pending + len(piece) + 1) + GZIP_WRAPPER
            > self._limit
        ):
            synced = self._z.copy()
            flushed = synced.flush(zlib.Z_SYNC_FLUSH) if self._pending else b""
            written = self._written + len(flushed)
            if written + deflate_bound(len(piece) + 1) + GZIP_WRAPPER > self._limit:
                probe = synced.copy()
                if written + len(probe.compress(piece + b"]")) + len(probe.flush()) > self._limit:
                    return False
            self._z, self._written, self._pending = synced, written, 0
            self._out.append(flushed)
        self._emit(self._z.compress(piece))
        self._pending += len(piece)
        self.events.append(event)
        return True

    def _emit(self, data: bytes) -> None:
        self._out.append(data)
        self._written += len(data)

    def close(self) -> Chunk:
        self._emit(self._z.compress(b"]"))
        self._emit(self._z.flush())
        return Chunk(b"".join(self._out), tuple(self.events))


def fits_alone(event: bytes, limit: int) -> bool:
    """Whether a chunk holding only ``event`` stays within ``limit`` bytes."""
    return _ChunkWriter(limit).add(event)


def pack(events: Iterable[bytes], limit: int) -> tuple[list[Chunk], list[bytes]]:
    """Split serialized events, in order, into chunks of at most ``limit`` compressed bytes.

    Returns the chunks and the events too large for a chunk of their own.

    >>> chunks, too_large = pack([b'{"decision_id":"1"}', b'{"decision_id":"2"}'], 32768)
    >>> len(chunks), json.loads(zlib.decompress(chunks[0].body, GZIP_WBITS)), too_large
    (1, [{'decision_id': '1'}, {'decision_id': '2'}], [])
    """
    chunks: list[Chunk] = []
    too_large: list[bytes] = []
    writer = _ChunkWriter(limit)
    for event in events:
        if writer.add(event):
            continue
        if writer.events:
            chunks.append(writer.close())
            writer = _ChunkWriter(limit)
            if writer.add(event):
                continue
        too_large.append(event)
    if writer.events:
        chunks.append(writer.close())
    return chunks, too_large
