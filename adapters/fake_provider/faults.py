"""Faults the fake provider injects: one per request, from a header or from a seeded schedule.

A fault is written either as the ``x-fake-fault`` header, ``;``-separated
``key=value`` pairs and flags, or as a JSON object with the same keys::

    x-fake-fault: status=429;retry-after=2
    x-fake-fault: latency_ms=200
    x-fake-fault: disconnect_after_chunks=2
    {"status": 529, "message": "Overloaded"}

Keys: ``status`` (400-599, answered in the provider's error format),
``retry-after`` (seconds, sent as the ``retry-after`` header),
``message``, ``latency_ms`` (wait before the response head),
``first_byte_ms`` (wait between the head and the first body chunk),
``chunk_delay_ms`` (wait before every later body chunk),
``disconnect_after_chunks`` (close the connection after N body chunks, i.e.
SSE events, with no proper end), ``error_after_chunks`` (after N events send
the provider's in-stream error event and end the stream; the error's status
is ``status`` or the provider's usual one, 500 OpenAI, 529 Anthropic, 503
Gemini; a non-streamed answer fails with that HTTP status instead),
``reset`` (TCP reset, no response at all), ``timeout`` (never answer; wait
until the client gives up).
"""

from __future__ import annotations

import fnmatch
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from engine.errors import InputError

HEADER = "x-fake-fault"


class FaultSpecError(InputError):
    """A fault header or schedule cannot be understood."""

    code = "invalid_fault"


@dataclass(frozen=True)
class Fault:
    """What to do to one request instead of (or while) answering it normally."""

    status: int | None = None
    retry_after: float | None = None
    message: str | None = None
    latency_ms: int = 0
    first_byte_ms: int = 0
    chunk_delay_ms: int = 0
    disconnect_after_chunks: int | None = None
    error_after_chunks: int | None = None
    reset: bool = False
    timeout: bool = False


_FLAGS = ("reset", "timeout")
_KNOWN = {f.name for f in fields(Fault)}


def parse_fault(spec: str | Mapping[str, Any]) -> Fault:
    """A :class:`Fault` from a header value or a JSON object.

    >>> parse_fault("status=429;retry-after=2")
    Fault(status=429, retry_after=2.0, message=None, latency_ms=0, ...)
    """
    raw = _split_header(spec) if isinstance(spec, str) else dict(spec)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.strip().lower().replace("-", "_")
        if name not in _KNOWN:
            raise FaultSpecError(f"unknown fault key {key!r}", param=key)
        values[name] = _coerce(name, value)
    status = values.get("status")
    if status is not None and not 400 <= status <= 599:
        raise FaultSpecError(f"fault status must be 400-599, got {status}", param="status")
    return Fault(**values)


def _split_header(value: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in value.split(";"):
        item = item.strip()
        if not item:
            continue
        key, sep, val = item.partition("=")
        out[key.strip()] = val.strip() if sep else True
    return out


def _coerce(name: str, value: Any) -> Any:
    try:
        if name in _FLAGS:
            if isinstance(value, str):
                return value.lower() in ("1", "true", "yes", "on")
            return bool(value)
        if name == "message":
            return str(value)
        number = float(value) if name == "retry_after" else int(value)
    except (TypeError, ValueError) as exc:
        raise FaultSpecError(
            f"fault key {name!r} has an invalid value {value!r}", param=name
        ) from exc
    if isinstance(value, bool) or number < 0:
        raise FaultSpecError(f"fault key {name!r} must be a non-negative number", param=name)
    return number


@dataclass
class FaultRule:
    """Inject ``fault`` into matching requests.

    ``match`` keys (all optional, all must hold): ``path`` (glob, after any
    ``/p/{provider}`` prefix), ``provider``, ``method``, ``model``. The rule
    lets the first ``skip`` matching requests through, then fires with
    ``probability`` at most ``times`` times (``None``: no limit).
    """

    fault: Fault
    match: dict[str, str] = field(default_factory=dict)
    probability: float = 1.0
    times: int | None = None
    skip: int = 0
    seen: int = 0
    fired: int = 0

    def matches(self, request: Mapping[str, str | None]) -> bool:
        for key, want in self.match.items():
            got = request.get(key)
            if got is None:
                return False
            if key == "path" and not fnmatch.fnmatchcase(got, want):
                return False
            if key == "method" and got.upper() != want.upper():
                return False
            if key not in ("path", "method") and got != want:
                return False
        return True


_MATCH_KEYS = frozenset({"path", "provider", "method", "model"})


def parse_rule(raw: Any) -> FaultRule:
    """One schedule rule from its JSON object."""
    if not isinstance(raw, Mapping) or "fault" not in raw:
        raise FaultSpecError("each rule must be an object with a 'fault'", param="rules")
    unknown = set(raw) - {"fault", "match", "probability", "times", "skip"}
    if unknown:
        raise FaultSpecError(f"unknown rule keys {sorted(unknown)}", param="rules")
    match = raw.get("match") or {}
    if not isinstance(match, Mapping) or not set(match) <= _MATCH_KEYS:
        raise FaultSpecError(f"'match' takes only {sorted(_MATCH_KEYS)}", param="match")
    try:
        probability = float(raw.get("probability", 1.0))
        times = None if raw.get("times") is None else int(raw["times"])
        skip = int(raw.get("skip", 0))
    except (TypeError, ValueError) as exc:
        raise FaultSpecError("probability, times and skip must be numbers", param="rules") from exc
    if not 0.0 <= probability <= 1.0 or (times is not None and times < 0) or skip < 0:
        raise FaultSpecError("probability must be 0-1; times and skip non-negative", param="rules")
    fault = raw["fault"]
    if not isinstance(fault, str | Mapping):
        raise FaultSpecError("'fault' must be an object or a header string", param="fault")
    return FaultRule(
        fault=parse_fault(fault),
        match={str(k): str(v) for k, v in match.items()},
        probability=probability,
        times=times,
        skip=skip,
    )


class FaultSchedule:
    """Ordered fault rules with a seeded RNG; safe to change from another thread.

    >>> schedule = FaultSchedule()
    >>> schedule.load({"seed": 7, "rules": [{"match": {"provider": "openai"},
    ...                                      "fault": {"status": 500}, "times": 1}]})
    1
    >>> openai = {"provider": "openai", "path": "/v1/models"}
    >>> [schedule.pick(openai), schedule.pick(openai)]
    [Fault(status=500, ...), None]
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._rng = random.Random(0)

    def load(self, schedule: Any) -> int:
        """Replace the rules with ``{"rules": [...], "seed": N}``; returns the rule count."""
        if not isinstance(schedule, Mapping) or not isinstance(schedule.get("rules"), list):
            raise FaultSpecError("a fault schedule is an object with a 'rules' list", param="rules")
        rules = [parse_rule(r) for r in schedule["rules"]]
        seed = schedule.get("seed", 0)
        if not isinstance(seed, int | str):
            raise FaultSpecError("'seed' must be an integer or a string", param="seed")
        with self._lock:
            self._rules = rules
            self._rng = random.Random(seed)
        return len(rules)

    def add(self, rule: FaultRule) -> None:
        """Append one rule (keeps the current RNG)."""
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules = []

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def pick(self, request: Mapping[str, str | None]) -> Fault | None:
        """The fault of the first rule that matches ``request`` and fires, counting it."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(request):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip:
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                rule.fired += 1
                return rule.fault
        return None
