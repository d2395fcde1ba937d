"""The read models the dashboard and detail views refresh from."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from opstui.store import Store, history, metrics, models
from opstui.store import runs as store_runs
from opstui.store import status as st
from opstui.store.dashboard import Dashboard

from .conftest import Clock


def finished_run(store: Store, pipeline: str, outcomes: dict[str, int]) -> int:
    run_id, _ = store_runs.create_run(store, pipeline, stages=list(outcomes))
    for name, code in outcomes.items():
        store_runs.start_stage(store, run_id, name)
        store_runs.finish_stage(store, run_id, name, exit_code=code)
        if code:
            break
    store_runs.finish_run(store, run_id)
    return run_id


def test_latest_runs_faults_first_with_stage_bars(store: Store, clock: Clock) -> None:
    finished_run(store, "b-ok", {"build": 0, "test": 0})
    clock.advance(1)
    finished_run(store, "a-ok", {"build": 0})
    clock.advance(1)
    finished_run(store, "z-broken", {"build": 0, "test": 1, "deploy": 0})
    running, _ = store_runs.create_run(store, "m-running", stages=["x", "y"])
    store_runs.start_stage(store, running, "x")
    with store.write() as tx:
        store_runs.ensure_pipeline(tx, "never", stages=["a"], now=clock())

    rows = Dashboard(store).read()
    assert [p.name for p in rows] == ["z-broken", "m-running", "a-ok", "b-ok", "never"]
    broken = rows[0].latest
    assert broken is not None
    assert broken.stage_bar() == "✓✗⊘"
    assert broken.failed_stage is not None
    assert broken.failed_stage.name == "test"
    assert rows[1].latest is not None
    assert rows[1].latest.stage_bar() == "●○"
    assert rows[4].latest is None
    assert rows[4].status == "never_run"


def test_latest_run_is_the_newest_one(store: Store, clock: Clock) -> None:
    finished_run(store, "p", {"a": 1})
    clock.advance(60)
    newest = finished_run(store, "p", {"a": 0})
    (row,) = Dashboard(store).read()
    assert row.latest is not None
    assert (row.latest.id, row.status) == (newest, st.SUCCEEDED)


def test_reads_are_incremental(store_path: Path, clock: Clock) -> None:
    writer = Store(store_path, clock=clock)
    reader = Store(store_path, clock=clock)
    for i in range(20):
        finished_run(writer, f"p{i:02d}", {"a": 0})
    dash = Dashboard(reader)
    assert len(dash.read()) == 20
    assert dash.last_read_changed == 20
    # Nothing committed since: no pipeline is queried again.
    dash.read()
    assert dash.last_read_changed == 0
    # One run changes: only its pipeline is read again.
    run_id, _ = store_runs.create_run(writer, "p07", stages=["a"])
    rows = {p.name: p for p in dash.read()}
    assert dash.last_read_changed == 1
    assert rows["p07"].latest is not None
    assert rows["p07"].latest.id == run_id
    assert rows["p07"].status == st.RUNNING
    # A heartbeat is a change too (it decides running versus lost).
    store_runs.heartbeat(writer, run_id)
    dash.read()
    assert dash.last_read_changed == 1
    # Log lines are not: they are read by the log view, not the dashboard.
    sid = store_runs.start_stage(writer, run_id, "a")
    dash.read()
    store_runs.append_logs(writer, [(sid, clock(), "stdout", "x")])
    dash.read()
    assert dash.last_read_changed == 0
    writer.close()
    reader.close()


def test_own_writes_are_seen_by_a_dashboard_on_the_same_connection(store: Store) -> None:
    dash = Dashboard(store)
    assert dash.read() == []
    finished_run(store, "p", {"a": 0})
    assert [p.name for p in dash.read()] == ["p"]


BIG_TABLES = ("runs", "stage_runs", "log_lines", "metric_samples", "deployments")


def plans_of(store: Store, action: Callable[[], object]) -> list[str]:
    """EXPLAIN QUERY PLAN of every SELECT ``action`` runs on the store's connection."""
    if store.dialect != "sqlite":
        pytest.skip("SQLite's query plans (PostgreSQL's reads: bench/team_store.py, 1M runs)")
    statements: list[str] = []
    assert isinstance(store.conn, sqlite3.Connection)
    store.conn.set_trace_callback(statements.append)
    try:
        action()
    finally:
        store.conn.set_trace_callback(None)
    plans = []
    for sql in statements:
        if sql.lstrip().upper().startswith("SELECT"):
            rows = store.conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
            plans.append(sql.split()[0] + " ... " + " | ".join(r[3] for r in rows))
    return plans


