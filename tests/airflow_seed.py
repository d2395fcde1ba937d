"""History in a real Airflow, fast: thousands of DAG runs with their task instances.

Triggering 10,000 runs through the scheduler would take hours; copying rows
takes seconds. ``prepare_dag`` puts a DAG of ``tasks`` EmptyOperators in a
chain (``schedule=None``, so Airflow never makes runs of its own) in the
DAGs folder of an Airflow ``tests/airflow_server.py`` started, triggers
it once (the template run: the scheduler makes its task instances), marks
that run success through the API and pauses the DAG. ``seed_runs`` then
copies the template's
``dag_run`` row and its ``task_instance`` rows in the SQLite metadata
database with new run ids, logical dates, task instance ids (UUIDs in
Airflow 3), states, tries and times, in transactions of a few hundred runs
(Airflow's own processes write the same file meanwhile). Every column the
copy does not set is the template's, so the rows are what Airflow wrote;
Airflow's REST API then serves them as real runs.

The copies are kept from Airflow's scheduler: the DAG is paused (it looks at
running and queued runs of unpaused DAGs only), a running copy has no
``last_scheduling_decision`` (the check of paused DAGs' running runs skips
it) and no task instance has ``queued_by_job_id`` (the checks for tasks
without a heartbeat or stuck in queued look at their own job's only).

``plan_history`` makes the mix the history tests and ``bench/orchestrators.py``
use: mostly successes, some failures (one task failed, the tasks after it
``upstream_failed``), a few running and queued, spread over a window of
days, some older than an endpoint's ``backfill``, none near its edge (the
poll's window moves with the clock while a test runs).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sqlite3
import textwrap
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .airflow_server import AirflowServer

#: The DAG the history is seeded into.
DAG_ID = "history_etl"
#: Runs written per transaction: short, so Airflow's writers never wait long.
CHUNK = 250
#: No seeded run is updated within this many seconds of the backfill's edge.
EDGE_GAP = 3600.0


def dag_source(dag_id: str, tasks: int) -> str:
    """A DAG of ``tasks`` EmptyOperators in a chain, never scheduled."""
    return textwrap.dedent(
        f'''
        """{dag_id}: {tasks} empty tasks in a chain (history is copied into it)."""
        import pendulum
        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow.sdk import chain, dag


        @dag(dag_id={dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1),
             catchup=False, tags=["opstui-test"])
        def history():
            chain(*[EmptyOperator(task_id=f"step_{{i:02d}}") for i in range({tasks})])


        history()
        '''
    )


def task_ids(tasks: int) -> list[str]:
    return [f"step_{i:02d}" for i in range(tasks)]


def prepare_dag(server: AirflowServer, dag_id: str = DAG_ID, tasks: int = 20) -> str:
    """Write the DAG, let Airflow run it once, pause it; the template run's id."""
    (server.home / "dags" / f"{dag_id}.py").write_text(dag_source(dag_id, tasks), encoding="utf-8")
    server.wait_dag(dag_id)
    run_id = server.trigger(dag_id)
    # Its task instances are made when the scheduler starts it; running its
    # chain would take a scheduler loop a task (~1 s each): it is marked
    # success through the API instead, and the DAG paused.
    deadline = time.monotonic() + 120
    path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"
    while server.api("GET", f"{path}/taskInstances")["total_entries"] < tasks:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the template run of {dag_id} has no task instances; see {server.home}"
            )
        time.sleep(0.3)
    server.api("PATCH", f"/dags/{dag_id}", json={"is_paused": True})
    server.api("PATCH", path, json={"state": "success"})
    return run_id


@dataclass(frozen=True)
class SeededRun:
    """One DAG run to write: its state, times (epoch seconds) and its tasks' states."""

    run_id: str
    run_type: str
    state: str  # success, failed, running, queued
    logical_date: float
    queued_at: float
    start: float | None
    end: float | None
    #: When Airflow last changed it (what ``updated_at_gte`` filters on).
    updated_at: float
    #: Each task's state, in the chain's order (None: not scheduled yet).
    task_states: tuple[str | None, ...]
    #: Tries of the failed task (2: it was retried once before it failed).
    failed_tries: int = 1

    @property
    def failed_task(self) -> int | None:
        return next((i for i, s in enumerate(self.task_states) if s == "failed"), None)


