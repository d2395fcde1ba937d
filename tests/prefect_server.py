"""A real Prefect 3 server for the orchestrator tests, started by them.

Prefect's dependencies clash with the project's, so it lives in a venv of
its own, ``.venvs/prefect`` (``.ci/run`` creates it; ``OPSTUI_PREFECT_VENV``
names another); without it the tests skip and say how to make it.

Two processes, each in its own process group: ``prefect server start``
bound to 127.0.0.1 (SQLite in a temporary ``PREFECT_HOME``, analytics and
the UI off; it opens no other port), and a ``serve`` process for the
deployment ``flaky-etl/flaky``. Without one, a run of a deployment (and a
retried run) just goes Late. ``serve`` opens one listener of its own, a
control channel Prefect hard-codes to 127.0.0.1; its webserver stays off.
It runs flows in a multiprocessing child it keeps (plus a resource
tracker), hence stopping by process group.
Every client needs ``PREFECT_API_URL``: without it Prefect quietly starts a
temporary in-process server instead.

The flow ``flaky-etl`` (extract -> transform -> load) has a ``transform``
that fails until the test creates the flag file ``FIXED`` names, so a retry
through opstui can be checked to rerun it and succeed. Prefect records a
retry of a flow run as a new attempt of the same run (its ``run_count``
goes up) with new task runs: the failed ones stay as they were. Task runs
and logs reach the API after the flow run's state (from events, in batches):
``wait_task_runs`` and ``wait_logs`` wait for them.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import textwrap
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx

from .processes import free_port, stop_groups

ROOT = Path(__file__).resolve().parent.parent
VERSION = "3.9.1"
#: Seconds the API may take to answer after launch (7-9 s here, more on a busy CI).
UP_TIMEOUT = 120.0
#: Seconds ``serve`` may take to register its deployment (~1.5 s here).
SERVE_TIMEOUT = 60.0
#: Prefect's client retries these (5 times by default); ``api`` does the same.
RETRY_CODES = frozenset({429, 502, 503})
RETRIES = 6
FLOW = "flaky-etl"
DEPLOYMENT = "flaky"
#: States a flow run does not leave by itself.
FINAL = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})

FLOW_FILE = textwrap.dedent(
    '''
    """flaky-etl: transform fails until the flag file exists; served as flaky-etl/flaky."""
    import os

    from prefect import flow, task

    FLAG = os.environ.get("OPSTUI_TEST_FLAG", "/nonexistent")


    @task
    def extract():
        print("extracted 3 rows")
        return [1, 2, 3]


    @task
    def transform(rows):
        if not os.path.exists(FLAG):
            raise RuntimeError("transform: the upstream schema changed")
        print("transformed", rows)
        return [r * 2 for r in rows]


    @task
    def load(rows):
        print("loaded", rows)


    @flow(name="flaky-etl", log_prints=True)
    def flaky_etl():
        load(transform(extract()))


    if __name__ == "__main__":
        flaky_etl.serve(name="flaky", tags=["mlops", "opstui-test"])
    '''
)


def venv() -> Path | None:
    """Prefect's venv, or None if it has not been made."""
    path = Path(os.environ.get("OPSTUI_PREFECT_VENV", ROOT / ".venvs" / "prefect"))
    return path if (path / "bin" / "prefect").exists() else None


