"""The bundled history: regenerable, importable, and as realistic as promised."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from opstui.store import Store, models
from opstui.store import status as st
from opstui.store.dashboard import Dashboard
from opstui.store.importer import import_files

from .conftest import ROOT, SAMPLE_RUNS

DAY = 86_400.0


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("sample") / "sample.db"
    with Store(path) as store:
        import_files(store, [SAMPLE_RUNS])
        yield store


def scalar(store: Store, sql: str) -> int:
    return int(store.conn.execute(sql).fetchone()[0])


@pytest.mark.slow
def test_committed_files_match_the_generator(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_sample_runs.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    committed = sorted(p.name for p in SAMPLE_RUNS.glob("*.jsonl"))
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == committed
    _, mismatch, errors = filecmp.cmpfiles(SAMPLE_RUNS, tmp_path, committed, shallow=False)
    assert (mismatch, errors) == ([], []), "run scripts/make_sample_runs.py and commit"


def test_four_pipelines_of_both_kinds_over_two_weeks(sample_store: Store) -> None:
    rows = {p.name: p for p in Dashboard(sample_store).read()}
    kinds = sorted(p.kind or "" for p in rows.values())
    assert len(rows) >= 4
    assert kinds.count("devops") >= 2
    assert kinds.count("mlops") >= 2
    span = scalar(sample_store, "SELECT max(created_at) - min(created_at) FROM runs")
    assert span >= 14 * DAY
    for p in rows.values():
        assert p.latest is not None
        assert len(p.latest.stages) == 6


def test_history_has_the_failures_an_operator_meets(sample_store: Store) -> None:
    failed_stages = {
        r[0]
        for r in sample_store.conn.execute(
            "SELECT DISTINCT name FROM stage_runs WHERE status = 'failed'"
        )
    }
    assert "test" in failed_stages
    assert "validate" in failed_stages
    # Retries point at the run they retry and count attempts.
    retries = sample_store.conn.execute(
        """SELECT c.attempt, p.attempt, p.status FROM runs c JOIN runs p ON p.id = c.parent_run_id
           WHERE c.trigger = 'retry'"""
    ).fetchall()
    assert retries
    assert all(child == parent + 1 for child, parent, _ in retries)
    assert all(status == st.FAILED for _, _, status in retries)
    # A failed production deploy followed by a rollback that names what it replaced.
    rollback = sample_store.conn.execute(
        """SELECT d.version, r.version, bad.status, fix.trigger FROM deployments d
           JOIN deployments r ON r.id = d.replaces_id
           JOIN runs bad ON bad.id = r.run_id
           JOIN runs fix ON fix.id = d.run_id
           WHERE d.action = 'rollback' AND d.environment = 'production'"""
    ).fetchall()
    assert rollback
    for new, old, bad_run, trigger in rollback:
        assert new != old
        assert (bad_run, trigger) == (st.FAILED, "rollback")


def test_models_deployments_metrics_and_features(sample_store: Store) -> None:
    for model in ("churn", "fraud"):
        versions = models.model_versions(sample_store, model)
        assert len(versions) >= 3
        assert [v.status for v in versions].count("production") == 1
        assert all(v.metrics and v.data_hash and v.code_version for v in versions)
        envs = {d.environment for d in models.current_deployments(sample_store, model)}
        assert envs >= {"staging", "production"}
        kinds = {b[1] for b in models.feature_batches(sample_store, model, limit=1000)}
        assert kinds == {"reference", "current"}
    assert any(
        v.status == "rejected" and v.gate and v.gate.get("passed") is False
        for v in models.model_versions(sample_store, "fraud")
    )
    assert scalar(sample_store, "SELECT count(*) FROM series WHERE source LIKE 'endpoint/%'") >= 3
    assert scalar(sample_store, "SELECT count(*) FROM metric_samples") >= 10_000
