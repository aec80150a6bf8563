"""The last good bundle from a bundle service, kept on disk for a cold start while the service is down.

A cache directory holds ``bundle.tar.gz`` (the bytes exactly as downloaded) and
``bundle.json`` (``{"service", "etag", "sha256", "revision", "digest",
"saved"}``). Both are written to a temporary file and renamed into place, so
a crash never leaves half a bundle. ``service`` is a SHA-256 of the service
URL: a cache filled from another service is ignored, and the URL (which may
carry a token in its query) is never written down. A cached bundle is
trusted no more than a downloaded one: the caller verifies and checks it
again before activating it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.bundle.archive import MAX_TOTAL_BYTES
from engine.document import utc_now

ARCHIVE_NAME = "bundle.tar.gz"
META_NAME = "bundle.json"


@dataclass(frozen=True)
class CachedBundle:
    """What a cache holds: the archive bytes, and the ETag they were served with."""

    raw: bytes
    etag: str | None
    revision: str
    saved: str


def service_id(url: str) -> str:
    return "sha256:" + hashlib.sha256(url.encode("utf-8")).hexdigest()


class BundleCache:
    """The cache directory of one bundle service URL.

    >>> import tempfile
    >>> cache = BundleCache(Path(tempfile.mkdtemp()), "https://bundles.example/b.tar.gz")
    >>> cache.save(b"raw", etag='"e1"', revision="r1", digest="sha256:00")
    >>> cache.load().etag
    '"e1"'
    """

    def __init__(self, directory: Path, url: str, *, max_bytes: int = MAX_TOTAL_BYTES) -> None:
        self.directory = directory
        self._service = service_id(url)
        self._max_bytes = max_bytes

    @property
    def archive_path(self) -> Path:
        return self.directory / ARCHIVE_NAME

    @property
    def meta_path(self) -> Path:
        return self.directory / META_NAME

    def save(self, raw: bytes, *, etag: str | None, revision: str, digest: str) -> None:
        """Keep ``raw`` as the last good bundle; raises ``OSError`` when the disk refuses."""
        self.directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "service": self._service,
            "etag": etag,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "revision": revision,
            "digest": digest,
            "saved": utc_now(),
        }
        # The archive first: metadata naming an archive that is not there yet is
        # never visible, and the checksum catches the reverse.
        _write_atomically(self.archive_path, raw)
        _write_atomically(self.meta_path, json.dumps(meta, indent=1).encode("utf-8"))

    def load(self) -> CachedBundle | None:
        """The cached bundle of this service, or ``None`` when there is none (or only another's).

        Raises ``OSError`` or ``ValueError`` when a cache is there but unreadable.
        """
        try:
            meta_raw = self.meta_path.read_bytes()
        except FileNotFoundError:
            return None
        meta = json.loads(meta_raw)
        if not isinstance(meta, dict):
            raise ValueError(f"{self.meta_path}: not a JSON object")
        if meta.get("service") != self._service:
            return None
        with open(self.archive_path, "rb") as handle:
            raw = handle.read(self._max_bytes + 1)
        if len(raw) > self._max_bytes:
            raise ValueError(f"{self.archive_path}: larger than {self._max_bytes} bytes")
        if hashlib.sha256(raw).hexdigest() != meta.get("sha256"):
            raise ValueError(f"{self.archive_path}: does not match the checksum in {META_NAME}")
        etag = meta.get("etag")
        return CachedBundle(
            raw=raw,
            etag=etag if isinstance(etag, str) and etag else None,
            revision=str(meta.get("revision", "")),
            saved=str(meta.get("saved", "")),
        )


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename is durable once the directory is synced
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
