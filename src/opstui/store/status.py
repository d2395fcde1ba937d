"""Run and stage statuses, and the rules that derive what a reader shows.

The store records what writers said; a reader adds one fact the writer cannot
record: a run whose writer stopped beating its heartbeat is *lost*, not
running. That rule lives here so the CLI, the TUI and tests agree on it.
"""

from __future__ import annotations

from typing import Final

# What a writer records for a run.
QUEUED: Final = "queued"
RUNNING: Final = "running"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
TIMED_OUT: Final = "timed_out"
# Derived by readers only: running, but the heartbeat went stale.
LOST: Final = "lost"

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


def effective_stage_status(stage_status: str, run_status: str) -> str:
    """A stage still marked running inside a lost run is lost with it."""
    if stage_status == RUNNING and run_status == LOST:
        return LOST
    return stage_status
