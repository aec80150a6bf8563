"""Provider health: one circuit breaker per provider, exposed to policy in ``context.providers``.

    closed ──(failure_threshold failures in a row)──> open
    open ──(cooldown_seconds pass)──> half_open
    half_open ──(a probe succeeds)──> closed
    half_open ──(a probe fails)──> open (a new cool-down)

A caller asks :meth:`CircuitBreakers.acquire` before each upstream attempt and
reports the attempt's end on the :class:`Permit` it got. An open breaker gives
no permit: the target is skipped without a network call. A half-open one gives
at most ``half_open_probes`` permits at a time; the others skip. A provider is
``healthy`` unless its breaker is open, so a policy that routes around sick
providers still lets the half-open probes through.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from engine.config import BreakerConfig

State = Literal["closed", "open", "half_open"]
# Gauge values of regate_circuit_breaker_state.
STATE_VALUES: dict[State, float] = {"closed": 0.0, "half_open": 1.0, "open": 2.0}


@dataclass(frozen=True)
class Permit:
    """Leave to make one attempt on ``provider``; ``probe`` when the breaker is half-open.

    ``epoch`` ties the permit to the breaker state it was given in: reports from
    an earlier state (a slow request that outlived a transition) are ignored.
    """

    provider: str
    probe: bool
    epoch: int
    _breaker: Breaker

    def succeeded(self) -> None:
        self._breaker.report(self, True)

    def failed(self) -> None:
        self._breaker.report(self, False)

    def abandoned(self) -> None:
        """The attempt ended with no verdict on the provider (the client went away)."""
        self._breaker.report(self, None)


class Breaker:
    """The breaker of one provider. Single event loop: no locks needed."""

    def __init__(self, provider: str, config: BreakerConfig, clock: Callable[[], float]) -> None:
        self.provider = provider
        self._config = config
        self._clock = clock
        self._state: State = "closed"
        self._failures = 0
        self._open_until = 0.0
        self._probes = 0
        self._epoch = 0

    @property
    def state(self) -> State:
        if self._state == "open" and self._clock() >= self._open_until:
            self._move("half_open")
        return self._state

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when it is not open)."""
        return max(0.0, self._open_until - self._clock()) if self.state == "open" else 0.0

    def acquire(self) -> Permit | None:
        state = self.state
        if state == "closed":
            return Permit(self.provider, False, self._epoch, self)
        if state == "half_open" and self._probes < self._config.half_open_probes:
            self._probes += 1
            return Permit(self.provider, True, self._epoch, self)
        return None

    def report(self, permit: Permit, ok: bool | None) -> None:
        if permit.epoch != self._epoch:
            return
        if permit.probe:
            self._probes -= 1
            if ok is True:
                self._move("closed")
            elif ok is False:
                self._open()
        elif ok is True:
            self._failures = 0
        elif ok is False:
            self.failure()

    def failure(self) -> None:
        """A failure seen outside an attempt (a stream cut after it was committed)."""
        if self._state != "closed":
            return
        self._failures += 1
        if self._failures >= self._config.failure_threshold:
            self._open()

    def _open(self) -> None:
        self._move("open")
        self._open_until = self._clock() + self._config.cooldown_seconds

    def _move(self, state: State) -> None:
        self._state = state
        self._epoch += 1
        self._failures = 0
        self._probes = 0


class CircuitBreakers:
    """The breakers of every configured provider."""

    def __init__(
        self,
        providers: Iterable[str],
        config: BreakerConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._breakers = {name: Breaker(name, config, clock) for name in providers}

    def __getitem__(self, provider: str) -> Breaker:
        return self._breakers[provider]

    def acquire(self, provider: str) -> Permit | None:
        """A permit for one attempt on ``provider``, or ``None``: skip it, it is failing."""
        return self._breakers[provider].acquire()

    def failure(self, provider: str) -> None:
        self._breakers[provider].failure()

    def snapshot(self) -> dict[str, dict[str, bool | str]]:
        """``{provider: {"healthy": ..., "state": ...}}`` for ``context.providers``."""
        out: dict[str, dict[str, bool | str]] = {}
        for name, breaker in self._breakers.items():
            state = breaker.state
            out[name] = {"healthy": state != "open", "state": state}
        return out

    def gauge(self) -> dict[tuple[str, ...], float]:
        """Samples of ``regate_circuit_breaker_state`` by provider."""
        return {(name,): STATE_VALUES[b.state] for name, b in self._breakers.items()}
