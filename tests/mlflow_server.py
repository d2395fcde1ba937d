"""A real MLflow tracking server for the registry tests, started once per session.

``mlflow server`` on a free port with an SQLite store in a temporary
directory, populated through MLflow's own Python client. It answers
``/health`` after 10-30 s and uses ~750 MB, which is why one server serves
the whole session: tests that change the registry create models of their
own (``registered_model``) instead of touching the shared ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .processes import free_port, stop_groups, wait_http

HEALTH_TIMEOUT = 90.0
#: The shared, read-only population.
EXPERIMENT = "churn-train"
MODEL = "churn"


@dataclass(frozen=True)
class MlflowServer:
    url: str
    root: Path
    client: Any  # mlflow.MlflowClient (MLflow ships no type information)
    #: Run ids of the shared experiment: finished, failed, running.
    runs: dict[str, str]

    def aliases(self, model: str) -> dict[str, str]:
        """The model's aliases as the REST API reports them (not via the client's cache)."""
        response = httpx.get(
            f"{self.url}/api/2.0/mlflow/registered-models/get", params={"name": model}
        )
        response.raise_for_status()
        items = response.json()["registered_model"].get("aliases") or []
        return {a["alias"]: a["version"] for a in items}


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    wait_http(f"{url}/health", proc, log, what="mlflow server", timeout=HEALTH_TIMEOUT, every=0.5)


def stop(proc: subprocess.Popen[bytes]) -> None:
    # ``mlflow server`` runs uvicorn as a child: stop the whole process group.
    # Uvicorn exits at once; the ``mlflow`` parent takes ~3 s more.
    stop_groups([proc], timeout=15)


def experiment_with_runs(client: Any, name: str) -> dict[str, str]:
    """An experiment with a finished run (with metrics), a failed one and a running one."""
    experiment_id = client.create_experiment(name)
    finished = client.create_run(experiment_id, run_name="train-ok")
    client.log_metric(finished.info.run_id, "roc_auc", 0.81)
    client.log_metric(finished.info.run_id, "logloss", 0.42)
    client.log_param(finished.info.run_id, "max_depth", "6")
    client.set_terminated(finished.info.run_id, "FINISHED")
    failed = client.create_run(experiment_id, run_name="train-oom")
    client.set_terminated(failed.info.run_id, "FAILED")
    running = client.create_run(experiment_id, run_name="train-now")
    return {
        "finished": finished.info.run_id,
        "failed": failed.info.run_id,
        "running": running.info.run_id,
    }


def registered_model(
    client: Any, name: str, run_id: str, *, versions: int = 3, alias_on: str | None = "3"
) -> None:
    """A registered model with ``versions`` versions from ``run_id``; champion on ``alias_on``."""
    client.create_registered_model(name)
    for _ in range(versions):
        client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id)
    if alias_on is not None:
        client.set_registered_model_alias(name, "champion", alias_on)


def start(root: Path, port: int) -> subprocess.Popen[bytes]:
    """``mlflow server`` on ``port`` with its SQLite store and artifacts in
    ``root`` (so a server started again on the same ``root`` has the same
    runs), in a process group of its own, healthy when this returns."""
    url = f"http://127.0.0.1:{port}"
    log = root / "server.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                f"sqlite:///{root / 'mlflow.db'}",
                "--default-artifact-root",
                str(root / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            cwd=root,
            # MLflow 3 starts seven job-queue (huey) processes by default, ~100 MB
            # each; these tests run no jobs.
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_healthy(url, proc, log)
    except BaseException:
        stop(proc)
        raise
    return proc


def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """Start, populate, yield, and stop the session's server (a fixture's body)."""
    pytest.importorskip(
        "mlflow",
        reason="MLflow is not installed; pip install -e '.[test]' installs it",
    )
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(root, port)
    try:
        client = MlflowClient(tracking_uri=url, registry_uri=url)
        runs = experiment_with_runs(client, EXPERIMENT)
        registered_model(client, MODEL, runs["finished"])
        yield MlflowServer(url, root, client, runs)
    finally:
        stop(proc)
