"""The read models the dashboard and detail views refresh from."""

from __future__ import annotations

from pathlib import Path

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


def test_dashboard_queries_use_indexes(store: Store) -> None:
    # The refresh cost must not grow with history: every query the dashboard
    # runs per refresh is an index search, never a table scan.
    plans = {
        "latest run": (
            "SELECT id FROM runs r WHERE r.pipeline_id = 1 ORDER BY r.created_at DESC, r.id DESC "
            "LIMIT 1"
        ),
        "changed runs": "SELECT pipeline_id FROM runs INDEXED BY runs_rev WHERE rev > 5",
        "stages": "SELECT * FROM stage_runs WHERE run_id IN (1, 2) ORDER BY run_id, position",
        "logs since": "SELECT * FROM log_lines WHERE stage_run_id = 1 AND id > 10 ORDER BY id",
        "metric window": (
            "SELECT ts, value FROM metric_samples WHERE series_id = 1 AND ts >= 0 AND ts <= 9 "
            "ORDER BY ts"
        ),
    }
    for name, sql in plans.items():
        detail = " | ".join(r[3] for r in store.conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "USING" in detail and "INDEX" in detail, f"{name}: {detail}"
        assert "SEARCH" in detail, f"{name}: {detail}"


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
