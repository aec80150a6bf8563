"""A small bundle service for tests, and the signed bundles it serves.

``BundleServer`` serves one bundle at ``/bundles/{name}`` as an OPA bundle
service does: ``ETag`` and ``304`` for a matching ``If-None-Match``, and, when
``long_poll`` is on, requests carrying ``Prefer: wait=N`` are held until the
bundle changes (or ``N`` seconds pass, then ``304``) and answers carry
``Content-Type: application/vnd.openpolicyagent.bundles``. It records every
request's headers and counts downloads, so tests can see what the client did.
Run it with ``adapters.fake_provider.server.run_in_thread(server.app)``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.bundle.archive import read_directory, write_archive
from engine.bundle.signing import sign_files
from engine.resources import default_bundle_path

LONG_POLL_TYPE = "application/vnd.openpolicyagent.bundles"
PATH = "/bundles/regate.tar.gz"


@dataclass(frozen=True)
class Seen:
    """One request the server got: its cache and preference headers, and the answer's status."""

    if_none_match: str | None
    prefer: str | None
    status: int


class BundleServer:
    def __init__(self, *, long_poll: bool = False) -> None:
        self.long_poll = long_poll
        self.fail_status: int | None = None  # answer every request with this status
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._body: bytes | None = None
        self._etag: str | None = None
        self.app = Starlette(routes=[Route("/bundles/{name}", self._serve)])

    @property
    def downloads(self) -> int:
        return sum(1 for s in self.seen if s.status == 200)

    @property
    def not_modified(self) -> int:
        return sum(1 for s in self.seen if s.status == 304)

    def publish(self, raw: bytes) -> str:
        """Serve ``raw`` from now on; returns its ETag."""
        etag = '"' + hashlib.sha256(raw).hexdigest()[:20] + '"'
        with self._lock:
            self._body, self._etag = raw, etag
        return etag

    def _current(self) -> tuple[bytes | None, str | None]:
        with self._lock:
            return self._body, self._etag

    async def _serve(self, request: Request) -> Response:
        if_none_match = request.headers.get("if-none-match")
        prefer = request.headers.get("prefer")
        response = await self._answer(if_none_match, _wait(prefer))
        self.seen.append(Seen(if_none_match, prefer, response.status_code))
        return response

    async def _answer(self, if_none_match: str | None, wait: float | None) -> Response:
        if self.fail_status is not None:
            return Response(b"service trouble", self.fail_status)
        body, etag = self._current()
        if self.long_poll and wait and etag is not None and if_none_match == etag:
            deadline = time.monotonic() + wait
            while etag == if_none_match and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
                body, etag = self._current()
        if body is None or etag is None:
            return Response(b"no bundle", 404)
        if if_none_match == etag:
            return Response(status_code=304, headers={"etag": etag})
        media_type = LONG_POLL_TYPE if self.long_poll else "application/gzip"
        return Response(body, 200, headers={"etag": etag}, media_type=media_type)


def _wait(prefer: str | None) -> float | None:
    for part in (prefer or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "wait" and value.isdigit():
            return float(value)
    return None


# -- bundles --------------------------------------------------------------------------


def es256_keys() -> tuple[bytes, bytes]:
    """A fresh ``(private PEM, public PEM)`` ES256 key pair."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def default_files(revision: str, *, allow: tuple[str, ...] = ()) -> dict[str, bytes]:
    """The shipped default bundle as revision ``revision``, with models ``allow`` added to its allowlist."""
    files = read_directory(default_bundle_path())
    manifest = json.loads(files[".manifest"])
    files[".manifest"] = json.dumps({**manifest, "revision": revision}).encode()
    if allow:
        data = json.loads(files["data.json"])
        data["regate"]["policy"]["allowed_models"] += list(allow)
        files["data.json"] = json.dumps(data).encode()
    return files


def with_compile_error(files: Mapping[str, bytes]) -> dict[str, bytes]:
    return {**files, "policy/broken.rego": b"package regate\n\nbroken := {\n"}


def signed(files: Mapping[str, bytes], private_key: bytes) -> bytes:
    """``files`` signed with ``private_key`` (ES256), as an OPA-format ``.tar.gz``."""
    signature = sign_files(files, key_pem_or_secret=private_key, algorithm="ES256")
    return write_archive({**files, ".signatures.json": signature})
