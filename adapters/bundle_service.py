"""A bundle-service client, as OPA's bundle plugin is one: poll, download, verify, check, activate.

``BundleService`` asks an http(s) URL for a bundle ``.tar.gz`` the way OPA's
downloader does: ``If-None-Match`` with the ETag of the active bundle (a
``304`` means nothing changed), a jittered delay between
``min_delay_seconds`` and ``max_delay_seconds`` after each answer, and, when
``long_polling_timeout_seconds`` is set, ``Prefer: wait=N`` so the service
holds the request until the bundle changes. Long polling continues only
while the service answers ``Content-Type: application/vnd.openpolicyagent.bundles``
(its sign that it supports it); otherwise the client falls back to periodic
polling. After a failure the next try follows OPA's back-off (0.1 s growing by
1.6x up to ``max_delay_seconds``, +-20 % jitter).

A downloaded bundle is size-limited, verified with the configured key and
scope, and fully checked (``load_bundle``) in a worker thread; only then is
it handed to the ``activate`` callback, which swaps it in atomically. On any
failure -- network, HTTP status, size, archive, signature, compile error,
capabilities, schemas, activation -- the previous bundle keeps serving, the
ETag stays that of the active bundle (as in OPA, so a bad bundle is fetched
and refused again, never skipped by a ``304``), and the failure is recorded
in :class:`BundleStatus`. The last good bundle is persisted with
``engine.bundle.cache`` and serves a cold start while the service is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from adapters.opa_backoff import retry_delay
from engine.bundle.archive import MAX_TOTAL_BYTES, read_archive
from engine.bundle.cache import BundleCache
from engine.bundle.loader import Bundle, load_bundle
from engine.config import PollingConfig
from engine.document import utc_now
from engine.errors import BundleError, RegateError, SignatureError

log = logging.getLogger("regate.bundle")

LONG_POLL_CONTENT_TYPE = "application/vnd.openpolicyagent.bundles"
REQUEST_TIMEOUT_S = 30.0

Reason = Literal[
    "network",
    "timeout",
    "http_status",
    "too_large",
    "bad_archive",
    "signature",
    "invalid_bundle",
    "activation",
    "cache",
]
# Failure reason (a metrics label) -> stable error code (status, /readyz, logs).
ERROR_CODES: dict[str, str] = {
    "network": "bundle_download_error",
    "timeout": "bundle_download_timeout",
    "http_status": "bundle_http_error",
    "too_large": "bundle_too_large",
    "bad_archive": "bundle_archive_error",
    "signature": SignatureError.code,
    "invalid_bundle": BundleError.code,
    "activation": "bundle_activation_error",
    "cache": "bundle_cache_error",
}
Outcome = Literal["activated", "not_modified", "failed"]
Activate = Callable[[Bundle], Awaitable[None]]


@dataclass(frozen=True)
class BundleFailure:
    reason: str
    code: str
    message: str
    time: str

    def as_dict(self) -> dict[str, str]:
        return {
            "code": self.code,
            "reason": self.reason,
            "message": self.message,
            "time": self.time,
        }


@dataclass
class BundleStatus:
    """What the client knows about its service; ``as_dict`` is what ``/readyz`` shows."""

    service: str  # the URL without query or credentials
    source: Literal["service", "cache"] | None = None  # where the active bundle came from
    revision: str | None = None
    digest: str | None = None
    etag: str | None = None
    long_polling: bool = False
    activations: int = 0
    failures: int = 0
    failures_by_reason: dict[str, int] = field(default_factory=dict)
    failing: bool = False  # the latest attempt failed (the previous bundle still serves)
    last_request: str | None = None
    last_success: str | None = None  # latest request answered with a usable bundle or a 304
    last_activation: str | None = None
    last_error: BundleFailure | None = None

    @property
    def active(self) -> bool:
        return self.source is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "active": self.active,
            "source": self.source,
            "revision": self.revision,
            "digest": self.digest,
            "long_polling": self.long_polling,
            "activations": self.activations,
            "failures": self.failures,
            "failing": self.failing,
            "last_request": self.last_request,
            "last_success": self.last_success,
            "last_activation": self.last_activation,
            "last_error": self.last_error.as_dict() if self.last_error else None,
        }


class _Refused(Exception):
    """One update attempt failed for ``reason``; carries the message to record."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def display_url(url: str) -> str:
    """``url`` without credentials, query or fragment, fit for logs and status.

    >>> display_url("https://user@bundles.example:8443/b/x.tar.gz?token=s3cret")
    'https://bundles.example:8443/b/x.tar.gz'
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def polling_delay(polling: PollingConfig, rng: random.Random) -> float:
    """Seconds to wait after a successful poll: uniform between min and max, as OPA jitters."""
    return (
        polling.min_delay_seconds
        + (polling.max_delay_seconds - polling.min_delay_seconds) * rng.random()
    )


class BundleService:
    """Keeps one bundle from one service URL active through ``activate``.

    ``start`` makes the first attempt (bounded in time), falls back to the
    cache, and starts the polling task; ``stop`` ends it. ``poll_once`` is
    one attempt, for tests and for callers that drive polling themselves.
    """

    def __init__(
        self,
        url: str,
        *,
        activate: Activate,
        polling: PollingConfig | None = None,
        verification_key: bytes | None = None,
        scope: str | None = None,
        cache: BundleCache | None = None,
        client: httpx.AsyncClient | None = None,
        max_bytes: int = MAX_TOTAL_BYTES,
        on_failure: Callable[[BundleFailure], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self.polling = polling or PollingConfig()
        self.status = BundleStatus(service=display_url(url))
        self._activate = activate
        self._key = verification_key
        self._scope = scope
        self._cache = cache
        # Redirects are followed as OPA's Go client does (a service may hand off to a CDN or
        # object store); nothing secret is sent, so nothing can leak to the other host.
        self._client = client or httpx.AsyncClient(
            headers={"user-agent": "regate-bundle-client"}, follow_redirects=True
        )
        self._own_client = client is None
        self._max_bytes = max_bytes
        self._on_failure = on_failure
        self._rng = rng or random.Random()
        self._long_poll = self.polling.long_polling_timeout_seconds is not None
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------

    async def start(self, *, first_wait: float = 10.0) -> bool:
        """Try the service for up to ``first_wait`` seconds, else the cache; then poll in the
        background. Returns whether a bundle is active."""
        try:
            async with asyncio.timeout(first_wait):
                outcome = await self.poll_once()
        except TimeoutError:
            self._failed(_Refused("timeout", f"no bundle from the service within {first_wait:g} s"))
            outcome = "failed"
        if not self.status.active:
            await self.load_cache()
        self._task = asyncio.create_task(
            self._run(outcome), name=f"bundle-service {self.status.service}"
        )
        return self.status.active

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._own_client:
            await self._client.aclose()

    async def _run(self, outcome: Outcome) -> None:
        retry = 0
        while True:
            if outcome == "failed":
                delay = retry_delay(retry, self.polling.max_delay_seconds, self._rng)
                retry += 1
            else:
                retry = 0
                delay = 0.0 if self._long_poll else polling_delay(self.polling, self._rng)
            await asyncio.sleep(delay)
            try:
                outcome = await self.poll_once()
            except Exception:  # a bug must not end polling; the previous bundle keeps serving
                log.exception("bundle update from %s failed unexpectedly", self.status.service)
                outcome = "failed"

    # -- one attempt --------------------------------------------------------------

    async def poll_once(self) -> Outcome:
        """Ask the service once; activate what it sends when it verifies and checks."""
        self.status.last_request = utc_now()
        try:
            answer = await self._download()
            if answer is None:
                self.status.last_success = utc_now()
                self.status.failing = False
                return "not_modified"
            raw, etag = answer
            bundle = await self._check(raw)
            await self._switch(bundle, source="service")
        except _Refused as refused:
            self._failed(refused)
            return "failed"
        self.status.last_success = self.status.last_activation
        self.status.etag = etag
        self._persist(raw, etag, bundle)
        return "activated"

    async def _download(self) -> tuple[bytes, str | None] | None:
        """``(archive bytes, ETag)``, or ``None`` for a ``304``."""
        preferences = ["modes=snapshot"]
        timeout = httpx.Timeout(REQUEST_TIMEOUT_S)
        wait = self.polling.long_polling_timeout_seconds
        if self._long_poll and wait is not None:
            preferences.append(f"wait={wait}")
            timeout = httpx.Timeout(REQUEST_TIMEOUT_S, read=wait + REQUEST_TIMEOUT_S)
        headers = {"prefer": ";".join(preferences)}
        if self.status.etag:
            headers["if-none-match"] = self.status.etag
        try:
            async with self._client.stream(
                "GET", self.url, headers=headers, timeout=timeout
            ) as response:
                if response.status_code == 304:
                    return None
                if response.status_code != 200:
                    raise _Refused(
                        "http_status", f"the bundle service answered HTTP {response.status_code}"
                    )
                content_type = response.headers.get("content-type", "").split(";")[0].strip()
                self._long_poll = content_type == LONG_POLL_CONTENT_TYPE
                self.status.long_polling = self._long_poll and wait is not None
                raw = await self._read_limited(response)
                return raw, response.headers.get("etag") or None
        except httpx.TimeoutException as exc:
            raise _Refused(
                "timeout", f"the bundle service did not answer in time ({type(exc).__name__})"
            ) from None
        except httpx.HTTPError as exc:
            # The exception text, not the URL: the URL may carry a token in its query.
            raise _Refused(
                "network", f"cannot reach the bundle service: {type(exc).__name__}: {exc}"
            ) from None

    async def _read_limited(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise _Refused("too_large", f"the bundle is larger than {self._max_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():  # counted after any Content-Encoding is undone
            size += len(chunk)
            if size > self._max_bytes:
                raise _Refused("too_large", f"the bundle is larger than {self._max_bytes} bytes")
            chunks.append(chunk)
        if size == 0:
            raise _Refused("bad_archive", "the bundle service sent an empty body")
        return b"".join(chunks)

    async def _check(self, raw: bytes) -> Bundle:
        """Read, verify and check the archive in a worker thread (compiling Rego takes a while)."""
        result = await asyncio.to_thread(self._check_sync, raw)
        if isinstance(result, _Refused):
            raise result
        return result

    def _check_sync(self, raw: bytes) -> Bundle | _Refused:
        # A refusal is returned, not raised: a traceback would carry the checker's frames,
        # and the regorus engine in them, to the event loop's thread, and regorus objects
        # must be freed on the thread that made them.
        try:
            files = read_archive(raw, max_total_bytes=self._max_bytes)
        except BundleError as exc:
            return _Refused("bad_archive", str(exc))
        if "patch.json" in files:
            return _Refused(
                "invalid_bundle",
                "delta bundles (patch.json) are not supported; serve a snapshot bundle",
            )
        try:
            return load_bundle(
                self.status.service, verification_key=self._key, scope=self._scope, files=files
            )
        except SignatureError as exc:
            return _Refused("signature", str(exc))
        except BundleError as exc:
            return _Refused("invalid_bundle", str(exc))

    async def _switch(self, bundle: Bundle, *, source: Literal["service", "cache"]) -> None:
        try:
            await self._activate(bundle)
        except RegateError as exc:
            raise _Refused("activation", str(exc)) from None
        except Exception as exc:
            log.exception("activating bundle revision %r failed", bundle.revision)
            raise _Refused("activation", f"{type(exc).__name__}: {exc}") from None
        status = self.status
        status.source, status.revision, status.digest = source, bundle.revision, bundle.digest
        status.activations += 1
        status.failing = False
        status.last_activation = utc_now()
        log.info(
            "activated bundle revision %r (%s) from the %s", bundle.revision, bundle.digest, source
        )

    def _failed(self, refused: _Refused) -> None:
        failure = BundleFailure(
            refused.reason, ERROR_CODES[refused.reason], refused.message, utc_now()
        )
        status = self.status
        status.failures += 1
        status.failures_by_reason[failure.reason] = (
            status.failures_by_reason.get(failure.reason, 0) + 1
        )
        status.failing = refused.reason != "cache"
        status.last_error = failure
        serving = (
            f"revision {status.revision!r} keeps serving"
            if status.active
            else "no bundle is active"
        )
        log.warning(
            "bundle update from %s failed (%s, %s): %s; %s",
            status.service,
            failure.reason,
            failure.code,
            failure.message,
            serving,
        )
        if self._on_failure is not None:
            self._on_failure(failure)

    # -- the cache ------------------------------------------------------------------

    def _persist(self, raw: bytes, etag: str | None, bundle: Bundle) -> None:
        if self._cache is None:
            return
        try:
            self._cache.save(raw, etag=etag, revision=bundle.revision, digest=bundle.digest)
        except OSError as exc:
            self._failed(
                _Refused(
                    "cache", f"cannot persist the bundle to {self._cache.directory}: {exc.strerror}"
                )
            )

    async def load_cache(self) -> bool:
        """Activate the cached bundle (verified and checked again); whether one was activated."""
        if self._cache is None:
            return False
        try:
            cached = self._cache.load()
        except (OSError, ValueError) as exc:
            self._failed(_Refused("cache", f"cannot read the cached bundle: {exc}"))
            return False
        if cached is None:
            return False
        try:
            bundle = await self._check(cached.raw)
            await self._switch(bundle, source="cache")
        except _Refused as refused:
            self._failed(
                _Refused("cache", f"cached bundle refused ({refused.reason}): {refused.message}")
            )
            return False
        # The next poll asks for anything newer than what the cache holds.
        self.status.etag = cached.etag
        log.warning(
            "serving the cached bundle revision %r saved %s: the bundle service gave none",
            bundle.revision,
            cached.saved,
        )
        return True
