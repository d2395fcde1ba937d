"""Prefect 3 as a source, against a real Prefect server (tests/prefect_server.py).

Flow runs become runs of the store with their task runs as stages, read
incrementally by ``opstui poll``; ``opstui status`` names their source; a
failed flow run is retried through Prefect and the next poll shows its
second attempt. Prefect's own API is the oracle.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import subprocess
import textwrap
import time
from pathlib import Path
from unittest.mock import ANY

import httpx
import pytest

from opstui.config.endpoints import EndpointDef
from opstui.errors import UsageError
from opstui.store import Store, history
from opstui.store import status as st
from opstui.store.rows import RunRow

from .conftest import run_cli
from .prefect_server import FLOW, PrefectServer, venv
from .processes import free_port

pytestmark = pytest.mark.slow

PIPELINE = "prefect/flaky-etl/flaky"


def config(folder: Path, url: str, **extra: str) -> None:
    lines = [
        'store = "ops.db"',
        "[endpoints.orchestrator]",
        'kind = "prefect"',
        f'url = "{url}"',
        'pipeline_kind = "devops"',
        "timeout = 20",
        *(f"{k} = {v}" for k, v in extra.items()),
    ]
    (folder / "opstui.toml").write_text("\n".join(lines) + "\n")


def poll(folder: Path) -> None:
    polled = run_cli("poll", "--once", cwd=folder, timeout=120)
    assert polled.returncode == 0, polled.stdout + polled.stderr


def store_run(folder: Path, pipeline: str, run_id: str) -> RunRow:
    with Store(folder / "ops.db") as store:
        (run,) = [r for r in history.run_history(store, pipeline) if r.source_id == run_id]
        return run


def failed_run(prefect: PrefectServer) -> str:
    assert not prefect.flag.exists()
    run_id = prefect.run_deployment()
    assert prefect.wait_run(run_id) == "FAILED"
    prefect.wait_task_runs(run_id, 2)  # they reach the API after the run's state
    return run_id


def adhoc(prefect: PrefectServer, folder: Path, source: str) -> subprocess.Popen[bytes]:
    """A flow run of no deployment: ``source`` run by Prefect's Python, reporting
    to the test server (``PREFECT_API_URL``)."""
    env_dir = venv()
    assert env_dir is not None
    script = folder / "adhoc.py"
    script.write_text(textwrap.dedent(source))
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT", "OPSTUI_"))}
    env = {**keep, "PREFECT_API_URL": prefect.url, "PREFECT_HOME": str(folder / "home")}
    return subprocess.Popen(
        [str(env_dir / "bin" / "python"), str(script)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_failed_flow_run_shows_as_a_failed_run_with_its_task_runs_as_stages(
    prefect: PrefectServer, tmp_path: Path
) -> None:
    run_id = failed_run(prefect)
    config(tmp_path, prefect.url)
    poll(tmp_path)
    run = store_run(tmp_path, PIPELINE, run_id)
    assert (run.status, run.trigger, run.actor) == (st.FAILED, "deployment", "prefect")
    assert run.kind == "mlops"  # from the deployment's tags, over the endpoint's default
    # load never ran: Prefect has no task run for it, so no stage.
    assert [(s.name, s.status, s.attempt) for s in run.stages] == [
        ("extract", st.SUCCEEDED, 1),
        ("transform", st.FAILED, 1),
    ]
    assert run.stages[1].message and "the upstream schema changed" in run.stages[1].message
    assert run.message == "task transform failed"
    status = run_cli("status", "--json", cwd=tmp_path)
    doc = json.loads(status.stdout)
    (pipeline,) = [p for p in doc["pipelines"] if p["name"] == PIPELINE]
    assert pipeline["latest_run"]["external"] == {
        "source": "prefect",
        "endpoint": "orchestrator",
        "name": "flaky-etl/flaky",
        "id": run_id,
    }
    assert status.returncode == 1  # a failed latest run


def test_polls_read_only_what_changed_and_a_new_run_shows(
    prefect: PrefectServer, tmp_path: Path
) -> None:
    config(tmp_path, prefect.url)
    poll(tmp_path)
    with Store(tmp_path / "ops.db") as store:
        before = {r.source_id for r in history.run_history(store, PIPELINE, limit=100)}
        rev = store.query_one("SELECT max(rev) FROM runs")[0]
        (mark,) = store.query("SELECT name FROM watermarks WHERE source = 'endpoint/orchestrator'")
    assert mark == ("prefect-runs",)
    poll(tmp_path)
    with Store(tmp_path / "ops.db") as store:
        # Nothing changed in Prefect: no run written (a finished run costs no revision).
        assert store.query_one("SELECT max(rev) FROM runs")[0] == rev
    prefect.flag.touch()
    try:
        new = prefect.run_deployment()
        assert prefect.wait_run(new) == "COMPLETED"
        prefect.wait_task_runs(new, 3)
    finally:
        prefect.flag.unlink()
    poll(tmp_path)
    with Store(tmp_path / "ops.db") as store:
        runs = {r.source_id: r for r in history.run_history(store, PIPELINE, limit=100)}
    assert set(runs) == before | {new}
    assert runs[new].status == st.SUCCEEDED
    assert [(s.name, s.status) for s in runs[new].stages] == [
        ("extract", st.SUCCEEDED),
        ("transform", st.SUCCEEDED),
        ("load", st.SUCCEEDED),
    ]


def test_retry_reschedules_the_flow_run_through_prefect_and_the_next_attempt_shows(
    prefect: PrefectServer, tmp_path: Path
) -> None:
    from opstui.store.actions import list_actions

    run_id = failed_run(prefect)
    config(tmp_path, prefect.url)
    poll(tmp_path)
    ours = store_run(tmp_path, PIPELINE, run_id).id
    dry = run_cli("retry", str(ours), "--dry-run", cwd=tmp_path, timeout=120)
    assert dry.returncode == 0, dry.stderr
    # The plan says exactly what will be sent, and what Prefect has now.
    sent = '{"state": {"type": "SCHEDULED", "name": "Scheduled"}, "force": true}'
    assert f"POST {prefect.url}/flow_runs/{run_id}/set_state {sent}" in dry.stdout
    assert "FAILED (Failed), attempt 1 -> Scheduled, runs again as attempt 2" in dry.stdout
    assert prefect.api("GET", f"/flow_runs/{run_id}")["state_type"] == "FAILED"
    prefect.flag.touch()
    try:
        done = run_cli("retry", str(ours), "--yes", cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        # Prefect's own answer: the same flow run completed, on its second attempt.
        assert prefect.wait_run(run_id) == "COMPLETED"
        task_runs = prefect.wait_task_runs(run_id, 5)
    finally:
        prefect.flag.unlink()
    assert prefect.api("GET", f"/flow_runs/{run_id}")["run_count"] == 2
    # What Prefect records: new task runs of the second attempt, each on its first try.
    second = {r["name"].rsplit("-", 1)[0]: r for r in task_runs if r["flow_run_run_count"] == 2}
    assert {n: (r["state_type"], r["run_count"]) for n, r in second.items()} == {
        "extract": ("COMPLETED", 1),
        "transform": ("COMPLETED", 1),
        "load": ("COMPLETED", 1),
    }
    poll(tmp_path)
    with Store(tmp_path / "ops.db") as store:
        run = history.get_run(store, ours)
        assert run.status == st.SUCCEEDED
        # Each stage is its task's latest task run: attempt 2 of the flow run.
        assert [(s.name, s.status, s.attempt) for s in run.stages] == [
            ("extract", st.SUCCEEDED, 2),
            ("transform", st.SUCCEEDED, 2),
            ("load", st.SUCCEEDED, 2),
        ]
        (audit,) = [a for a in list_actions(store) if a.action == "retry"]
        assert audit.status == "succeeded" and audit.target == PIPELINE
        (action,) = history.run_history(store, "prefect-actions/orchestrator")
        assert [(s.name, s.status) for s in action.stages] == [
            ("reschedule-flow-run", st.SUCCEEDED)
        ]
    again = run_cli("retry", str(ours), "--yes", cwd=tmp_path, timeout=120)
    assert again.returncode == 2 and "is succeeded" in again.stderr
    # The store's copy says failed (a hand edit, an old poll); Prefect says completed.
    with Store(tmp_path / "ops.db") as store, store.write() as tx:
        tx.execute("UPDATE runs SET status = 'failed' WHERE id = ?", (ours,))
    refused = run_cli("retry", str(ours), "--yes", cwd=tmp_path, timeout=120)
    assert refused.returncode == 2, refused.stdout
    assert (
        "is COMPLETED (Completed), attempt 2 in Prefect endpoint orchestrator: "
        "there is nothing to retry"
    ) in refused.stderr
    assert "Traceback" not in refused.stderr
    assert prefect.api("GET", f"/flow_runs/{run_id}")["run_count"] == 2


def test_a_flow_run_of_no_deployment_reads_manual_and_its_retry_is_refused(
    prefect: PrefectServer, tmp_path: Path
) -> None:
    adhoc(
        prefect,
        tmp_path,
        """
        from prefect import flow, task

        @task
        def step():
            raise RuntimeError("no luck")

        @flow(name="adhoc")
        def main():
            step()

        if __name__ == "__main__":
            try:
                main()
            except RuntimeError:
                pass
        """,
    ).wait(timeout=120)
    (found,) = prefect.api(
        "POST", "/flow_runs/filter", json={"flows": {"name": {"any_": ["adhoc"]}}}
    )
    assert found["deployment_id"] is None and found["state_type"] == "FAILED"
    prefect.wait_task_runs(found["id"], 1)
    config(tmp_path, prefect.url)
    poll(tmp_path)
    run = store_run(tmp_path, "prefect/adhoc", found["id"])
    assert (run.status, run.trigger) == (st.FAILED, "manual")
    assert [(s.name, s.status) for s in run.stages] == [("step", st.FAILED)]
    refused = run_cli("retry", str(run.id), "--yes", cwd=tmp_path, timeout=120)
    assert refused.returncode == 2, refused.stdout
    assert "has no deployment in Prefect endpoint orchestrator" in refused.stderr
    assert "no worker would run it" in refused.stderr


def test_the_deployments_filter_reads_only_those_named(
    prefect: PrefectServer, tmp_path: Path
) -> None:
    config(tmp_path, prefect.url, deployments=f'["{FLOW}/elsewhere"]')
    poll(tmp_path)
    with Store(tmp_path / "ops.db") as store:
        assert store.query_one("SELECT count(*) FROM runs")[0] == 0
    config(tmp_path, prefect.url, deployments=f'["{FLOW}/flaky"]')
    poll(tmp_path)
    with Store(tmp_path / "ops.db") as store:
        names = {r[0] for r in store.query("SELECT name FROM pipelines")}
    assert names == {PIPELINE}


def test_a_running_flow_run_reads_unknown_when_prefect_goes_away_never_lost(
    prefect: PrefectServer, tmp_path: Path
) -> None:
    from opstui.store.dashboard import Dashboard

    proc = adhoc(
        prefect,
        tmp_path,
        """
        import time
        from prefect import flow, task

        @task
        def wait():
            time.sleep(15)

        @flow(name="slow-adhoc")
        def main():
            wait()

        if __name__ == "__main__":
            main()
        """,
    )
    try:
        config(tmp_path, prefect.url)
        deadline = time.monotonic() + 60
        runs: list[RunRow] = []
        while True:  # until Prefect has the task running
            poll(tmp_path)
            with Store(tmp_path / "ops.db") as store, contextlib.suppress(UsageError):
                runs = history.run_history(store, "prefect/slow-adhoc")  # once polled
            if runs and runs[0].stages and runs[0].stages[0].status == st.RUNNING:
                break
            assert time.monotonic() < deadline, runs
            time.sleep(0.5)
        assert (runs[0].status, runs[0].kind) == (st.RUNNING, "devops")
        # The store's copy says failed (a hand edit, an old poll); Prefect says running.
        with Store(tmp_path / "ops.db") as store, store.write() as tx:
            tx.execute("UPDATE runs SET status = 'failed' WHERE id = ?", (runs[0].id,))
        refused = run_cli("retry", str(runs[0].id), "--yes", cwd=tmp_path, timeout=120)
        assert refused.returncode == 2, refused.stdout
        assert "is RUNNING (Running), attempt 1 in Prefect endpoint orchestrator: it is not " in (
            refused.stderr
        )
        with Store(tmp_path / "ops.db") as store, store.write() as tx:
            tx.execute("UPDATE runs SET status = 'running' WHERE id = ?", (runs[0].id,))
        # Prefect is now out of reach (the endpoint's URL points at nothing).
        config(tmp_path, f"http://127.0.0.1:{free_port()}/api")
        down = run_cli("poll", "--once", cwd=tmp_path, timeout=120)
        assert down.returncode == 1 and "down: connection refused" in down.stdout
        with Store(tmp_path / "ops.db") as store:
            later = time.time() + 600  # long past the run's heartbeat timeout
            rows = {p.name: p for p in Dashboard(store).read(later)}
        latest = rows["prefect/slow-adhoc"].latest
        assert latest is not None and latest.status == st.UNKNOWN, latest
        assert latest.status_reason and "orchestrator" in latest.status_reason
    finally:
        proc.wait(timeout=120)  # the flow ends by itself: no run left running


def test_a_deployment_and_a_flow_deleted_in_prefect_are_marked_with_their_runs_kept(
    prefect: PrefectServer, tmp_path: Path
) -> None:
    (flaky,) = prefect.api("POST", "/flows/filter", json={"flows": {"name": {"any_": [FLOW]}}})
    doomed = prefect.api(
        "POST", "/deployments/", json={"name": "doomed", "flow_id": flaky["id"], "tags": ["mlops"]}
    )
    adhoc(
        prefect,
        tmp_path,
        """
        from prefect import flow

        @flow(name="ghost")
        def main():
            return 1

        if __name__ == "__main__":
            main()
        """,
    ).wait(timeout=120)
    (ghost,) = prefect.api("POST", "/flows/filter", json={"flows": {"name": {"any_": ["ghost"]}}})
    config(tmp_path, prefect.url)
    doomed_name = f"prefect/{FLOW}/doomed"

    def pipelines() -> dict[str, dict[str, object]]:
        poll(tmp_path)
        doc = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)
        return {p["name"]: p for p in doc["pipelines"]}

    before = pipelines()
    # A deployment that never ran is a pipeline from the first poll, its kind from its tags.
    assert (before[doomed_name]["status"], before[doomed_name]["kind"]) == ("never_run", "mlops")
    assert before["prefect/ghost"]["status"] == "succeeded"
    assert before["prefect/ghost"]["removed"] is None
    prefect.api("DELETE", f"/deployments/{doomed['id']}")
    prefect.api("DELETE", f"/flows/{ghost['id']}")
    after = pipelines()
    assert after[doomed_name]["removed"] == {"at": ANY, "note": "deleted in Prefect"}
    gone = after["prefect/ghost"]
    assert gone["removed"] == {"at": ANY, "note": "deleted in Prefect"}
    assert gone["status"] == "succeeded"  # its run kept, though Prefect deleted it too
    assert after[PIPELINE]["removed"] is None
    assert set(list(after)[-2:]) == {doomed_name, "prefect/ghost"}  # listed last


def test_a_history_longer_than_a_poll_is_caught_up_over_polls_each_run_once(
    prefect: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll stores at most RUNS_PER_POLL runs with their task runs, newest
    first; the watermark moves once all are stored (it stayed put before,
    and every poll read the same runs again, never catching up)."""
    from opstui.config import load_config
    from opstui.sources.poller import Poller
    from opstui.sources.prefect import poll as prefect_poll

    flow = prefect.api("POST", "/flows/", json={"name": "bulk"})
    for i in range(7):
        prefect.api(
            "POST",
            "/flow_runs/",
            json={
                "flow_id": flow["id"],
                "name": f"bulk-{i}",
                "state": {"type": "COMPLETED", "name": "Completed"},
            },
        )
    monkeypatch.setattr(prefect_poll, "RUNS_PER_POLL", 3)
    config(tmp_path, prefect.url)
    endpoints = list(load_config(tmp_path / "opstui.toml").endpoints.values())
    store_path = tmp_path / "ops.db"
    seen = []
    for _ in range(40):  # every run of the session's Prefect, 3 a poll
        (ob,) = asyncio.run(Poller(store_path, endpoints).poll_once())
        assert ob.state == "up", ob
        with Store(store_path) as store:
            mark = store.query_one("SELECT max(through) FROM watermarks")[0]
            bulk = store.query(
                "SELECT r.key FROM runs r JOIN pipelines p ON p.id = r.pipeline_id "
                "WHERE p.name = 'prefect/bulk'"
            )
        seen.append((len(bulk), mark))
        if mark is not None:
            break
    assert seen[0][1] is None  # the first poll could not store everything
    assert seen[-1] == (7, seen[-1][1]) and seen[-1][1] is not None, seen
    assert len({key for (key,) in bulk}) == 7


