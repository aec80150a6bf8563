"""The ``redis`` limit store against a real ``redis-server``: the shared quota semantics
of ``StoreBehaviour``, atomicity across several clients, key layout, script caching,
and failing loudly when Redis is away."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from engine.config import LimitsConfig
from engine.limits import Counter, LimitStoreUnavailable, make_limit_store
from engine.limits_redis import CHARGE, PREFIX, RedisLimitStore
from engine.secrets import SecretRef
from tests.conftest import free_port
from tests.engine.test_limits import FakeClock, StoreBehaviour, StoreFactory, principal, rpm, tpm


class TestRedisLimitStore(StoreBehaviour):
    @pytest.fixture
    def make_store(self, redis_url: str) -> StoreFactory:
        # A prefix of its own per test keeps tests apart in the one session server.
        prefix = f"regate:q:test-{uuid.uuid4().hex[:8]}:"
        return lambda clock: RedisLimitStore(redis_url, prefix=prefix, clock=clock)


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def test_charges_from_many_replicas_are_atomic(redis_url: str) -> None:
    """Eight stores (eight connection pools, as eight replicas would have) charge 200 times
    at once against one limit of 50."""
    prefix = f"regate:q:test-{uuid.uuid4().hex[:8]}:"
    stores = [RedisLimitStore(redis_url, prefix=prefix) for _ in range(8)]
    pid = principal()["id"]
    try:
        results = await asyncio.gather(
            *(stores[i % 8].charge([rpm(pid, 50)], requests=1, tokens=0) for i in range(200))
        )
        allowed = sum(r.allowed for r in results)
        assert allowed == 50, (
            f"200 concurrent charges on 8 clients against a limit of 50: {allowed} allowed"
        )
        assert all(
            r.field == "requests_per_minute" and 0 < r.retry_after <= 60
            for r in results
            if not r.allowed
        )
        assert (await stores[0].usage(pid))["requests_minute"] == 50
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_token_budget_is_never_overspent_by_concurrent_reservations(redis_url: str) -> None:
    prefix = f"regate:q:test-{uuid.uuid4().hex[:8]}:"
    stores = [RedisLimitStore(redis_url, prefix=prefix) for _ in range(4)]
    pid = principal()["id"]
    sizes = [37, 120, 5, 64] * 25  # 100 requests, 5,650 tokens asked for
    try:
        results = await asyncio.gather(
            *(
                stores[i % 4].charge([tpm(f"p:{pid}", 1000)], requests=1, tokens=n)
                for i, n in enumerate(sizes)
            )
        )
        granted = sum(n for n, r in zip(sizes, results, strict=True) if r.allowed)
        used = (await stores[0].usage(pid))["tokens_minute"]
        assert used == granted, f"counter {used} != tokens granted {granted}"
        assert 1000 - max(sizes) < granted <= 1000, f"granted {granted} of a 1000-token budget"
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_keys_are_namespaced_by_window_and_expire_with_it(
    redis_url: str, raw: redis.Redis
) -> None:
    store = RedisLimitStore(redis_url)  # the real prefix and the server's clock
    pid = principal()["id"]
    try:
        charged = await store.charge([rpm(pid, 5), tpm(f"p:{pid}", 500)], requests=1, tokens=42)
        seconds, _micro = await raw.time()
        minute = seconds // 60
        requests_key = f"{PREFIX}p:{pid}:requests_per_minute:{minute}"
        tokens_key = f"{PREFIX}p:{pid}:tokens_per_minute:{minute}"
        assert charged.reservation == ((tokens_key, 42),)
        assert await raw.mget(requests_key, tokens_key) == ["1", "42"]
        for key in (requests_key, tokens_key):
            assert 0 < await raw.pttl(key) <= 60_000
    finally:
        await store.close()


async def test_a_settle_after_expiry_creates_no_immortal_key(
    redis_url: str, raw: redis.Redis
) -> None:
    store = RedisLimitStore(redis_url)
    pid = principal()["id"]
    one_second = Counter(f"p:{pid}:tokens_per_second", "tokens_per_second", 1, 100)
    try:
        charged = await store.charge([one_second], requests=1, tokens=10)
        ((key, _),) = charged.reservation
        deadline = time.monotonic() + 3
        while await raw.exists(key):
            assert time.monotonic() < deadline, "the 1-second window's key did not expire"
            await asyncio.sleep(0.05)
        await store.settle(charged.reservation, 50)
        assert await raw.exists(key) == 0
    finally:
        await store.close()


async def test_scripts_run_by_sha_and_reload_after_a_script_flush(
    redis_url: str, raw: redis.Redis
) -> None:
    store = RedisLimitStore(redis_url, clock=FakeClock())
    pid = principal()["id"]
    try:
        await raw.script_flush()
        assert (await store.charge([rpm(pid, 2)], requests=1, tokens=0)).allowed  # NOSCRIPT -> EVAL
        sha = await raw.script_load(CHARGE)
        assert await raw.script_exists(sha) == [True]
        await raw.script_flush()
        assert (await store.charge([rpm(pid, 2)], requests=1, tokens=0)).allowed
        assert not (await store.charge([rpm(pid, 2)], requests=1, tokens=0)).allowed
    finally:
        await store.close()


@pytest.mark.parametrize("operation", ["charge", "settle", "usage"])
async def test_an_unreachable_redis_raises_limit_store_unavailable(operation: str) -> None:
    store = RedisLimitStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)
    started = time.monotonic()
    try:
        with pytest.raises(LimitStoreUnavailable) as caught:
            if operation == "charge":
                await store.charge([rpm("bot", 1)], requests=1, tokens=1)
            elif operation == "settle":
                await store.settle([("regate:q:p:bot:tokens_per_minute:1", 1)], 5)
            else:
                await store.usage("bot")
    finally:
        await store.close()
    assert caught.value.code == "limit.store_unavailable"
    assert "ConnectionError" in caught.value.message
    assert time.monotonic() - started < 2


async def test_a_redis_that_never_answers_times_out_as_limit_store_unavailable() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # holds the connection open and never replies

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = RedisLimitStore(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    started = time.monotonic()
    try:
        with pytest.raises(LimitStoreUnavailable, match="TimeoutError"):
            await store.charge([rpm("bot", 1)], requests=1, tokens=1)
        elapsed = time.monotonic() - started
    finally:
        await store.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    assert accepted, "the store never connected"
    assert elapsed < 1.5, f"a silent Redis held the request for {elapsed:.2f} s"


async def test_the_registry_builds_the_redis_store_with_the_configured_password(
    redis_url: str, raw: redis.Redis
) -> None:
    user, secret = f"regate-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    await raw.acl_setuser(
        user, enabled=True, passwords=[f"+{secret}"], keys=["regate:q:*"], commands=["+@all"]
    )
    url = redis_url.replace("redis://", f"redis://{user}@")  # the password never goes in the URL
    config = LimitsConfig(
        store="redis", redis_url=url, redis_password=SecretRef("env", "REDIS_PASSWORD")
    )
    pid = principal()["id"]
    try:
        for password, works in ((secret, True), ("wrong-" + secret, False)):
            store = make_limit_store(config, {"REDIS_PASSWORD": password})
            assert isinstance(store, RedisLimitStore)
            try:
                if works:
                    assert (await store.charge([rpm(pid, 1)], requests=1, tokens=0)).allowed
                else:
                    with pytest.raises(LimitStoreUnavailable) as caught:
                        await store.charge([rpm(pid, 1)], requests=1, tokens=0)
                    assert secret not in str(caught.value)
            finally:
                await store.close()
    finally:
        await raw.acl_deluser(user)
