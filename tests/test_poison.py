"""Poison records: what a reader cannot read never gets into the store, and a
reader meeting one already there skips it, names it and shows the rest.

Each class of poison value an outside probe found (times beyond datetime's
years, NaN, integers beyond int64, lone surrogates, objects where text
belongs, nesting deeper than Python recurses, a 1 MB CSV cell, a TOML nested
10,000 deep, record calls on a finished run) is refused at every door with
one line and exit 2, and leaves the store as it was.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from _fuzz import dump, invoke

from opstui.config import Config
from opstui.errors import UsageError
from opstui.store import Store, fields, history, mlflow_sync
from opstui.store import endpoints as store_endpoints
from opstui.store import metrics as store_metrics
from opstui.store import runs as store_runs
from opstui.store.actions import list_actions
from opstui.store.dashboard import Dashboard
from opstui.timeutil import clock_time, human_age, human_duration, iso
from opstui.track import Tracker
from opstui.views.snapshot import SnapshotReader

from .conftest import SAMPLE_RUNS

RUN = {
    "type": "run",
    "key": "r1",
    "pipeline": "web-api",
    "status": "succeeded",
    "started_at": "2026-11-01T10:00:00Z",
}


def _line(**fields_: object) -> str:
    return json.dumps({**RUN, **fields_})


POISON_LINES = {
    "started_at 1e20": (_line(started_at=1e20), "out of range"),
    "started_at -1e12": (_line(started_at=-1e12), "out of range"),
    "year 1 at +14:00": (_line(started_at="0001-01-01T00:00:00+14:00"), "out of range"),
    "year 10000 in UTC": (_line(started_at="9999-12-31T23:59:59-14:00"), "out of range"),
    "heartbeat_at 1e300": (_line(heartbeat_at=1e300), "out of range"),
    "feature created_at 1e20": (
        json.dumps(
            {
                "type": "features",
                "key": "f",
                "model": "m",
                "created_at": 1e20,
                "columns": {"x": [1.0, 2.0]},
            }
        ),
        "out of range",
    ),
    "NaN metric point": (
        '{"type":"metrics","key":"k","source":"s","name":"n","points":[[1800000000,NaN]]}',
        "not a finite number",
    ),
    "Infinity metric point": (
        '{"type":"metrics","key":"k","source":"s","name":"n","points":[[1800000000,Infinity]]}',
        "not a finite number",
    ),
    "metric point at 1e20": (
        '{"type":"metrics","key":"k","source":"s","name":"n","points":[[1e20,1]]}',
        "out of range",
    ),
    "NaN model metric": (
        '{"type":"model_version","model":"m","version":"1","created_at":1800000000,'
        '"metrics":{"auc":NaN}}',
        "not a finite number",
    ),
    "lone surrogate": (_line(pipeline="\udcff"), "lone surrogate"),
    "surrogate in params": (_line(params={"a": "x\ud800"}), "lone surrogate"),
    "object for a string": (_line(pipeline={"a": 1}), "wrong type"),
    "attempt 2**63": (_line(attempt=2**63), "out of range"),
    "exit code 2**64": (
        _line(stages=[{"name": "a", "status": "failed", "exit_code": 2**64}]),
        "out of range",
    ),
    "integer of 5,000 digits": (_line(attempt="@@").replace('"@@"', "9" * 5000), "not valid JSON"),
    "params nested 40 deep": (
        _line(params={"a": "@@"}).replace('"@@"', "[" * 40 + "]" * 40),
        "nests deeper",
    ),
    "line nested 2,000 deep": ("[" * 2000 + "]" * 2000, "nests deeper"),
    "a name of 10,000 characters": (_line(pipeline="x" * 10_000), "characters long"),
    "a feature cell that is a list": (
        json.dumps(
            {
                "type": "features",
                "key": "f",
                "model": "m",
                "created_at": 1800000000,
                "columns": {"x": [[1], 2]},
            }
        ),
        "not a number, text or null",
    ),
}


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample history, imported once; tests copy it."""
    path = tmp_path_factory.mktemp("poison") / "sample.db"
    out = invoke(["import", str(SAMPLE_RUNS), "--store", str(path)])
    assert out.code == 0, out
    with Store(path):  # checkpoints the WAL into the file on close
        pass
    return path


