"""Reads behind the detail views: a pipeline's run history, a run, stage logs.

A stage's log is read as a window by line number (``log_window``), from the
nearer end of the stage's ``(stage_run_id, id)`` index, so the last lines of
a million-line log cost what the first ones do; ``log_search`` and
``log_chunks`` walk the whole log by id in bounded chunks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

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


class LogWindow(NamedTuple):
    """Lines ``first`` .. ``first + len(lines) - 1`` (1-based) of a stage's ``total``."""

    total: int
    first: int
    lines: list[LogLine]


def log_count(store: Store, stage_run_id: int) -> int:
    """How many lines the stage has logged (an index-only count)."""
    row = store.query_one("SELECT COUNT(*) FROM log_lines WHERE stage_run_id = ?", (stage_run_id,))
    return int(row[0]) if row else 0


def log_window(store: Store, stage_run_id: int, first: int | None, count: int) -> LogWindow:
    """``count`` lines of a stage's log from line number ``first`` (1-based);
    ``first=None``: the last ``count`` (following). The count and the lines come
    from one snapshot, so their numbers are the log's own. A window past the
    end is moved back to end at the last line."""
    count = max(0, count)
    with store.read() as conn:
        found = fields.fetch_all(
            conn, "SELECT COUNT(*) FROM log_lines WHERE stage_run_id = ?", (stage_run_id,)
        )
        total = int(found[0][0]) if found else 0
        start = total - count + 1 if first is None else min(first, total - count + 1)
        start = max(1, start)
        want = min(count, total - start + 1)
        if want <= 0:
            return LogWindow(total, start, [])
        skip_tail = total - (start + want - 1)
        if skip_tail < start - 1:
            # Nearer the end: walk the index backwards (following costs no scan).
            rows = fields.fetch_all(
                conn,
                """SELECT id, ts, stream, line FROM log_lines WHERE stage_run_id = ?
                   ORDER BY id DESC LIMIT ? OFFSET ?""",
                (stage_run_id, want, skip_tail),
            )
            rows.reverse()
        else:
            rows = fields.fetch_all(
                conn,
                """SELECT id, ts, stream, line FROM log_lines WHERE stage_run_id = ?
                   ORDER BY id LIMIT ? OFFSET ?""",
                (stage_run_id, want, start - 1),
            )
    return LogWindow(total, start, [LogLine(*r) for r in rows])


#: Lines a search or a save reads at a time (each chunk its own short read).
LOG_CHUNK = 20_000


def log_chunks(store: Store, stage_run_id: int, chunk: int = LOG_CHUNK) -> Iterator[list[str]]:
    """The stage's whole log, oldest first, ``chunk`` lines at a time, walked by id."""
    after = 0
    while True:
        rows = store.query(
            """SELECT id, line FROM log_lines WHERE stage_run_id = ? AND id > ?
               ORDER BY id LIMIT ?""",
            (stage_run_id, after, chunk),
        )
        if not rows:
            return
        after = int(rows[-1][0])
        yield [str(r[1]) for r in rows]
        if len(rows) < chunk:
            return


class LogSearch(NamedTuple):
    """Where a pattern matched: every match counted, the first ``limit`` line numbers kept."""

    matches: int
    lines: list[int]
    scanned: int


def log_search(
    store: Store, stage_run_id: int, pattern: re.Pattern[str], *, limit: int = 100_000
) -> LogSearch:
    """The line numbers (1-based) of the stage's lines ``pattern`` finds, scanning the
    whole log in Python in chunks of ``LOG_CHUNK`` (the same regex on SQLite and
    PostgreSQL, whose own ``~`` is another dialect)."""
    count = 0
    hits: list[int] = []
    number = 0
    search = pattern.search
    for chunk in log_chunks(store, stage_run_id):
        for line in chunk:
            number += 1
            if search(line):
                count += 1
                if len(hits) < limit:
                    hits.append(number)
    return LogSearch(count, hits, number)


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
