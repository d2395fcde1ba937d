"""``opstui models`` on the sample store: the table at 80 columns, --json, errors.

The same command on models synced from a real MLflow server is in test_mlflow.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opstui.config import Config
from opstui.views.snapshot import SnapshotReader

from .conftest import SAMPLE_RUNS, run_cli


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "sample.db"
    result = run_cli("import", SAMPLE_RUNS, "--store", path)
    assert result.returncode == 0, result.stderr
    return path


def test_models_text_fits_80_columns(sample_store: Path) -> None:
    result = run_cli("models", "--store", sample_store, env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), result.stdout
    assert lines[0] == "MODEL churn"
    assert lines[1].split() == ["VER", "STATUS", "GATE", "METRICS", "DATA", "CODE", "AGE"]
    # Newest first, with its gate verdict, metrics, data hash and code version.
    assert lines[2].split()[:6] == ["6", "candidate", "pass", "auc=0.8659", "f1=0.637", "4456fa6a"]
    assert lines[2].split()[6] == "git:aaccb16"
    assert "  ... 1 older version (--json has all)" in lines
    assert any(line.startswith("  production: v5, deploy") for line in lines)
    assert any(line.startswith("  staging: v6, deploy") for line in lines)
    assert "  drift: never checked" in lines
    assert "MODEL fraud" in lines
    (rejected,) = [line for line in lines if line.split()[:3] == ["4", "rejected", "fail"]]
    assert rejected


def test_models_json_has_every_version_deployment_and_drift(sample_store: Path) -> None:
    result = run_cli("models", "fraud", "--json", "--store", sample_store)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"schema", "generated_at", "store", "models"}
    assert doc["schema"] == 1
    (fraud,) = doc["models"]
    assert set(fraud) == {"name", "latest_version", "versions", "deployments", "drift"}
    assert (fraud["name"], fraud["latest_version"], fraud["drift"]) == ("fraud", "6", None)
    assert [v["version"] for v in fraud["versions"]] == ["6", "5", "4", "3", "2", "1"]
    v4 = fraud["versions"][2]
    assert set(v4) == {
        "version",
        "status",
        "created_at",
        "run_id",
        "metrics",
        "params",
        "data_hash",
        "code_version",
        "gate_verdict",
        "gate",
    }
    assert (v4["status"], v4["gate_verdict"], v4["gate"]["passed"]) == ("rejected", "fail", False)
    assert v4["data_hash"].startswith("sha256:")
    assert v4["code_version"].startswith("git:")
    assert "auc" in v4["metrics"]
    deployed = {d["environment"]: d for d in fraud["deployments"]}
    assert (deployed["production"]["version"], deployed["staging"]["version"]) == ("5", "6")
    assert deployed["production"]["alias"] is None  # recorded by opstui, not an MLflow alias


def test_models_json_carries_the_latest_drift_check(sample_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "drift.db"
    store.write_bytes(sample_store.read_bytes())
    check = run_cli("drift", "churn", "--store", store, timeout=120)
    assert check.returncode in (0, 1), check.stderr
    doc = json.loads(run_cli("models", "churn", "--json", "--store", store).stdout)
    drift = doc["models"][0]["drift"]
    assert drift is not None
    assert drift["version"] == "5"  # checked against what serves production
    assert drift["features"] >= len(drift["drifted_features"])
    assert 0 <= drift["drift_share"] <= 1
    text = run_cli("models", "churn", "--store", store, env={"COLUMNS": "80"}).stdout
    assert f"  drift: {'DRIFT' if drift['drifted'] else 'ok'} on v5, " in text
    # The console's models panel reads the same: same newest version, same drift share.
    (summary,) = [m for m in SnapshotReader(store, Config()).snapshot().models if m.name == "churn"]
    assert (summary.latest_version, summary.drift_share) == ("6", drift["drift_share"])
    assert list(summary.drifted) == drift["drifted_features"]


def test_an_unknown_model_is_one_line_and_exit_2(sample_store: Path) -> None:
    result = run_cli("models", "nope\x1b[31m", "--store", sample_store)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("opstui: no model named 'nope\\x1b[31m' in ")
    assert "\x1b" not in result.stderr


def test_models_on_a_store_without_models_says_how_to_get_some(tmp_path: Path) -> None:
    store = tmp_path / "empty.db"
    run_cli("import", SAMPLE_RUNS / "pipelines.jsonl", "--store", store)
    result = run_cli("models", "--store", store)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("No models in ")
    assert json.loads(run_cli("models", "--json", "--store", store).stdout)["models"] == []
