"""adapters.bundle_service: polling a bundle service as OPA does, against a real local server."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.bundle_service import (
    BundleFailure,
    BundleService,
    display_url,
    polling_delay,
)
from adapters.fake_provider.server import run_in_thread
from adapters.opa_backoff import retry_delay
from engine.bundle.cache import BundleCache
from engine.bundle.loader import Bundle
from engine.config import PollingConfig
from tests.engine.bundle.bundle_server import (
    PATH,
    BundleServer,
    default_files,
    es256_keys,
    signed,
    with_compile_error,
)

FAST = PollingConfig(min_delay_seconds=0.02, max_delay_seconds=0.05)
KEYS = es256_keys()
OTHER_KEYS = es256_keys()


@pytest.fixture
def server() -> Iterator[tuple[BundleServer, str]]:
    bundles = BundleServer()
    with run_in_thread(bundles.app) as url:
        yield bundles, url + PATH


class Activations:
    """The ``activate`` callback: records what was activated; can be told to refuse."""

    def __init__(self) -> None:
        self.revisions: list[str] = []
        self.refuse = False

    async def __call__(self, bundle: Bundle) -> None:
        if self.refuse:
            raise RuntimeError("evaluator could not start")
        self.revisions.append(bundle.revision)


def client_for(url: str, activations: Activations, **options: object) -> BundleService:
    options.setdefault("verification_key", KEYS[1])
    options.setdefault("polling", FAST)
    return BundleService(url, activate=activations, **options)  # type: ignore[arg-type]


async def test_etag_and_304_avoid_downloading_the_same_bundle_again(
    server: tuple[BundleServer, str],
) -> None:
    bundles, url = server
    etag = bundles.publish(signed(default_files("r1"), KEYS[0]))
    activations = Activations()
    service = client_for(url, activations)
    try:
        assert await service.poll_once() == "activated"
        assert await service.poll_once() == "not_modified"
        assert await service.poll_once() == "not_modified"
    finally:
        await service.stop()
    assert activations.revisions == ["r1"]
    assert bundles.downloads == 1 and bundles.not_modified == 2
    assert [s.if_none_match for s in bundles.seen] == [None, etag, etag]
    assert all(s.prefer == "modes=snapshot" for s in bundles.seen)  # no long polling asked for
    assert service.status.etag == etag and service.status.last_success is not None


async def test_bad_bundles_are_refused_and_the_previous_one_keeps_serving(
    server: tuple[BundleServer, str],
) -> None:
    bundles, url = server
    good_etag = bundles.publish(signed(default_files("r1"), KEYS[0]))
    failures: list[BundleFailure] = []
    activations = Activations()
    service = client_for(url, activations, on_failure=failures.append)
    try:
        assert await service.poll_once() == "activated"
        bundles.publish(signed(default_files("r2-forged"), OTHER_KEYS[0]))
        assert await service.poll_once() == "failed"
        # The ETag stays the active bundle's: a bad bundle is fetched and refused again, never skipped.
        assert await service.poll_once() == "failed"
        assert bundles.seen[-1].if_none_match == good_etag and bundles.seen[-1].status == 200
        assert (service.status.revision, service.status.failing) == ("r1", True)
        signature_error = service.status.last_error
        bundles.publish(signed(with_compile_error(default_files("r3-broken")), KEYS[0]))
        assert await service.poll_once() == "failed"
        compile_error = service.status.last_error
        bundles.publish(signed(default_files("r4"), KEYS[0]))
        assert await service.poll_once() == "activated"
    finally:
        await service.stop()

    assert activations.revisions == ["r1", "r4"]
    assert signature_error is not None and compile_error is not None
    assert (signature_error.reason, signature_error.code) == ("signature", "bundle_signature_error")
    assert "signature verification failed (ES256)" in signature_error.message
    assert (compile_error.reason, compile_error.code) == ("invalid_bundle", "bundle_error")
    assert "rego compile error" in compile_error.message and "broken.rego" in compile_error.message
    assert [f.reason for f in failures] == ["signature", "signature", "invalid_bundle"]
    status = service.status.as_dict()
    assert status["revision"] == "r4" and status["failing"] is False and status["activations"] == 2
    assert status["failures"] == 3 and status["last_error"]["reason"] == "invalid_bundle"
    assert service.status.failures_by_reason == {"signature": 2, "invalid_bundle": 1}


async def test_unsigned_bundle_is_refused_when_a_key_is_configured(
    server: tuple[BundleServer, str],
) -> None:
    from engine.bundle.archive import write_archive

    bundles, url = server
    bundles.publish(write_archive(default_files("unsigned")))
    service = client_for(url, Activations())
    try:
        assert await service.poll_once() == "failed"
    finally:
        await service.stop()
    assert (
        service.status.last_error is not None and "not signed" in service.status.last_error.message
    )
    assert not service.status.active


async def test_scope_must_match(server: tuple[BundleServer, str]) -> None:
    from engine.bundle.archive import write_archive
    from engine.bundle.signing import sign_files

    bundles, url = server
    files = default_files("scoped")
    sig = sign_files(files, key_pem_or_secret=KEYS[0], algorithm="ES256", scope="prod")
    bundles.publish(write_archive({**files, ".signatures.json": sig}))
    wrong, right = (
        client_for(url, Activations(), scope="dev"),
        client_for(url, Activations(), scope="prod"),
    )
    try:
        assert await wrong.poll_once() == "failed"
        assert await right.poll_once() == "activated"
    finally:
        await wrong.stop()
        await right.stop()
    assert (
        wrong.status.last_error is not None and "scope mismatch" in wrong.status.last_error.message
    )


async def test_http_errors_network_errors_and_oversized_bundles_are_failures(
    server: tuple[BundleServer, str],
) -> None:
    bundles, url = server
    bundles.publish(signed(default_files("r1"), KEYS[0]))
    bundles.fail_status = 503
    service = client_for(url, Activations())
    small = client_for(url, Activations(), max_bytes=1000)
    closed = client_for("http://127.0.0.1:9/bundles/x.tar.gz", Activations())
    try:
        assert await service.poll_once() == "failed"
        bundles.fail_status = None
        assert await small.poll_once() == "failed"
        assert await closed.poll_once() == "failed"
    finally:
        for s in (service, small, closed):
            await s.stop()
    assert (
        service.status.last_error is not None and service.status.last_error.reason == "http_status"
    )
    assert "HTTP 503" in service.status.last_error.message
    assert small.status.last_error is not None and small.status.last_error.reason == "too_large"
    assert closed.status.last_error is not None and closed.status.last_error.reason == "network"


async def test_activation_failure_keeps_the_previous_bundle(
    server: tuple[BundleServer, str],
) -> None:
    bundles, url = server
    bundles.publish(signed(default_files("r1"), KEYS[0]))
    activations = Activations()
    service = client_for(url, activations)
    try:
        assert await service.poll_once() == "activated"
        bundles.publish(signed(default_files("r2"), KEYS[0]))
        activations.refuse = True
        assert await service.poll_once() == "failed"
    finally:
        await service.stop()
    assert service.status.revision == "r1" and activations.revisions == ["r1"]
    assert service.status.last_error is not None
    assert service.status.last_error.reason == "activation"
    assert "evaluator could not start" in service.status.last_error.message


async def test_long_polling_holds_the_request_until_the_bundle_changes() -> None:
    bundles = BundleServer(long_poll=True)
    with run_in_thread(bundles.app) as base:
        bundles.publish(signed(default_files("r1"), KEYS[0]))
        activations = Activations()
        polling = PollingConfig(
            min_delay_seconds=5, max_delay_seconds=5, long_polling_timeout_seconds=3
        )
        service = client_for(base + PATH, activations, polling=polling)
        try:
            assert await service.poll_once() == "activated"
            assert service.status.long_polling is True

            async def publish_later() -> None:
                await asyncio.sleep(0.3)
                bundles.publish(signed(default_files("r2"), KEYS[0]))

            started = time.monotonic()
            publisher = asyncio.create_task(publish_later())
            assert await service.poll_once() == "activated"
            held = time.monotonic() - started
            await publisher
        finally:
            await service.stop()
    assert activations.revisions == ["r1", "r2"]
    assert held >= 0.25  # the server held the request until the new bundle was there
    assert [s.prefer for s in bundles.seen] == ["modes=snapshot;wait=3"] * 2


async def test_without_the_long_poll_content_type_the_client_falls_back_to_polling(
    server: tuple[BundleServer, str],
) -> None:
    bundles, url = server  # answers application/gzip: no long-polling support
    bundles.publish(signed(default_files("r1"), KEYS[0]))
    polling = PollingConfig(
        min_delay_seconds=5, max_delay_seconds=5, long_polling_timeout_seconds=3
    )
    service = client_for(url, Activations(), polling=polling)
    try:
        await service.poll_once()
        await service.poll_once()
    finally:
        await service.stop()
    assert [s.prefer for s in bundles.seen] == ["modes=snapshot;wait=3", "modes=snapshot"]
    assert service.status.long_polling is False


async def test_background_polling_activates_a_new_bundle_without_a_restart(
    server: tuple[BundleServer, str],
) -> None:
    bundles, url = server
    bundles.publish(signed(default_files("r1"), KEYS[0]))
    activations = Activations()
    service = client_for(url, activations)
    try:
        assert await service.start(first_wait=5) is True
        bundles.publish(signed(default_files("r2"), KEYS[0]))
        deadline = time.monotonic() + 5
        while service.status.revision != "r2" and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        await service.stop()
    assert activations.revisions == ["r1", "r2"]
    assert bundles.downloads == 2  # r1, then r2 once: every other poll was a 304
    assert bundles.not_modified == len(bundles.seen) - 2


async def test_cache_serves_a_cold_start_while_the_service_is_down(tmp_path: Path) -> None:
    bundles = BundleServer()
    with run_in_thread(bundles.app) as base:
        url = base + PATH
        etag = bundles.publish(signed(default_files("cached-1"), KEYS[0]))
        first = client_for(url, Activations(), cache=BundleCache(tmp_path, url))
        try:
            assert await first.start(first_wait=5) is True
        finally:
            await first.stop()
    meta = json.loads((tmp_path / "bundle.json").read_text())
    assert meta["etag"] == etag and meta["revision"] == "cached-1" and url not in json.dumps(meta)
    assert not list(tmp_path.glob(".*.tmp"))  # written through temporary files, none left over

    # The service is gone now: a cold start serves the cached bundle, verified again.
    activations = Activations()
    cold = client_for(url, activations, cache=BundleCache(tmp_path, url))
    try:
        assert await cold.start(first_wait=2) is True
    finally:
        await cold.stop()
    assert activations.revisions == ["cached-1"]
    assert cold.status.source == "cache" and cold.status.etag == etag
    assert cold.status.last_error is not None and cold.status.last_error.reason == "network"


async def test_cached_bundle_is_verified_again_and_bound_to_its_service(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/bundles/regate.tar.gz"
    cache = BundleCache(tmp_path, url)
    raw = signed(default_files("c1"), KEYS[0])
    cache.save(raw, etag='"e"', revision="c1", digest="sha256:x")

    other_key = client_for(
        url, Activations(), verification_key=OTHER_KEYS[1], cache=BundleCache(tmp_path, url)
    )
    other_service = client_for(
        url, Activations(), cache=BundleCache(tmp_path, "http://127.0.0.1:9/other")
    )
    (tmp_path / "tampered").mkdir()
    tampered = BundleCache(tmp_path / "tampered", url)
    tampered.save(raw, etag=None, revision="c1", digest="sha256:x")
    tampered.archive_path.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    tampered_service = client_for(url, Activations(), cache=tampered)
    try:
        assert await other_key.load_cache() is False
        assert await other_service.load_cache() is False
        assert await tampered_service.load_cache() is False
    finally:
        for s in (other_key, other_service, tampered_service):
            await s.stop()
    assert other_key.status.last_error is not None and other_key.status.last_error.reason == "cache"
    assert "signature" in other_key.status.last_error.message
    assert other_service.status.last_error is None  # another service's cache is simply not used
    assert (
        tampered_service.status.last_error is not None
        and "checksum" in tampered_service.status.last_error.message
    )


def test_polling_delay_is_jittered_between_min_and_max() -> None:
    rng = random.Random(7)
    polling = PollingConfig(min_delay_seconds=60, max_delay_seconds=120)
    delays = [polling_delay(polling, rng) for _ in range(200)]
    assert all(60 <= d <= 120 for d in delays)
    assert max(delays) - min(delays) > 40  # spread, not a constant


def test_retry_delay_follows_opas_backoff() -> None:
    rng = random.Random(3)
    assert retry_delay(0, 120, rng) == 0.0
    assert 0.16 * 0.8 <= retry_delay(1, 120, rng) <= 0.16 * 1.2
    assert 0.256 * 0.8 <= retry_delay(2, 120, rng) <= 0.256 * 1.2
    assert all(120 * 0.8 <= retry_delay(50, 120, rng) <= 120 * 1.2 for _ in range(20))
    assert retry_delay(5, 0.05, rng) <= 0.05 * 1.2


def test_display_url_drops_credentials_and_query() -> None:
    assert display_url("https://u:p@h.example/b.tar.gz?token=abc#x") == "https://h.example/b.tar.gz"
    assert display_url("http://[::1]:8080/b") == "http://[::1]:8080/b"
