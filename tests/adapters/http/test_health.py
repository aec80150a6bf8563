"""Circuit breakers: closed -> open after N failures in a row, half-open after the cool-down
with a limited number of probes, closed again by a probe that succeeds."""

from __future__ import annotations

from adapters.http.health import CircuitBreakers
from engine.config import BreakerConfig


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breakers(
    clock: Clock, *, threshold: int = 3, cooldown: float = 10.0, probes: int = 1
) -> CircuitBreakers:
    config = BreakerConfig(
        failure_threshold=threshold, cooldown_seconds=cooldown, half_open_probes=probes
    )
    return CircuitBreakers(["a", "b"], config, clock=clock)


def state(health: CircuitBreakers, provider: str) -> str:
    return health[provider].state


def fail(health: CircuitBreakers, provider: str, times: int) -> None:
    for _ in range(times):
        permit = health.acquire(provider)
        assert permit is not None
        permit.failed()


def test_opens_after_threshold_failures_in_a_row_only() -> None:
    clock = Clock()
    health = breakers(clock)

    fail(health, "a", 2)
    ok = health.acquire("a")
    assert ok is not None
    ok.succeeded()  # a success resets the count
    fail(health, "a", 2)
    assert state(health, "a") == "closed"
    fail(health, "a", 1)

    assert state(health, "a") == "open" and health.acquire("a") is None
    assert health.snapshot() == {
        "a": {"healthy": False, "state": "open"},
        "b": {"healthy": True, "state": "closed"},
    }
    assert health["a"].retry_in() == 10.0
    assert health.gauge() == {("a",): 2.0, ("b",): 0.0}


def test_half_open_after_cooldown_lets_a_limited_number_of_probes_through() -> None:
    clock = Clock()
    health = breakers(clock, probes=2)
    fail(health, "a", 3)

    clock.now += 9.9
    assert health.acquire("a") is None
    clock.now += 0.1
    first, second, third = health.acquire("a"), health.acquire("a"), health.acquire("a")

    assert first is not None and first.probe and second is not None and third is None
    # Half-open is healthy to policy: a rule that routes around sick providers still sends probes.
    assert health.snapshot()["a"] == {"healthy": True, "state": "half_open"}
    assert health.gauge()[("a",)] == 1.0
    first.succeeded()
    assert state(health, "a") == "closed"
    second.failed()  # a probe of the half-open state that already ended: ignored
    assert state(health, "a") == "closed"


def test_a_failed_probe_opens_the_breaker_for_another_cooldown() -> None:
    clock = Clock()
    health = breakers(clock)
    fail(health, "a", 3)
    clock.now += 10
    probe = health.acquire("a")
    assert probe is not None

    probe.failed()

    assert state(health, "a") == "open" and health["a"].retry_in() == 10.0
    clock.now += 10
    assert state(health, "a") == "half_open"


def test_an_abandoned_probe_frees_its_slot() -> None:
    clock = Clock()
    health = breakers(clock)
    fail(health, "a", 3)
    clock.now += 10
    probe = health.acquire("a")
    assert probe is not None and health.acquire("a") is None

    probe.abandoned()

    assert state(health, "a") == "half_open" and health.acquire("a") is not None


def test_reports_from_before_a_transition_are_ignored() -> None:
    clock = Clock()
    health = breakers(clock)
    slow = health.acquire("a")  # started while closed
    assert slow is not None
    fail(health, "a", 3)

    slow.succeeded()  # must not close a breaker that opened meanwhile

    assert state(health, "a") == "open"


def test_a_failure_outside_an_attempt_counts_while_closed() -> None:
    clock = Clock()
    health = breakers(clock, threshold=2)

    health.failure("b")
    health.failure("b")

    assert state(health, "b") == "open" and state(health, "a") == "closed"
