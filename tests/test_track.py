"""The Python recording API, against a real store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from opstui.errors import UsageError
from opstui.store import Store, history, metrics, models
from opstui.store import status as st
from opstui.store.dashboard import Dashboard
from opstui.store.rows import RunRow
from opstui.track import Tracker

from .conftest import Clock


def latest(store: Store, pipeline: str) -> RunRow:
    return history.run_history(store, pipeline, limit=1)[0]


def test_successful_run_records_stages_logs_and_metrics(store: Store, clock: Clock) -> None:
    tracker = Tracker(store)
    with tracker.run("train-churn", stages=["data", "train", "deploy"], kind="mlops") as run:
        with run.stage("data") as stage:
            stage.log("loaded 7043 rows\nhash sha256:abc")
            clock.advance(30)
        with run.stage("train"):
            run.log("fitting")
            for step in range(3):
                run.log_metric("loss", 1.0 / (step + 1), step=step)
            clock.advance(600)
        run.skip_stage("deploy", "gate not reached")
    assert run.status == st.SUCCEEDED
    row = latest(store, "train-churn")
    assert row.kind == "mlops"
    assert [(s.name, s.status) for s in row.stages] == [
        ("data", st.SUCCEEDED),
        ("train", st.SUCCEEDED),
        ("deploy", st.SKIPPED),
    ]
    assert row.stages[0].duration(clock()) == pytest.approx(30)
    assert row.stages[1].duration(clock()) == pytest.approx(600)
    assert [line.line for line in history.stage_logs(store, row.stages[0].id)] == [
        "loaded 7043 rows",
        "hash sha256:abc",
    ]
    (series,) = metrics.find_series(store, "pipeline/train-churn", "loss")
    samples = metrics.samples(store, series.id)
    assert [(s.step, s.value, s.run_id) for s in samples] == [
        (0, 1.0, row.id),
        (1, 0.5, row.id),
        (2, pytest.approx(1 / 3), row.id),
    ]


def test_exception_in_stage_fails_stage_and_run_and_is_reraised(store: Store) -> None:
    tracker = Tracker(store)
    with (
        pytest.raises(ValueError, match=r"null share 0\.31"),
        tracker.run("fraud-model", stages=["data", "validate", "train"]) as run,
    ):
        with run.stage("data"):
            pass
        with run.stage("validate"):
            raise ValueError("null share 0.31 in merchant_category")
    assert run.status == st.FAILED
    row = latest(store, "fraud-model")
    assert row.status == st.FAILED
    assert row.failed_stage is not None
    assert row.failed_stage.name == "validate"
    assert row.failed_stage.message == "ValueError: null share 0.31 in merchant_category"
    assert row.message == "ValueError: null share 0.31 in merchant_category"
    assert [s.status for s in row.stages] == [st.SUCCEEDED, st.FAILED, st.SKIPPED]
    log = [line.line for line in history.stage_logs(store, row.failed_stage.id)]
    assert log[0].startswith("Traceback")
    assert "ValueError: null share 0.31 in merchant_category" in log[-1]


def test_exception_outside_any_stage_fails_the_run(store: Store) -> None:
    with pytest.raises(RuntimeError), Tracker(store).run("p", stages=["a"]):
        raise RuntimeError("config missing")
    row = latest(store, "p")
    assert row.status == st.FAILED
    assert row.message == "RuntimeError: config missing"
    assert row.stages[0].status == st.SKIPPED


def test_ctrl_c_cancels_the_run(store: Store) -> None:
    tracker = Tracker(store)
    with pytest.raises(KeyboardInterrupt), tracker.run("p", stages=["a", "b"]) as run:
        with run.stage("a"):
            raise KeyboardInterrupt
    row = latest(store, "p")
    assert row.status == st.CANCELLED
    assert [s.status for s in row.stages] == [st.CANCELLED, st.SKIPPED]


def test_model_version_features_and_deployment(store: Store) -> None:
    with Tracker(store).run("churn-model") as run:
        with run.stage("train"):
            v1 = run.log_model_version("churn", metrics={"auc": 0.81}, data_hash="sha256:1")
            v2 = run.log_model_version(
                "churn", metrics={"auc": 0.84}, params={"depth": 3}, status="production"
            )
            run.log_features(
                "churn",
                [{"tenure": 1, "contract": "monthly"}, {"tenure": 30, "contract": None}],
                kind="reference",
                version=v2,
            )
            run.record_deployment("production", v2, target="churn", target_kind="model")
    assert (v1, v2) == ("1", "2")
    versions = models.model_versions(store, "churn")
    assert [(v.version, v.status, v.metrics["auc"]) for v in versions] == [
        ("2", "production", 0.84),
        ("1", "candidate", 0.81),
    ]
    assert versions[0].run_id == run.id
    ((batch_id, kind, version, _, n_rows),) = models.feature_batches(store, "churn")
    assert (kind, version, n_rows) == ("reference", "2", 2)
    assert models.load_feature_batch(store, batch_id) == {
        "tenure": [1, 30],
        "contract": ["monthly", None],
    }
    (dep,) = models.current_deployments(store, "churn")
    assert (dep.environment, dep.version, dep.target_kind, dep.run_id) == (
        "production",
        "2",
        "model",
        run.id,
    )


def test_retry_links_parent_and_counts_attempts(store: Store) -> None:
    tracker = Tracker(store)
    with pytest.raises(AssertionError), tracker.run("web-api", stages=["test"]) as first:
        with first.stage("test"):
            raise AssertionError("test_checkout_timeout")
    with tracker.run("web-api", trigger="retry", parent=first.id) as second:
        with second.stage("test"):
            pass
    row = latest(store, "web-api")
    assert (row.parent_run_id, row.attempt, row.trigger) == (first.id, 2, "retry")


def test_stages_do_not_nest(store: Store) -> None:
    with Tracker(store).run("p") as run, run.stage("a"):
        with pytest.raises(UsageError, match="do not nest"), run.stage("b"):
            pass


def test_log_outside_a_stage_is_a_clear_error(store: Store) -> None:
    with Tracker(store).run("p") as run, pytest.raises(UsageError, match="needs a stage"):
        run.log("hello")


def test_buffered_lines_reach_the_store_while_the_stage_runs(store_where: Path | str) -> None:
    tracker = Tracker(store_where, flush_interval=0.05)
    reader = Store(store_where)
    with tracker.run("p") as run, run.stage("long") as stage:
        stage.log("still working")
        deadline = time.monotonic() + 10
        while not history.stage_logs(reader, stage.id):
            assert time.monotonic() < deadline, "log line never flushed"
            time.sleep(0.02)
    reader.close()
    tracker.close()


def test_stale_heartbeat_reads_as_lost(store: Store, clock: Clock) -> None:
    tracker = Tracker(store, heartbeat_interval=10)
    run = tracker.run("p", stages=["a", "b"])
    run.__enter__()
    try:
        with run.stage("a"):
            pass
        sid = run.stage("b")
        sid.__enter__()
        dash = Dashboard(store)
        assert dash.read()[0].status == st.RUNNING
        # 3 missed beats (30 s) is the promise; after it the run is lost.
        clock.advance(31)
        (row,) = dash.read()
        assert row.status == st.LOST
        assert row.latest is not None
        assert row.latest.recorded_status == st.RUNNING
        assert [s.status for s in row.latest.stages] == [st.SUCCEEDED, st.LOST]
        sid.__exit__(None, None, None)
    finally:
        run.__exit__(None, None, None)


KILLED_PIPELINE = textwrap.dedent(
    """
    import sys, time
    from opstui.track import Tracker
    tracker = Tracker(sys.argv[1], heartbeat_interval=0.2)
    with tracker.run("doomed", stages=["work", "after"]) as run:
        with run.stage("work") as stage:
            stage.log("started")
            run.flush()
            print(run.id, flush=True)
            time.sleep(600)
    """
)


def test_run_of_a_killed_process_reads_as_lost(store_where: Path | str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_PIPELINE, str(store_where)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    run_id = int(proc.stdout.readline())
    with Store(store_where) as reader:
        assert history.get_run(reader, run_id).status == st.RUNNING
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        row = history.get_run(reader, run_id)
        # Same host, PID gone: lost at once, without waiting for the timeout.
        assert row.status == st.LOST
        assert row.recorded_status == st.RUNNING
        assert row.stages[0].status == st.LOST
        assert [line.line for line in history.stage_logs(reader, row.stages[0].id)] == ["started"]


def test_run_of_a_dead_process_on_another_host_is_lost_after_timeout(
    store: Store, clock: Clock
) -> None:
    from opstui.store import runs

    run_id, _ = runs.create_run(store, "remote", heartbeat_timeout=30, pid=os.getpid())
    with store.write() as tx:
        tx.execute("UPDATE runs SET host = 'elsewhere' WHERE id = ?", (run_id,))
    assert history.get_run(store, run_id).status == st.RUNNING
    clock.advance(29)
    assert history.get_run(store, run_id).status == st.RUNNING
    clock.advance(2)
    assert history.get_run(store, run_id).status == st.LOST


def test_tracker_finds_store_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "env.db"
    monkeypatch.setenv("OPSTUI_STORE", str(path))
    with Tracker() as tracker, tracker.run("p"):
        pass
    assert path.exists()


def test_feature_data_shapes(store: Store) -> None:
    with Tracker(store).run("p") as run:
        with pytest.raises(UsageError, match="different lengths"):
            run.log_features("m", {"a": [1, 2], "b": [1]})
        with pytest.raises(UsageError, match="must be a mapping"):
            run.log_features("m", 42)
        run.log_features("m", {"a": [1.5, float("nan")]})
    ((batch_id, *_),) = models.feature_batches(store, "m")
    assert models.load_feature_batch(store, batch_id) == {"a": [1.5, None]}
