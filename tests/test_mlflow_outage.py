"""A real MLflow server that hangs, dies and comes back under a running poller.

The other MLflow tests share one server and simulate the outage with a
closed port. Here ``opstui poll`` runs as the operator runs it, against a
server of this test's own, which is paused (SIGSTOP: requests hang until the
poll's timeout), resumed, killed with SIGKILL while the poller polls every
second (so polls are cut mid-request), and started again on the same port
and store. Throughout, MLflow's RUNNING run reads ``running`` while the
source answers and ``unknown (source registry down since ...)`` while it does
not: never ``lost``, never a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from opstui.store import Store, history
from opstui.store import status as st

from .conftest import run_cli
from .mlflow_server import experiment_with_runs, start, stop
from .processes import free_port

INTERVAL = 1.0
TIMEOUT = 1.0
#: Long enough for the poller to notice (a timeout, then a poll) and for the
#: heartbeat rule (3 intervals) to have judged the run, with room for a busy CI.
SETTLE = 3 * INTERVAL + TIMEOUT + 3


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Path, int, list[subprocess.Popen[bytes]]]]:
    pytest.importorskip("mlflow", reason="pip install -e '.[test]' installs MLflow")
    root = tmp_path / "mlflow"
    root.mkdir()
    port = free_port()
    procs = [start(root, port)]
    try:
        yield root, port, procs
    finally:
        for proc in procs:
            stop(proc)


@pytest.fixture
def poller(tmp_path: Path) -> Iterator[Callable[[str], tuple[Path, subprocess.Popen[bytes]]]]:
    started: list[subprocess.Popen[bytes]] = []

    def run(url: str) -> tuple[Path, subprocess.Popen[bytes]]:
        config = tmp_path / "opstui.toml"
        config.write_text(
            "[endpoints.registry]\n"
            'kind = "mlflow"\n'
            f'url = "{url}"\n'
            'experiments = ["live"]\n'
            f"interval = {INTERVAL}\n"
            f"timeout = {TIMEOUT}\n"
        )
        store = tmp_path / "ops.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSTUI_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "opstui", "poll", "--store", str(store), "--config", config],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "poll.log").open("wb"),
            start_new_session=True,
        )
        started.append(proc)
        return store, proc

    yield run
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def the_run(store_path: Path, key: str) -> Any:
    if not store_path.exists():
        return None
    with Store(store_path) as store:
        known = store.conn.execute("SELECT 1 FROM pipelines WHERE name = 'mlflow/live'")
        if known.fetchone() is None:
            return None  # not polled yet
        for run in history.run_history(store, "mlflow/live"):
            if run.key == key:
                return history.get_run(store, run.id)
    return None


def wait_for(store_path: Path, key: str, status: str, deadline: float = 60) -> Any:
    """The run once it reads ``status``; meanwhile it must never read lost or failed."""
    end = time.monotonic() + deadline
    seen = []
    while time.monotonic() < end:
        run = the_run(store_path, key)
        if run is not None:
            seen.append(run.status)
            assert run.status not in (st.LOST, st.FAILED), (run.status, run.status_reason)
            if run.status == status:
                return run
        time.sleep(0.2)
    raise AssertionError(f"the run never read {status}: {seen[-5:]}")


def holds(store_path: Path, key: str, status: str, seconds: float) -> Any:
    """The run reads ``status`` at every look for ``seconds``."""
    end = time.monotonic() + seconds
    run = None
    while time.monotonic() < end:
        run = the_run(store_path, key)
        assert run is not None and run.status == status, (run and run.status, run)
        time.sleep(0.2)
    return run


def status_json(store_path: Path) -> dict[str, Any]:
    done = run_cli("status", "--json", "--store", store_path)
    assert done.returncode == 0, done.stderr  # unknown is not a failure
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def test_a_real_server_hung_killed_and_restarted_never_loses_its_running_run(
    server: tuple[Path, int, list[subprocess.Popen[bytes]]],
    poller: Callable[[str], tuple[Path, subprocess.Popen[bytes]]],
) -> None:
    from mlflow import MlflowClient

    root, port, procs = server
    url = f"http://127.0.0.1:{port}"
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    ids = experiment_with_runs(client, "live")
    key = f"mlflow:{ids['running']}"
    store, poll = poller(url)

    wait_for(store, key, st.RUNNING)

    # Hung: every request waits for the poll's timeout.
    os.killpg(procs[0].pid, signal.SIGSTOP)
    hung = wait_for(store, key, st.UNKNOWN)
    assert hung.recorded_status == st.RUNNING
    assert hung.status_reason.startswith("source registry down since"), hung.status_reason
    holds(store, key, st.UNKNOWN, SETTLE)  # past the 3-interval heartbeat: still unknown
    doc = status_json(store)
    (live,) = [p for p in doc["pipelines"] if p["name"] == "mlflow/live"]
    assert live["status"] == "unknown" and doc["failing"] == 0
    text = run_cli("status", "--store", store, env={"COLUMNS": "200"})
    assert "lost" not in text.stdout and "mlflow/live: unknown (source registry down" in text.stdout

    os.killpg(procs[0].pid, signal.SIGCONT)
    back = wait_for(store, key, st.RUNNING)
    assert back.status_reason is None

    # Killed while the poller polls every second: polls are cut mid-request.
    os.killpg(procs[0].pid, signal.SIGKILL)
    procs[0].wait(timeout=10)
    dead = wait_for(store, key, st.UNKNOWN)
    assert dead.status_reason.startswith("source registry down since"), dead.status_reason
    holds(store, key, st.UNKNOWN, SETTLE)
    assert poll.poll() is None, "the poller must outlive its source"

    # Started again on the same port and store: the run is running again, and
    # its end in MLflow reaches the store.
    procs.append(start(root, port))
    wait_for(store, key, st.RUNNING)
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    client.set_terminated(ids["running"], "FINISHED")
    wait_for(store, key, st.SUCCEEDED)
    with Store(store) as s:
        runs = history.run_history(s, "mlflow/live")
    assert sorted(r.status for r in runs) == sorted([st.SUCCEEDED, st.FAILED, st.SUCCEEDED])
    assert len({r.key for r in runs}) == 3  # one row per MLflow run, through it all