@pytest.fixture
def store_copy(sample_store: Path, tmp_path: Path) -> Path:
    path = tmp_path / "copy.db"
    shutil.copyfile(sample_store, path)
    return path


@pytest.mark.parametrize("case", sorted(POISON_LINES))
def test_import_refuses_a_poison_value_with_file_line_and_reason(
    case: str, store_copy: Path, tmp_path: Path
) -> None:
    line, reason = POISON_LINES[case]
    path = tmp_path / "poison.jsonl"
    path.write_text(_line(key="fine") + "\n" + line + "\n", encoding="utf-8")
    before = dump(store_copy)
    out = invoke(["import", str(path), "--store", str(store_copy)])
    assert out.crash is None, out.crash
    assert out.code == 2
    assert f"{path}:2: " in out.stderr
    assert reason in out.stderr
    assert "nothing was imported" in out.stderr
    assert dump(store_copy) == before


def test_a_refused_import_creates_no_store(tmp_path: Path) -> None:
    path = tmp_path / "poison.jsonl"
    path.write_text(_line(started_at=1e20) + "\n", encoding="utf-8")
    out = invoke(["import", str(path), "--store", str(tmp_path / "new.db")])
    assert out.code == 2
    assert not (tmp_path / "new.db").exists()


def test_shift_to_now_that_pushes_a_time_out_of_range_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    path = tmp_path / "old.jsonl"
    lines = [_line(key="a", started_at=1.0), _line(key="b", started_at=253402214400.0)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    from opstui.store.importer import ImportFailed, import_files

    with pytest.raises(ImportFailed, match="out of range"):
        import_files(store, [path], shift_to=1_800_000_000.0)
    assert history.runs_in_flight(store) == []
    store.close()


# --- readers meeting bad rows ------------------------------------------------


def _poison(path: Path, *statements: str) -> None:
    # By hand, as an older opstui or an operator's sqlite3 session could.
    conn = sqlite3.connect(path)
    with conn:
        for sql in statements:
            conn.execute(sql)
    conn.close()


LATEST_WEB_API = """(SELECT id FROM runs WHERE pipeline_id =
    (SELECT id FROM pipelines WHERE name = 'web-api') ORDER BY created_at DESC, id DESC LIMIT 1)"""
LATEST_BILLING = LATEST_WEB_API.replace("web-api", "billing-worker")


def test_status_skips_and_names_unreadable_runs_and_shows_the_rest(store_copy: Path) -> None:
    (bad_id,) = sqlite3.connect(store_copy).execute(f"SELECT {LATEST_WEB_API}").fetchone()
    _poison(
        store_copy,
        f"UPDATE runs SET started_at = 1e20 WHERE id = {bad_id}",
        f"UPDATE runs SET heartbeat_at = -1e12 WHERE id = {LATEST_BILLING}",
        "UPDATE stage_runs SET finished_at = 9e300 WHERE id = 1",
        "UPDATE pipelines SET stages = '{not json' WHERE name = 'churn-model'",
        "UPDATE pipelines SET kind = CAST(X'FF41' AS TEXT) WHERE name = 'fraud-model'",
    )
    text = invoke(["status", "--store", str(store_copy)])
    as_json = invoke(["status", "--json", "--store", str(store_copy)])
    for out in (text, as_json):
        assert out.crash is None, out.crash
        assert out.code in (0, 1)
        assert f"skipped run {bad_id} of 'web-api': started_at 1e+20 is out of range" in out.stderr
        assert "heartbeat_at -1000000000000.0 is out of range" in out.stderr
        assert "skipped the declared stages of pipeline 'churn-model'" in out.stderr
        assert all(line.startswith("opstui: skipped ") for line in out.stderr.splitlines())
    doc = json.loads(as_json.stdout)
    shown = {p["name"]: p for p in doc["pipelines"]}
    assert set(shown) == {"web-api", "billing-worker", "churn-model", "fraud-model"}
    # web-api shows its newest readable run instead of the poisoned one.
    assert shown["web-api"]["latest_run"]["id"] < bad_id
    assert shown["fraud-model"]["kind"] == "\ufffdA"  # not UTF-8: shown, visibly
    assert "web-api" in text.stdout


def test_drift_actions_endpoints_and_the_console_survive_bad_rows(store_copy: Path) -> None:
    _poison(
        store_copy,
        """UPDATE feature_batches SET created_at = 1e20 WHERE id =
           (SELECT max(id) FROM feature_batches WHERE kind = 'current')""",
        "UPDATE model_versions SET metrics = '{' WHERE id = 1",
        "UPDATE deployments SET deployed_at = 9e99 WHERE id = 1",
        "UPDATE metric_samples SET value = 1e999 WHERE id = 5",
        """INSERT INTO actions(ts, actor, action, target, status, plan)
           VALUES (1e20, 'me', 'retry', 'web-api', 'refused', '{}')""",
        """INSERT INTO actions(ts, actor, action, target, status, plan)
           VALUES (1800000000, 'me', 'retry', 'web-api', 'refused', 'nope')""",
        """INSERT INTO endpoint_status(name, state, last_attempt_at, failures, rev)
           VALUES ('web', 'up', 1e20, 0, 1)""",
    )
    drift = invoke(["drift", "--no-classifier", "--no-save", "--store", str(store_copy)])
    assert drift.crash is None, drift.crash
    assert drift.code in (0, 1)
    assert "skipped a current feature batch of model 'fraud': created_at 1e+20" in drift.stderr
    assert "fraud" in drift.stdout and "churn" in drift.stdout
    actions = invoke(["actions", "--store", str(store_copy)])
    assert actions.crash is None, actions.crash
    assert actions.code == 0
    assert "skipped action 1: ts 1e+20 is out of range" in actions.stderr
    assert "skipped action 2: plan is not readable JSON" in actions.stderr
    endpoints = invoke(["endpoints", "--json", "--store", str(store_copy)])
    assert endpoints.crash is None, endpoints.crash
    console = SnapshotReader(store_copy, Config())
    snap = console.snapshot()
    console.close()
    assert snap.problems == {}
    assert len(snap.pipelines) == 4
    joined = "\n".join(snap.skipped)
    assert "skipped version '1' of model" in joined
    assert "deployment 1 of" in joined
    # The feed reads the timeline up to now: an action stamped in the year
    # 3.2 trillion is not in it (nor a crash); the audit trail names it.
    with Store(store_copy) as store, fields.collect_skipped() as notes:
        list_actions(store)
    assert any("skipped action 1" in n for n in notes)


def test_history_names_a_run_it_cannot_show(store_copy: Path) -> None:
    _poison(store_copy, "UPDATE runs SET finished_at = 1e20 WHERE id = 3")
    with Store(store_copy) as store:
        with pytest.raises(UsageError, match=r"run 3 in .* cannot be shown: finished_at 1e\+20"):
            history.get_run(store, 3)
        pipeline = history.get_run(store, 4).pipeline
        with fields.collect_skipped() as notes:
            runs = history.run_history(store, pipeline, limit=500)
        assert 3 not in [r.id for r in runs]
        assert len(runs) > 1
        assert notes == [
            f"skipped run 3 of {pipeline!r}: finished_at 1e+20 is out of range "
            "(1970-01-01 to 9999-12-31)"
        ]


def test_samples_that_are_not_finite_are_left_out_of_windows(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store_metrics.record_samples(store, "s", "n", [(1_800_000_000.0, 1.0)] * 2)
        _poison(tmp_path / "s.db", "UPDATE metric_samples SET value = 1e999 WHERE id = 1")
        with fields.collect_skipped() as notes:
            pairs = store_metrics.points(store, "s", "n", start=0, end=2e9)
        assert pairs == [(1_800_000_000.0, 1.0)]
        assert notes == ["skipped 1 sample(s) of s n: value is not a finite number"]


def test_times_that_slipped_through_are_shown_as_unknown_not_raised() -> None:
    for bad in (1e20, -1e12, math.inf, -math.inf, math.nan, -62135647200.0):
        assert iso(bad) is None
        assert clock_time(bad) == "--:--:--Z"
        assert human_age(bad) in ("-", "now", ">100y ago")
        assert human_duration(bad) in ("-", ">100y", "0s")
    assert iso(0) == "1970-01-01T00:00:00.000Z"


# --- record on a finished run --------------------------------------------------


@pytest.fixture
def finished_run(tmp_path: Path) -> tuple[Path, str]:
    store = tmp_path / "r.db"
    assert invoke(["record", "start", "web-api", "--stages=build", "--store", str(store)]).code == 0
    assert invoke(["record", "finish", "1", "--store", str(store)]).code == 0
    (tmp_path / "f.csv").write_text("x\n1\n", encoding="utf-8")
    return store, str(tmp_path / "f.csv")


FINISHED_VERBS = {
    "stage start": ["stage", "1", "build", "start"],
    "stage end": ["stage", "1", "build", "end", "--exit-code=0"],
    "stage skip": ["stage", "1", "build", "skip"],
    "log": ["log", "1", "build"],
    "metric": ["metric", "loss", "0.5", "--run=1"],
    "heartbeat": ["heartbeat", "1"],
    "finish": ["finish", "1"],
    "deploy": ["deploy", "production", "web-api", "1.2", "--run=1"],
    "model-version": ["model-version", "churn", "--run=1"],
    "features": ["features", "churn", "CSV", "--run=1"],
}


@pytest.mark.parametrize("verb", sorted(FINISHED_VERBS))
def test_every_record_verb_on_a_finished_run_is_refused_alike(
    verb: str, finished_run: tuple[Path, str]
) -> None:
    store, csv = finished_run
    before = dump(store)
    args = [csv if a == "CSV" else a for a in FINISHED_VERBS[verb]]
    out = invoke(["record", *args, "--store", str(store)], "a line\n")
    assert out.crash is None, out.crash
    assert out.code == 2
    assert out.stderr.strip() == (
        "opstui: run 1 already finished (succeeded); nothing was recorded: "
        "start a new run to record more"
    )
    assert dump(store) == before


def test_the_tracker_refuses_to_record_into_a_finished_run(tmp_path: Path) -> None:
    tracker = Tracker(tmp_path / "t.db", heartbeat_interval=60)
    with tracker.run("train", stages=["fit"]) as run:
        with run.stage("fit") as stage:
            stage.log("ok")
    late: list[Callable[[], object]] = [
        lambda: run.log_metric("auc", 0.8),
        lambda: stage.log("late"),
        lambda: run.log_model_version("churn"),
        lambda: run.log_features("churn", {"x": [1]}),
        lambda: run.record_deployment("production", "1"),
        lambda: run.skip_stage("fit"),
    ]
    for call in late:
        with pytest.raises(store_runs.RunFinished, match="already finished"):
            call()
    attached = tracker.attach(run.id)
    attached.log_metric("auc", 0.8)  # buffered: the store refuses at the flush
    with pytest.raises(store_runs.RunFinished, match="already finished"):
        attached.flush()
    tracker.close()


# --- the other doors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["stage", "1", "a", "end", f"--exit-code={2**63}"], "exit code 9223372036854775808"),
        (["finish", "1", f"--exit-code={-(2**63) - 1}"], "--exit-code -9223372036854775809"),
        (["metric", "m", "1", f"--step={2**63}", "--run=1"], "step 9223372036854775808"),
        (["heartbeat", str(2**63)], "run 9223372036854775808 does not exist"),
        (["stage", str(2**64), "a", "start"], "run 18446744073709551616 does not exist"),
        (["start", "p", f"--parent={2**63}"], "parent run id 9223372036854775808"),
        (["start", "p", f"--pid={2**40}"], "is not a process id"),
        (["start", "p", "--heartbeat-timeout=nan"], "heartbeat timeout nan"),
        (["metric", "m", "nan", "--run=1"], "metric value nan is not a finite number"),
        (["metric", "m", "inf", "--run=1"], "metric value inf is not a finite number"),
        (["metric", "m", "1e999", "--run=1"], "metric value inf is not a finite number"),
        (["model-version", "m", "--metric=auc=nan"], "not a finite number"),
        (["start", "a\udcffb"], "lone surrogate"),
        (["deploy", "prod\ud800", "web", "1"], "lone surrogate"),
        (["metric", "m", "1", "--run=1", "--label=a=\udcff"], "lone surrogate"),
        (["start", "x" * 5000], "characters long"),
        (["deploy", "prod", "web", "1", "--run=99"], "run 99 does not exist"),
    ],
)
def test_record_arguments_out_of_range_are_one_line(
    args: list[str], reason: str, tmp_path: Path
) -> None:
    store = tmp_path / "r.db"
    assert invoke(["record", "start", "p", "--stages=a", "--store", str(store)]).code == 0
    before = dump(store)
    out = invoke(["record", *args, "--store", str(store)])
    assert out.crash is None, out.crash
    assert out.code == 2
    assert len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.startswith("opstui: ")
    assert reason in out.stderr
    assert dump(store) == before


