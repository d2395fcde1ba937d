"""Run and stage statuses, and the rules that derive what a reader shows.

The store records what writers said; a reader adds one fact the writer cannot
record: a run whose writer stopped beating its heartbeat is *lost*, not
running. That rule lives here so the CLI, the TUI and tests agree on it.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from opstui.timeutil import clock_time

# What a writer records for a run.
QUEUED: Final = "queued"
RUNNING: Final = "running"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
TIMED_OUT: Final = "timed_out"
# Derived by readers only: running, but the heartbeat went stale.
LOST: Final = "lost"
# Derived by readers only: a run another system owns (MLflow), whose last word
# was "running", while that system cannot be reached or is not being polled.
# The source is down, not the run: it is neither running nor lost, and not a
# fault (``opstui status`` does not exit 1 for it).
UNKNOWN: Final = "unknown"

# An endpoint's state as one poll records it (``endpoint_status.state``).
UP: Final = "up"
DEGRADED: Final = "degraded"  # it answers, but something configured is missing
DOWN: Final = "down"
# Derived by readers of endpoints only (``views/endpoints.py``): SLO burn over
# budget while up, no poll for too long, or never polled (``UNKNOWN`` above).
BURNING: Final = "burning"
# Burning by its long windows only: its short windows are back within the
# SLO (after a rollback, say). Still over budget, no longer getting worse.
RECOVERING: Final = "recovering"
STALE: Final = "stale"

# Stage-only statuses.
PENDING: Final = "pending"
SKIPPED: Final = "skipped"

RUN_STATUSES: Final = frozenset({QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, TIMED_OUT})
STAGE_STATUSES: Final = frozenset(
    {PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED, CANCELLED, TIMED_OUT}
)
ACTIVE: Final = frozenset({QUEUED, RUNNING, PENDING})
FINISHED: Final = frozenset({SUCCEEDED, FAILED, CANCELLED, TIMED_OUT, SKIPPED})
#: Statuses that mean "this needs an operator": ``opstui status`` exits 1 on them.
FAULTS: Final = frozenset({FAILED, TIMED_OUT, LOST})

#: One glyph per status, readable without colour (the TUI and CLI share it).
GLYPHS: Final = {
    SUCCEEDED: "✓",
    FAILED: "✗",
    TIMED_OUT: "✗",
    LOST: "?",
    UNKNOWN: "◌",
    RUNNING: "●",
    QUEUED: "○",
    PENDING: "○",
    SKIPPED: "⊘",
    CANCELLED: "⊘",
}

#: Sort order of the dashboard: faults first, then what is moving.
_RANK: Final = {
    FAILED: 0,
    TIMED_OUT: 0,
    LOST: 0,
    UNKNOWN: 1,
    RUNNING: 1,
    QUEUED: 2,
    CANCELLED: 3,
    SUCCEEDED: 4,
}


def rank(status: str) -> int:
    """Dashboard sort key of a status (lower is more urgent)."""
    return _RANK.get(status, 5)


def effective_run_status(
    status: str,
    heartbeat_at: float | None,
    heartbeat_timeout: float,
    now: float,
    *,
    process_gone: bool = False,
) -> str:
    """The status a reader shows for a run.

    A ``running`` run whose last heartbeat is older than the writer's own
    promised timeout is ``lost``; so is one whose recording process is known
    to be gone (same host, PID no longer alive), which spares the operator
    the wait for the timeout after a ``kill -9``. A ``queued`` run that no
    runner picked up within the timeout is lost too: nothing stays queued or
    running forever.
    """
    if status not in (RUNNING, QUEUED):
        return status
    if process_gone:
        return LOST
    if heartbeat_at is None or now - heartbeat_at > heartbeat_timeout:
        return LOST
    return status


class SourceHealth(NamedTuple):
    """What the store last recorded of the endpoint an external run comes from."""

    name: str
    state: str  # UP, DEGRADED or DOWN
    last_attempt_at: float
    last_success_at: float | None


def source_unknown_reason(
    source: SourceHealth | None, heartbeat_timeout: float, now: float
) -> str | None:
    """Why a stale external run is ``unknown`` rather than ``lost``, or None.

    The heartbeat of a run mirrored from another system is the sync. When it
    stops because the source cannot be reached, or because nothing polls the
    source any more, the run's fate is unknown: the source may still say
    RUNNING. Only a source that answers, is polled, and no longer reports the
    run (deleted, out of its window) leaves the heartbeat rule to say lost.
    """
    if source is None:
        return None
    if source.state == DOWN:
        since = source.last_success_at or source.last_attempt_at
        return f"source {source.name} down since {clock_time(since)}"
    if now - source.last_attempt_at > heartbeat_timeout:
        return f"source {source.name} not polled since {clock_time(source.last_attempt_at)}"
    return None


def effective_stage_status(stage_status: str, run_status: str) -> str:
    """A stage still marked running inside a lost (unknown) run is lost (unknown) with it."""
    if stage_status == RUNNING and run_status in (LOST, UNKNOWN):
        return run_status
    return stage_status
