"""The CLI end to end, as a CI script or a cron job would use it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from opstui.config import parse_config
from opstui.store import Store, history
from opstui.store import status as st

from .conftest import run_cli

BASH_PIPELINE = textwrap.dedent(
    """\
    set -u
    opstui() { "$PYTHON" -m opstui "$@"; }
    RUN=$(opstui record start web-api --stages plan,build,test,deploy --kind devops \\
          --trigger push --key "ci-4711")
    opstui record stage "$RUN" plan start
    opstui record stage "$RUN" plan end --exit-code 0
    opstui record stage "$RUN" build start
    { echo "compiling"; echo "warning: unused import" >&2; echo "linking"; } 2>&1 \\
        | opstui record log "$RUN" build --tee
    opstui record stage "$RUN" build end --exit-code 0
    opstui record stage "$RUN" test start
    bash -c 'echo "FAILED test_checkout_timeout"; exit 3' | opstui record log "$RUN" test
    rc=${PIPESTATUS[0]}
    opstui record stage "$RUN" test end --exit-code "$rc"
    opstui record metric tests_failed 1 --run "$RUN"
    opstui record finish "$RUN"
    echo "run=$RUN"
    """
)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_bash_ci_script_records_a_run(tmp_path: Path) -> None:
    store_path = tmp_path / "ci.db"
    env = {**os.environ, "PYTHON": sys.executable, "OPSTUI_STORE": str(store_path)}
    result = subprocess.run(
        ["bash", "-c", BASH_PIPELINE],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "compiling\nwarning: unused import\nlinking\n" in result.stdout  # --tee
    assert "failed\n" in result.stdout  # finish prints the outcome
    run_id = int(result.stdout.strip().splitlines()[-1].removeprefix("run="))
    with Store(store_path) as store:
        run = history.get_run(store, run_id)
        assert (run.pipeline, run.status, run.trigger, run.key) == (
            "web-api",
            st.FAILED,
            "push",
            "ci-4711",
        )
        assert [(s.name, s.status, s.exit_code) for s in run.stages] == [
            ("plan", st.SUCCEEDED, 0),
            ("build", st.SUCCEEDED, 0),
            ("test", st.FAILED, 3),
            ("deploy", st.SKIPPED, None),
        ]
        assert run.failed_stage is not None
        assert run.failed_stage.message == "exited with code 3"
        build_log = [x.line for x in history.stage_logs(store, run.stages[1].id)]
        assert build_log == ["compiling", "warning: unused import", "linking"]
        test_log = [x.line for x in history.stage_logs(store, run.stages[2].id)]
        assert test_log == ["FAILED test_checkout_timeout"]

    status = run_cli("status", "--json", env={"OPSTUI_STORE": str(store_path)})
    assert status.returncode == 1
    doc = json.loads(status.stdout)
    assert doc["pipelines"][0]["latest_run"]["failed_stage"] == "test"

    # Reporting the same CI build again reuses its run instead of adding one.
    again = run_cli("record", "start", "web-api", "--key", "ci-4711", "--store", store_path)
    assert again.stdout.strip() == str(run_id)


def make_history(store_path: Path, *, fail: bool) -> None:
    from opstui.track import Tracker

    with Tracker(store_path) as tracker:
        with tracker.run("billing", stages=["build", "test"], kind="devops") as run:
            with run.stage("build"):
                pass
            with run.stage("test"):
                pass
        if fail:
            with (
                pytest.raises(RuntimeError),
                tracker.run("web-api", stages=["build", "test", "deploy"]) as run,
            ):
                with run.stage("build"):
                    pass
                with run.stage("test"):
                    raise RuntimeError("test_checkout_timeout")


def test_status_exit_codes(tmp_path: Path) -> None:
    healthy = tmp_path / "ok.db"
    make_history(healthy, fail=False)
    assert run_cli("status", "--store", healthy).returncode == 0
    broken = tmp_path / "broken.db"
    make_history(broken, fail=True)
    result = run_cli("status", "--store", broken)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "PIPELINE",
        "STAGES",
        "STATUS",
        "FAILED",
        "AT",
        "AGE",
        "TOOK",
        "TRIGGER",
    ]
    # Faults first, with the stage bar readable without colour.
    assert lines[1].split()[:4] == ["web-api", "✓✗⊘", "failed", "test"]
    assert lines[2].split()[:3] == ["billing", "✓✓", "succeeded"]
    assert "1 of 2 pipelines failing" in result.stdout


def test_status_json_shape_is_stable(tmp_path: Path) -> None:
    store_path = tmp_path / "s.db"
    make_history(store_path, fail=True)
    result = run_cli("status", "--json", "--store", store_path)
    doc = json.loads(result.stdout)
    assert set(doc) == {"schema", "generated_at", "store", "failing", "unknown", "pipelines"}
    assert doc["schema"] == 1
    assert doc["failing"] == 1
    first = doc["pipelines"][0]
    assert set(first) == {"name", "kind", "status", "removed", "latest_run"}
    assert set(first["latest_run"]) == {
        "id",
        "status",
        "recorded_status",
        "trigger",
        "actor",
        "attempt",
        "parent_run_id",
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
        "age_seconds",
        "duration_seconds",
        "failed_stage",
        "message",
        "status_reason",
        "host",
        "external",
        "stages",
    }
    # Runs recorded by opstui itself have no external source.
    assert first["latest_run"]["external"] is None
    assert first["latest_run"]["status_reason"] is None
    assert set(first["latest_run"]["stages"][0]) == {
        "name",
        "status",
        "exit_code",
        "attempt",
        "started_at",
        "finished_at",
        "duration_seconds",
        "message",
    }
    assert first["latest_run"]["started_at"].endswith("Z")


def test_status_on_an_empty_store_is_helpful(tmp_path: Path) -> None:
    store_path = tmp_path / "empty.db"
    Store(store_path).close()
    result = run_cli("status", "--store", store_path)
    assert result.returncode == 0
    assert "No pipelines" in result.stdout
    assert "opstui import sample_runs/" in result.stdout


def test_store_path_precedence(tmp_path: Path) -> None:
    for name in ("flag", "env", "config", "default"):
        make_history(tmp_path / f"{name}.db", fail=False)
        # Tell the stores apart by a pipeline named after each.
        from opstui.track import Tracker

        with Tracker(tmp_path / f"{name}.db") as t, t.run(f"only-in-{name}"):
            pass
    (tmp_path / "opstui.toml").write_text('store = "config.db"\n')
    Path(tmp_path / "default.db").rename(tmp_path / "opstui.db")

    def names(*args: str | Path, env: dict[str, str] | None = None) -> set[str]:
        result = run_cli("status", "--json", *args, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        return {p["name"] for p in json.loads(result.stdout)["pipelines"]}

    env = {"OPSTUI_STORE": str(tmp_path / "env.db")}
    assert "only-in-flag" in names("--store", tmp_path / "flag.db", env=env)
    assert "only-in-env" in names(env=env)
    assert "only-in-config" in names()
    (tmp_path / "opstui.toml").unlink()
    assert "only-in-default" in names()


def test_init_writes_a_config_that_validates(tmp_path: Path) -> None:
    result = run_cli("init", cwd=tmp_path)
    assert result.returncode == 0
    text = (tmp_path / "opstui.toml").read_text()
    assert text.startswith("# opstui.toml")
    cfg = parse_config(text, tmp_path / "opstui.toml")
    assert cfg.store == tmp_path / "opstui.db"
    again = run_cli("init", cwd=tmp_path)
    assert again.returncode == 2
    assert "already exists" in again.stderr
    assert run_cli("init", "--force", cwd=tmp_path).returncode == 0


def test_bad_config_key_is_named(tmp_path: Path) -> None:
    (tmp_path / "opstui.toml").write_text('stroe = "x.db"\n')
    result = run_cli("status", cwd=tmp_path)
    assert result.returncode == 2
    assert 'unknown key "stroe" (did you mean "store"?)' in result.stderr
    assert "Traceback" not in result.stderr


def test_record_errors_are_one_line(tmp_path: Path) -> None:
    store_path = tmp_path / "s.db"
    run_id = run_cli("record", "start", "p", "--store", store_path).stdout.strip()
    cases = [
        (("record", "stage", "999", "build", "start"), "run 999 does not exist"),
        (("record", "log", run_id, "nostage"), "has no stage 'nostage'"),
        (("record", "finish", run_id, "--status", "great"), "a run finishes succeeded"),
        (("record", "metric", "x", "abc", "--run", run_id), "must be a number"),
        (("record", "start", "p", "--kind", "banana"), "--kind must be devops or mlops"),
    ]
    for args, message in cases:
        result = run_cli(*args, "--store", store_path, input="")
        assert result.returncode == 2, args
        assert message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert run_cli("record", "finish", run_id, "--store", store_path).stdout.strip() == "succeeded"
    late = run_cli("record", "stage", run_id, "x", "start", "--store", store_path)
    assert "already finished" in late.stderr


def test_record_model_version_deploy_and_features(tmp_path: Path) -> None:
    from opstui.store import models

    store_path = tmp_path / "s.db"
    out = run_cli(
        "record",
        "model-version",
        "churn",
        "--metric",
        "auc=0.84",
        "--param",
        "depth=3",
        "--store",
        store_path,
    )
    assert out.stdout.strip() == "1"
    run_cli("record", "deploy", "production", "churn", "1", "--model", "--store", store_path)
    csv_file = tmp_path / "batch.csv"
    csv_file.write_text("tenure,contract\n1,monthly\n,yearly\n30.5,monthly\n")
    result = run_cli("record", "features", "churn", csv_file, "--store", store_path)
    assert "recorded 3 rows" in result.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1\n")
    result = run_cli("record", "features", "churn", bad, "--store", store_path)
    assert result.returncode == 2
    assert f"{bad}:2: 1 fields, the header has 2" in result.stderr
    with Store(store_path) as store:
        assert models.model_versions(store, "churn")[0].metrics == {"auc": 0.84}
        (dep,) = models.current_deployments(store, "churn")
        assert (dep.target_kind, dep.version) == ("model", "1")
        ((batch_id, *_),) = models.feature_batches(store, "churn")
        assert models.load_feature_batch(store, batch_id) == {
            "tenure": [1, None, 30.5],
            "contract": ["monthly", "yearly", "monthly"],
        }


def test_version_and_help(tmp_path: Path) -> None:
    assert run_cli("--version").stdout.startswith("opstui ")
    help_text = run_cli("--help").stdout
    for command in ("init", "import", "status", "record"):
        assert command in help_text


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_killed_ci_script_that_passed_its_pid_reads_as_lost(tmp_path: Path) -> None:
    store_path = tmp_path / "ci.db"
    script = (
        'RUN=$("$PYTHON" -m opstui record start deploy-job --stages deploy --pid $$); '
        '"$PYTHON" -m opstui record stage "$RUN" deploy start; echo "$RUN"; exec sleep 600'
    )
    env = {**os.environ, "PYTHON": sys.executable, "OPSTUI_STORE": str(store_path)}
    proc = subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    run_id = int(proc.stdout.readline())
    with Store(store_path) as store:
        assert history.get_run(store, run_id).status == st.RUNNING
        proc.kill()
        proc.wait()
        run = history.get_run(store, run_id)
        assert run.status == st.LOST
        assert run.stages[0].status == st.LOST


def test_the_commented_pipeline_examples_in_init_are_valid(tmp_path: Path) -> None:
    run_cli("init", cwd=tmp_path)
    text = (tmp_path / "opstui.toml").read_text()
    start = text.index("# [pipelines.web-api]")
    # Uncomment the example TOML (tables, keys, array items), not the prose.
    toml_line = re.compile(r"^# (\[|[\w-]+ = |  \{|\])")
    uncommented = text[:start] + "\n".join(
        line[2:] if toml_line.match(line) else line for line in text[start:].splitlines()
    )
    cfg = parse_config(uncommented, tmp_path / "opstui.toml")
    assert cfg.pipelines["web-api"].stage_names() == [
        "plan",
        "build",
        "test",
        "release",
        "deploy",
        "monitor",
    ]
    assert cfg.pipelines["web-api"].rollback is not None
    assert cfg.models["churn"].pipeline == "churn-model"
    assert cfg.endpoints["web-api-prod"].secret_headers == {"Authorization": "WEB_API_TOKEN"}
    assert cfg.endpoints["registry"].aliases == {"champion": "production"}
    assert cfg.drift["retrain_after"] == 3
    assert cfg.models["churn"].drift["ignore"] == ["customer_id"]