def test_the_tracker_refuses_poison_at_the_call(tmp_path: Path) -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(40):
        node["a"] = {}
        node = node["a"]  # type: ignore[assignment]
    with Tracker(tmp_path / "t.db", heartbeat_interval=60) as tracker:
        with pytest.raises(fields.BadValue, match="lone surrogate"):
            tracker.run("a\udcff").__enter__()
        with pytest.raises(fields.BadValue, match="nests deeper"):
            tracker.run("p", params=deep).__enter__()
        with tracker.run("p", stages=["s"]) as run, run.stage("s") as stage:
            for value in (math.nan, math.inf, "0.5"):
                with pytest.raises(fields.BadValue):
                    run.log_metric("loss", value)  # type: ignore[arg-type]
            with pytest.raises(fields.BadValue, match="step"):
                run.log_metric("loss", 1.0, step=2**63)
            with pytest.raises(fields.BadValue, match="step an integer of 16,610 bits"):
                run.log_metric("loss", 1.0, step=10**5000)
            with pytest.raises(fields.BadValue, match="too large for a number"):
                run.log_metric("loss", 10**400)
            with pytest.raises(fields.BadValue, match="metric time"):
                run.log_metric("loss", 1.0, ts=1e20)
            with pytest.raises(fields.BadValue, match="not a finite"):
                run.log_model_version("m", metrics={"auc": math.nan})
            stage.log("bytes that were not UTF-8: \udcff")  # kept, visibly
            run.log_features("m", {"x": [math.inf, 10**30, 10**400, "\ud800"]})
        lines = history.stage_logs(tracker.store, stage.id)
        assert lines[0].line == "bytes that were not UTF-8: \ufffd"
        assert run.status == "succeeded"