def plan_history(
    runs: int,
    tasks: int,
    *,
    now: float,
    backfill: float,
    span: float,
    older: float = 0.05,
    failed: float = 0.08,
    active: int = 6,
    seed: int = 7,
) -> list[SeededRun]:
    """``runs`` runs over ``span`` seconds before ``now``: ``older`` of them updated
    before ``now - backfill`` (less ``EDGE_GAP``), the rest after it (plus the gap);
    ``failed`` of them failed at a random task; the newest ``active`` running
    or queued (half each). Deterministic for a ``seed``; oldest first."""
    if span <= backfill + EDGE_GAP:
        raise ValueError("span must reach past the backfill and its gap")
    rng = random.Random(seed)
    n_old = round(runs * older)
    inside = (now - backfill + EDGE_GAP, now - 60.0)
    outside = (now - span, now - backfill - EDGE_GAP)
    ends = sorted(
        [rng.uniform(*outside) for _ in range(n_old)]
        + [rng.uniform(*inside) for _ in range(runs - n_old)]
    )
    out: list[SeededRun] = []
    for i, end in enumerate(ends):
        duration = rng.uniform(30.0, 900.0)
        start = end - duration
        queued = start - rng.uniform(0.5, 5.0)
        logical = dt.datetime.fromtimestamp(int(queued), dt.UTC) - dt.timedelta(microseconds=i)
        run_type = "scheduled" if i % 3 else "manual"
        run_id = f"{run_type}__{logical.isoformat()}"
        states: list[str | None]
        tries = 1
        n_active = runs - i
        if n_active <= active:
            if n_active % 2:  # running: the tasks before k done, k running, the rest waiting
                k = rng.randrange(tasks)
                states = [*["success"] * k, "running", *[None] * (tasks - k - 1)]
                out.append(
                    SeededRun(run_id, run_type, "running", logical.timestamp(), queued, start,
                              None, end, tuple(states))
                )  # fmt: skip
            else:  # queued: no task scheduled yet
                out.append(
                    SeededRun(run_id, run_type, "queued", logical.timestamp(), queued, None,
                              None, end, (None,) * tasks)
                )  # fmt: skip
            continue
        if rng.random() < failed:
            k = rng.randrange(tasks)
            states = [*["success"] * k, "failed", *["upstream_failed"] * (tasks - k - 1)]
            tries = rng.choice((1, 1, 2))
            state = "failed"
        else:
            states = ["success"] * tasks
            state = "success"
        out.append(
            SeededRun(run_id, run_type, state, logical.timestamp(), queued, start, end, end,
                      tuple(states), tries)
        )  # fmt: skip
    return out


def _stamp(at: float | None) -> str | None:
    """Epoch seconds as Airflow's SQLite stores a time (naive UTC, microseconds)."""
    if at is None:
        return None
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


@dataclass(frozen=True)
class Seeded:
    runs: int
    task_instances: int
    seconds: float


