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


def span(text: str, *, most: float) -> float | None:
    """``90s``, ``30m``, ``2h``, ``1d``, ``2w`` (a bare number is minutes) in
    seconds; None for anything else, zero, or more than ``most``."""
    import re

    found = re.fullmatch(r"\s*(\d{1,6})\s*([smhdw]?)\s*", text.lower())
    if found is None:
        return None
    unit = {"s": 1, "m": 60, "": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[found.group(2)]
    seconds = int(found.group(1)) * unit
    return float(seconds) if 0 < seconds <= most else None


def to_datetime(ts: float | None) -> datetime | None:
    """Epoch seconds as an aware UTC datetime; None when there is none to show.

    Every conversion of a stored time to a date goes through here. The store
    refuses times outside 1970-9999 and its readers skip rows holding one,
    but a time that slipped through (an old store) must not take a whole
    screen down: ``datetime`` raises on years beyond 9999 and before 1.
    """
    if ts is None or not math.isfinite(ts):
        return None
    try:
        return datetime.fromtimestamp(ts, UTC)
    except (OverflowError, ValueError, OSError):
        return None


def iso(ts: float | None) -> str | None:
    """Format epoch seconds as ISO 8601 UTC with a ``Z``, to the millisecond
    (None for no time, or one no date can show)."""
    when = to_datetime(ts)
    if when is None:
        return None
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_CENTURY = 100 * 365.25 * 86_400


def human_duration(seconds: float | None) -> str:
    """Short duration for tables: ``42s``, ``3m05s``, ``2h10m``, ``4d03h``."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds >= _CENTURY:  # a clock gone wrong, not a duration
        return ">100y"
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
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 1:
        return "now"
    return f"{human_duration(seconds)} ago"


def clock_time(ts: float) -> str:
    """``14:03:07Z``: the time of day in UTC, for "read at" labels."""
    when = to_datetime(ts)
    return "--:--:--Z" if when is None else when.strftime("%H:%M:%SZ")
