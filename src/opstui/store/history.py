"""Reads behind the detail views: a pipeline's run history, a run, stage logs."""

from __future__ import annotations

from opstui.errors import UsageError
from opstui.store import fields
from opstui.store.dashboard import (
    _RUN_COLUMNS,
    build_run,
    run_problem,
    source_health,
    stages_by_run,
)
from opstui.store.db import Store
from opstui.store.query import where
from opstui.store.rows import LogLine, RunRow


def run_history(
    store: Store,
    pipeline: str,
    *,
    limit: int = 50,
    before_id: int | None = None,
    now: float | None = None,
) -> list[RunRow]:
    """Runs of ``pipeline``, newest first; page with ``before_id``."""
    now = store.clock() if now is None else now
    with store.read() as conn:
        p = conn.execute(
            "SELECT id, kind, removed_note FROM pipelines WHERE name = ?", (pipeline,)
        ).fetchone()
        if p is None:
            raise UsageError(f"no pipeline named {pipeline!r} in {store.name}")
        clause, params = where(
            ("r.pipeline_id = ?", p[0]),
            ("(r.created_at, r.id) < (SELECT created_at, id FROM runs WHERE id = ?)", before_id),
        )
        rows = fields.fetch_all(
            conn,
            f"""SELECT {_RUN_COLUMNS} FROM runs r {clause}
                ORDER BY r.created_at DESC, r.id DESC LIMIT ?""",
            [*params, limit],
        )
        stages = stages_by_run(store, [r[0] for r in rows])
        sources = source_health(store)
    out = []
    for r in rows:
        problem = run_problem(r, stages[r[0]])
        if problem:
            fields.skipped(f"run {r[0]} of {pipeline!r}", problem)
        else:
            out.append(
                build_run(pipeline, p[1], r, stages[r[0]], now, sources=sources, removed=p[2])
            )
    return out


def get_run(store: Store, run_id: int, *, now: float | None = None) -> RunRow:
    now = store.clock() if now is None else now
    if not fields.INT64_MIN <= run_id <= fields.INT64_MAX:  # SQLite cannot even look
        raise UsageError(f"run {fields.show(run_id)} does not exist in {store.name}")
    with store.read() as conn:
        found = fields.fetch_all(
            conn,
            f"""SELECT {_RUN_COLUMNS}, p.removed_note, p.name, p.kind FROM runs r
                JOIN pipelines p ON p.id = r.pipeline_id WHERE r.id = ?""",
            (run_id,),
        )
        if not found:
            raise UsageError(f"run {run_id} does not exist in {store.name}")
        row = found[0]
        stages = stages_by_run(store, [run_id])
        sources = source_health(store)
    problem = run_problem(row, stages[run_id])
    if problem:
        raise UsageError(f"run {run_id} in {store.name} cannot be shown: {problem}")
    return build_run(
        row[-2], row[-1], row[:-3], stages[run_id], now, sources=sources, removed=row[-3]
    )


def stage_logs(
    store: Store, stage_run_id: int, *, after_id: int = 0, limit: int = 5000
) -> list[LogLine]:
    """Log lines of a stage with id > ``after_id``, oldest first (for follow mode)."""
    rows = store.query(
        """SELECT id, ts, stream, line FROM log_lines
           WHERE stage_run_id = ? AND id > ? ORDER BY id LIMIT ?""",
        (stage_run_id, after_id, limit),
    )
    return [LogLine(*r) for r in rows]


def run_params(store: Store, run_id: int) -> dict[str, object]:
    """The parameters a run was started with (an action's plan details)."""
    row = store.query_one("SELECT params FROM runs WHERE id = ?", (run_id,))
    if row is None:
        raise UsageError(f"run {run_id} does not exist in {store.name}")
    try:
        return fields.loads_object(row[0], "params")
    except fields.Unreadable as exc:
        fields.skipped(f"the params of run {run_id}", str(exc))
        return {}


def runs_in_flight(store: Store) -> list[tuple[int, str, str | None, int | None]]:
    """``(run id, status, host, pid)`` of every run recorded queued or running.

    A scan of ``runs`` (no index on status): for shutting down the runs a
    process started (the demo), never for a per-refresh read.
    """
    rows = store.query(
        """SELECT id, status, host, pid FROM runs
           WHERE status IN ('queued', 'running') ORDER BY id"""
    )
    return [(int(r[0]), str(r[1]), r[2], r[3]) for r in rows]