def test_a_prefect_that_is_not_there_is_down_with_the_reason(tmp_path: Path) -> None:
    config(tmp_path, f"http://127.0.0.1:{free_port()}/api")
    result = run_cli("poll", "--once", cwd=tmp_path)
    assert result.returncode == 1
    assert "orchestrator: down: connection refused" in result.stdout


def test_a_url_that_is_not_the_api_base_says_so(prefect: PrefectServer, tmp_path: Path) -> None:
    config(tmp_path, prefect.url.removesuffix("/api"))
    result = run_cli("poll", "--once", cwd=tmp_path)
    assert result.returncode == 1
    assert (
        "orchestrator: down: HTTP 404 Not Found (is url Prefect's API base, "
        "http://host:4200/api?)" in result.stdout
    )


def test_only_one_of_the_credentials_is_refused(tmp_path: Path) -> None:
    config(tmp_path, "http://127.0.0.1:4200/api", username_env='"PF_USER"')
    result = run_cli("poll", "--once", cwd=tmp_path)
    assert result.returncode == 2
    assert 'has only one of "username_env" and "password_env"' in result.stderr


def _endpoint(**values: object) -> EndpointDef:
    return EndpointDef(name="pf", kind="prefect", url="http://prefect.test/api", **values)  # type: ignore[arg-type]


