"""Writing pipelines, runs, stages and their log lines.

Every change to a run or one of its stages stamps the run with the
transaction's revision (``rev``) so the dashboard read model finds it through
the ``runs_rev`` index. Log lines do not: they are read by their own id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from opstui.errors import UsageError
from opstui.store import fields
from opstui.store import status as st
from opstui.store.connection import Connection
from opstui.store.db import Store, Transaction, host_name, local_actor

LogRow = tuple[int, float, str, str]  # stage_run_id, ts, stream, line


class RunFinished(UsageError):
    """A record call for a run that has already ended; nothing was recorded."""


def ensure_pipeline(
    tx: Transaction,
    name: str,
    *,
    kind: str | None = None,
    stages: Sequence[str] | None = None,
    now: float,
    source: str | None = None,
) -> int:
    """Id of pipeline ``name``, created if new; a given kind or stage list updates it.

    ``source``: the endpoint a mirrored pipeline is read from, kept when it
    is created (``orchestrator_sync``)."""
    fields.name(name, "pipeline name")
    fields.optional_name(kind, "pipeline kind")
    for stage in stages or ():
        fields.name(stage, "stage name")
    row = tx.execute("SELECT id, kind, stages FROM pipelines WHERE name = ?", (name,)).fetchone()
    stages_json = json.dumps(list(stages)) if stages is not None else None
    if row is None:
        cur = tx.execute(
            """INSERT INTO pipelines(name, kind, stages, created_at, rev, source)
               VALUES (?, ?, ?, ?, ?, ?) RETURNING id""",
            (name, kind, stages_json or "[]", now, tx.rev, source),
        )
        return int(cur.fetchone()[0])
    pid, old_kind, old_stages = row
    if (kind is not None and kind != old_kind) or (
        stages_json is not None and stages and stages_json != old_stages
    ):
        tx.execute(
            "UPDATE pipelines SET kind = coalesce(?, kind), stages = ?, rev = ? WHERE id = ?",
            (kind, stages_json if stages else old_stages, tx.rev, pid),
        )
    return int(pid)


def pipeline_stages(tx: Transaction, pipeline_id: int) -> list[str]:
    row = tx.execute("SELECT stages FROM pipelines WHERE id = ?", (pipeline_id,)).fetchone()
    return list(json.loads(row[0])) if row and row[0] else []


def create_run(
    store: Store,
    pipeline: str,
    *,
    stages: Sequence[str] | None = None,
    kind: str | None = None,
    trigger: str = "manual",
    actor: str | None = None,
    parent_run_id: int | None = None,
    attempt: int | None = None,
    key: str | None = None,
    status: str = st.RUNNING,
    heartbeat_timeout: float = 60.0,
    pid: int | None = None,
    params: dict[str, Any] | None = None,
) -> tuple[int, bool]:
    """Start (or queue) a run; return ``(run_id, created)``.

    With a ``key`` that already names a run, nothing is written and that
    run's id is returned with ``created=False``: a CI job that reports twice
    records one run. Declared stages are created ``pending`` so a reader sees
    the whole pipeline from the first moment.
    """
    if status not in (st.RUNNING, st.QUEUED):
        raise UsageError(f"a new run starts running or queued, not {status!r}")
    fields.name(trigger, "trigger")
    fields.optional_name(actor, "actor")
    fields.optional_name(key, "run key")
    fields.optional_int64(parent_run_id, "parent run id")
    fields.optional_int64(attempt, "attempt", minimum=1)
    if pid is not None and not (isinstance(pid, int) and 0 < pid <= fields.MAX_PID):
        raise fields.BadValue(f"pid {fields.show(pid)} is not a process id (1 to {fields.MAX_PID})")
    timeout = fields.finite(heartbeat_timeout, "heartbeat timeout")
    if not 0 < timeout <= fields.TIME_MAX:
        raise fields.BadValue(f"heartbeat timeout {timeout!r} must be a positive number of seconds")
    params_json = fields.json_object(params, "run params")
    now = store.clock()
    with store.write() as tx:
        if key is not None:
            found = tx.execute("SELECT id FROM runs WHERE key = ?", (key,)).fetchone()
            if found:
                return int(found[0]), False
        pipeline_id = ensure_pipeline(tx, pipeline, kind=kind, stages=stages, now=now)
        if parent_run_id is not None:
            parent = tx.execute(
                "SELECT attempt, pipeline_id FROM runs WHERE id = ?", (parent_run_id,)
            ).fetchone()
            if parent is None:
                raise UsageError(f"parent run {parent_run_id} does not exist in {store.name}")
            if attempt is None:
                attempt = int(parent[0]) + 1
        stage_names = list(stages) if stages else pipeline_stages(tx, pipeline_id)
        cur = tx.execute(
            """INSERT INTO runs(pipeline_id, key, status, trigger, actor, parent_run_id,
                   attempt, created_at, started_at, heartbeat_at, heartbeat_timeout,
                   host, pid, params, rev)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
            (
                pipeline_id,
                key,
                status,
                trigger,
                actor or local_actor(),
                parent_run_id,
                attempt or 1,
                now,
                now if status == st.RUNNING else None,
                now,
                timeout,
                host_name(),
                pid,
                params_json,
                tx.rev,
            ),
        )
        run_id = int(cur.fetchone()[0])
        tx.conn.executemany(
            "INSERT INTO stage_runs(run_id, name, position, status) VALUES (?, ?, ?, ?)",
            [(run_id, name, i, st.PENDING) for i, name in enumerate(stage_names)],
        )
    return run_id, True