def seed_runs(
    server: AirflowServer,
    runs: Sequence[SeededRun],
    *,
    dag_id: str = DAG_ID,
    template: str,
) -> Seeded:
    """Copy the ``template`` run of ``dag_id`` once per ``runs`` item into Airflow's DB."""
    began = time.perf_counter()
    db = sqlite3.connect(server.home / "airflow.db", timeout=60, isolation_level=None)
    try:
        db.row_factory = sqlite3.Row
        run_cols = [c for c in _columns(db, "dag_run") if c != "id"]
        ti_cols = _columns(db, "task_instance")
        base_run = db.execute(
            "SELECT * FROM dag_run WHERE dag_id = ? AND run_id = ?", (dag_id, template)
        ).fetchone()
        if base_run is None:
            raise RuntimeError(f"no template run {template!r} of {dag_id} in {server.home}")
        base_tis = {
            r["task_id"]: dict(r)
            for r in db.execute(
                "SELECT * FROM task_instance WHERE dag_id = ? AND run_id = ? AND map_index = -1",
                (dag_id, template),
            )
        }
        order = sorted(base_tis)
        run_sql = (
            f"INSERT INTO dag_run ({', '.join(run_cols)}) "
            f"VALUES ({', '.join('?' for _ in run_cols)})"
        )
        ti_sql = (
            f"INSERT INTO task_instance ({', '.join(ti_cols)}) "
            f"VALUES ({', '.join('?' for _ in ti_cols)})"
        )
        written = 0
        for chunk in _chunks(runs, CHUNK):
            run_rows, ti_rows = [], []
            for run in chunk:
                if len(run.task_states) != len(order):
                    raise ValueError(
                        f"{run.run_id}: {len(run.task_states)} task states, the DAG has "
                        f"{len(order)} tasks"
                    )
                row = dict(base_run)
                row.update(_run_values(run))
                run_rows.append([row[c] for c in run_cols])
                for position, task_id in enumerate(order):
                    ti = dict(base_tis[task_id])
                    ti.update(_ti_values(run, position))
                    ti_rows.append([ti[c] for c in ti_cols])
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(run_sql, run_rows)
                db.executemany(ti_sql, ti_rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            written += len(ti_rows)
    finally:
        db.close()
    return Seeded(len(runs), written, time.perf_counter() - began)


def _chunks(items: Sequence[SeededRun], size: int) -> Iterator[Sequence[SeededRun]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _run_values(run: SeededRun) -> dict[str, Any]:
    finished = run.state in ("success", "failed")
    return {
        "run_id": run.run_id,
        "run_type": run.run_type,
        "state": run.state,
        "logical_date": _stamp(run.logical_date),
        "run_after": _stamp(run.logical_date),
        "data_interval_start": _stamp(run.logical_date),
        "data_interval_end": _stamp(run.logical_date),
        "queued_at": _stamp(run.queued_at),
        "start_date": _stamp(run.start),
        "end_date": _stamp(run.end) if finished else None,
        "created_at": _stamp(run.queued_at),
        "updated_at": _stamp(run.updated_at),
        # A running copy the scheduler's check of paused DAGs must not pick up.
        "last_scheduling_decision": _stamp(run.end) if finished else None,
        # Airflow keeps the enum's name (DagRunTriggeredByType).
        "triggered_by": "TIMETABLE" if run.run_type == "scheduled" else "REST_API",
        "triggering_user_name": None if run.run_type == "scheduled" else "admin",
        "conf": json.dumps({"seeded": True}),
        "creating_job_id": None,
        "scheduled_by_job_id": None,
    }


def _ti_values(run: SeededRun, position: int) -> dict[str, Any]:
    state = run.task_states[position]
    n = len(run.task_states)
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "run_id": run.run_id,
        "state": state,
        "queued_by_job_id": None,
        "pid": None,
        "last_heartbeat_at": None,
        "external_executor_id": None,
    }
    if state in (None, "upstream_failed") or run.start is None:
        values.update(
            try_number=0, start_date=None, end_date=None, duration=None, queued_dttm=None,
            scheduled_dttm=None, updated_at=_stamp(run.updated_at), hostname="",
        )  # fmt: skip
        return values
    # The run's time split evenly over its tasks, in the chain's order.
    end = run.end if run.end is not None else run.updated_at
    step = (end - run.start) / n
    start = run.start + position * step
    finish = None if state == "running" else start + step * 0.9
    values.update(
        try_number=run.failed_tries if state == "failed" else 1,
        start_date=_stamp(start),
        end_date=_stamp(finish),
        duration=None if finish is None else finish - start,
        queued_dttm=_stamp(start - 0.5),
        scheduled_dttm=_stamp(start - 0.7),
        updated_at=_stamp(finish if finish is not None else start),
    )
    return values


def seed_history(
    server: AirflowServer, runs: Sequence[SeededRun], *, tasks: int, dag_id: str = DAG_ID
) -> Seeded:
    """``prepare_dag``, ``seed_runs``, then the template run deleted (through the API),
    so the DAG's runs are exactly ``runs``; checked against the API's count."""
    template = prepare_dag(server, dag_id, tasks)
    seeded = seed_runs(server, runs, dag_id=dag_id, template=template)
    server.api("DELETE", f"/dags/{dag_id}/dagRuns/{quote(template, safe='')}")
    served = served_runs(server, dag_id)
    if served != len(runs):
        raise RuntimeError(f"Airflow serves {served} runs of {dag_id}, {len(runs)} were seeded")
    return seeded


def served_runs(server: AirflowServer, dag_id: str = DAG_ID) -> int:
    """How many runs of ``dag_id`` Airflow's API says it has (``total_entries``)."""
    doc = server.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 1})
    return int(doc["total_entries"])
