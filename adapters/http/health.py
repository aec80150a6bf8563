"""Provider health as the gateway sees it, exposed to policy in ``context.providers``.

A provider that failed ``threshold`` times in a row is unhealthy for
``cooldown`` seconds; one success makes it healthy again.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ProviderHealth:
    def __init__(self, *, threshold: int = 3, cooldown: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = threshold
        self._cooldown = cooldown
        self._clock = clock
        self._failures: dict[str, int] = {}
        self._down_until: dict[str, float] = {}

    def failure(self, provider: str) -> None:
        count = self._failures.get(provider, 0) + 1
        self._failures[provider] = count
        if count >= self._threshold:
            self._down_until[provider] = self._clock() + self._cooldown

    def success(self, provider: str) -> None:
        self._failures.pop(provider, None)
        self._down_until.pop(provider, None)

    def healthy(self, provider: str) -> bool:
        return self._down_until.get(provider, 0.0) <= self._clock()

    def snapshot(self) -> dict[str, bool]:
        now = self._clock()
        return {name: until <= now for name, until in self._down_until.items()}