def _run_state(tx: Transaction | Connection, run_id: int, store: Store) -> str:
    row = None
    if isinstance(run_id, int) and fields.INT64_MIN <= run_id <= fields.INT64_MAX:
        row = tx.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise UsageError(f"run {fields.show(run_id)} does not exist in {store.name}")
    return str(row[0])


def check_open(tx: Transaction | Connection, store: Store, run_id: int) -> None:
    """Refuse to record anything more about a run that has ended.

    Every ``record`` verb and every Tracker call goes through here, so a
    late log line, heartbeat, metric or deployment is refused with one
    reason instead of silently joining a finished run.
    """
    state = _run_state(tx, run_id, store)
    if state in st.FINISHED:
        raise run_finished(run_id, state)


def run_finished(run_id: int, state: str) -> RunFinished:
    """The one refusal of every late record call (the Tracker raises it too)."""
    return RunFinished(
        f"run {run_id} already finished ({state}); nothing was recorded",
        hint="start a new run to record more",
    )


def _touch(tx: Transaction, run_id: int, now: float) -> None:
    tx.execute(
        "UPDATE runs SET heartbeat_at = ?, rev = ? WHERE id = ?",
        (now, tx.rev, run_id),
    )


def _open_stage(
    tx: Transaction, store: Store, run_id: int, name: str, *, new_status: str, now: float
) -> tuple[int, str | None, int]:
    """``(id, previous status, attempt)`` of stage ``name`` in an unfinished run.

    A stage the run did not declare is appended after the others with
    ``new_status`` (previous status ``None``): CI scripts report stages as
    they go, and often only their end.
    """
    fields.name(name, "stage name")
    check_open(tx, store, run_id)
    row = tx.execute(
        "SELECT id, status, attempt FROM stage_runs WHERE run_id = ? AND name = ?",
        (run_id, name),
    ).fetchone()
    if row is not None:
        return int(row[0]), str(row[1]), int(row[2])
    (pos,) = tx.execute(
        "SELECT coalesce(max(position) + 1, 0) FROM stage_runs WHERE run_id = ?", (run_id,)
    ).fetchone()
    cur = tx.execute(
        """INSERT INTO stage_runs(run_id, name, position, status, started_at)
           VALUES (?, ?, ?, ?, ?) RETURNING id""",
        (run_id, name, pos, new_status, now),
    )
    return int(cur.fetchone()[0]), None, 1


def start_stage(store: Store, run_id: int, name: str) -> int:
    """Mark stage ``name`` running (adding it if undeclared); return its id."""
    now = store.clock()
    with store.write() as tx:
        stage_id, previous, attempt = _open_stage(
            tx, store, run_id, name, new_status=st.RUNNING, now=now
        )
        if previous is not None:
            # Starting a stage again within the same run (a step retried in
            # place) counts an attempt and clears the previous outcome.
            tx.execute(
                """UPDATE stage_runs SET status = ?, started_at = ?, finished_at = NULL,
                       exit_code = NULL, message = NULL, attempt = ? WHERE id = ?""",
                (st.RUNNING, now, attempt + (previous != st.PENDING), stage_id),
            )
        tx.execute(
            "UPDATE runs SET status = ?, started_at = coalesce(started_at, ?) WHERE id = ?",
            (st.RUNNING, now, run_id),
        )
        _touch(tx, run_id, now)
    return stage_id


def finish_stage(
    store: Store,
    run_id: int,
    name: str,
    *,
    status: str | None = None,
    exit_code: int | None = None,
    message: str | None = None,
) -> int:
    """Record a stage's outcome; ``status`` defaults from ``exit_code`` (0 = succeeded)."""
    fields.optional_int64(exit_code, "exit code")
    if status is None:
        status = st.SUCCEEDED if (exit_code or 0) == 0 else st.FAILED
    if status not in st.STAGE_STATUSES or status in (st.PENDING, st.RUNNING):
        raise UsageError(
            f"a stage finishes succeeded, failed, skipped, cancelled or timed_out, not {status!r}"
        )
    if status == st.FAILED and message is None and exit_code not in (None, 0):
        message = f"exited with code {exit_code}"
    now = store.clock()
    with store.write() as tx:
        stage_id, _, _ = _open_stage(tx, store, run_id, name, new_status=status, now=now)
        # started_at stays as recorded: a declared stage skipped without
        # starting has no duration rather than a made-up one.
        tx.execute(
            """UPDATE stage_runs SET status = ?, exit_code = ?, message = ?, finished_at = ?
               WHERE id = ?""",
            (status, exit_code, _one_line(message), now, stage_id),
        )
        _touch(tx, run_id, now)
    return stage_id