def test_a_csv_with_a_1_mb_cell_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("x,y\n1,2\n3," + "z" * 1_000_000 + "\n", encoding="utf-8")
    for args in (
        ["record", "features", "m", str(path)],
        ["drift", "set-reference", "m", str(path), "--version=1"],
    ):
        out = invoke([*args, "--store", str(tmp_path / "s.db")])
        assert out.crash is None, out.crash
        assert out.code == 2
        assert out.stderr.startswith(f"opstui: {path}:3: not a feature CSV")
        assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s.db").exists()


def test_a_toml_nested_10_000_deep_is_one_line(tmp_path: Path) -> None:
    for text in ("a = " + "[" * 10_000 + "]" * 10_000, "a = " + "[" * 20 + "]" * 20):
        path = tmp_path / "opstui.toml"
        path.write_text(text + "\n", encoding="utf-8")
        out = invoke(["status", "--config", str(path), "--store", str(tmp_path / "s.db")])
        assert out.crash is None, out.crash
        assert out.code == 2
        assert out.stderr.strip() == (
            f"opstui: {path} nests arrays or tables more than 16 deep: "
            "no opstui setting is nested like that; is this the right file?"
        )


def test_a_poller_keeps_what_it_can_of_a_hostile_poll(tmp_path: Path) -> None:
    ob = store_endpoints.Observation(
        endpoint="web",
        kind="prometheus",
        url="http://x/\udcff",
        at=1_800_000_000.0,
        state="degraded",
        reason="server said \udcff",
        latency_ms=math.nan,
        samples=(("up", {"code": "2\udcff"}, 1.0), ("bad", {}, math.nan), ("inf", {}, math.inf)),
        history=(("h", {}, ((1e20, 1.0), (1_800_000_000.0, 2.0))),),
    )
    with Store(tmp_path / "s.db") as store:
        store_endpoints.record_observations(store, [ob], holder="me")
        (status,) = store_endpoints.endpoint_statuses(store)
        assert status.reason == "server said \ufffd"
        assert status.latency_ms is None
        names = {s.name for s in store_metrics.find_series(store)}
        assert names == {"up", "h"}
        assert store_metrics.points(store, "endpoint/web", "h", start=0, end=2e9) == [
            (1_800_000_000.0, 2.0)
        ]


