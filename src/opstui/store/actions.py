"""The audit trail of operator actions, and the runs those actions start.

Every action (run, retry, rollback, retrain) leaves one row: who, when, what,
on which target and environment, the plan shown before confirming, and how
it ended, including refusals (read-only) and requests that joined a run
already in flight.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from opstui.errors import UsageError
from opstui.store import fields
from opstui.store import status as st
from opstui.store.dashboard import process_gone
from opstui.store.db import Store, Transaction, host_name
from opstui.store.query import where
from opstui.store.runs import ensure_pipeline

#: Action row statuses.
REFUSED = "refused"  # read-only, or not confirmed
JOINED = "joined"  # the same request was already in flight: no new run
STARTED = "started"
SUCCEEDED = "succeeded"
FAILED = "failed"
#: The action's run lost its runner (killed, host down) before it recorded an
#: end. Derived by readers from the run; written once a writer is sure.
LOST = st.LOST


class ActionRow(NamedTuple):
    id: int
    ts: float
    actor: str
    action: str
    target: str
    environment: str | None
    plan: dict[str, Any]
    status: str
    outcome: str | None
    run_id: int | None
    finished_at: float | None


def add_action(
    tx: Transaction,
    *,
    actor: str,
    action: str,
    target: str,
    environment: str | None,
    plan: Mapping[str, Any],
    status: str,
    outcome: str | None = None,
    run_id: int | None = None,
    now: float,
) -> int:
    finished = now if status in (REFUSED, JOINED) else None
    fields.name(actor, "actor")
    fields.name(target, "target")
    fields.optional_name(environment, "environment")
    cur = tx.execute(
        """INSERT INTO actions(ts, actor, action, target, environment, plan, status, outcome,
               run_id, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
        (
            now,
            actor,
            action,
            target,
            environment,
            fields.json_object(plan, "action plan", lenient=True),
            status,
            None if outcome is None else fields.free_text(outcome),
            run_id,
            finished,
        ),
    )
    return int(cur.fetchone()[0])


def record_action(store: Store, **fields: Any) -> int:
    """``add_action`` in its own transaction."""
    with store.write() as tx:
        return add_action(tx, now=store.clock(), **fields)


def confirmed_plan(store: Store, run_id: int) -> dict[str, Any] | None:
    """The plan confirmed for ``run_id``: that of the action row that queued it."""
    row = store.query_one(
        "SELECT plan FROM actions WHERE run_id = ? AND status <> ? ORDER BY id LIMIT 1",
        (run_id, JOINED),
    )
    if row is None:
        return None
    try:
        return fields.loads_object(row[0], "plan")
    except fields.Unreadable:
        return None


def finish_actions_for_run(store: Store, run_id: int, status: str, outcome: str) -> None:
    """Close the action row(s) that started ``run_id``."""
    with store.write() as tx:
        tx.execute(
            """UPDATE actions SET status = ?, outcome = ?, finished_at = ?
               WHERE run_id = ? AND status = ?""",
            (status, outcome, store.clock(), run_id, STARTED),
        )


def in_flight(tx: Transaction, request: str, now: float) -> int | None:
    """Id of a queued or running run started by ``request`` that is still alive.

    A run whose runner is known dead (this host, PID gone) is closed here as
    lost, with its audit row: the next request is the first writer to know.
    """
    rows = tx.execute(
        """SELECT id, status, heartbeat_at, heartbeat_timeout, host, pid FROM runs
           WHERE request = ? AND status IN (?, ?) ORDER BY id DESC""",
        (request, st.QUEUED, st.RUNNING),
    ).fetchall()
    for run_id, status, beat, timeout, host, pid in rows:
        # A lost run (its runner died) does not block a new request.
        if process_gone(host, pid):
            close_lost(tx, int(run_id), f"its runner (pid {pid} on {host}) died", now)
            continue
        if st.effective_run_status(status, beat, timeout or 60.0, now) != st.LOST:
            return int(run_id)
    return None


def close_lost(tx: Transaction, run_id: int, why: str, now: float) -> None:
    """Record run ``run_id`` and the action that started it as lost."""
    tx.execute(
        """UPDATE runs SET status = ?, finished_at = ?, message = ?, rev = ?
           WHERE id = ? AND status IN (?, ?)""",
        (st.LOST, now, f"lost: {why}", tx.rev, run_id, st.QUEUED, st.RUNNING),
    )
    tx.execute(
        """UPDATE actions SET status = ?, outcome = ?, finished_at = ?
           WHERE run_id = ? AND status = ?""",
        (LOST, f"run {run_id} lost: {why}", now, run_id, STARTED),
    )


def close_unstarted(store: Store, run_id: int, why: str) -> None:
    """A queued run no runner could be started for: failed at once, with its audit row.

    Left queued, it would read "running" on the board until the queue timeout
    and a second identical request would join it instead of starting anew.
    """
    now = store.clock()
    with store.write() as tx:
        tx.execute(
            """UPDATE runs SET status = ?, finished_at = ?, message = ?, rev = ?
               WHERE id = ? AND status = ?""",
            (st.FAILED, now, why, tx.rev, run_id, st.QUEUED),
        )
        tx.execute(
            "UPDATE stage_runs SET status = ? WHERE run_id = ? AND status = ?",
            (st.SKIPPED, run_id, st.PENDING),
        )
        tx.execute(
            """UPDATE actions SET status = ?, outcome = ?, finished_at = ?
               WHERE run_id = ? AND status = ?""",
            (FAILED, f"run {run_id} failed: {why}", now, run_id, STARTED),
        )


