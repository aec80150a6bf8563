"""Quotas: requests and tokens per principal, team, model, in fixed time windows.

A quota names a scope and one or more counters. ``charge`` checks and charges
every quota of a request atomically (all or nothing), so concurrent requests
cannot overspend; tokens are reserved from an estimate before the call and
settled with the provider's reported usage after it. Stores are registered by
name in ``LIMIT_STORES`` and imported lazily, so the ``redis`` client stays an
optional dependency: ``memory`` (one process) here, ``redis`` (replicas) in
``limits_redis``.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from engine.errors import ConfigError, RegateError

if TYPE_CHECKING:
    from engine.config import LimitsConfig

WINDOWS = {"requests_per_minute": 60, "tokens_per_minute": 60, "tokens_per_day": 86400}
SCOPES = ("principal", "team", "model", "principal_model")


class LimitStoreUnavailable(RegateError):
    """The quota store cannot be reached or failed; the request must not go through."""

    code = "limit.store_unavailable"


@dataclass(frozen=True)
class Counter:
    """One counter to charge: a key, its window and its limit."""

    key: str
    field: str
    window: int
    limit: int

    def window_key(self, now: float) -> str:
        return f"{self.key}:{int(now // self.window)}"

    def resets_in(self, now: float) -> float:
        return self.window - (now % self.window)


@dataclass(frozen=True)
class ChargeResult:
    allowed: bool
    field: str | None = None  # the counter that refused, e.g. "requests_per_minute"
    retry_after: float = 0.0
    reservation: tuple[tuple[str, int], ...] = ()  # (window key, tokens) to settle later

    @property
    def reason_code(self) -> str:
        return f"limit.{self.field}"


def scope_key(scope: str, principal: Mapping[str, Any], model: str) -> str | None:
    """The counter key of ``scope`` for a request, or ``None`` when it does not apply
    (e.g. scope ``team`` for a principal without a team)."""
    pid = str(principal.get("id", ""))
    if scope == "principal":
        return f"p:{pid}"
    if scope == "team":
        team = principal.get("team")
        return f"t:{team}" if team else None
    if scope == "model":
        return f"m:{model}"
    if scope == "principal_model":
        return f"pm:{pid}:{model}"
    raise ValueError(f"unknown quota scope {scope!r}")


def counters_for(
    quotas: Iterable[Mapping[str, Any]], principal: Mapping[str, Any], model: str
) -> list[Counter]:
    counters = []
    for quota in quotas:
        key = scope_key(str(quota["scope"]), principal, model)
        if key is None:
            continue
        for field, window in WINDOWS.items():
            if quota.get(field) is not None:
                counters.append(Counter(f"{key}:{field}", field, window, int(quota[field])))
    return counters


class LimitStore(Protocol):
    """Every method may raise :class:`LimitStoreUnavailable`."""

    async def charge(
        self, counters: Sequence[Counter], *, requests: int, tokens: int
    ) -> ChargeResult:
        """Charge all counters or none."""
        ...

    async def settle(self, reservation: Sequence[tuple[str, int]], delta: int) -> None:
        """Correct the token counters reserved by ``charge`` by ``delta`` tokens."""
        ...

    async def usage(self, principal_id: str) -> dict[str, int]:
        """Current usage of a principal for ``context.usage``."""
        ...

    async def close(self) -> None: ...


class MemoryLimitStore:
    """In-process store; exact within one process (all work happens under one lock)."""

    name = "memory"

    @classmethod
    def from_config(cls, config: LimitsConfig, env: Mapping[str, str]) -> MemoryLimitStore:
        return cls()

    def __init__(self, clock: Any = time.time) -> None:
        self._counts: dict[str, tuple[int, float]] = {}  # window key -> (count, expires at)
        self._lock = asyncio.Lock()
        self._clock = clock

    def _get(self, key: str, now: float) -> int:
        value = self._counts.get(key)
        if value is None or value[1] <= now:
            return 0
        return value[0]

    def _add(self, key: str, amount: int, expires: float, now: float) -> None:
        self._counts[key] = (self._get(key, now) + amount, expires)

    async def charge(
        self, counters: Sequence[Counter], *, requests: int, tokens: int
    ) -> ChargeResult:
        async with self._lock:
            now = self._clock()
            for counter in counters:
                amount = requests if counter.field == "requests_per_minute" else tokens
                if self._get(counter.window_key(now), now) + amount > counter.limit:
                    return ChargeResult(False, counter.field, counter.resets_in(now))
            reservation = []
            for counter in counters:
                amount = requests if counter.field == "requests_per_minute" else tokens
                key = counter.window_key(now)
                self._add(key, amount, now + counter.resets_in(now), now)
                if counter.field != "requests_per_minute":
                    reservation.append((key, amount))
            if len(self._counts) > 100_000:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            return ChargeResult(True, reservation=tuple(reservation))

    async def settle(self, reservation: Sequence[tuple[str, int]], delta: int) -> None:
        if not delta:
            return
        async with self._lock:
            now = self._clock()
            for key, _reserved in reservation:
                count, expires = self._counts.get(key, (0, now))
                if expires > now:
                    self._counts[key] = (max(0, count + delta), expires)

    async def usage(self, principal_id: str) -> dict[str, int]:
        now = self._clock()
        return {
            "requests_minute": self._get(
                f"p:{principal_id}:requests_per_minute:{int(now // 60)}", now
            ),
            "tokens_minute": self._get(f"p:{principal_id}:tokens_per_minute:{int(now // 60)}", now),
            "tokens_day": self._get(f"p:{principal_id}:tokens_per_day:{int(now // 86400)}", now),
        }

    async def close(self) -> None:
        return None


# Store name (config ``limits.store``) -> "module:attr" of a factory taking (LimitsConfig, env).
LIMIT_STORES = {
    "memory": "engine.limits:MemoryLimitStore.from_config",
    "redis": "engine.limits_redis:RedisLimitStore.from_config",
}


def make_limit_store(config: LimitsConfig, env: Mapping[str, str]) -> LimitStore:
    """The store ``config.store`` names, built from ``config`` (secrets resolved from ``env``).

    >>> from engine.config import LimitsConfig
    >>> make_limit_store(LimitsConfig(), {}).name
    'memory'
    """
    spec = LIMIT_STORES.get(config.store)
    if spec is None:
        raise ConfigError(
            f"unknown limits.store {config.store!r}; known: {', '.join(LIMIT_STORES)}"
        )
    module_name, _, attr = spec.partition(":")
    try:
        factory: Any = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name or module_name
        raise ConfigError(
            f"limits.store {config.store!r} needs the {missing!r} package (not installed)"
        ) from exc
    for part in attr.split("."):
        factory = getattr(factory, part)
    store: LimitStore = factory(config, env)
    return store