def finish_run(
    store: Store,
    run_id: int,
    *,
    status: str | None = None,
    message: str | None = None,
) -> str:
    """Close a run and return its final status.

    Without ``status`` the run failed if any stage failed or timed out, and
    succeeded otherwise. Stages that never started are marked skipped; a stage
    still running when its run ends takes the run's outcome.
    """
    now = store.clock()
    with store.write() as tx:
        check_open(tx, store, run_id)
        stages = tx.execute(
            "SELECT id, name, status, message FROM stage_runs WHERE run_id = ? ORDER BY position",
            (run_id,),
        ).fetchall()
        failed = [s for s in stages if s[2] in (st.FAILED, st.TIMED_OUT)]
        if status is None:
            status = st.FAILED if failed else st.SUCCEEDED
        if status not in st.RUN_STATUSES or status in (st.QUEUED, st.RUNNING):
            raise UsageError(
                f"a run finishes succeeded, failed, cancelled or timed_out, not {status!r}"
            )
        if message is None and failed:
            first = failed[0]
            message = f"stage {first[1]} {first[2]}" + (f": {first[3]}" if first[3] else "")
        tx.execute(
            "UPDATE stage_runs SET status = ? WHERE run_id = ? AND status = ?",
            (st.SKIPPED, run_id, st.PENDING),
        )
        tx.execute(
            """UPDATE stage_runs SET status = ?, finished_at = ?, message = coalesce(message, ?)
               WHERE run_id = ? AND status = ?""",
            (
                st.SUCCEEDED if status == st.SUCCEEDED else status,
                now,
                None if status == st.SUCCEEDED else f"run ended {status}",
                run_id,
                st.RUNNING,
            ),
        )
        tx.execute(
            """UPDATE runs SET status = ?, finished_at = ?, message = ?, heartbeat_at = ?,
                   started_at = coalesce(started_at, ?), rev = ? WHERE id = ?""",
            (status, now, _one_line(message), now, now, tx.rev, run_id),
        )
    return status


def heartbeat(store: Store, run_id: int) -> None:
    """Tell readers the run's writer is alive."""
    now = store.clock()
    with store.write() as tx:
        check_open(tx, store, run_id)
        _touch(tx, run_id, now)


def stage_id(store: Store, run_id: int, name: str) -> int:
    """Id of stage ``name`` of a run still in progress (``record log`` appends to it)."""
    fields.name(name, "stage name")
    with store.read() as conn:
        check_open(conn, store, run_id)
        row = conn.execute(
            "SELECT id FROM stage_runs WHERE run_id = ? AND name = ?", (run_id, name)
        ).fetchone()
    if row is None:
        raise UsageError(f"run {run_id} has no stage {name!r}; start it first")
    return int(row[0])


def append_logs(
    store: Store,
    rows: Iterable[LogRow],
    *,
    run_id: int | None = None,
    refuse_finished: bool = False,
) -> int:
    """Append log lines in one transaction; return how many.

    With ``run_id`` the run's heartbeat is refreshed in the same transaction:
    output is proof of life. With ``refuse_finished`` too, nothing is
    appended to a run that has ended (``record log``); the runner, which
    owns its run, does not ask.
    """
    batch = [_log_row(*row) for row in rows]
    if not batch and run_id is None:
        return 0
    with store.write() as tx:
        if run_id is not None and refuse_finished:
            check_open(tx, store, run_id)
        tx.conn.executemany(
            "INSERT INTO log_lines(stage_run_id, ts, stream, line) VALUES (?, ?, ?, ?)", batch
        )
        if run_id is not None:
            _touch(tx, run_id, store.clock())
    return len(batch)


def _log_row(sid: int, ts: float, stream: str, line: str) -> LogRow:
    if type(ts) is not float or not fields.TIME_MIN <= ts <= fields.TIME_MAX:
        ts = fields.timestamp(ts, "log line time")  # or raises, with the reason
    return sid, ts, fields.name(stream, "log stream"), _safe_line(line)


def _one_line(message: str | None, limit: int = 500) -> str | None:
    if message is None:
        return None
    text = " ".join(fields.free_text(str(message)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _safe_line(line: str, limit: int = 16_384) -> str:
    # Lines are stored as received (ANSI escapes included: a viewer decides
    # how to show them safely); only overlong lines are cut, so one runaway
    # line cannot bloat the store.
    line = fields.free_text(str(line))
    if line.endswith(("\n", "\r")):
        line = line.rstrip("\r\n")
    return line if len(line) <= limit else line[:limit] + " …[truncated]"
