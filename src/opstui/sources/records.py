"""The records the orchestrator sources read their answers into, and how.

Pure (no IO): what ``airflow.api`` and ``prefect.api`` share. A record a
server sent wrong is skipped and named (``Skipped``); a task of a run is a
``Stage``; times are ISO 8601 text read as epoch seconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Skipped:
    """A record the API sent that could not be read, and why."""

    what: str
    why: str


@dataclass(frozen=True)
class Stage:
    """One task of a run as a stage (a mapped task's instances collapsed)."""

    name: str
    position: int
    status: str
    attempt: int
    started_at: float | None
    finished_at: float | None
    message: str | None
    #: How many mapped instances (0: not mapped).
    mapped: int = 0


def seconds(value: Any) -> float | None:
    """A timestamp (ISO 8601; one without an offset is UTC) as epoch seconds, or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"a time that is not text ({type(value).__name__})")
    when = dt.datetime.fromisoformat(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def text(doc: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    """``doc[key]`` as non-empty text; ``ValueError`` naming it when it is not."""
    value = doc.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is missing or not text")
    return value


def named(item: Any, key: str) -> str:
    """How a skipped record is named in its note: its ``key``, shown, or ``?``."""
    value = item.get(key) if isinstance(item, Mapping) else None
    return repr(value)[:80] if value is not None else "?"
