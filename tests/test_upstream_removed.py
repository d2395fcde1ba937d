"""A DAG or flow deleted upstream is marked, not silently dropped (both back ends).

``orchestrator_sync.sync_runs`` with a ``Listing`` of everything the source
has: its pipelines are made before their first run, marked when it no
longer lists them (their runs kept), unmarked when they come back; an
incomplete read marks nothing. Readers: the dashboard sorts them last and
does not count them as failing, a run left running reads ``unknown`` with
the reason, ``opstui status`` says it in text and JSON.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import sqlite_utils

from opstui.store import Store, history
from opstui.store import status as st
from opstui.store.dashboard import Dashboard
from opstui.store.orchestrator_sync import (
    Listed,
    Listing,
    OrchestratedRun,
    OrchestratedStage,
    run_key,
    sync_runs,
)

from .conftest import Clock, run_cli

EP = "orch"


def _run(dag: str, run_id: str, status: str, at: float) -> OrchestratedRun:
    active = status in st.ACTIVE
    return OrchestratedRun(
        key=run_key("airflow", EP, dag, run_id),
        pipeline=f"airflow/{dag}",
        kind="mlops",
        status=status,
        trigger="manual",
        actor="airflow",
        created_at=at,
        started_at=at,
        finished_at=None if active else at + 5,
        message="task load failed" if status == st.FAILED else None,
        params={"source": {"kind": "airflow", "endpoint": EP, "name": dag, "id": run_id}},
        heartbeat_timeout=60.0,
        stages=(
            OrchestratedStage(
                "load", 0, st.RUNNING if active else status, 1, at, None if active else at + 5, None
            ),
        ),
    )


def _listing(*dags: str, stale: tuple[str, ...] = ()) -> Listing:
    note = "stale in Airflow (its DAG file is gone)"
    return Listing(
        {f"airflow/{d}": Listed("mlops", note if d in stale else None) for d in dags},
        gone="deleted in Airflow",
    )


def _sync(store: Store, runs: list[OrchestratedRun], listing: Listing | None) -> None:
    sync_runs(store, runs, watermark=None, by="test", source=EP, listing=listing)


def _rows(store: Store) -> dict[str, tuple[str, str | None]]:
    return {p.name: (p.status, p.removed_note) for p in Dashboard(store).read()}


def test_a_dag_that_never_ran_is_a_pipeline_and_a_deleted_one_is_marked_with_its_runs_kept(
    store: Store, clock: Clock
) -> None:
    now = clock()
    _sync(store, [_run("etl", "r1", st.FAILED, now - 100)], _listing("etl", "fresh"))
    assert _rows(store) == {
        "airflow/etl": (st.FAILED, None),
        "airflow/fresh": ("never_run", None),
    }
    clock.advance(30)
    _sync(store, [], _listing("fresh"))  # etl is gone from Airflow
    (etl,) = [p for p in Dashboard(store).read() if p.name == "airflow/etl"]
    assert etl.removed_note == "deleted in Airflow" and etl.removed_at == clock()
    assert etl.latest is not None and etl.latest.status == st.FAILED  # its history stays
    assert not etl.failing  # history, not a fault to page on
    # Listed last, after a pipeline that never ran.
    assert [p.name for p in Dashboard(store).read()] == ["airflow/fresh", "airflow/etl"]
    marked_at = clock()
    clock.advance(30)
    _sync(store, [], _listing("fresh"))
    (etl,) = [p for p in Dashboard(store).read() if p.name == "airflow/etl"]
    assert etl.removed_at == marked_at  # since when: the first time it was missed
    _sync(store, [], _listing("fresh", "etl"))  # back (a DAG file restored)
    assert _rows(store)["airflow/etl"] == (st.FAILED, None)


def test_an_incomplete_read_marks_nothing_and_another_endpoints_pipelines_are_left(
    store: Store, clock: Clock
) -> None:
    now = clock()
    _sync(store, [_run("etl", "r1", st.SUCCEEDED, now)], _listing("etl"))
    _sync(store, [], None)  # the DAG list was not read to the end
    assert _rows(store)["airflow/etl"] == (st.SUCCEEDED, None)
    sync_runs(store, [], watermark=None, by="test", source="other", listing=_listing())
    assert _rows(store)["airflow/etl"] == (st.SUCCEEDED, None)


def test_a_stale_dag_is_marked_as_such(store: Store, clock: Clock) -> None:
    _sync(store, [_run("etl", "r1", st.SUCCEEDED, clock())], _listing("etl", stale=("etl",)))
    assert _rows(store)["airflow/etl"] == (st.SUCCEEDED, "stale in Airflow (its DAG file is gone)")
    _sync(store, [], _listing())
    assert _rows(store)["airflow/etl"] == (st.SUCCEEDED, "deleted in Airflow")


def test_a_run_left_running_in_a_deleted_dag_reads_unknown_with_the_reason_never_lost(
    store: Store, clock: Clock
) -> None:
    _sync(store, [_run("etl", "r1", st.RUNNING, clock())], _listing("etl"))
    _sync(store, [], _listing())
    clock.advance(600)  # far past its heartbeat timeout: no poll refreshes it any more
    (row,) = Dashboard(store).read()
    assert row.latest is not None
    assert (row.latest.status, row.latest.status_reason) == (st.UNKNOWN, "deleted in Airflow")
    (run,) = history.run_history(store, "airflow/etl")
    assert (run.status, run.status_reason) == (st.UNKNOWN, "deleted in Airflow")
    assert history.get_run(store, run.id).status == st.UNKNOWN


def test_a_hostile_name_in_a_listing_is_skipped_and_named(store: Store) -> None:
    listing = Listing({"airflow/ok": Listed(None), "airflow/\udcffbad": Listed(None)}, gone="x")
    result = sync_runs(store, [], watermark=None, by="test", source=EP, listing=listing)
    assert list(_rows(store)) == ["airflow/ok"]
    assert len(result.skipped) == 1 and "bad" in result.skipped[0]


def test_status_says_which_pipelines_are_gone_and_does_not_count_them_failing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ops.db"
    with Store(path) as store:
        now = store.clock()
        _sync(store, [_run("etl", "r1", st.FAILED, now - 50)], _listing("etl"))
        _sync(store, [], _listing())
    done = run_cli("status", "--json", "--store", path)
    assert done.returncode == 0, done.stderr  # nothing live is failing
    doc = json.loads(done.stdout)
    assert doc["failing"] == 0
    (p,) = doc["pipelines"]
    assert p["removed"]["note"] == "deleted in Airflow" and p["removed"]["at"]
    text = run_cli("status", "--store", path)
    assert "airflow/etl: deleted in Airflow since" in text.stdout


def test_a_store_from_before_v6_gets_its_mirrored_pipelines_sources(tmp_path: Path) -> None:
    from opstui.store.schema import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    db = sqlite_utils.Database(conn)
    for migration in MIGRATIONS[:5]:
        migration(db)
    conn.executescript(
        """INSERT INTO pipelines(id, name, created_at, rev) VALUES
               (1, 'airflow/etl', 1, 1), (2, 'prefect/f/d', 1, 1), (3, 'build', 1, 1);
           INSERT INTO runs(pipeline_id, key, status, trigger, attempt, created_at, rev) VALUES
               (1, 'airflow:orch:etl:r1', 'succeeded', 'manual', 1, 1, 1),
               (2, 'prefect:pf:f/d:abc', 'failed', 'manual', 1, 1, 1),
               (3, 'ci-17', 'succeeded', 'push', 1, 1, 1);
           PRAGMA user_version = 5;"""
    )
    conn.commit()
    conn.close()
    with Store(path) as store:
        assert store.query_one("PRAGMA user_version")[0] == SCHEMA_VERSION
        got = dict(store.query("SELECT name, source FROM pipelines"))
    assert got == {"airflow/etl": "orch", "prefect/f/d": "pf", "build": None}


def test_status_keeps_a_dag_of_200_tasks_to_its_column_with_the_fault_in_view(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ops.db"
    with Store(path) as store:
        now = store.clock()
        wide = _run("wide", "r1", st.FAILED, now)._replace(
            stages=tuple(
                OrchestratedStage(
                    f"t{i:03}", i, st.FAILED if i == 150 else st.SUCCEEDED, 1, now, now + 1, None
                )
                for i in range(200)
            )
        )
        _sync(store, [wide], _listing("wide"))
    done = run_cli("status", "--store", path, env={"COLUMNS": "80"})
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("airflow/wide")]
    bar = line.split()[1]
    assert len(bar) == 12 and bar.startswith("…") and bar.endswith("…") and "✗" in bar
    assert "t150" in line  # FAILED AT, still on the line


async def test_the_console_marks_a_deleted_dag_on_the_board_and_says_it_on_its_screen(
    tmp_path: Path,
) -> None:
    from opstui.config import Config
    from opstui.tui.app import OpstuiApp
    from opstui.tui.screens.pipeline import PipelineScreen

    from .test_tui import settle, text_of

    path = tmp_path / "ops.db"
    with Store(path) as store:
        now = store.clock()
        _sync(store, [_run("etl", "r1", st.FAILED, now - 90)], _listing("etl", "live"))
        _sync(store, [_run("live", "r2", st.FAILED, now - 60)], _listing("live"))
    app = OpstuiApp(path, Config(), poll=False, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        shown = text_of(app)
        assert "1 failing" in shown, shown  # the live DAG's failure only
        rows = [line for line in shown.splitlines() if "airflow/" in line]
        assert "airflow/live" in rows[0] and "airflow/etl (deleted)" in rows[1], rows
        app.open_key("pipeline:airflow/etl")
        screen = app.screen
        assert isinstance(screen, PipelineScreen)
        for _ in range(200):
            await pilot.pause(0.05)
            if "its runs kept" in text_of(app):
                break
        shown = text_of(app)
        said = "deleted in Airflow just now, its runs kept · Airflow endpoint orch"
        assert said in shown, shown
