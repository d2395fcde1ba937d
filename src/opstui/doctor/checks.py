"""A check's outcome, and running one so that nothing it raises escapes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opstui.errors import OpstuiError

OK = "ok"
WARN = "warn"
FAIL = "fail"
SKIP = "skip"
VERDICTS = (OK, WARN, FAIL, SKIP)


@dataclass(frozen=True)
class Check:
    """One line of the doctor: what was checked, the verdict, what was found,
    and, when it is not ok, the one thing to do about it."""

    name: str
    verdict: str
    detail: str
    fix: str = ""

    @property
    def healthy(self) -> bool:
        return self.verdict in (OK, SKIP)


def guarded(name: str, check: Callable[[], list[Check]]) -> list[Check]:
    """``check()``, or one ``fail`` line for whatever it raised."""
    try:
        return check()
    except OpstuiError as exc:
        return [Check(name, FAIL, exc.message, exc.hint or "")]
    except Exception as exc:
        return [
            Check(
                name,
                FAIL,
                f"the check itself failed: {type(exc).__name__}: {exc}",
                "this is a bug in opstui doctor: please report it with this line",
            )
        ]


def ago(seconds: float) -> str:
    """``42 s``, ``3 min``, ``5 h``, ``2 d``: a span for a detail line."""
    s = abs(seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.0f} h"
    return f"{s / 86400:.0f} d"


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