def test_dashboard_reads_never_scan_history(store: Store, clock: Clock) -> None:
    # The refresh cost must not grow with history: no query a read runs may
    # scan a table that grows with it (the plan is taken from the real SQL).
    for i in range(3):
        finished_run(store, f"p{i}", {"a": 0, "b": 1})
    dash = Dashboard(store)
    first = plans_of(store, dash.read)
    store_runs.create_run(store, "p1", stages=["a"])
    incremental = plans_of(store, dash.read)
    assert first
    assert incremental
    for plan in first + incremental:
        for table in BIG_TABLES:
            assert f"SCAN {table}" not in plan and "SCAN r " not in plan, plan


def test_detail_reads_use_indexes(store: Store) -> None:
    run_id = finished_run(store, "p", {"a": 0})
    (stage,) = history.get_run(store, run_id).stages
    metrics.record_samples(store, "endpoint/e", "x", [(1, 1.0)])
    (series,) = metrics.find_series(store, "endpoint/e")
    for plan in plans_of(
        store,
        lambda: (
            history.run_history(store, "p"),
            history.stage_logs(store, stage.id, after_id=0),
            metrics.samples(store, series.id, start=0, end=5),
            models.current_deployments(store, "p"),
        ),
    ):
        for table in ("runs", "stage_runs", "log_lines", "metric_samples"):
            assert f"SCAN {table}" not in plan, plan


def test_run_history_pages_newest_first(store: Store, clock: Clock) -> None:
    ids = []
    for _ in range(5):
        ids.append(finished_run(store, "p", {"a": 0}))
        clock.advance(10)
    page1 = history.run_history(store, "p", limit=2)
    page2 = history.run_history(store, "p", limit=2, before_id=page1[-1].id)
    assert [r.id for r in page1 + page2] == ids[::-1][:4]


def test_logs_since_a_line_id(store: Store, clock: Clock) -> None:
    run_id, _ = store_runs.create_run(store, "p")
    sid = store_runs.start_stage(store, run_id, "build")
    store_runs.append_logs(store, [(sid, clock(), "stdout", f"line {i}") for i in range(5)])
    first = history.stage_logs(store, sid, limit=3)
    rest = history.stage_logs(store, sid, after_id=first[-1].id)
    assert [x.line for x in first + rest] == [f"line {i}" for i in range(5)]
    assert history.stage_logs(store, sid, after_id=rest[-1].id) == []


def test_metric_window(store: Store) -> None:
    metrics.record_samples(
        store,
        "endpoint/api",
        "http_requests_total",
        [(t, t * 2) for t in range(100)],
        labels={"code": "5xx"},
    )
    window = metrics.series_window(
        store, "endpoint/api", "http_requests_total", {"code": "5xx"}, start=10, end=12
    )
    assert [(s.ts, s.value) for s in window] == [(10, 20), (11, 22), (12, 24)]
    assert metrics.series_window(store, "endpoint/api", "http_requests_total") == []


def test_what_is_deployed_where_follows_failures_and_rollbacks(store: Store) -> None:
    with store.write() as tx:
        a, _ = models.add_deployment(
            tx, environment="production", target="web", version="1.0", deployed_at=100
        )
        b, _ = models.add_deployment(
            tx, environment="production", target="web", version="1.1", deployed_at=200
        )
        models.add_deployment(
            tx,
            environment="production",
            target="web",
            version="1.2",
            deployed_at=300,
            status="failed",
        )
        models.add_deployment(
            tx, environment="staging", target="web", version="1.2", deployed_at=250
        )
        r, _ = models.add_deployment(
            tx,
            environment="production",
            target="web",
            version="1.0",
            deployed_at=400,
            action="rollback",
        )
    now = {d.environment: d for d in models.current_deployments(store, "web")}
    assert now["staging"].version == "1.2"
    prod = now["production"]
    assert (prod.id, prod.version, prod.action) == (r, "1.0", "rollback")
    # The rollback names what it replaced: the last version that was serving.
    assert (prod.replaces_id, prod.replaced_version) == (b, "1.1")
    hist = models.deployment_history(store, "web", "production")
    assert [d.version for d in hist] == ["1.0", "1.2", "1.1", "1.0"]
    assert hist[-1].id == a
