"""The ``redis`` limit store: quotas shared by every regate replica through one Redis.

Each operation is one Lua script, so a charge checks and increments all of a
request's counters atomically however many processes charge at once. Window
numbers come from the Redis server's clock, so replicas agree on window
boundaries whatever their own clocks say. Keys look like
``regate:q:p:billing-bot:requests_per_minute:29701234`` and expire with their
window. Every counter of a charge is touched by one script, so the store needs a
single Redis primary (not Redis Cluster). Any Redis failure surfaces as
:class:`~engine.limits.LimitStoreUnavailable`, and the gateway fails closed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from engine.errors import ConfigError
from engine.limits import WINDOWS, ChargeResult, Counter, LimitStoreUnavailable
from engine.secrets import resolve_secret

if TYPE_CHECKING:
    from engine.config import LimitsConfig

PREFIX = "regate:q:"

# ARGV: now ("" = the server's clock), requests, tokens, then per KEY: window, limit, kind.
# Returns {1, token key...} when every counter took its amount, or
# {0, index of the refusing counter (1-based), milliseconds until its window resets}.
CHARGE = """
local now = tonumber(ARGV[1])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local requests, tokens = tonumber(ARGV[2]), tonumber(ARGV[3])
local keys, amounts, ttls = {}, {}, {}
for i = 1, #KEYS do
  local window, limit, kind = tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2]), ARGV[3 * i + 3]
  local slot = math.floor(now / window)
  local ttl = math.ceil(((slot + 1) * window - now) * 1000)
  local amount = requests
  if kind == 't' then amount = tokens end
  keys[i], amounts[i], ttls[i] = KEYS[i] .. ':' .. slot, amount, ttl
  if tonumber(redis.call('GET', keys[i]) or '0') + amount > limit then
    return {0, i, ttl}
  end
end
local reserved = {1}
for i = 1, #KEYS do
  redis.call('INCRBY', keys[i], amounts[i])
  if redis.call('PTTL', keys[i]) < 0 then
    redis.call('PEXPIRE', keys[i], ttls[i])
  end
  if ARGV[3 * i + 3] == 't' then reserved[#reserved + 1] = keys[i] end
end
return reserved
"""

# KEYS: window keys from a charge; ARGV[1]: the token correction. A window that
# has already expired is left alone: the correction belongs to a finished window.
SETTLE = """
local delta = tonumber(ARGV[1])
for i = 1, #KEYS do
  if redis.call('PTTL', KEYS[i]) > 0 then
    if redis.call('INCRBY', KEYS[i], delta) < 0 then
      redis.call('SET', KEYS[i], 0, 'KEEPTTL')
    end
  end
end
return #KEYS
"""

# KEYS: counter keys without the window number; ARGV: now ("" = server clock), then windows.
USAGE = """
local now = tonumber(ARGV[1])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local out = {}
for i = 1, #KEYS do
  local slot = math.floor(now / tonumber(ARGV[i + 1]))
  out[i] = tonumber(redis.call('GET', KEYS[i] .. ':' .. slot) or '0')
end
return out
"""

USAGE_FIELDS = {
    "requests_minute": "requests_per_minute",
    "tokens_minute": "tokens_per_minute",
    "tokens_day": "tokens_per_day",
}


def _sha(script: str) -> str:
    """The id Redis gives ``script`` (what SCRIPT LOAD returns), computed locally."""
    return hashlib.sha1(script.encode("utf-8"), usedforsecurity=False).hexdigest()


class RedisLimitStore:
    """Quota counters in Redis, charged by atomic Lua scripts.

    ``clock`` is for tests only: when given, windows follow it instead of the
    Redis server's clock.

    >>> store = RedisLimitStore("redis://127.0.0.1:6379/0")  # doctest: +SKIP
    >>> await store.charge(counters, requests=1, tokens=120)  # doctest: +SKIP
    ChargeResult(allowed=True, field=None, retry_after=0.0, reservation=(...))
    """

    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        timeout: float = 0.5,
        max_connections: int = 50,
        prefix: str = PREFIX,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self._clock = clock
        # A bounded pool that queues callers (for up to ``timeout``) when every
        # connection is busy. One retry on a broken connection (e.g. after Redis
        # restarted): a charge whose reply was lost then counts twice, which errs on
        # the safe side; ``timeout`` bounds each attempt, so a hung Redis fails fast.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            password=password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
            max_connections=max_connections,
            timeout=timeout,
        )
        self._redis: redis.Redis = redis.Redis.from_pool(pool)

    @classmethod
    def from_config(cls, config: LimitsConfig, env: Mapping[str, str]) -> RedisLimitStore:
        if config.redis_url is None:
            raise ConfigError("limits.store 'redis' needs limits.redis_url")
        password = (
            resolve_secret(config.redis_password, env=env).reveal()
            if config.redis_password
            else None
        )
        return cls(config.redis_url, password=password)

    async def charge(
        self, counters: Sequence[Counter], *, requests: int, tokens: int
    ) -> ChargeResult:
        if not counters:
            return ChargeResult(True)
        args: list[Any] = [self._now(), requests, tokens]
        for counter in counters:
            args += [
                counter.window,
                counter.limit,
                "r" if counter.field == "requests_per_minute" else "t",
            ]
        result = await self._run(CHARGE, [self.prefix + c.key for c in counters], args)
        if result[0] == 0:
            refused = counters[int(result[1]) - 1]
            return ChargeResult(False, refused.field, int(result[2]) / 1000)
        return ChargeResult(True, reservation=tuple((_text(key), tokens) for key in result[1:]))

    async def settle(self, reservation: Sequence[tuple[str, int]], delta: int) -> None:
        if delta and reservation:
            await self._run(SETTLE, [key for key, _reserved in reservation], [delta])

    async def usage(self, principal_id: str) -> dict[str, int]:
        fields = list(USAGE_FIELDS.items())
        keys = [f"{self.prefix}p:{principal_id}:{field}" for _name, field in fields]
        values = await self._run(
            USAGE, keys, [self._now(), *(WINDOWS[field] for _name, field in fields)]
        )
        return {name: int(value) for (name, _field), value in zip(fields, values, strict=True)}

    async def close(self) -> None:
        await self._redis.aclose()

    def _now(self) -> str:
        return "" if self._clock is None else repr(self._clock())

    async def _run(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run ``script`` by its SHA, sending its text only when Redis does not know it yet."""
        try:
            try:
                return await self._redis.evalsha(_sha(script), len(keys), *keys, *args)
            except NoScriptError:
                return await self._redis.eval(script, len(keys), *keys, *args)
        except (RedisError, OSError) as exc:
            # The URL is not quoted: it may name a host the caller should not learn.
            raise LimitStoreUnavailable(
                f"the quota store (redis) failed: {type(exc).__name__}"
            ) from exc


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value