@dataclass
class PrefectServer:
    home: Path
    port: int
    flag: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    deployment_id: str = ""

    @property
    def url(self) -> str:
        """The API's base, as ``PREFECT_API_URL`` names it."""
        return f"http://127.0.0.1:{self.port}/api"

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Prefect's own answer (the tests' oracle), as JSON.

        Retried on 429, 502 and 503 as Prefect's client does: on SQLite the
        server answers 503 when the database is busy (its services write to it
        too), and nothing was written then.
        """
        for attempt in range(RETRIES):
            answer = httpx.request(method, f"{self.url}{path}", timeout=30, **kwargs)
            if answer.status_code not in RETRY_CODES or attempt == RETRIES - 1:
                break
            time.sleep(0.2 * (attempt + 1))
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def run_deployment(self) -> str:
        """Start a run of ``flaky-etl/flaky`` (``serve`` executes it); its flow run id."""
        run = self.api("POST", f"/deployments/{self.deployment_id}/create_flow_run", json={})
        run_id: str = run["id"]
        return run_id

    def wait_run(self, run_id: str, states: Iterable[str] = FINAL, timeout: float = 120) -> str:
        """Until the flow run's ``state_type`` is one of ``states``; that type."""
        states = set(states)
        deadline = time.monotonic() + timeout
        state = "?"
        while time.monotonic() < deadline:
            state = self.api("GET", f"/flow_runs/{run_id}")["state_type"]
            if state in states:
                return str(state)
            time.sleep(0.3)
        raise AssertionError(f"flow run {run_id} still {state} after {timeout:g}s; see {self.home}")

    def task_runs(self, run_id: str) -> list[dict[str, Any]]:
        """The flow run's task runs, of every attempt, oldest first."""
        runs: list[dict[str, Any]] = self.api(
            "POST",
            "/task_runs/filter",
            json={"flow_runs": {"id": {"any_": [run_id]}}, "sort": "EXPECTED_START_TIME_ASC"},
        )
        return runs

    def wait_task_runs(self, run_id: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        """``task_runs(run_id)`` once ``count`` of them are there, all finished.

        Prefect 3 records task runs from the events the flow run's process
        emits (the server's task run recorder), so they may lag its state.
        """
        deadline = time.monotonic() + timeout
        while True:
            runs = self.task_runs(run_id)
            if len(runs) >= count and all(r["state_type"] in FINAL for r in runs):
                return runs
            if time.monotonic() > deadline:
                seen = [(r["name"], r["state_type"]) for r in runs]
                raise AssertionError(f"task runs of {run_id} after {timeout:g}s: {seen}")
            time.sleep(0.3)

    def logs(self, run_id: str) -> list[dict[str, Any]]:
        """The flow run's log lines (its tasks' included), oldest first."""
        lines: list[dict[str, Any]] = self.api(
            "POST",
            "/logs/filter",
            json={"logs": {"flow_run_id": {"any_": [run_id]}}, "sort": "TIMESTAMP_ASC"},
        )
        return lines

    def wait_logs(self, run_id: str, text: str, timeout: float = 30) -> list[dict[str, Any]]:
        """``logs(run_id)`` once a line holds ``text``: logs reach the API in batches
        (every 2 s), up to a second or two after the run's state."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.logs(run_id)
            if any(text in line["message"] for line in lines):
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line of {run_id} holds {text!r} after {timeout:g}s")
            time.sleep(0.3)

    def retry(self, run_id: str) -> None:
        """What ``prefect flow-run retry`` does: schedule the finished run again."""
        answer = self.api(
            "POST",
            f"/flow_runs/{run_id}/set_state",
            json={"state": {"type": "SCHEDULED", "name": "Scheduled"}, "force": True},
        )
        if answer["status"] != "ACCEPT":
            raise AssertionError(f"Prefect did not reschedule {run_id}: {answer}")

    def wait_deployment(self, timeout: float = SERVE_TIMEOUT) -> None:
        """Until ``serve`` has registered ``flaky-etl/flaky``; keeps its id."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _check_alive(self)
            with contextlib.suppress(httpx.HTTPStatusError):
                found = self.api("GET", f"/deployments/name/{FLOW}/{DEPLOYMENT}")
                self.deployment_id = str(found["id"])
                return
            time.sleep(0.3)
        raise AssertionError(f"deployment {FLOW}/{DEPLOYMENT} not served after {timeout:g}s")

    def stop(self) -> None:
        """``serve`` first (it pauses its deployment through the server), then the server."""
        stop_groups(reversed(self.procs), one_by_one=True)


def _env(home: Path, port: int, flag: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT", "OPSTUI_"))}
    return {
        **keep,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        # Why a request got a 503 (SQLITE_BUSY, as a rule) goes to server.log.
        "PREFECT_SERVER_LOG_RETRYABLE_ERRORS": "true",
        # Off by default; each would listen on a port (4201, 8080) of its own.
        "PREFECT_CLIENT_METRICS_ENABLED": "false",
        "PREFECT_RUNNER_SERVER_ENABLE": "false",
        # serve looks for scheduled runs every second, not every 10.
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "OPSTUI_TEST_FLAG": str(flag),
    }


@contextlib.contextmanager
def running_prefect(root: Path) -> Iterator[PrefectServer]:
    """Start the server and ``serve``, wait for the API and the deployment; stop both after."""
    env_dir = venv()
    if env_dir is None:
        raise RuntimeError("Prefect's venv is missing")
    home = root / "prefect"
    home.mkdir(parents=True)
    port = free_port()
    server = PrefectServer(home, port, root / "FIXED")
    env = _env(home, port, server.flag)
    flow_file = root / "flaky_etl.py"
    flow_file.write_text(FLOW_FILE, encoding="utf-8")
    try:
        server.procs.append(
            _start(
                [
                    str(env_dir / "bin" / "prefect"),
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--analytics-off",
                    "--no-ui",
                ],
                env,
                cwd=home,
                log=home / "server.log",
            )
        )
        _wait_up(server)
        server.procs.append(
            _start(
                [str(env_dir / "bin" / "python"), str(flow_file)],
                env,
                cwd=root,
                log=home / "serve.log",
            )
        )
        server.wait_deployment()
        yield server
    finally:
        server.stop()


def _start(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _check_alive(server: PrefectServer) -> None:
    for proc in server.procs:
        if proc.poll() is not None:
            what = " ".join(cast("list[str]", proc.args)[1:3])
            raise RuntimeError(f"{what!r} exited with {proc.returncode}; see {server.home}")


def _wait_up(server: PrefectServer) -> None:
    deadline = time.monotonic() + UP_TIMEOUT
    while time.monotonic() < deadline:
        _check_alive(server)
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"Prefect's API not up after {UP_TIMEOUT:.0f}s; see {server.home}")