def test_basic_auth_is_sent_when_both_variables_are_named_and_503_is_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opstui.sources.prefect.rest import AsyncPrefectRest

    seen: list[tuple[str | None, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers.get("authorization"), request.url.path))
        if len(seen) < 3:
            return httpx.Response(503, json={"exception_message": "busy"})
        return httpx.Response(200, json="3.9.1")

    monkeypatch.setenv("PF_USER", "ops")
    monkeypatch.setenv("PF_PASSWORD", "s3cret:x")
    ep = _endpoint(username_env="PF_USER", password_env="PF_PASSWORD", rate_limit=1000.0)

    async def main() -> str:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            return await AsyncPrefectRest(ep, http).version()

    assert asyncio.run(main()) == "3.9.1"
    basic = "Basic " + base64.b64encode(b"ops:s3cret:x").decode()
    assert seen == [(basic, "/api/admin/version")] * 3


def test_a_prefect_still_busy_after_the_retries_fails_the_call() -> None:
    from opstui.sources.prefect.rest import AsyncPrefectRest, PrefectError

    def answer(request: httpx.Request) -> httpx.Response:
        assert "authorization" not in request.headers  # no auth named: none sent
        return httpx.Response(503, json={"detail": "database is locked"})

    async def main() -> str:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            return await AsyncPrefectRest(_endpoint(rate_limit=1000.0), http).version()

    with pytest.raises(PrefectError, match="version: HTTP 503 Service Unavailable: database"):
        asyncio.run(main())