def test_a_registry_sync_skips_what_the_store_cannot_hold(tmp_path: Path) -> None:
    good = mlflow_sync.ExternalRun(
        "mlflow:1", "exp", "mlops", "succeeded", "me", 1_800_000_000.0, None, 1_800_000_010.0,
        None, {"metrics": {"loss": math.nan}}, 60.0,
    )  # fmt: skip
    bad = good._replace(key="mlflow:2", created_at=1e20)
    with Store(tmp_path / "s.db") as store:
        counts = mlflow_sync.sync_registry(store, runs=[good, bad], now=1_800_000_100.0)
        assert counts.runs_added == 1
        assert counts.skipped == (
            "run 'mlflow:2': start time 1e+20 is out of range (1970-01-01 to 9999-12-31)",
        )
        assert history.run_params(store, 1) == {"metrics": {"loss": None}}
        assert [p.name for p in Dashboard(store).read()] == ["exp"]


@pytest.mark.parametrize("interval", ["nan", "inf", "-inf", "0"])
def test_a_drift_watch_interval_that_is_not_a_time_is_one_line(
    interval: str, store_copy: Path
) -> None:
    out = invoke(["drift", "--watch", f"--interval={interval}", "--store", str(store_copy)])
    assert out.crash is None, out.crash
    assert (out.code, out.stderr) == (
        2,
        "opstui: --interval must be a positive number of seconds\n",
    )


@pytest.mark.parametrize(
    "statement",
    ["UPDATE counters SET value = 'x' WHERE name = 'rev'", "DELETE FROM counters"],
)
def test_a_broken_revision_counter_costs_a_full_read_not_a_crash(
    store_copy: Path, statement: str
) -> None:
    _poison(store_copy, statement)
    status = invoke(["status", "--json", "--store", str(store_copy)])
    assert status.crash is None, status.crash
    assert len(json.loads(status.stdout)["pipelines"]) == 4
    console = SnapshotReader(store_copy, Config())
    try:
        assert len(console.snapshot().pipelines) == 4
    finally:
        console.close()
