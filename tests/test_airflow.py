"""Airflow 3 as a source, against a real Airflow (tests/airflow_server.py).

DAG runs become runs of the store with their tasks as stages, read
incrementally by ``opstui poll``; ``opstui status`` names their source.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opstui.store import Store, history
from opstui.store import status as st

from .airflow_server import PASSWORD, USER, AirflowServer, running_airflow, venv
from .conftest import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServer]:
    if venv() is None:
        pytest.skip(
            "Airflow's venv is missing: python3 -m venv .venvs/airflow && "
            ".venvs/airflow/bin/pip install apache-airflow==3.3.2 (.ci/run does it)"
        )
    with running_airflow(tmp_path_factory.mktemp("airflow")) as server:
        yield server


def config(folder: Path, server: AirflowServer, **extra: str) -> dict[str, str]:
    lines = [
        'store = "ops.db"',
        "[endpoints.orchestrator]",
        'kind = "airflow"',
        f'url = "{server.url}"',
        'username_env = "AF_USER"',
        'password_env = "AF_PASSWORD"',
        'pipeline_kind = "devops"',
        "timeout = 20",
        *(f"{k} = {v}" for k, v in extra.items()),
    ]
    (folder / "opstui.toml").write_text("\n".join(lines) + "\n")
    return {"AF_USER": USER, "AF_PASSWORD": PASSWORD}


def test_a_failed_dag_run_shows_as_a_failed_run_with_its_tasks_as_stages(
    airflow: AirflowServer, tmp_path: Path
) -> None:
    run_id = airflow.trigger("flaky_etl", conf={"rows": 3})
    assert airflow.wait_run("flaky_etl", run_id, {"failed", "success"}) == "failed"
    env = config(tmp_path, airflow)
    polled = run_cli("poll", "--once", cwd=tmp_path, env=env, timeout=120)
    assert polled.returncode == 0, polled.stdout + polled.stderr
    with Store(tmp_path / "ops.db") as store:
        (run,) = [
            r for r in history.run_history(store, "airflow/flaky_etl") if r.source_id == run_id
        ]
        assert run.status == st.FAILED and run.trigger == "manual"
        assert run.kind == "mlops"  # from the DAG's tags, over the endpoint's default
        assert [(s.name, s.status, s.attempt) for s in run.stages] == [
            ("extract", st.SUCCEEDED, 1),
            ("transform", st.FAILED, 1),
            ("load", st.SKIPPED, 1),
        ]
        assert run.stages[2].message == "upstream failed"
        assert run.message == "task transform failed"
    status = run_cli("status", "--json", cwd=tmp_path, env=env)
    doc = json.loads(status.stdout)
    (pipeline,) = [p for p in doc["pipelines"] if p["name"] == "airflow/flaky_etl"]
    assert pipeline["latest_run"]["external"] == {
        "source": "airflow",
        "endpoint": "orchestrator",
        "name": "flaky_etl",
        "id": run_id,
    }
    assert status.returncode == 1  # a failed latest run


def test_polls_read_only_what_changed_and_a_new_run_shows(
    airflow: AirflowServer, tmp_path: Path
) -> None:
    env = config(tmp_path, airflow)
    assert run_cli("poll", "--once", cwd=tmp_path, env=env, timeout=120).returncode == 0
    with Store(tmp_path / "ops.db") as store:
        before = {r.source_id for r in history.run_history(store, "airflow/flaky_etl", limit=100)}
        rev = store.query_one("SELECT max(rev) FROM runs")[0]
    again = run_cli("poll", "--once", cwd=tmp_path, env=env, timeout=120)
    assert again.returncode == 0
    with Store(tmp_path / "ops.db") as store:
        # Nothing changed in Airflow: no run written (a finished run costs no revision).
        assert store.query_one("SELECT max(rev) FROM runs")[0] == rev
    airflow.flag.touch()
    try:
        new = airflow.trigger("flaky_etl")
        assert airflow.wait_run("flaky_etl", new, {"failed", "success"}) == "success"
    finally:
        airflow.flag.unlink()
    assert run_cli("poll", "--once", cwd=tmp_path, env=env, timeout=120).returncode == 0
    with Store(tmp_path / "ops.db") as store:
        runs = {r.source_id: r for r in history.run_history(store, "airflow/flaky_etl", limit=100)}
    assert set(runs) == before | {new}
    assert runs[new].status == st.SUCCEEDED
    assert [s.status for s in runs[new].stages] == [st.SUCCEEDED] * 3


def test_an_airflow_that_is_not_there_is_down_with_the_reason(tmp_path: Path) -> None:
    from .processes import free_port

    (tmp_path / "opstui.toml").write_text(
        "\n".join(
            [
                'store = "ops.db"',
                "[endpoints.orchestrator]",
                'kind = "airflow"',
                f'url = "http://127.0.0.1:{free_port()}"',
                'username_env = "AF_USER"',
                'password_env = "AF_PASSWORD"',
            ]
        )
        + "\n"
    )
    result = run_cli("poll", "--once", cwd=tmp_path, env={"AF_USER": "u", "AF_PASSWORD": "p"})
    assert result.returncode == 1
    assert "orchestrator: down: connection refused" in result.stdout
    missing = run_cli("poll", "--once", cwd=tmp_path)
    assert "AF_USER, which is not set" in missing.stdout


def test_a_running_dag_run_reads_unknown_when_airflow_goes_away_never_lost(
    airflow: AirflowServer, tmp_path: Path
) -> None:
    from opstui.store.dashboard import Dashboard

    from .processes import free_port

    run_id = airflow.trigger("slow_etl")
    airflow.wait_run("slow_etl", run_id, {"running"})
    env = config(tmp_path, airflow)
    deadline = time.monotonic() + 60
    while True:  # until Airflow has the task running
        assert run_cli("poll", "--once", cwd=tmp_path, env=env, timeout=120).returncode == 0
        with Store(tmp_path / "ops.db") as store:
            runs = [
                r for r in history.run_history(store, "airflow/slow_etl") if r.source_id == run_id
            ]
        if runs and runs[0].stages and runs[0].stages[0].status == st.RUNNING:
            break
        assert time.monotonic() < deadline, runs
        time.sleep(1)
    assert runs[0].status == st.RUNNING and runs[0].kind == "devops"
    # Airflow is now out of reach (the endpoint's URL points at nothing).
    config(tmp_path, airflow)
    toml = (tmp_path / "opstui.toml").read_text()
    (tmp_path / "opstui.toml").write_text(
        toml.replace(airflow.url, f"http://127.0.0.1:{free_port()}")
    )
    down = run_cli("poll", "--once", cwd=tmp_path, env=env, timeout=120)
    assert down.returncode == 1 and "down" in down.stdout
    with Store(tmp_path / "ops.db") as store:
        later = time.time() + 600  # long past the run's heartbeat timeout
        rows = {p.name: p for p in Dashboard(store).read(later)}
    latest = rows["airflow/slow_etl"].latest
    assert latest is not None and latest.status == st.UNKNOWN, latest
    assert latest.status_reason and "orchestrator" in latest.status_reason
    airflow.api("PATCH", f"/dags/slow_etl/dagRuns/{_q(run_id)}", json={"state": "failed"})


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _store_run(tmp_path: Path, dag: str, run_id: str) -> int:
    with Store(tmp_path / "ops.db") as store:
        (run,) = [r for r in history.run_history(store, f"airflow/{dag}") if r.source_id == run_id]
        return run.id


def test_retry_clears_the_failed_tasks_through_airflow_and_the_next_try_shows(
    airflow: AirflowServer, tmp_path: Path
) -> None:
    from opstui.store.actions import list_actions

    run_id = airflow.trigger("flaky_etl")
    assert airflow.wait_run("flaky_etl", run_id, {"failed", "success"}) == "failed"
    env = config(tmp_path, airflow)
    assert run_cli("poll", "--once", cwd=tmp_path, env=env, timeout=120).returncode == 0
    ours = _store_run(tmp_path, "flaky_etl", run_id)
    # The plan is Airflow's own dry run: exactly what it would clear.
    dry = run_cli("retry", str(ours), "--dry-run", cwd=tmp_path, env=env, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert "clear 2 task instances" in dry.stdout
    assert "load (upstream_failed, try 0) -> cleared" in dry.stdout
    assert "transform (failed, try 1) -> cleared" in dry.stdout
    tis = airflow.api("GET", f"/dags/flaky_etl/dagRuns/{_q(run_id)}/taskInstances")
    assert {t["task_id"]: t["state"] for t in tis["task_instances"]}["transform"] == "failed"
    airflow.flag.touch()
    try:
        done = run_cli("retry", str(ours), "--yes", cwd=tmp_path, env=env, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        # Airflow's own answer: the run succeeded, transform on its second try.
        assert airflow.wait_run("flaky_etl", run_id, {"success", "failed"}) == "success"
    finally:
        airflow.flag.unlink()
    tis = airflow.api("GET", f"/dags/flaky_etl/dagRuns/{_q(run_id)}/taskInstances")
    assert {t["task_id"]: t["try_number"] for t in tis["task_instances"]}["transform"] == 2
    assert run_cli("poll", "--once", cwd=tmp_path, env=env, timeout=120).returncode == 0
    with Store(tmp_path / "ops.db") as store:
        run = history.get_run(store, ours)
        assert run.status == st.SUCCEEDED
        assert [(s.name, s.status, s.attempt) for s in run.stages] == [
            ("extract", st.SUCCEEDED, 1),
            ("transform", st.SUCCEEDED, 2),
            ("load", st.SUCCEEDED, 1),
        ]
        (audit,) = [a for a in list_actions(store) if a.action == "retry"]
        assert audit.status == "succeeded" and audit.target == "airflow/flaky_etl"
    again = run_cli("retry", str(ours), "--yes", cwd=tmp_path, env=env, timeout=120)
    assert again.returncode == 2 and "is succeeded" in again.stderr


def test_a_retry_of_a_run_airflow_still_runs_is_refused(
    airflow: AirflowServer, tmp_path: Path
) -> None:
    run_id = airflow.trigger("slow_etl")
    airflow.wait_run("slow_etl", run_id, {"running"})
    env = config(tmp_path, airflow)
    assert run_cli("poll", "--once", cwd=tmp_path, env=env, timeout=120).returncode == 0
    ours = _store_run(tmp_path, "slow_etl", run_id)
    # The store's copy says failed (a hand edit, or an old poll); Airflow says running.
    with Store(tmp_path / "ops.db") as store, store.write() as tx:
        tx.execute("UPDATE runs SET status = 'failed' WHERE id = ?", (ours,))
    refused = run_cli("retry", str(ours), "--yes", cwd=tmp_path, env=env, timeout=120)
    airflow.api("PATCH", f"/dags/slow_etl/dagRuns/{_q(run_id)}", json={"state": "failed"})
    assert refused.returncode == 2, refused.stdout
    assert "is running in Airflow endpoint orchestrator" in refused.stderr
    assert "Traceback" not in refused.stderr


async def test_the_console_shows_a_task_log_fetched_from_airflow(
    airflow: AirflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opstui.config import load_config
    from opstui.tui.app import OpstuiApp
    from opstui.tui.screens.pipeline import PipelineScreen

    from .test_tui import settle

    run_id = airflow.trigger("flaky_etl")
    assert airflow.wait_run("flaky_etl", run_id, {"failed", "success"}) == "failed"
    env = config(tmp_path, airflow)
    assert run_cli("poll", "--once", cwd=tmp_path, env=env, timeout=120).returncode == 0
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    app = OpstuiApp(
        tmp_path / "ops.db", load_config(tmp_path / "opstui.toml"), poll=False, read_only=True
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_key("pipeline:airflow/flaky_etl")
        screen = app.screen
        assert isinstance(screen, PipelineScreen)
        for _ in range(200):  # the failed stage is opened first; its log comes from Airflow
            await pilot.pause(0.05)
            if any("upstream schema changed" in line for line in screen.log_lines):
                break
        shown = "\n".join(screen.log_lines)
        assert "upstream schema changed" in shown, shown[-2000:]
        assert "── Pre Execute ──" in shown


def test_a_wrong_password_and_a_user_who_may_not_clear_are_named_not_shown(
    airflow: AirflowServer, tmp_path: Path
) -> None:
    from .airflow_server import VIEWER, VIEWER_PASSWORD

    env = config(tmp_path, airflow)
    wrong = run_cli(
        "poll", "--once", cwd=tmp_path, env={**env, "AF_PASSWORD": "hunter2-wrong"}, timeout=120
    )
    assert wrong.returncode == 1
    assert "refused the user in $AF_USER with the password in $AF_PASSWORD" in wrong.stdout
    assert "hunter2-wrong" not in wrong.stdout + wrong.stderr
    # A viewer reads, and its retry is refused by Airflow with the reason.
    run_id = airflow.trigger("flaky_etl")
    assert airflow.wait_run("flaky_etl", run_id, {"failed", "success"}) == "failed"
    viewer = {"AF_USER": VIEWER, "AF_PASSWORD": VIEWER_PASSWORD}
    assert run_cli("poll", "--once", cwd=tmp_path, env=viewer, timeout=120).returncode == 0
    ours = _store_run(tmp_path, "flaky_etl", run_id)
    refused = run_cli("retry", str(ours), "--yes", cwd=tmp_path, env=viewer, timeout=120)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "HTTP 403" in refused.stderr and "$AF_USER" in refused.stderr
    assert "Traceback" not in refused.stderr


# --- what a server that is not (or no longer) Airflow 3 answers -----------------


def _hostile_config(folder: Path, url: str) -> dict[str, str]:
    (folder / "opstui.toml").write_text(
        "\n".join(
            [
                'store = "ops.db"',
                "[endpoints.orchestrator]",
                'kind = "airflow"',
                f'url = "{url}"',
                'username_env = "AF_USER"',
                'password_env = "AF_PASSWORD"',
                "timeout = 2",
            ]
        )
        + "\n"
    )
    return {"AF_USER": "u", "AF_PASSWORD": "p"}


def _token(req: Any) -> None:
    req.reply_json(201, {"access_token": "t0ken"})


def test_an_api_version_opstui_does_not_know_is_named(tmp_path: Path) -> None:
    from .hostile_http import site

    routes = {
        "/auth/token": _token,
        "/api/v2/version": lambda req: req.reply_json(200, {"version": "4.0.1"}),
    }
    with site(routes) as server:
        env = _hostile_config(tmp_path, server.url)
        result = run_cli("poll", "--once", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "this is Airflow 4.0.1; opstui reads Airflow 3's REST API v2" in result.stdout
    with site({"/auth/token": _token}) as server:  # an Airflow 2: no /api/v2 at all
        env = _hostile_config(tmp_path, server.url)
        result = run_cli("poll", "--once", cwd=tmp_path, env=env)
    assert "no /api/v2/version here (HTTP 404): opstui reads Airflow 3's" in result.stdout


def test_a_server_that_hangs_is_down_within_its_timeout(tmp_path: Path) -> None:
    import socket

    with socket.socket() as listener:  # accepts, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        env = _hostile_config(tmp_path, f"http://127.0.0.1:{listener.getsockname()[1]}")
        started = time.monotonic()
        result = run_cli("poll", "--once", cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 1
    assert "orchestrator: down: no answer within 2s" in result.stdout
    assert time.monotonic() - started < 30


def test_a_run_cleared_by_someone_else_after_the_plan_is_not_cleared_again(
    airflow: AirflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opstui.config import load_config
    from opstui.runner.actions import perform, propose
    from opstui.runner.planning import plan_retry

    run_id = airflow.trigger("flaky_etl")
    assert airflow.wait_run("flaky_etl", run_id, {"failed", "success"}) == "failed"
    env = config(tmp_path, airflow)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert run_cli("poll", "--once", cwd=tmp_path, env=env, timeout=120).returncode == 0
    ours = _store_run(tmp_path, "flaky_etl", run_id)
    cfg = load_config(tmp_path / "opstui.toml")
    with Store(tmp_path / "ops.db") as store:
        plan = plan_retry(cfg, store, ours)
        # Between the plan and the confirmation, someone clears the run in Airflow.
        airflow.api(
            "POST",
            "/dags/flaky_etl/clearTaskInstances",
            json={"dry_run": False, "dag_run_id": run_id, "only_failed": True,
                  "include_downstream": True},
        )  # fmt: skip
        airflow.wait_run("flaky_etl", run_id, {"failed", "success"})
        tries = _tries(airflow, run_id)
        started = perform(store, cfg, propose(cfg, plan, read_only=False), actor="t@test",
                          declined=None, detach=False)  # fmt: skip
        run = history.get_run(store, started.run_id)
    assert run.status == st.FAILED
    assert "someone acted on DAG run" in (run.stages[0].message or "")
    assert _tries(airflow, run_id) == tries  # not cleared a second time


def _tries(airflow: AirflowServer, run_id: str) -> dict[str, int]:
    tis = airflow.api("GET", f"/dags/flaky_etl/dagRuns/{_q(run_id)}/taskInstances")
    return {t["task_id"]: t["try_number"] for t in tis["task_instances"]}


def test_a_dag_of_200_tasks_and_a_mapped_task_reads_in_order_one_stage_a_task(
    airflow: AirflowServer, tmp_path: Path
) -> None:
    run_id = airflow.trigger("wide_etl")
    assert airflow.wait_run("wide_etl", run_id, {"failed", "success"}, timeout=240) == "failed"
    env = config(tmp_path, airflow, page_size="50")
    assert run_cli("poll", "--once", cwd=tmp_path, env=env, timeout=180).returncode == 0
    with Store(tmp_path / "ops.db") as store:
        (run,) = [
            r for r in history.run_history(store, "airflow/wide_etl") if r.source_id == run_id
        ]
    names = [s.name for s in run.stages]
    assert len(names) == 200  # start, 197 parts, join, and score once for its 10 instances
    assert names[0] == "start" and names[-2:] == ["join", "score"]
    score = run.stages[-1]
    assert score.status == st.FAILED and score.message == "x10, 1 failed"
    assert all(s.status == st.SUCCEEDED for s in run.stages[:-1])
    assert run.status == st.FAILED and run.message == "task score failed"


DOOMED_DAG = """
import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False, tags=["devops"])
def doomed_etl():
    @task
    def only():
        print("ran")

    only()


