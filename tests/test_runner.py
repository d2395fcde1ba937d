"""The runner: real subprocesses, streamed output, timeouts, kills, detaching."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from opstui.config import load_config
from opstui.store import Store, history
from opstui.store import status as st
from opstui.store.actions import list_actions

from .conftest import run_cli

PY = sys.executable


def write_config(folder: Path, pipelines: str) -> Path:
    path = folder / "opstui.toml"
    path.write_text(
        textwrap.dedent(
            """\
            store = "ops.db"
            [environments.staging]
            [environments.production]
            """
        )
        + textwrap.dedent(pipelines),
        encoding="utf-8",
    )
    return path


def py_stage(name: str, code: str, **extra: object) -> str:
    """A TOML inline table for a stage running ``python -c code``."""
    args = ", ".join(f"{k} = {v}" for k, v in extra.items())
    code_toml = code.replace("\\", "\\\\").replace('"', '\\"')
    return f'{{ name = "{name}", run = ["{PY}", "-c", "{code_toml}"]{", " if args else ""}{args} }}'


def stages_of(store_path: Path, run_id: int) -> list[tuple[str, str, int | None]]:
    with Store(store_path) as store:
        return [(s.name, s.status, s.exit_code) for s in history.get_run(store, run_id).stages]


def logs_of(store_path: Path, run_id: int, stage: str) -> list[tuple[str, str]]:
    with Store(store_path) as store:
        run = history.get_run(store, run_id)
        sid = next(s.id for s in run.stages if s.name == stage)
        return [(x.stream, x.line) for x in history.stage_logs(store, sid, limit=10**6)]


def test_stages_run_in_order_and_stream_both_outputs(tmp_path: Path) -> None:
    code = "import sys; print('out 1'); print('err 1', file=sys.stderr); print('out 2')"
    write_config(
        tmp_path,
        f"""
        [pipelines.p]
        kind = "devops"
        stages = [{py_stage("build", code)}, {py_stage("test", "print('tested')")}]
        """,
    )
    result = run_cli("run", "p", "--yes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "▶ build" in result.stdout
    assert "out 1" in result.stdout and "err 1" in result.stderr
    assert stages_of(tmp_path / "ops.db", 1) == [
        ("build", st.SUCCEEDED, 0),
        ("test", st.SUCCEEDED, 0),
    ]
    build = logs_of(tmp_path / "ops.db", 1, "build")
    assert [line for stream, line in build if stream == "stdout"] == ["out 1", "out 2"]
    assert ("stderr", "err 1") in build


def test_missing_command_fails_the_stage_and_skips_the_rest(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        """
        [pipelines.p]
        kind = "devops"
        stages = [
          { name = "build", run = ["no-such-program-opstui", "--flag"] },
          { name = "deploy", run = ["true"] },
        ]
        """,
    )
    result = run_cli("run", "p", "--yes", cwd=tmp_path)
    assert result.returncode == 1
    assert "command not found: no-such-program-opstui" in result.stdout
    assert stages_of(tmp_path / "ops.db", 1) == [
        ("build", st.FAILED, 127),
        ("deploy", st.SKIPPED, None),
    ]


def test_binary_junk_and_huge_lines_are_stored_safely(tmp_path: Path) -> None:
    # Deterministic junk (every byte but newline and "x", so invalid UTF-8,
    # NUL, ESC and CR): random bytes made a line of only "x" about 3% of runs.
    code = (
        "import sys; out = sys.stdout.buffer; "
        "junk = bytes(b for b in range(256) if b not in (10, 120)); "
        "out.write(junk * 1200); out.write(b'\\n'); "
        "out.write(b'x' * 3_000_000); out.write(b'\\nend\\n'); out.flush()"
    )
    write_config(
        tmp_path,
        f"""
        [pipelines.p]
        kind = "devops"
        stages = [{py_stage("junk", code)}]
        """,
    )
    result = run_cli("run", "p", "--yes", cwd=tmp_path, env={})
    assert result.returncode == 0, result.stderr[-2000:]
    lines = logs_of(tmp_path / "ops.db", 1, "junk")
    assert lines[-1] == ("stdout", "end")
    # No stored line is longer than the cap, and the 3 MB line is all there.
    assert max(len(line) for _, line in lines) <= 16_384
    assert sum(len(line) for _, line in lines if set(line) == {"x"}) == 3_000_000


def test_timeout_stops_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
        f"open(r'{pid_file}', 'w').write(str(p.pid)); print('started', flush=True); "
        "time.sleep(300)"
    )
    write_config(
        tmp_path,
        f"""
        [pipelines.p]
        kind = "devops"
        stages = [{py_stage("slow", code, timeout=1.5)}, {{ name = "after", run = ["true"] }}]
        """,
    )
    started = time.monotonic()
    result = run_cli("run", "p", "--yes", cwd=tmp_path)
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    assert stages_of(tmp_path / "ops.db", 1) == [
        ("slow", st.TIMED_OUT, None),
        ("after", st.SKIPPED, None),
    ]
    with Store(tmp_path / "ops.db") as store:
        run = history.get_run(store, 1)
        assert run.status == st.TIMED_OUT
        assert "timed out after 1.5s" in (run.stages[0].message or "")
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(grandchild):
        assert time.monotonic() < deadline, "the stage's child outlived the timeout"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


PWNED = "$(touch /tmp/opstui-pwned) `touch /tmp/opstui-pwned2`; touch /tmp/opstui-pwned3"


def test_shell_metacharacters_in_data_are_never_executed(tmp_path: Path) -> None:
    for marker in ("/tmp/opstui-pwned", "/tmp/opstui-pwned2", "/tmp/opstui-pwned3"):
        Path(marker).unlink(missing_ok=True)
    echo = "import sys; print(repr(sys.argv[1:]))"
    write_config(
        tmp_path,
        f"""
        [pipelines."{PWNED}"]
        kind = "devops"
        stages = [
          {{ name = "show", run = ["{PY}", "-c", "{echo}", "{{version}}", "{{pipeline}}"] }},
        ]
        """,
    )
    result = run_cli("run", PWNED, "--version", PWNED, "--yes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # Each value arrived as one literal argument.
    assert repr([PWNED, PWNED]) in result.stdout
    for marker in ("/tmp/opstui-pwned", "/tmp/opstui-pwned2", "/tmp/opstui-pwned3"):
        assert not Path(marker).exists(), f"{marker} was created: data was executed"
    status = run_cli("status", "--store", tmp_path / "ops.db")
    assert status.returncode == 0


KILLABLE = """
[pipelines.p]
kind = "devops"
stages = [
  { name = "long", run = ["sh", "-c", "echo $$ > stage.pid; echo working; exec sleep 300"] },
  { name = "after", run = ["true"] },
]
"""


def start_until(folder: Path, args: list[str], marker: str) -> subprocess.Popen[str]:
    """Start ``opstui ARGS`` and return once it printed ``marker`` on a line."""
    proc = subprocess.Popen(
        [PY, "-m", "opstui", *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == marker:
            return proc
    raise AssertionError(f"opstui {' '.join(args)} ended without printing {marker!r}")


def test_runner_killed_mid_stage_leaves_a_lost_run_and_no_stage(tmp_path: Path) -> None:
    write_config(tmp_path, KILLABLE)
    runner = start_until(tmp_path, ["run", "p", "--yes"], "working")
    stage_pid = int((tmp_path / "stage.pid").read_text())
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    with Store(tmp_path / "ops.db") as store:
        run = history.get_run(store, 1)
        assert run.status == st.LOST
        assert run.recorded_status == st.RUNNING
        assert run.stages[0].status == st.LOST
    deadline = time.monotonic() + 10
    while _alive(stage_pid):
        assert time.monotonic() < deadline, "the stage outlived its killed runner"
        time.sleep(0.05)


def test_sigterm_cancels_the_run_cleanly(tmp_path: Path) -> None:
    write_config(tmp_path, KILLABLE)
    runner = start_until(tmp_path, ["run", "p", "--yes"], "working")
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=30) == 1
    with Store(tmp_path / "ops.db") as store:
        run = history.get_run(store, 1)
        assert run.status == st.CANCELLED
        assert [s.status for s in run.stages] == [st.CANCELLED, st.SKIPPED]
        (action,) = list_actions(store)
        assert action.status == "failed"
        assert action.outcome == "run 1 cancelled"


def test_detached_run_outlives_the_command_that_started_it(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        """
        [pipelines.p]
        kind = "devops"
        stages = [{ name = "wait", run = ["sh", "-c", "sleep 1; echo done"] }]
        """,
    )
    started = time.monotonic()
    result = run_cli("run", "p", "--yes", "--detach", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 5
    assert "started run 1 (detached)" in result.stdout
    deadline = time.monotonic() + 30
    with Store(tmp_path / "ops.db") as store:
        while history.get_run(store, 1).status in (st.QUEUED, st.RUNNING):
            assert time.monotonic() < deadline, "detached run never finished"
            time.sleep(0.05)
        run = history.get_run(store, 1)
        assert run.status == st.SUCCEEDED
        (action,) = list_actions(store)
        assert (action.status, action.run_id) == ("succeeded", 1)
    assert logs_of(tmp_path / "ops.db", 1, "wait") == [("stdout", "done")]


def test_a_run_is_executed_once(tmp_path: Path) -> None:
    write_config(
        tmp_path, '[pipelines.p]\nkind = "devops"\nstages = [{ name = "a", run = ["true"] }]\n'
    )
    assert run_cli("run", "p", "--yes", cwd=tmp_path).returncode == 0
    # The detached executor (what --detach starts) refuses a run that already ran.
    again = subprocess.run(
        [PY, "-m", "opstui.runner", "1", "--store", str(tmp_path / "ops.db")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 2
    assert "run 1 is succeeded, not queued" in again.stderr


def test_pipeline_not_defined_is_a_clear_error(tmp_path: Path) -> None:
    write_config(tmp_path, '[pipelines.p]\nkind = "devops"\nstages = []\n')
    result = run_cli("run", "nope", "--yes", cwd=tmp_path)
    assert result.returncode == 2
    assert "pipeline 'nope' is not defined" in result.stderr
    assert "defined pipelines: p" in result.stderr


def test_config_loads_relative_workdirs(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    path = write_config(
        tmp_path,
        """
        [pipelines.p]
        kind = "devops"
        workdir = "svc"
        env = { A = "1" }
        timeout = 10
        stages = [
          { name = "a", run = ["pwd"] },
          { name = "b", run = ["pwd"], workdir = ".", timeout = 2 },
        ]
        """,
    )
    p = load_config(path).pipeline("p")
    assert p.stages[0].command.workdir == tmp_path / "svc"
    assert p.stages[0].command.timeout == 10
    assert p.stages[0].command.env == {"A": "1"}
    assert p.stages[1].command.workdir == tmp_path
    assert p.stages[1].command.timeout == 2


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[pipelines.p]\nkind = "devops"\nstages = [{ name = "a", run = "make build" }]',
            "must be a list of strings",
        ),
        (
            '[pipelines.p]\nkind = "devops"\nstages = [{ name = "a", run = ["x", "{verison}"] }]',
            "{verison} is not one of",
        ),
        ('[pipelines.p]\nkind = "batch"', '"devops" or "mlops"'),
        ("[pipelines.p]\nstages = []", '"pipelines.p.kind" is required'),
        (
            '[pipelines.p]\nkind = "devops"\n'
            'stages = [{ name = "a", run = ["x"] }, { name = "a", run = ["y"] }]',
            'two stages named "a"',
        ),
        ('[models.m]\npipeline = "nope"', "not a [pipelines] entry"),
        ('[pipelines.p]\nkind = "devops"\nenvironment = "prod"', "not in [environments]"),
    ],
)
def test_bad_pipeline_definitions_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    path = write_config(tmp_path, toml)
    result = run_cli("run", "p", "--yes", "--config", path, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_detached_run_survives_its_terminal_closing(tmp_path: Path) -> None:
    # An SSH drop, as close as a test gets: the terminal (a tmux session) that
    # started the run is killed while the run is still going.
    write_config(
        tmp_path,
        """
        [pipelines.p]
        kind = "devops"
        stages = [{ name = "slow", run = ["sh", "-c", "sleep 2; echo survived"] }]
        """,
    )
    session = f"opstui-test-{os.getpid()}"
    command = f"{shlex.quote(PY)} -m opstui run p --yes --detach; sleep 60"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", "-c", str(tmp_path),
         command],
        check=True,
    )  # fmt: skip
    store_path = tmp_path / "ops.db"
    deadline = time.monotonic() + 30
    while not store_path.exists() or not _has_run(store_path):
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.05)
    subprocess.run(["tmux", "kill-session", "-t", session], check=True)
    with Store(store_path) as store:
        while history.get_run(store, 1).status in (st.QUEUED, st.RUNNING):
            assert time.monotonic() < deadline + 30, "the detached run did not finish"
            time.sleep(0.05)
        assert history.get_run(store, 1).status == st.SUCCEEDED
    assert logs_of(store_path, 1, "slow") == [("stdout", "survived")]


def _has_run(store_path: Path) -> bool:
    try:
        with Store(store_path, create=False) as store:
            return bool(store.conn.execute("SELECT count(*) FROM runs").fetchone()[0])
    except Exception:
        return False
