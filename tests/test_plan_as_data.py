"""The confirmed plan is data and is what runs: an edit between confirm and run is refused."""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import pytest

from opstui.config import load_config
from opstui.runner.actions import perform, propose
from opstui.runner.plan import StagePlan, fill_argv
from opstui.runner.planning import plan_run
from opstui.store import Store, history
from opstui.store import status as st
from opstui.store.actions import list_actions

from .conftest import run_cli
from .test_runner import write_config

PIPELINE = """
[pipelines.web]
kind = "devops"
stages = [
  { name = "build", run = ["sh", "-c", "echo build >> trace"] },
  { name = "train", run = ["sh", "-c", "echo train $0 >> trace", "{environment}"] },
]
"""


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    write_config(tmp_path, PIPELINE)
    return tmp_path


def confirm_then(folder: Path, edit: object) -> int:
    """Plan and confirm ``run web`` as the CLI and console do, ``edit`` the folder, then start
    the detached runner (which loads opstui.toml afresh); return the run id once it ended."""
    config = load_config(folder / "opstui.toml")
    with Store(folder / "ops.db") as store:
        proposal = propose(config, plan_run(config, "web", environment="staging"), read_only=False)
        edit(folder)  # type: ignore[operator]
        started = perform(store, config, proposal, actor="ops@test", declined=None, detach=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with Store(folder / "ops.db") as store:
            if history.get_run(store, started.run_id).status not in (st.QUEUED, st.RUNNING):
                return started.run_id
        time.sleep(0.05)
    raise AssertionError(f"run {started.run_id} did not end")


def audit_json(folder: Path) -> dict[str, object]:
    result = run_cli("actions", "--json", "--store", "ops.db", cwd=folder)
    assert result.returncode == 0, result.stderr
    row: dict[str, object] = json.loads(result.stdout)["actions"][0]
    return row


def test_an_opstui_toml_edited_between_confirm_and_run_is_refused(ops: Path) -> None:
    def edit(folder: Path) -> None:
        toml = folder / "opstui.toml"
        toml.write_text(toml.read_text().replace("echo train", "echo EDITED"))

    run_id = confirm_then(ops, edit)
    assert not (ops / "trace").exists()  # nothing ran, not even the unchanged first stage
    reason = (
        "differs from the one the plan was made from: stage train's command differs; plan again"
    )
    with Store(ops / "ops.db") as store:
        run = history.get_run(store, run_id)
    assert run.status == st.FAILED
    assert run.message is not None and reason in run.message
    assert [s.status for s in run.stages] == [st.SKIPPED, st.SKIPPED]
    # The audit row says so, and the CLI shows it.
    row = audit_json(ops)
    assert row["status"] == "refused" and row["run_id"] == run_id
    assert reason in str(row["outcome"])
    table = run_cli("actions", cwd=ops, env={"COLUMNS": "400"})
    assert "refused" in table.stdout and "stage train's command" in table.stdout.replace("\n", " ")


def test_a_config_gone_between_confirm_and_run_is_refused_with_its_cause(ops: Path) -> None:
    run_id = confirm_then(ops, lambda folder: (folder / "opstui.toml").unlink())
    assert not (ops / "trace").exists()
    with Store(ops / "ops.db") as store:
        assert history.get_run(store, run_id).status == st.FAILED
    row = audit_json(ops)
    assert row["status"] == "refused"
    assert "could not be read after the plan was confirmed" in str(row["outcome"])
    assert "does not exist" in str(row["outcome"])


def test_an_edit_that_does_not_change_what_runs_does_not_stop_it(ops: Path) -> None:
    def edit(folder: Path) -> None:
        with (folder / "opstui.toml").open("a") as f:
            f.write('\n[pipelines.other]\nkind = "devops"\n')
            f.write('stages = [{ name = "x", run = ["true"] }]\n')

    run_id = confirm_then(ops, edit)
    assert (ops / "trace").read_text().splitlines() == ["build", "train staging"]
    with Store(ops / "ops.db") as store:
        assert history.get_run(store, run_id).status == st.SUCCEEDED
        plan = list_actions(store)[0].plan
    # The digest is of the file the plan came from, not of the edited one.
    assert len(plan["config_digest"]) == 64


ARGS = """
[pipelines.args]
kind = "devops"
[[pipelines.args.stages]]
name = "show"
run = ["sh", "show.sh", "{environment}", "{version}", "{run_id}-{attempt}", "{store}", "${HOME}",
       "{stage}@{pipeline}"]
env = { DEPLOY_TOKEN = "not stored" }
timeout = 30
"""


def test_an_unedited_plan_runs_exactly_the_stored_argument_lists(tmp_path: Path) -> None:
    write_config(tmp_path, ARGS)
    (tmp_path / "show.sh").write_text("printf '%s\\n' \"$@\" > args\n")
    # A value holding a placeholder stays that text: one substitution pass, as before.
    result = run_cli(
        "run", "args", "-e", "staging", "--version", "{store}}{{x", "--yes", "--json", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    run_id = json.loads(result.stdout)["run_id"]
    with Store(tmp_path / "ops.db") as store:
        (action,) = list_actions(store)
        run = history.get_run(store, run_id)
    (stage,) = (StagePlan.from_dict(s) for s in action.plan["stages"])
    assert (stage.env, stage.timeout, stage.workdir) == (("DEPLOY_TOKEN",), 30.0, str(tmp_path))
    assert "not stored" not in json.dumps(action.plan)  # names only, never values
    store_path = str((tmp_path / "ops.db").resolve())
    ran = fill_argv(stage.argv, {"run_id": run_id, "attempt": run.attempt, "store": store_path})
    assert (tmp_path / "args").read_text().splitlines() == ran[2:]
    assert ran[2:] == [
        "staging",
        "{store}}{{x",
        f"{run_id}-1",
        store_path,
        "${HOME}",
        "show@args",
    ]


def test_runner_modules_import_no_cycle_and_no_runner_module_lazily() -> None:
    # actions -> execute -> registry -> actions was hidden by a lazy import;
    # the plan types now live in runner/plan.py, which all three import.
    folder = Path(__file__).parents[1] / "src" / "opstui" / "runner"
    graph: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found = graph.setdefault(path.stem, set())
        for node in ast.walk(tree):
            module = node.module or "" if isinstance(node, ast.ImportFrom) else ""
            if isinstance(node, ast.ImportFrom) and module.startswith("opstui.runner"):
                names = [a.name for a in node.names] if module == "opstui.runner" else []
                names += [module.rpartition(".")[2]]
                assert node.col_offset == 0, f"{path.name} imports {node.module} lazily"
                found.update(n for n in names if (folder / f"{n}.py").exists())

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n}))
                   for n in graph[start])  # fmt: skip

    assert not [m for m in graph if reaches(m, m, {m})]


def test_a_plan_records_the_config_it_was_made_from_not_the_file_now(ops: Path) -> None:
    # A console loads opstui.toml at start and plans from it later: the plan's
    # digest is of that text, so the audit row says what the plan came from.
    import hashlib

    path = ops / "opstui.toml"
    loaded = path.read_bytes()
    config = load_config(path)
    path.write_text(path.read_text() + "\n# edited while the console ran\n")
    plan = plan_run(config, "web", environment="staging")
    assert plan.config_digest == hashlib.sha256(loaded).hexdigest()
    assert plan.config_digest != hashlib.sha256(path.read_bytes()).hexdigest()
