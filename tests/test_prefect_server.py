"""The Prefect server the Prefect source's tests run against (``tests/prefect_server.py``).

One smoke test of the test bed itself: the served deployment fails in
``transform``, and after the flag file is made a retry of the same flow run
completes. Prefect's API is the only oracle.
"""

from __future__ import annotations

from typing import Any

from .prefect_server import PrefectServer


def task_name(run: dict[str, Any]) -> str:
    """``transform`` for the task run ``transform-a9d`` (Prefect adds its dynamic key)."""
    name: str = run["name"]
    return name.rsplit("-", 1)[0]


def attempts(runs: list[dict[str, Any]], attempt: int) -> dict[str, tuple[str, int]]:
    """Task name -> (state type, run count) for one attempt of the flow run."""
    return {
        task_name(r): (r["state_type"], r["run_count"])
        for r in runs
        if r["flow_run_run_count"] == attempt
    }


def test_a_failed_run_is_retried_in_place_and_reruns_its_tasks(prefect: PrefectServer) -> None:
    run_id = prefect.run_deployment()
    assert prefect.wait_run(run_id) == "FAILED"
    run = prefect.api("GET", f"/flow_runs/{run_id}")
    assert (run["state"]["type"], run["state"]["name"], run["run_count"]) == (
        "FAILED",
        "Failed",
        1,
    )
    assert run["deployment_id"] == prefect.deployment_id
    assert "transform: the upstream schema changed" in run["state"]["message"]
    first = prefect.wait_task_runs(run_id, 2)
    # load never ran: Prefect records no task run for it at all.
    assert attempts(first, 1) == {"extract": ("COMPLETED", 1), "transform": ("FAILED", 1)}
    assert len(first) == 2

    prefect.flag.touch()
    try:
        prefect.retry(run_id)
        assert prefect.wait_run(run_id) == "COMPLETED"
    finally:
        prefect.flag.unlink()  # the session's server: the next test's run fails again
    run = prefect.api("GET", f"/flow_runs/{run_id}")
    assert (run["state_type"], run["state_name"], run["run_count"]) == ("COMPLETED", "Completed", 2)

    # The retry is a second attempt of the same flow run with new task runs
    # (each run_count 1, flow_run_run_count 2); the failed ones stay as they were.
    runs = prefect.wait_task_runs(run_id, 5)
    assert attempts(runs, 1) == attempts(first, 1)
    assert attempts(runs, 2) == {
        "extract": ("COMPLETED", 1),
        "transform": ("COMPLETED", 1),
        "load": ("COMPLETED", 1),
    }
    assert len(runs) == 5
    assert {r["id"] for r in first} < {r["id"] for r in runs}
    assert {r["flow_run_id"] for r in runs} == {run_id}

    logs = prefect.wait_logs(run_id, "loaded [2, 4, 6]")
    messages = [(line["task_run_id"], line["message"]) for line in logs]
    load = next(r["id"] for r in runs if task_name(r) == "load")
    assert (load, "loaded [2, 4, 6]") in messages
    failed = next(r["id"] for r in first if task_name(r) == "transform")
    assert any(t == failed and m.startswith("Task run failed") for t, m in messages)
    assert [m for _, m in messages if m.startswith("Beginning flow run")] == [
        f"Beginning flow run {run['name']!r} for flow 'flaky-etl'"
    ] * 2