# What Prefect sends, read without a server: the state tables, the grouping
# of task runs into stages, and records that do not read.


def _flow_run(**values: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "id": "f-1",
        "name": "brave-fox",
        "flow_id": "flow-1",
        "deployment_id": "dep-1",
        "state_type": "FAILED",
        "state_name": "Failed",
        "run_count": 1,
        "created": "2026-01-01T00:00:00Z",
        "start_time": "2026-01-01T00:00:01Z",
        "end_time": "2026-01-01T00:00:09Z",
        "auto_scheduled": False,
        "created_by": None,
        "tags": [],
    }
    return {**doc, **values}


def _task_run(
    task: str, state: str, attempt: int, start: int, **values: object
) -> dict[str, object]:
    dynamic = f"{task[:1]}{attempt}{start}-0000"
    doc: dict[str, object] = {
        "id": f"{task}-{attempt}-{start}",
        "flow_run_id": "f-1",
        "name": f"{task}-{dynamic[:3]}",
        "dynamic_key": dynamic,
        "task_key": f"{task}-5cb4e3eb",
        "state_type": state,
        "state_name": state.capitalize(),
        "state": {"type": state, "name": state.capitalize(), "message": None},
        "run_count": 1,
        "flow_run_run_count": attempt,
        "expected_start_time": f"2026-01-01T00:00:{start:02d}Z",
        "start_time": f"2026-01-01T00:00:{start:02d}Z",
        "end_time": f"2026-01-01T00:00:{start + 1:02d}Z",
    }
    return {**doc, **values}


