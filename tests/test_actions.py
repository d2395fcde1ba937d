"""Operator actions through the one path: plan, guard, confirm, audit, run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opstui.config import load_config
from opstui.errors import UsageError
from opstui.runner.planning import plan_retry, plan_rollback
from opstui.store import Store, history, models
from opstui.store import status as st
from opstui.store.actions import list_actions

from .conftest import run_cli, sqlite_conn
from .test_runner import start_until, write_config

FLAKY = """
[environments.frozen]
read_only = true

[pipelines.web]
kind = "devops"
environment = "production"
stages = [
  { name = "build", run = ["sh", "-c", "echo build >> trace"] },
  { name = "test", run = ["sh", "-c", "echo test >> trace; test -f pass"] },
  { name = "deploy", run = ["sh", "-c", "echo deploy $0 >> trace", "{environment}"] },
]
[pipelines.web.rollback]
run = ["sh", "-c", "echo rollback $0 $1 >> trace", "{environment}", "{version}"]
"""


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    write_config(tmp_path, FLAKY)
    return tmp_path


def trace(folder: Path) -> list[str]:
    path = folder / "trace"
    lines = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return lines


def failed_run(folder: Path) -> int:
    (folder / "pass").unlink(missing_ok=True)
    result = run_cli("run", "web", "--yes", "--json", cwd=folder)
    assert result.returncode == 1, result.stderr
    trace(folder)
    return int(json.loads(result.stdout)["run_id"])


def test_retry_reuses_succeeded_stages_and_resumes_at_the_failed_one(ops: Path) -> None:
    first = failed_run(ops)
    (ops / "pass").touch()
    result = run_cli("retry", str(first), "--yes", cwd=ops)
    assert result.returncode == 0, result.stderr
    assert trace(ops) == ["test", "deploy production"]  # build was not run again
    with Store(ops / "ops.db") as store:
        parent = history.get_run(store, first)
        retry = history.get_run(store, first + 1)
    assert (retry.trigger, retry.parent_run_id, retry.attempt) == ("retry", first, 2)
    assert retry.status == st.SUCCEEDED
    build = retry.stages[0]
    assert build.reused_from_id == parent.stages[0].id
    assert build.message == f"reused from run {first}"


def test_retry_of_a_retry_points_at_the_original_work(ops: Path) -> None:
    first = failed_run(ops)
    second = json.loads(run_cli("retry", str(first), "--yes", "--json", cwd=ops).stdout)["run_id"]
    (ops / "pass").touch()
    third = json.loads(run_cli("retry", str(second), "--yes", "--json", cwd=ops).stdout)["run_id"]
    with Store(ops / "ops.db") as store:
        original = history.get_run(store, first).stages[0].id
        assert history.get_run(store, third).stages[0].reused_from_id == original
        assert history.get_run(store, third).attempt == 3


def test_retry_from_an_earlier_stage(ops: Path) -> None:
    first = failed_run(ops)
    (ops / "pass").touch()
    assert run_cli("retry", str(first), "--from", "build", "--yes", cwd=ops).returncode == 0
    assert trace(ops) == ["build", "test", "deploy production"]


def test_retry_refusals(ops: Path) -> None:
    first = failed_run(ops)
    cases = [
        (["retry", "999"], "run 999 does not exist"),
        (["retry", str(first), "--from", "nope"], "has no stage 'nope'"),
        (["retry", str(first), "--from", "deploy"], "stage test did not succeed in it"),
    ]
    (ops / "pass").touch()
    ok = run_cli("retry", str(first), "--yes", "--json", cwd=ops)
    cases.append((["retry", str(json.loads(ok.stdout)["run_id"])], "is succeeded"))
    for args, message in cases:
        result = run_cli(*args, "--yes", cwd=ops)
        assert result.returncode == 2, args
        assert message in result.stderr, (args, result.stderr)


def test_retry_of_a_recorded_run_without_definition(ops: Path) -> None:
    rid = run_cli("record", "start", "ci-only", "--store", ops / "ops.db").stdout.strip()
    run_cli("record", "finish", rid, "--status", "failed", "--store", ops / "ops.db")
    result = run_cli("retry", rid, "--yes", cwd=ops)
    assert result.returncode == 2
    assert "pipeline 'ci-only' is not defined" in result.stderr


def test_two_operators_retrying_at_once_start_one_run(ops: Path) -> None:
    first = failed_run(ops)
    (ops / "pass").touch()
    # The retry must still be running when the last operator asks.
    config = ops / "opstui.toml"
    config.write_text(config.read_text().replace("echo deploy", "sleep 4; echo deploy"))
    argv = [sys.executable, "-m", "opstui", "retry", str(first), "--yes", "--detach", "--json"]
    procs = [
        subprocess.Popen(argv, cwd=ops, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert len({o["run_id"] for o in outs}) == 1
    assert sorted(o["joined"] for o in outs) == [False, True, True, True]
    with Store(ops / "ops.db") as store:
        children = store.conn.execute(
            "SELECT count(*) FROM runs WHERE parent_run_id = ?", (first,)
        ).fetchone()[0]
        assert children == 1
        statuses = sorted(a.status for a in list_actions(store) if a.action == "retry")
        assert statuses.count("joined") == 3
        run_id = outs[0]["run_id"]
        deadline = time.monotonic() + 30
        while history.get_run(store, run_id).status in (st.QUEUED, st.RUNNING):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    # Once the retry has finished, asking again is a new request.
    again = run_cli("retry", str(first), "--yes", "--json", cwd=ops)
    assert json.loads(again.stdout)["joined"] is False


def deploy(folder: Path, *versions: str, status: str = "succeeded") -> None:
    for version in versions:
        result = run_cli(
            "record", "deploy", "production", "web", version, "--status", status,
            "--store", folder / "ops.db",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        time.sleep(0.01)  # distinct timestamps order the history


def test_rollback_goes_to_the_previous_good_version(ops: Path) -> None:
    deploy(ops, "1.0", "1.1", "1.2")
    result = run_cli("rollback", "production", "--pipeline", "web", "--yes", cwd=ops)
    assert result.returncode == 0, result.stderr
    assert "production: web 1.2 -> 1.1" in result.stdout
    assert trace(ops) == ["rollback production 1.1"]
    with Store(ops / "ops.db") as store:
        (now,) = models.current_deployments(store, "web")
        assert (now.version, now.action, now.replaced_version) == ("1.1", "rollback", "1.2")
        assert now.run_id is not None
        assert history.get_run(store, now.run_id).trigger == "rollback"
    # Rolling back again skips 1.2 (bad: it was rolled back) and 1.1 (current).
    result = run_cli("rollback", "production", "--yes", cwd=ops)
    assert "production: web 1.1 -> 1.0" in result.stdout


def test_rollback_to_a_named_version_and_refusals(ops: Path) -> None:
    deploy(ops, "1.0", "1.1", "1.2")
    result = run_cli("rollback", "production", "--to", "1.0", "--yes", cwd=ops)
    assert result.returncode == 0, result.stderr
    assert trace(ops) == ["rollback production 1.0"]
    for args, message in [
        (["--to", "9.9"], "web 9.9 was never deployed to production"),
        (["--to", "1.0"], "is already what production runs"),
    ]:
        bad = run_cli("rollback", "production", *args, "--yes", cwd=ops)
        assert bad.returncode == 2
        assert message in bad.stderr


def test_rollback_with_no_earlier_good_version(ops: Path) -> None:
    deploy(ops, "1.0")
    deploy(ops, "0.9", status="failed")
    result = run_cli("rollback", "production", "--yes", cwd=ops)
    assert result.returncode == 2
    assert "no earlier good version of web in production" in result.stderr
    nothing = run_cli("rollback", "qa", "--pipeline", "web", "--yes", cwd=ops)
    assert "environment 'qa' is not defined" in nothing.stderr
    empty = run_cli("rollback", "staging", "--pipeline", "web", "--yes", cwd=ops)
    assert "nothing of web is deployed to staging" in empty.stderr


def test_failed_rollback_command_records_a_failed_deployment(ops: Path) -> None:
    deploy(ops, "1.0", "1.1")
    config = (ops / "opstui.toml").read_text().replace("echo rollback", "exit 4; echo")
    (ops / "opstui.toml").write_text(config)
    result = run_cli("rollback", "production", "--yes", cwd=ops)
    assert result.returncode == 1
    with Store(ops / "ops.db") as store:
        (now,) = models.current_deployments(store, "web")
        assert now.version == "1.1"  # still serving what it served
        latest = models.deployment_history(store, "web", "production")[0]
        assert (latest.version, latest.status, latest.action) == ("1.0", "failed", "rollback")


def test_model_rollback_moves_the_deployed_version(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        """
        [pipelines.train]
        kind = "mlops"
        stages = [{ name = "train", run = ["true"] }]
        [models.churn]
        pipeline = "train"
        """,
    )
    db = tmp_path / "ops.db"
    for v in ("1", "2"):
        run_cli("record", "model-version", "churn", "--version", v, "--status", "production",
                "--store", db)  # fmt: skip
        run_cli("record", "deploy", "production", "churn", v, "--model", "--store", db)
        time.sleep(0.01)
    result = run_cli("rollback", "production", "--model", "churn", "--yes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "production: churn 2 -> 1" in result.stdout
    with Store(db) as store:
        (now,) = models.current_deployments(store, "churn")
        assert (now.target_kind, now.version, now.action) == ("model", "1", "rollback")
        statuses = {v.version: v.status for v in models.model_versions(store, "churn")}
        assert statuses == {"1": "production", "2": "archived"}


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("flag", "read-only session (--read-only)"),
        ("config", "read-only by configuration"),
        ("environment", "environment frozen is read-only"),
    ],
)
def test_read_only_refuses_and_audits(ops: Path, how: str, reason: str) -> None:
    args = ["run", "web", "--yes"]
    if how == "flag":
        args.append("--read-only")
    elif how == "config":
        path = ops / "opstui.toml"
        path.write_text("read_only = true\n" + path.read_text())
    else:
        args += ["--environment", "frozen"]
    result = run_cli(*args, cwd=ops)
    assert result.returncode == 2
    assert f"refused to run web: {reason}" in result.stderr
    assert "nothing was changed" in result.stderr
    assert trace(ops) == []
    with Store(ops / "ops.db") as store:
        assert store.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
        (action,) = list_actions(store)
        assert (action.action, action.target, action.status) == ("run", "web", "refused")
        assert reason in (action.outcome or "")
        assert action.plan["steps"][0]["stage"] == "build"


def test_no_terminal_and_no_yes_refuses(ops: Path) -> None:
    result = run_cli("run", "web", cwd=ops, input="y\n")
    assert result.returncode == 2
    assert "no terminal to ask on and no --yes" in result.stderr
    with Store(ops / "ops.db") as store:
        (action,) = list_actions(store)
        assert action.status == "refused"


def test_dry_run_changes_nothing(ops: Path) -> None:
    deploy(ops, "1.0", "1.1")
    before = (ops / "ops.db").read_bytes()
    with Store(ops / "ops.db") as store:
        dump_before = list(sqlite_conn(store).iterdump())
    result = run_cli("rollback", "production", "--dry-run", cwd=ops)
    assert result.returncode == 0
    assert "Roll back web to 1.0 in production" in result.stdout
    assert "rollback   run: sh -c" in result.stdout
    assert "dry run: nothing was changed" in result.stdout
    assert trace(ops) == []
    with Store(ops / "ops.db") as store:
        assert list_actions(store) == []
        assert store.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
        assert list(sqlite_conn(store).iterdump()) == dump_before
    # Not a row, not a page: the file is the one that was there.
    assert (ops / "ops.db").read_bytes() == before


def test_actions_lists_the_audit_trail(ops: Path) -> None:
    failed_run(ops)
    run_cli("run", "web", "--read-only", "--yes", cwd=ops)
    doc = json.loads(run_cli("actions", "--json", cwd=ops).stdout)
    assert [(a["action"], a["status"]) for a in doc["actions"]] == [
        ("run", "refused"),
        ("run", "failed"),
    ]
    first = doc["actions"][1]
    assert first["actor"]
    assert first["run_id"] == 1
    assert first["outcome"] == "run 1 failed"
    assert first["plan"]["title"] == "Run web"
    table = run_cli("actions", cwd=ops).stdout
    assert "refused" in table and "web" in table


def test_missing_placeholder_value_is_asked_for(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        '[pipelines.p]\nkind = "devops"\nstages = [{ name = "d", run = ["echo", "{version}"] }]\n',
    )
    result = run_cli("run", "p", "--yes", cwd=tmp_path)
    assert result.returncode == 2
    assert "commands use {version}: pass --version" in result.stderr


def test_plans_are_made_before_anything_is_written(ops: Path) -> None:
    cfg = load_config(ops / "opstui.toml")
    with Store(ops / "ops.db") as store:
        with pytest.raises(UsageError, match="nothing of web is deployed"):
            plan_rollback(cfg, store, "production", pipeline="web")
        with pytest.raises(UsageError, match="does not exist"):
            plan_retry(cfg, store, 1)
        assert store.conn.execute("SELECT count(*) FROM actions").fetchone()[0] == 0


def test_a_retry_whose_runner_died_does_not_block_the_next(tmp_path: Path) -> None:
    script = "test -f ok && exit 0; test -f hang || exit 1; echo working; exec sleep 300"
    write_config(
        tmp_path,
        '[pipelines.p]\nkind = "devops"\n'
        f'stages = [{{ name = "a", run = ["sh", "-c", "{script}"] }}]\n',
    )
    assert run_cli("run", "p", "--yes", cwd=tmp_path).returncode == 1
    (tmp_path / "hang").touch()
    runner = start_until(tmp_path, ["retry", "1", "--yes"], "working")
    runner.kill()
    runner.wait()
    (tmp_path / "ok").touch()
    again = run_cli("retry", "1", "--yes", "--json", cwd=tmp_path)
    doc = json.loads(again.stdout)
    assert doc["joined"] is False
    assert doc["status"] == "succeeded"
    with Store(tmp_path / "ops.db") as store:
        assert history.get_run(store, 2).status == st.LOST


def test_a_stray_module_in_the_working_directory_cannot_break_a_detached_run(
    tmp_path: Path,
) -> None:
    """`python -m` puts the working directory first on sys.path: an inspect.py
    left there broke every detached run started from it (found running the
    demo from /tmp). The runner is started with -P."""
    import subprocess
    import sys
    import time

    from opstui.store import Store
    from opstui.store.history import run_history

    (tmp_path / "inspect.py").write_text('raise SystemExit("the wrong inspect")\n')
    (tmp_path / "opstui.toml").write_text(
        'store = "ops.db"\n[pipelines.p]\nkind = "devops"\n'
        'stages = [{ name = "build", run = ["true"] }]\n'
    )
    # The CLI itself with -P too: this test is about the runner it spawns.
    cli = subprocess.run(
        [sys.executable, "-P", "-m", "opstui", "run", "p", "--yes", "--detach"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        with Store(tmp_path / "ops.db") as store:
            status = run_history(store, "p", limit=1)[0].status
        if status not in ("queued", "running"):
            break
        time.sleep(0.1)
    log = tmp_path / "ops.db.runner.log"
    assert status == "succeeded", log.read_text() if log.exists() else status
