"""A real Airflow 3 for the orchestrator tests, started once per session.

Airflow's dependencies clash with the project's, so it lives in a venv of
its own, ``.venvs/airflow`` (``.ci/run`` creates it; ``OPSTUI_AIRFLOW_VENV``
names another); without it the tests skip and say how to make it.

Not ``airflow standalone``: it opens log servers on 0.0.0.0 and forks 32
workers. Its parts instead, each bound to 127.0.0.1: ``db migrate`` (SQLite
metadata in a temporary ``AIRFLOW_HOME``), ``api-server``, ``scheduler
--skip-serve-logs`` and ``dag-processor``. ``AIRFLOW__API__BASE_URL`` must
name the port, or tasks fail calling ``localhost:8080/execution/``.

The DAGs folder holds ``flaky_etl`` (extract >> transform >> load), whose
``transform`` fails until the test creates the flag file ``FIXED`` names,
so a retry through opstui can be checked to rerun it and succeed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .processes import free_port, stop_groups

ROOT = Path(__file__).resolve().parent.parent
VERSION = "3.3.2"
#: Seconds the API may take to answer after launch (~10 s here, more on a busy CI).
UP_TIMEOUT = 120.0
USER = "admin"
PASSWORD = "admin-secret"
#: A user who may read but not clear (Airflow's viewer role).
VIEWER = "watcher"
VIEWER_PASSWORD = "watcher-secret"

DAG = textwrap.dedent(
    '''
    """flaky_etl: transform fails until the flag file exists."""
    import os
    import pendulum
    from airflow.sdk import dag, task

    FLAG = os.environ.get("OPSTUI_TEST_FLAG", "/nonexistent")


    @dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
         tags=["mlops", "opstui-test"])
    def flaky_etl():
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

        load(transform(extract()))


    flaky_etl()
    '''
)


SLOW_DAG = textwrap.dedent(
    '''
    """slow_etl: a task that runs for minutes (a run to see running)."""
    import time
    import pendulum
    from airflow.sdk import dag, task


    @dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
         tags=["devops", "opstui-test"])
    def slow_etl():
        @task
        def crunch():
            time.sleep(600)

        crunch()


    slow_etl()
    '''
)


WIDE_DAG = textwrap.dedent(
    '''
    """wide_etl: 200 tasks fanned out and in, and a mapped task whose item 7 fails."""
    import pendulum
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import dag, task


    @dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
         tags=["opstui-test"])
    def wide_etl():
        start = EmptyOperator(task_id="start")
        middle = [EmptyOperator(task_id=f"part_{i:03d}") for i in range(197)]
        join = EmptyOperator(task_id="join")

        @task
        def score(item):
            if item == 7:
                raise ValueError("item 7 is malformed")
            return item

        start >> middle >> join
        join >> score.expand(item=list(range(10)))


    wide_etl()
    '''
)


def venv() -> Path | None:
    """Airflow's venv, or None if it has not been made."""
    path = Path(os.environ.get("OPSTUI_AIRFLOW_VENV", ROOT / ".venvs" / "airflow"))
    return path if (path / "bin" / "airflow").exists() else None


@dataclass
class AirflowServer:
    home: Path
    port: int
    flag: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self) -> str:
        answer = httpx.post(
            f"{self.url}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=10
        )
        answer.raise_for_status()
        token: str = answer.json()["access_token"]
        return token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Airflow's own answer (the tests' oracle), as JSON."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        answer = httpx.request(
            method, f"{self.url}/api/v2{path}", headers=headers, timeout=30, **kwargs
        )
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Unpause ``dag_id`` and start a run of it; its run id."""
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        run = self.api(
            "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}}
        )
        run_id: str = run["dag_run_id"]
        return run_id

    def wait_run(self, dag_id: str, run_id: str, states: set[str], timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        state = "?"
        while time.monotonic() < deadline:
            state = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in states:
                return str(state)
            time.sleep(0.5)
        raise AssertionError(f"{dag_id} run {run_id} still {state} after {timeout:g}s")

    def wait_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Until the dag-processor has parsed ``dag_id``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPStatusError):
                self.api("GET", f"/dags/{dag_id}")
                return
            time.sleep(0.5)
        raise AssertionError(f"DAG {dag_id} not parsed after {timeout:g}s; see {self.home}")

    def stop(self) -> None:
        stop_groups(self.procs)
        # A task's worker runs in a session of its own and outlives the
        # scheduler (slow_etl's sleeps for minutes): found by its AIRFLOW_HOME.
        for pid in _processes_with(f"AIRFLOW_HOME={self.home}"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _processes_with(needle: str) -> list[int]:
    """Live processes whose environment holds ``needle``."""
    found = []
    wanted = needle.encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if wanted in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
    return found


def _env(home: Path, port: int, flag: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OPSTUI_"))}
    return {
        **keep,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Real users, so a wrong password is refused and a viewer cannot clear.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin,{VIEWER}:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__WORKERS": "1",
        # New DAG files are looked for every few seconds, not every 5 minutes.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "OPSTUI_TEST_FLAG": str(flag),
    }


@contextlib.contextmanager
def running_airflow(root: Path) -> Iterator[AirflowServer]:
    """Migrate, start the three parts, wait for the API and the DAG; stop them after."""
    env_dir = venv()
    if env_dir is None:
        raise RuntimeError("Airflow's venv is missing")
    airflow = str(env_dir / "bin" / "airflow")
    home = root / "airflow"
    (home / "dags").mkdir(parents=True)
    (home / "dags" / "flaky_etl.py").write_text(DAG, encoding="utf-8")
    (home / "dags" / "slow_etl.py").write_text(SLOW_DAG, encoding="utf-8")
    (home / "dags" / "wide_etl.py").write_text(WIDE_DAG, encoding="utf-8")
    passwords = {USER: PASSWORD, VIEWER: VIEWER_PASSWORD}
    (home / "passwords.json").write_text(json.dumps(passwords), encoding="utf-8")
    port = free_port()
    server = AirflowServer(home, port, root / "FIXED")
    env = _env(home, port, server.flag)
    subprocess.run(
        [airflow, "db", "migrate"],
        env=env,
        cwd=home,
        check=True,
        capture_output=True,
        timeout=300,
    )
    try:
        for part in (
            ["api-server"],
            ["scheduler", "--skip-serve-logs"],
            ["dag-processor"],
        ):
            log = (home / f"{part[0]}.log").open("ab")
            server.procs.append(
                subprocess.Popen(
                    [airflow, *part],
                    env=env,
                    cwd=home,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        _wait_up(server)
        server.wait_dag("flaky_etl")
        server.wait_dag("slow_etl")
        server.wait_dag("wide_etl")
        yield server
    finally:
        server.stop()


def _wait_up(server: AirflowServer) -> None:
    deadline = time.monotonic() + UP_TIMEOUT
    while time.monotonic() < deadline:
        for proc in server.procs:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"an Airflow component exited with {proc.returncode}; see {server.home}"
                )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/api/v2/monitor/health", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"Airflow's API not up after {UP_TIMEOUT:.0f}s; see {server.home}")
