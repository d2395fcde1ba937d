"""The runner under hostile stages: outcomes are exit statuses, nothing outlives a killed runner.

Each test here failed on the runner before the stage supervisor: a stage that
redirected its own output was killed as soon as its pipes closed and recorded
``killed by signal SIGTERM``; fast commands raced the same way; a SIGKILLed
runner left its stage's grandchildren and daemons running under PID 1; a
stage could read the poller's tokens from its environment.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _processes import DAEMON, marked, unique_seconds

from opstui.config import CommandDef
from opstui.runner.process import run_stage
from opstui.store import Store, history
from opstui.store import runs as store_runs
from opstui.store import status as st
from opstui.store.actions import list_actions

from .conftest import run_cli
from .test_runner import logs_of, stages_of, start_until, write_config

PY = sys.executable


def wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_stage_that_redirects_its_own_output_succeeds(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        """
        [pipelines.p]
        kind = "devops"
        [[pipelines.p.stages]]
        name = "quiet"
        run = ["sh", "-c", "exec >out.log 2>&1; sleep 1.5; echo hidden; touch DONE"]

        [[pipelines.p.stages]]
        name = "closed"
        run = ["sh", "-c", "exec 1>&- 2>&-; sleep 0.5; touch CLOSED"]
        """,
    )
    result = run_cli("run", "p", "--yes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stages_of(tmp_path / "ops.db", 1) == [
        ("quiet", st.SUCCEEDED, 0),
        ("closed", st.SUCCEEDED, 0),
    ]
    assert (tmp_path / "DONE").exists() and (tmp_path / "CLOSED").exists()
    assert (tmp_path / "out.log").read_text() == "hidden\n"


def test_a_failing_self_redirecting_stage_keeps_its_exit_code(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        """
        [pipelines.p]
        kind = "devops"
        stages = [{ name = "s", run = ["sh", "-c", "exec >/dev/null 2>&1; sleep 0.3; exit 3"] }]
        """,
    )
    assert run_cli("run", "p", "--yes", cwd=tmp_path).returncode == 1
    assert stages_of(tmp_path / "ops.db", 1) == [("s", st.FAILED, 3)]


@pytest.mark.slow
def test_a_thousand_fast_stages_have_no_false_failure(store: Store, tmp_path: Path) -> None:
    commands = [
        ["printf", "x\\n"],
        ["true"],
        ["touch", "f"],
        ["sh", "-c", "exec >/dev/null 2>&1; touch g"],
        ["sh", "-c", "exec 1>&- 2>&-; true"],
        ["sh", "-c", "echo out; echo err >&2"],
    ]
    run_id, _ = store_runs.create_run(store, "many", stages=["s"])
    failures = []
    for i in range(1000):
        argv = commands[i % len(commands)]
        stage_id = store_runs.start_stage(store, run_id, "s")
        outcome = run_stage(
            store,
            run_id,
            stage_id,
            CommandDef(tuple(argv), tmp_path, {}, None),
            argv=argv,
            env=os.environ,
        )
        if outcome.status != st.SUCCEEDED:
            failures.append((i, argv, outcome))
    assert failures == []


def test_nothing_a_stage_started_outlives_a_sigkilled_runner(tmp_path: Path) -> None:
    mark_bg, mark_fg, mark_daemon = unique_seconds(), unique_seconds(), unique_seconds()
    (tmp_path / "daemon.py").write_text(DAEMON)
    write_config(
        tmp_path,
        f"""
        [pipelines.p]
        kind = "devops"
        stages = [{{ name = "s", run = ["sh", "-c",
            "sleep {mark_bg} & {PY} daemon.py {mark_daemon} & sleep {mark_fg}; wait"] }}]
        """,
    )
    runner = start_until(tmp_path, ["run", "p", "--yes"], "working")
    for mark in (mark_bg, mark_fg, mark_daemon):
        wait_for(lambda m=mark: marked(m), 10, f"sleep {mark} never started")
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    killed_at = time.monotonic()
    # Within 5 s (the figure): the supervisor's grace is 2 s, and the
    # daemon ignores SIGTERM, so it takes the SIGKILL that follows.
    for mark in (mark_bg, mark_fg, mark_daemon):
        wait_for(lambda m=mark: not marked(m), 5 - (time.monotonic() - killed_at), mark)
    with Store(tmp_path / "ops.db") as store:
        assert history.get_run(store, 1).status == st.LOST
        (action,) = list_actions(store)
        assert action.status == "lost"
        assert action.outcome is not None and "lost" in action.outcome
    shown = run_cli("actions", "--json", cwd=tmp_path)
    assert json.loads(shown.stdout)["actions"][0]["status"] == "lost"


def test_a_retry_after_a_killed_runner_closes_the_lost_audit_row(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        """
        [pipelines.p]
        kind = "devops"
        stages = [{ name = "s", run = ["sh", "-c", "echo working; sleep 600"] }]
        """,
    )
    runner = start_until(tmp_path, ["run", "p", "--yes"], "working")
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    second = start_until(tmp_path, ["run", "p", "--yes"], "working")
    second.send_signal(signal.SIGTERM)
    second.wait(timeout=30)
    with Store(tmp_path / "ops.db") as store:
        first = history.get_run(store, 1)
        # Written, not only derived: the second request knew the runner was dead.
        assert first.recorded_status == st.LOST
        rows = store.conn.execute("SELECT status FROM actions ORDER BY id").fetchall()
    assert rows[0][0] == "lost"


def test_a_timeout_stops_daemonised_children_too(tmp_path: Path) -> None:
    mark = unique_seconds()
    (tmp_path / "daemon.py").write_text(DAEMON)
    write_config(
        tmp_path,
        f"""
        [pipelines.p]
        kind = "devops"
        stages = [{{ name = "s", run = ["{PY}", "daemon.py", "{mark}"], timeout = 2 }}]
        """,
    )
    started = time.monotonic()
    result = run_cli("run", "p", "--yes", cwd=tmp_path)
    assert result.returncode == 1
    assert stages_of(tmp_path / "ops.db", 1) == [("s", st.TIMED_OUT, None)]
    assert time.monotonic() - started < 20
    wait_for(lambda: not marked(mark), 10, "a daemon outlived its stage's timeout")


def test_a_finished_stage_leaves_no_background_child(tmp_path: Path) -> None:
    mark = unique_seconds()
    write_config(
        tmp_path,
        f"""
        [pipelines.p]
        kind = "devops"
        stages = [{{ name = "s", run = ["sh", "-c", "setsid sleep {mark} & echo started"] }}]
        """,
    )
    result = run_cli("run", "p", "--yes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stages_of(tmp_path / "ops.db", 1) == [("s", st.SUCCEEDED, 0)]
    assert logs_of(tmp_path / "ops.db", 1, "s") == [("stdout", "started")]
    wait_for(lambda: not marked(mark), 10, "a setsid child outlived its finished stage")


def test_a_stage_cannot_start_in_a_missing_directory(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        """
        [pipelines.p]
        kind = "devops"
        stages = [{ name = "s", run = ["true"], workdir = "nowhere" }]
        """,
    )
    assert run_cli("run", "p", "--yes", cwd=tmp_path).returncode == 1
    with Store(tmp_path / "ops.db") as store:
        (stage,) = history.get_run(store, 1).stages
    assert stage.status == st.FAILED
    assert stage.message == f"working directory does not exist: {tmp_path / 'nowhere'}"


def test_stages_do_not_inherit_endpoint_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "tok-" + unique_seconds()
    monkeypatch.setenv("WEB_API_TOKEN", secret)
    write_config(
        tmp_path,
        """
        [endpoints.web]
        kind = "health"
        url = "http://127.0.0.1:9/health"
        secret_headers = { Authorization = "WEB_API_TOKEN" }

        [pipelines.p]
        kind = "devops"
        [[pipelines.p.stages]]
        name = "plain"
        run = ["env"]

        [[pipelines.p.stages]]
        name = "asks"
        run = ["sh", "-c", "echo seen=$WEB_API_TOKEN"]
        pass_secrets = ["WEB_API_TOKEN"]
        """,
    )
    result = run_cli("run", "p", "--yes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    plain = logs_of(tmp_path / "ops.db", 1, "plain")
    assert plain and not any(secret in line for _, line in plain)
    assert logs_of(tmp_path / "ops.db", 1, "asks") == [("stdout", f"seen={secret}")]


def test_the_runner_log_is_owner_only(tmp_path: Path) -> None:
    write_config(
        tmp_path, '[pipelines.p]\nkind = "devops"\nstages = [{ name = "a", run = ["true"] }]\n'
    )
    old = os.umask(0)
    try:
        result = run_cli("run", "p", "--yes", "--detach", cwd=tmp_path)
    finally:
        os.umask(old)
    assert result.returncode == 0, result.stderr
    log = tmp_path / "ops.db.runner.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_the_supervisor_cleans_up_when_its_runner_vanishes(tmp_path: Path) -> None:
    """Driven by hand: a runner that is not opstui at all, killed after the start."""
    mark = unique_seconds()
    script = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        from opstui.runner.process import _Supervised
        from pathlib import Path
        s = _Supervised(["sh", "-c", "sleep {mark} & sleep {mark}"], Path("."), os.environ)
        print(s.proc.pid, flush=True)
        time.sleep(600)
        """
    )
    proc = subprocess.Popen([PY, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    assert proc.stdout is not None
    supervisor = int(proc.stdout.readline())
    wait_for(lambda: len(marked(mark)) == 2, 10, "the stage never started")
    proc.kill()
    proc.wait()
    wait_for(lambda: not marked(mark), 5, "the stage outlived its runner")
    wait_for(lambda: not Path(f"/proc/{supervisor}").exists(), 5, "the supervisor stayed")


def test_a_store_deleted_under_a_silent_stage_stops_the_run(tmp_path: Path) -> None:
    mark = unique_seconds()
    write_config(
        tmp_path,
        f"""
        [pipelines.p]
        kind = "devops"
        stages = [{{ name = "s", run = ["sh", "-c", "echo working; sleep {mark}"] }}]
        """,
    )
    runner = subprocess.Popen(
        [PY, "-m", "opstui", "run", "p", "--yes"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert runner.stdout is not None and runner.stderr is not None
    for line in runner.stdout:
        if line.strip() == "working":
            break
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"ops.db{suffix}").unlink(missing_ok=True)
    # The heartbeat (every 5 s) notices; the stage gets SIGTERM and its grace.
    assert runner.wait(timeout=30) == 2
    errors = runner.stderr.read().splitlines()
    assert len(errors) == 1 and "was deleted" in errors[0], errors
    assert not marked(mark)
    assert not (tmp_path / "ops.db").exists()


def test_a_runner_that_cannot_start_fails_its_run_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from typer.testing import CliRunner

    from opstui.cli import app
    from opstui.errors import OpstuiError

    def no_memory(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    write_config(
        tmp_path, '[pipelines.p]\nkind = "devops"\nstages = [{ name = "a", run = ["true"] }]\n'
    )
    monkeypatch.setattr(subprocess, "Popen", no_memory)
    result = CliRunner().invoke(app, ["run", "p", "--yes", "--detach"])
    # main() prints an OpstuiError as one line with exit 2 (tests/test_cli.py).
    assert isinstance(result.exception, OpstuiError), result.output
    assert "the runner could not be started" in str(result.exception)
    with Store(tmp_path / "ops.db") as store:
        run = history.get_run(store, 1)
        (action,) = list_actions(store)
    # Not queued (read as running until the queue timeout), not joined by the next request.
    assert run.status == st.FAILED
    assert [s.status for s in run.stages] == [st.SKIPPED]
    assert action.status == "failed"
    assert action.outcome == "run 1 failed: the runner could not be started: Cannot allocate memory"


def test_a_killed_supervisor_fails_the_stage_and_takes_its_group(tmp_path: Path) -> None:
    mark = unique_seconds()
    write_config(
        tmp_path,
        f"""
        [pipelines.p]
        kind = "devops"
        stages = [{{ name = "s", run = ["sh", "-c", "echo working; sleep {mark}"] }}]
        """,
    )
    runner = start_until(tmp_path, ["run", "p", "--yes"], "working")
    wait_for(lambda: marked(mark), 10, "the stage never started")
    # Up from the stage's sleep to the supervisor that runs it.
    pid = marked(mark)[0]
    while b"supervise.py" not in Path(f"/proc/{pid}/cmdline").read_bytes():
        pid = int(Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[2])
    os.kill(pid, signal.SIGKILL)
    assert runner.wait(timeout=30) == 1
    assert stages_of(tmp_path / "ops.db", 1) == [("s", st.FAILED, None)]
    # The runner stops the group with SIGTERM, then SIGKILL after 2 s: 10 s is
    # "eventually" on a loaded machine, not a timing figure.
    wait_for(lambda: not marked(mark), 10, "the stage outlived its supervisor")
