"""How long the poller waits after failures: the interval doubled per failure, up to a cap.

Its own module, free of HTTP, because the console's read model needs the same
rule to tell a stale endpoint (``views/endpoints.py``: 3 intervals, stretched
by the backoff) and must not load an HTTP client to start."""

from __future__ import annotations

import random

MAX_BACKOFF = 300.0


def backoff_delay(interval: float, failures: int) -> float:
    """Nominal delay before the next poll after ``failures`` consecutive failures."""
    if failures <= 0:
        return interval
    return float(min(interval * 2.0**failures, max(MAX_BACKOFF, interval)))


def backoff(interval: float, failures: int, rng: random.Random) -> float:
    """``backoff_delay`` with jitter on failures, so pollers do not retry in step."""
    delay = backoff_delay(interval, failures)
    return delay if failures <= 0 else delay * rng.uniform(0.8, 1.2)