doomed_etl()
"""


def _marks(tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    polled = run_cli("poll", "--once", cwd=tmp_path, env=env, timeout=120)
    assert polled.returncode == 0, polled.stdout + polled.stderr
    doc = json.loads(run_cli("status", "--json", cwd=tmp_path, env=env).stdout)
    return {p["name"]: p for p in doc["pipelines"]}


def test_a_dag_whose_file_goes_then_deleted_in_airflow_is_marked_with_its_runs_kept(
    airflow: AirflowServer, tmp_path: Path
) -> None:
    dag_file = airflow.home / "dags" / "doomed_etl.py"
    dag_file.write_text(DOOMED_DAG, encoding="utf-8")
    airflow.wait_dag("doomed_etl")
    env = config(tmp_path, airflow)
    before = _marks(tmp_path, env)
    # A DAG that never ran is a pipeline from the first poll.
    assert before["airflow/doomed_etl"]["status"] == "never_run"
    assert before["airflow/doomed_etl"]["kind"] == "devops"
    assert before["airflow/doomed_etl"]["removed"] is None
    run_id = airflow.trigger("doomed_etl")
    assert airflow.wait_run("doomed_etl", run_id, {"failed", "success"}) == "success"
    dag_file.unlink()
    deadline = time.monotonic() + 90
    while not airflow.api("GET", "/dags/doomed_etl")["is_stale"]:
        assert time.monotonic() < deadline, "Airflow never marked doomed_etl stale"
        time.sleep(1)
    stale = _marks(tmp_path, env)["airflow/doomed_etl"]
    assert stale["removed"]["note"] == "stale in Airflow (its DAG file is gone)"
    assert stale["latest_run"]["external"]["id"] == run_id
    airflow.api("DELETE", "/dags/doomed_etl")
    marks = _marks(tmp_path, env)
    gone = marks["airflow/doomed_etl"]
    assert gone["removed"]["note"] == "deleted in Airflow"
    assert gone["removed"]["at"] == stale["removed"]["at"]  # gone since it first went
    assert gone["latest_run"]["status"] == "succeeded"  # its run kept
    assert list(marks)[-1] == "airflow/doomed_etl"  # listed last
    assert marks["airflow/flaky_etl"]["removed"] is None
    text = run_cli("status", cwd=tmp_path, env=env).stdout
    assert "airflow/doomed_etl: deleted in Airflow since" in text
