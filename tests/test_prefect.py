"""Prefect 3 as a source, against a real Prefect server (tests/prefect_server.py).

Flow runs become runs of the store with their task runs as stages, read
incrementally by ``opstui poll``; ``opstui status`` names their source; a
failed flow run is retried through Prefect and the next poll shows its
second attempt. Prefect's own API is the oracle.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opstui.config.endpoints import EndpointDef
from opstui.store import Store, history
from opstui.store import status as st
from opstui.store.rows import RunRow

from .conftest import run_cli
from .prefect_server import FLOW, PrefectServer, free_port, running_prefect, venv

pytestmark = pytest.mark.slow

PIPELINE = "prefect/flaky-etl/flaky"


@pytest.fixture(scope="module")
def prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    if venv() is None:
        pytest.skip(
            "Prefect's venv is missing: python3 -m venv .venvs/prefect && "
            ".venvs/prefect/bin/pip install prefect==3.9.1 (.ci/run does it)"
        )
    with running_prefect(tmp_path_factory.mktemp("prefect")) as server:
        yield server


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
    env_dir = venv()
    assert env_dir is not None
    script = tmp_path / "adhoc.py"
    script.write_text(
        textwrap.dedent(
            """
            from prefect import flow, task

            @task
            def step():
                raise RuntimeError("no luck")

            @flow(name="adhoc")
            def adhoc():
                step()

            if __name__ == "__main__":
                try:
                    adhoc()
                except RuntimeError:
                    pass
            """
        )
    )
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT", "OPSTUI_"))}
    env = {**keep, "PREFECT_API_URL": prefect.url, "PREFECT_HOME": str(tmp_path / "home")}
    subprocess.run([str(env_dir / "bin" / "python"), str(script)], env=env, check=True, timeout=120)
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


def test_a_prefect_that_is_not_there_is_down_with_the_reason(tmp_path: Path) -> None:
    config(tmp_path, f"http://127.0.0.1:{free_port()}/api")
    result = run_cli("poll", "--once", cwd=tmp_path)
    assert result.returncode == 1
    assert "orchestrator: down: connection refused" in result.stdout


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
