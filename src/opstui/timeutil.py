"""Timestamps as the store keeps them (float seconds since the epoch, UTC).

Kept free of any third-party import so every layer can use it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime


def parse_time(value: object) -> float:
    """Parse an ISO 8601 string (``Z`` or an offset) or epoch seconds.

    Raises ``ValueError`` with a short reason on anything else; a naive
    timestamp is refused rather than guessed, because a wrong timezone moves
    every age on the dashboard by hours.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a timestamp, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"expected a timestamp, got {value!r}")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO 8601 timestamp: {value!r}") from None
        if parsed.tzinfo is None:
            raise ValueError(f"timestamp has no timezone (add Z or +00:00): {value!r}")
        return parsed.timestamp()
    raise ValueError(f"expected a timestamp, got {type(value).__name__}")


def iso(ts: float | None) -> str | None:
    """Format epoch seconds as ISO 8601 UTC with a ``Z``, to the millisecond."""
    if ts is None:
        return None
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def human_duration(seconds: float | None) -> str:
    """Short duration for tables: ``42s``, ``3m05s``, ``2h10m``, ``4d03h``."""
    if seconds is None:
        return "-"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def human_age(seconds: float | None) -> str:
    """Age as ``42s ago``; a clock skew (negative age) reads ``now``."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return "now"
    return f"{human_duration(seconds)} ago"


def clock_time(ts: float) -> str:
    """``14:03:07Z``: the time of day in UTC, for "read at" labels."""
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%SZ")
