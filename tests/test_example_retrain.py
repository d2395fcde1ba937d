"""examples/diagnosis end to end: the real ``opstui retrain diagnosis``, four times.

The example is copied to a temporary directory (its store, work files and
artifacts stay out of the repository) and retrained in order: on an empty
store, again, with a gate no model can pass, and with bad data. Each phase
keeps what the store held right after it, so each test reads one phase.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opstui.store import Store, history
from opstui.store import models as store_models
from opstui.store import status as st
from opstui.store.rows import DeploymentRow, ModelVersionRow, RunRow

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "diagnosis"
STAGES = ["data", "validate", "train", "evaluate", "deploy"]

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Phase:
    """One ``opstui retrain`` and the store right after it."""

    result: subprocess.CompletedProcess[str]
    run: RunRow
    logs: dict[str, list[str]]  # stage name -> its log lines
    versions: list[ModelVersionRow]  # newest first
    deployments: list[DeploymentRow]  # to production, newest first
    reference_batches: list[tuple[int, str, str | None, float, int]]

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr

    def production(self) -> list[str]:
        return [v.version for v in self.versions if v.status == "production"]


def retrain(example: Path, **env: str) -> Phase:
    return act(example, ["retrain", "diagnosis"], **env)


def act(example: Path, args: list[str], **env: str) -> Phase:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSTUI_", "DIAGNOSIS_"))}
    # A PATH without this virtualenv: the stages must find their interpreter
    # through {python}, not through PATH.
    full_env["PATH"] = "/usr/bin:/bin"
    full_env.update(env)
    argv = [*args, "--yes", "--config", str(example / "opstui.toml")]
    result = subprocess.run(
        [sys.executable, "-m", "opstui", *argv],
        cwd=example,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    store_path = example / "opstui.db"
    try:
        with contextlib.closing(sqlite3.connect(store_path)) as conn:
            integrity = str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        integrity = str(exc)
    assert integrity == "ok", f"the run store is damaged after a retrain: {integrity}"
    with Store(store_path, create=False) as store:
        run = history.run_history(store, "diagnosis-model", limit=1)[0]
        return Phase(
            result=result,
            run=run,
            logs={s.name: [x.line for x in history.stage_logs(store, s.id)] for s in run.stages},
            versions=store_models.model_versions(store, "diagnosis"),
            deployments=store_models.deployment_history(store, "diagnosis", "production"),
            reference_batches=store_models.feature_batches(store, "diagnosis", kind="reference"),
        )


@pytest.fixture(scope="module")
def phases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    example = tmp_path_factory.mktemp("diagnosis")
    generated = shutil.ignore_patterns("work", "artifacts", "opstui.db*", "__pycache__")
    shutil.copytree(EXAMPLE, example, dirs_exist_ok=True, ignore=generated)
    out: dict[str, Any] = {"first": retrain(example), "second": retrain(example)}
    config = example / "opstui.toml"
    original = config.read_text(encoding="utf-8")
    assert "min_improvement = 0.002\n" in original
    config.write_text(original.replace("min_improvement = 0.002", "min_improvement = 1.0"))
    out["impossible_gate"] = retrain(example)
    config.write_text(original)
    out["bad_data"] = retrain(example, DIAGNOSIS_INJECT_BAD_DATA="1")
    config.write_text(original.replace("min_improvement = 0.002", "min_improvement = -1.0"))
    out["always_gate"] = retrain(example)
    config.write_text(original)
    out["served_before_rollback"] = (example / "artifacts" / "production.pkl").read_bytes()
    out["rollback"] = act(example, ["rollback", "production", "--model", "diagnosis"])
    out["served_after_rollback"] = (example / "artifacts" / "production.pkl").read_bytes()
    out["example"] = example
    return out


def test_first_retrain_promotes_version_1_and_deploys_it(phases: dict[str, Any]) -> None:
    p = phases["first"]
    assert p.result.returncode == 0, p.output
    assert p.run.status == st.SUCCEEDED
    assert [(s.name, s.status) for s in p.run.stages] == [(n, st.SUCCEEDED) for n in STAGES]
    [v1] = p.versions
    assert (v1.version, v1.status, v1.run_id) == ("1", "production", p.run.id)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", v1.data_hash or "")
    assert re.fullmatch(r"git:[0-9a-f]+|sha256:[0-9a-f]{12}", v1.code_version or "")
    assert v1.params["artifact"] == f"artifacts/run-{p.run.id}.pkl"
    assert {"roc_auc", "f1", "precision", "recall", "log_loss"} <= set(v1.metrics)
    assert 0.9 < v1.metrics["roc_auc"] <= 1.0
    assert v1.gate is not None
    assert v1.gate["passed"] is True
    assert v1.gate["production"] is None
    assert v1.gate["against_version"] is None
    assert "no production version yet" in v1.gate["reason"]
    [deployment] = p.deployments
    assert (deployment.version, deployment.status, deployment.target_kind) == (
        "1",
        "succeeded",
        "model",
    )
    assert deployment.run_id == p.run.id
    [(_, kind, version, _, n_rows)] = p.reference_batches
    assert (kind, version) == ("reference", "1")
    assert 0 < n_rows <= 1000
    assert "deployed diagnosis v1 to production" in p.result.stdout


def test_second_retrain_is_gated_against_version_1_on_the_same_rows(
    phases: dict[str, Any],
) -> None:
    first, p = phases["first"], phases["second"]
    assert p.result.returncode == 0, p.output
    assert p.run.status == st.SUCCEEDED
    v2, v1 = p.versions
    assert (v2.version, v2.run_id) == ("2", p.run.id)
    assert v2.data_hash != first.versions[0].data_hash  # a fresh training sample
    gate = v2.gate
    assert gate is not None
    assert (gate["metric"], gate["min_improvement"], gate["against_version"]) == (
        "roc_auc",
        0.002,
        "1",
    )
    assert gate["candidate"] == v2.metrics["roc_auc"]
    # Version 1 was scored again on the held-out rows, and scored as it did
    # when it was recorded: both versions met the same data.
    assert gate["production"] == pytest.approx(v1.metrics["roc_auc"], abs=1e-12)
    passed = gate["candidate"] - gate["production"] >= 0.002
    assert gate["passed"] is passed
    assert p.production() == (["2"] if passed else ["1"])
    assert v2.status == ("production" if passed else "candidate")
    assert v1.status == ("archived" if passed else "production")
    assert [d.version for d in p.deployments] == (["2", "1"] if passed else ["1"])
    if passed:
        assert "deployed diagnosis v2 to production" in p.result.stdout
    else:
        assert f"gate not passed: {gate['reason']}; version 2 stays a candidate" in p.result.stdout


def test_a_failed_gate_leaves_the_version_a_candidate_and_the_run_succeeded(
    phases: dict[str, Any],
) -> None:
    before, p = phases["second"], phases["impossible_gate"]
    assert p.result.returncode == 0, p.output  # a failed gate is not a failed run
    assert p.run.status == st.SUCCEEDED
    v3 = p.versions[0]
    assert (v3.version, v3.status) == ("3", "candidate")
    assert v3.gate is not None
    assert v3.gate["passed"] is False
    assert v3.gate["min_improvement"] == 1.0
    assert v3.gate["against_version"] == before.production()[0]
    assert v3.gate["reason"].endswith("< the required 1.0000")
    assert p.production() == before.production()
    assert p.deployments == before.deployments
    assert "version 3 stays a candidate" in "\n".join(p.logs["deploy"])


def test_bad_data_fails_the_run_at_validate_and_records_no_version(
    phases: dict[str, Any],
) -> None:
    before, p = phases["impossible_gate"], phases["bad_data"]
    assert p.result.returncode == 1, p.output
    assert p.run.status == st.FAILED
    assert [(s.name, s.status) for s in p.run.stages] == [
        ("data", st.SUCCEEDED),
        ("validate", st.FAILED),
        ("train", st.SKIPPED),
        ("evaluate", st.SKIPPED),
        ("deploy", st.SKIPPED),
    ]
    message = "invalid data: training data has 5 NaN/inf values in mean radius"
    assert any(message in line for line in p.logs["validate"]), p.logs["validate"]
    assert message in p.result.stderr  # shown to the operator as it happened
    assert p.versions == before.versions
    assert p.deployments == before.deployments


def test_model_rollback_swaps_the_served_model_back(phases: dict[str, Any]) -> None:
    promoted: Phase = phases["always_gate"]
    assert promoted.result.returncode == 0, promoted.output
    newest = promoted.versions[0]
    assert newest.status == "production"
    rolled: Phase = phases["rollback"]
    assert rolled.result.returncode == 0, rolled.output
    assert rolled.run.trigger == "rollback"
    now = rolled.deployments[0]
    assert (now.action, now.replaced_version) == ("rollback", newest.version)
    assert now.version != newest.version
    assert rolled.production() == [now.version]
    # The served file is the earlier version's artifact again.
    example: Path = phases["example"]
    earlier = next(v for v in rolled.versions if v.version == now.version)
    assert phases["served_after_rollback"] == (example / earlier.params["artifact"]).read_bytes()
    assert phases["served_after_rollback"] != phases["served_before_rollback"]
