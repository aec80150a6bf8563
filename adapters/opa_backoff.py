"""OPA's retry back-off, shared by the clients that talk to OPA-style services
(the bundle service and the decision-log service) so they behave as OPA's own do."""

from __future__ import annotations

import random

RETRY_BASE_SECONDS = 0.1  # OPA's minRetryDelay
RETRY_FACTOR = 1.6
RETRY_JITTER = 0.2


def retry_delay(retries: int, max_delay: float, rng: random.Random) -> float:
    """OPA's ``DefaultBackoff``: 0 for no retry yet, then 0.1 s x 1.6^n up to
    ``max_delay``, +-20 %.

    >>> retry_delay(0, 120.0, random.Random(1))
    0.0
    """
    if retries <= 0:
        return 0.0
    delay = RETRY_BASE_SECONDS
    while delay < max_delay and retries > 0:
        delay *= RETRY_FACTOR
        retries -= 1
    delay = min(delay, max_delay)
    return max(0.0, delay * (1 + RETRY_JITTER * (rng.random() * 2 - 1)))