@pytest.mark.parametrize(
    ("state", "name", "run", "stage", "note"),
    [
        ("SCHEDULED", "Scheduled", st.QUEUED, st.PENDING, None),
        ("SCHEDULED", "Late", st.QUEUED, st.PENDING, "late"),
        ("SCHEDULED", "AwaitingRetry", st.RUNNING, st.RUNNING, "awaiting retry"),
        ("PENDING", "Pending", st.QUEUED, st.PENDING, None),
        ("RUNNING", "Running", st.RUNNING, st.RUNNING, None),
        ("COMPLETED", "Completed", st.SUCCEEDED, st.SUCCEEDED, None),
        ("FAILED", "Failed", st.FAILED, st.FAILED, None),
        ("CRASHED", "Crashed", st.FAILED, st.FAILED, "crashed"),
        ("CANCELLING", "Cancelling", st.RUNNING, st.RUNNING, "cancelling"),
        ("CANCELLED", "Cancelled", st.CANCELLED, st.CANCELLED, None),
        ("PAUSED", "Paused", st.RUNNING, st.RUNNING, "paused"),
    ],
)
def test_each_prefect_state_reads_as_the_table_says(
    state: str, name: str, run: str, stage: str, note: str | None
) -> None:
    from opstui.sources.prefect import api

    (read,), _ = api.parse_flow_runs([_flow_run(state_type=state, state_name=name)])
    assert (read.status, read.note) == (run, note)
    assert api.stage_state(state, name) == (stage, note)


