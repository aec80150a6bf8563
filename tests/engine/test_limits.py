"""Quota semantics every limit store must share (``StoreBehaviour``), run here on the
memory store; ``test_limits_redis.py`` runs the same class on Redis. Plus counter keys
and the store registry."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from engine.config import LimitsConfig
from engine.errors import ConfigError
from engine.limits import Counter, LimitStore, MemoryLimitStore, counters_for, make_limit_store

# 10 s into a minute (1_800_000_000 is a multiple of 60), 33_600 s into a day.
T0 = 1_800_000_010.0

StoreFactory = Callable[["FakeClock"], LimitStore]

_ids = itertools.count()


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def principal(team: str | None = None) -> dict[str, Any]:
    """A principal no other test uses, so stores shared across tests keep them apart."""
    return {"id": f"limits-test-{next(_ids)}", "kind": "app", "team": team, "labels": {}}


def rpm(pid: str, limit: int) -> Counter:
    return Counter(f"p:{pid}:requests_per_minute", "requests_per_minute", 60, limit)


def tpm(key: str, limit: int) -> Counter:
    return Counter(f"{key}:tokens_per_minute", "tokens_per_minute", 60, limit)


def tpd(key: str, limit: int) -> Counter:
    return Counter(f"{key}:tokens_per_day", "tokens_per_day", 86400, limit)


class StoreBehaviour:
    """Subclasses provide the ``make_store`` fixture: clock -> fresh store."""

    @pytest.fixture
    async def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    async def store(self, make_store: StoreFactory, clock: FakeClock) -> AsyncIterator[LimitStore]:
        store = make_store(clock)
        yield store
        await store.close()

    async def test_allows_up_to_the_limit_then_names_the_counter_and_its_reset(
        self, store: LimitStore
    ) -> None:
        pid = principal()["id"]
        results = [await store.charge([rpm(pid, 3)], requests=1, tokens=10) for _ in range(4)]
        assert [r.allowed for r in results] == [True, True, True, False]
        refused = results[-1]
        assert (
            refused.field == "requests_per_minute"
            and refused.reason_code == "limit.requests_per_minute"
        )
        assert refused.retry_after == pytest.approx(50.0, abs=0.01)  # T0 is 10 s into its minute
        assert (await store.usage(pid))["requests_minute"] == 3

    async def test_retry_after_follows_the_refusing_counters_window(
        self, store: LimitStore
    ) -> None:
        pid = principal()["id"]
        counters = [rpm(pid, 100), tpd(f"p:{pid}", 50)]
        assert (await store.charge(counters, requests=1, tokens=40)).allowed
        refused = await store.charge(counters, requests=1, tokens=40)
        assert refused.field == "tokens_per_day"
        assert refused.retry_after == pytest.approx(86400 - T0 % 86400, abs=0.01)

    @pytest.mark.parametrize("refusing_first", [True, False])
    async def test_charges_all_counters_or_none(
        self, store: LimitStore, refusing_first: bool
    ) -> None:
        who = principal(team="finance")
        pid = who["id"]
        team_tokens = tpm(f"t:{who['team']}", 100)
        counters = [team_tokens, rpm(pid, 10)] if refusing_first else [rpm(pid, 10), team_tokens]
        assert (await store.charge(counters, requests=1, tokens=80)).allowed
        refused = await store.charge(counters, requests=1, tokens=30)
        assert (refused.allowed, refused.field, refused.reservation) == (
            False,
            "tokens_per_minute",
            (),
        )
        # The request counter took nothing from the refused charge ...
        assert (await store.usage(pid))["requests_minute"] == 1
        # ... and neither did the token counter: 20 tokens still fit exactly.
        assert (await store.charge([team_tokens], requests=1, tokens=20)).allowed
        assert not (await store.charge([team_tokens], requests=1, tokens=1)).allowed

    async def test_a_new_window_starts_from_zero(self, store: LimitStore, clock: FakeClock) -> None:
        pid = principal()["id"]
        for _ in range(2):
            assert (await store.charge([rpm(pid, 2)], requests=1, tokens=0)).allowed
        assert not (await store.charge([rpm(pid, 2)], requests=1, tokens=0)).allowed
        clock.advance(49.9)  # still the same minute
        assert not (await store.charge([rpm(pid, 2)], requests=1, tokens=0)).allowed
        clock.advance(0.2)  # the next minute
        assert (await store.usage(pid))["requests_minute"] == 0
        assert (await store.charge([rpm(pid, 2)], requests=1, tokens=0)).allowed
        assert (await store.usage(pid))["requests_minute"] == 1

    async def test_settle_replaces_the_estimate_with_real_usage(self, store: LimitStore) -> None:
        pid = principal()["id"]
        charged = await store.charge(
            [rpm(pid, 10), tpm(f"p:{pid}", 1000), tpd(f"p:{pid}", 5000)], requests=1, tokens=100
        )
        assert charged.allowed
        # Only the token counters are reserved (to settle later).
        assert sorted(tokens for _key, tokens in charged.reservation) == [100, 100]
        await store.settle(charged.reservation, -60)
        assert await store.usage(pid) == {
            "requests_minute": 1,
            "tokens_minute": 40,
            "tokens_day": 40,
        }
        await store.settle(charged.reservation, 25)
        assert await store.usage(pid) == {
            "requests_minute": 1,
            "tokens_minute": 65,
            "tokens_day": 65,
        }
        await store.settle(charged.reservation, -1000)  # never below zero
        assert await store.usage(pid) == {"requests_minute": 1, "tokens_minute": 0, "tokens_day": 0}

    async def test_settled_usage_counts_against_the_next_charge(self, store: LimitStore) -> None:
        pid = principal()["id"]
        budget = [tpm(f"p:{pid}", 100)]
        charged = await store.charge(budget, requests=1, tokens=50)
        await store.settle(charged.reservation, 40)  # the call used 90 tokens, not 50
        assert not (await store.charge(budget, requests=1, tokens=20)).allowed
        assert (await store.charge(budget, requests=1, tokens=10)).allowed
        assert (await store.usage(pid))["tokens_minute"] == 100

    async def test_settle_after_the_window_ended_leaves_the_new_window_alone(
        self, store: LimitStore, clock: FakeClock
    ) -> None:
        pid = principal()["id"]
        charged = await store.charge([tpm(f"p:{pid}", 1000)], requests=1, tokens=100)
        clock.advance(60)
        assert (await store.charge([tpm(f"p:{pid}", 1000)], requests=1, tokens=7)).allowed
        await store.settle(charged.reservation, 500)
        assert (await store.usage(pid))["tokens_minute"] == 7

    async def test_no_counters_is_always_allowed(self, store: LimitStore) -> None:
        assert (await store.charge([], requests=1, tokens=10**9)).allowed

    async def test_usage_of_an_unknown_principal_is_zero(self, store: LimitStore) -> None:
        assert await store.usage(principal()["id"]) == {
            "requests_minute": 0,
            "tokens_minute": 0,
            "tokens_day": 0,
        }

    async def test_concurrent_charges_never_exceed_the_limit(self, store: LimitStore) -> None:
        pid = principal()["id"]
        results = await asyncio.gather(
            *(store.charge([rpm(pid, 50)], requests=1, tokens=0) for _ in range(200))
        )
        allowed = sum(r.allowed for r in results)
        assert allowed == 50, f"200 concurrent charges against a limit of 50: {allowed} allowed"
        assert (await store.usage(pid))["requests_minute"] == 50


class TestMemoryLimitStore(StoreBehaviour):
    @pytest.fixture
    def make_store(self) -> StoreFactory:
        return lambda clock: MemoryLimitStore(clock=clock)


def test_counters_for_expands_scopes_and_fields() -> None:
    quotas: list[dict[str, Any]] = [
        {"scope": "principal", "requests_per_minute": 60, "tokens_per_day": 1000},
        {"scope": "team", "tokens_per_minute": 500},
        {"scope": "principal_model", "requests_per_minute": 5},
        {"scope": "model", "tokens_per_day": None},
    ]
    counters = counters_for(quotas, {"id": "bot", "team": "finance"}, "gpt-4o-mini")
    assert [(c.key, c.window, c.limit) for c in counters] == [
        ("p:bot:requests_per_minute", 60, 60),
        ("p:bot:tokens_per_day", 86400, 1000),
        ("t:finance:tokens_per_minute", 60, 500),
        ("pm:bot:gpt-4o-mini:requests_per_minute", 60, 5),
    ]


def test_team_quotas_skip_a_principal_without_a_team() -> None:
    assert counters_for([{"scope": "team", "requests_per_minute": 1}], {"id": "bot"}, "m") == []


def test_window_keys_carry_the_window_number() -> None:
    counter = rpm("bot", 1)
    assert counter.window_key(T0) == "p:bot:requests_per_minute:30000000"
    assert counter.window_key(T0 + 50) == "p:bot:requests_per_minute:30000001"


def test_the_registry_builds_the_memory_store_by_name() -> None:
    assert isinstance(make_limit_store(LimitsConfig(store="memory"), {}), MemoryLimitStore)


def test_the_registry_refuses_an_unknown_store() -> None:
    with pytest.raises(ConfigError, match=r"unknown limits\.store 'etcd'"):
        make_limit_store(LimitsConfig(store="etcd"), {})  # type: ignore[arg-type]