def start_action_run(
    store: Store,
    *,
    pipeline: str,
    kind: str | None,
    stages: Sequence[str],
    trigger: str,
    actor: str,
    request: str,
    params: Mapping[str, Any],
    parent_run_id: int | None,
    action: Mapping[str, Any],
    queue_timeout: float = 30.0,
) -> tuple[int, bool, int]:
    """Queue a run for an action and record the action; ``(run_id, created, action_id)``.

    One transaction (``BEGIN IMMEDIATE`` serialises writers) checks for a
    live run of the same ``request`` and either joins it or queues a new
    one, so two operators pressing retry at once get one run. The queued run
    reads as lost if no runner claims it within ``queue_timeout``.
    """
    now = store.clock()
    with store.write() as tx:
        existing = in_flight(tx, request, now)
        if existing is not None:
            action_id = add_action(
                tx,
                now=now,
                status=JOINED,
                outcome=f"joined run {existing}, already in flight",
                run_id=existing,
                **action,
            )
            return existing, False, action_id
        pipeline_id = ensure_pipeline(tx, pipeline, kind=kind, now=now)
        attempt = 1
        if parent_run_id is not None:
            row = tx.execute("SELECT attempt FROM runs WHERE id = ?", (parent_run_id,)).fetchone()
            if row is None:
                raise UsageError(f"run {parent_run_id} does not exist in {store.name}")
            attempt = int(row[0]) + 1
        cur = tx.execute(
            """INSERT INTO runs(pipeline_id, status, trigger, actor, parent_run_id, attempt,
                   created_at, heartbeat_at, heartbeat_timeout, host, params, rev, request)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
            (
                pipeline_id,
                st.QUEUED,
                trigger,
                actor,
                parent_run_id,
                attempt,
                now,
                now,
                queue_timeout,
                host_name(),
                json.dumps(dict(params), default=str),
                tx.rev,
                request,
            ),
        )
        run_id = int(cur.fetchone()[0])
        tx.conn.executemany(
            "INSERT INTO stage_runs(run_id, name, position, status) VALUES (?, ?, ?, ?)",
            [(run_id, name, i, st.PENDING) for i, name in enumerate(stages)],
        )
        action_id = add_action(tx, now=now, status=STARTED, run_id=run_id, **action)
    return run_id, True, action_id


def claim_run(store: Store, run_id: int, *, pid: int, heartbeat_timeout: float) -> dict[str, Any]:
    """Take a queued run for execution; return its params.

    Raises ``UsageError`` if the run is not queued: another runner has it,
    or it already ran.
    """
    now = store.clock()
    with store.write() as tx:
        row = tx.execute("SELECT status, params FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UsageError(f"run {run_id} does not exist in {store.name}")
        if row[0] != st.QUEUED:
            raise UsageError(f"run {run_id} is {row[0]}, not queued; nothing to execute")
        tx.execute(
            """UPDATE runs SET status = ?, started_at = ?, heartbeat_at = ?, pid = ?, host = ?,
                   heartbeat_timeout = ?, rev = ? WHERE id = ?""",
            (
                st.RUNNING,
                now,
                now,
                pid,
                host_name(),
                heartbeat_timeout,
                tx.rev,
                run_id,
            ),
        )
    params: dict[str, Any] = json.loads(row[1] or "{}")
    return params


def reuse_stage(store: Store, run_id: int, name: str, source_stage_id: int, note: str) -> None:
    """Mark a stage succeeded by reusing a stage of an earlier run (a retry's)."""
    now = store.clock()
    with store.write() as tx:
        tx.execute(
            """UPDATE stage_runs SET status = ?, reused_from_id = ?, message = ?,
                   started_at = ?, finished_at = ?, exit_code = 0
               WHERE run_id = ? AND name = ?""",
            (st.SUCCEEDED, source_stage_id, note, now, now, run_id, name),
        )
        tx.execute("UPDATE runs SET heartbeat_at = ?, rev = ? WHERE id = ?", (now, tx.rev, run_id))


def list_actions(store: Store, *, limit: int = 50, before_id: int | None = None) -> list[ActionRow]:
    """The audit trail, newest first.

    An action still ``started`` whose run is lost (its runner was killed and
    recorded no end) reads ``lost``: the audit trail never says an action is
    in progress when nothing is running it.
    """
    clause, params = where(("a.id < ?", before_id))
    rows = store.query(
        f"""SELECT a.id, a.ts, a.actor, a.action, a.target, a.environment, a.plan, a.status,
                   a.outcome, a.run_id, a.finished_at,
                   r.status, r.heartbeat_at, r.heartbeat_timeout, r.host, r.pid
            FROM actions a LEFT JOIN runs r ON r.id = a.run_id
            {clause} ORDER BY a.id DESC LIMIT ?""",
        [*params, limit],
    )
    now = store.clock()
    out: list[ActionRow] = []
    for r in rows:
        try:
            fields.check_times((("ts", r[1]), ("finished_at", r[10])))
            plan = fields.loads_object(r[6], "plan")
        except fields.Unreadable as exc:
            fields.skipped(f"action {r[0]}", str(exc))
            continue
        status, outcome, finished_at = r[7], r[8], r[10]
        run_status, beat, timeout, host, pid = r[11:16]
        if status == STARTED and run_status is not None:
            effective = st.effective_run_status(
                run_status, beat, timeout or 60.0, now, process_gone=process_gone(host, pid)
            )
            if effective == st.LOST:
                status, outcome = LOST, f"run {r[9]} lost: its runner stopped without an end"
        out.append(
            ActionRow(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                plan,
                status,
                outcome,
                r[9],
                finished_at,
            )
        )
    return out