def test_a_state_prefect_added_later_is_named_and_a_run_in_it_left_alone() -> None:
    from opstui.sources.prefect import api

    (read,), _ = api.parse_flow_runs([_flow_run(state_type="HIBERNATING")])
    assert read.status is None
    assert api.stage_state("HIBERNATING", "Zz") == (st.PENDING, "Prefect state 'HIBERNATING'")


def test_triggers_and_actors_come_from_what_prefect_says() -> None:
    from opstui.sources.prefect import api

    scheduled = _flow_run(
        auto_scheduled=True, created_by={"id": "s", "type": "SCHEDULE", "display_value": "daily"}
    )
    by_user = _flow_run(created_by={"id": "u", "type": "USER", "display_value": "ana"})
    runs, _ = api.parse_flow_runs([scheduled, by_user, _flow_run(deployment_id=None)])
    assert [(r.trigger, r.created_by) for r in runs] == [
        ("schedule", "daily"),
        ("deployment", "ana"),
        ("manual", None),
    ]


def test_records_that_do_not_read_are_skipped_and_named_the_rest_read() -> None:
    from opstui.sources.prefect import api

    runs, skipped = api.parse_flow_runs(
        ["nonsense", _flow_run(id="bad", start_time=12), _flow_run(id="ok"), _flow_run(id=None)]
    )
    assert [r.id for r in runs] == ["ok"]
    assert [s.what for s in skipped] == ["flow run ?", "flow run 'bad'", "flow run ?"]
    assert "not text" in skipped[1].why
    with pytest.raises(ValueError, match="not a list"):
        api.parse_flow_runs({"detail": "Not Found"})


def test_a_retried_flow_run_shows_each_tasks_latest_attempt_in_first_start_order() -> None:
    from opstui.sources.prefect import api

    (run,), _ = api.parse_flow_runs([_flow_run(state_type="COMPLETED", run_count=2)])
    tasks, _ = api.parse_task_runs(
        [
            _task_run("transform", "COMPLETED", 2, 12),
            _task_run("extract", "COMPLETED", 1, 1),
            _task_run("transform", "FAILED", 1, 2),
            _task_run("extract", "COMPLETED", 2, 11),
            _task_run("load", "COMPLETED", 2, 13),
            # A task whose own retries ran in the flow run's second attempt.
            _task_run("score", "COMPLETED", 2, 14, run_count=3),
        ]
    )
    stages = api.stages(run, tasks)
    assert [(s.name, s.status, s.attempt) for s in stages] == [
        ("extract", st.SUCCEEDED, 2),
        ("transform", st.SUCCEEDED, 2),
        ("load", st.SUCCEEDED, 2),
        ("score", st.SUCCEEDED, 4),
    ]


def test_while_a_retry_runs_the_tasks_it_has_not_reached_are_pending_again() -> None:
    from opstui.sources.prefect import api

    (run,), _ = api.parse_flow_runs(
        [_flow_run(state_type="RUNNING", state_name="Running", run_count=2, end_time=None)]
    )
    tasks, _ = api.parse_task_runs(
        [
            _task_run("extract", "COMPLETED", 1, 1),
            _task_run("transform", "FAILED", 1, 2),
            _task_run("extract", "RUNNING", 2, 11, end_time=None),
        ]
    )
    assert [(s.name, s.status, s.attempt, s.message) for s in api.stages(run, tasks)] == [
        ("extract", st.RUNNING, 2, None),
        ("transform", st.PENDING, 2, "attempt 1: failed"),
    ]


def test_a_task_called_several_times_in_one_attempt_is_one_stage_its_worst() -> None:
    from opstui.sources.prefect import api

    (run,), _ = api.parse_flow_runs([_flow_run()])
    tasks, _ = api.parse_task_runs(
        [_task_run("score", "COMPLETED", 1, i) for i in (1, 2)]
        + [_task_run("score", "FAILED", 1, 3)]
    )
    (stage,) = api.stages(run, tasks)
    assert (stage.name, stage.status, stage.message) == ("score", st.FAILED, "x3, 1 failed")


def test_a_task_run_named_by_the_flow_author_is_grouped_by_its_task_key() -> None:
    from opstui.sources.prefect import api

    assert api.task_name({"name": "load-3f2", "dynamic_key": "3f2a", "task_key": "load-ab"}) == (
        "load"
    )
    # task_run_name="load {day}": no suffix to take off; task_key less its hash.
    assert api.task_name({"name": "load monday", "dynamic_key": "3f2a", "task_key": "load-ab"}) == (
        "load"
    )
