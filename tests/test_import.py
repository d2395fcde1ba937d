"""``opstui import``: the JSONL history format, atomic and idempotent."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from opstui.store import Store, history, metrics, models
from opstui.store.dashboard import Dashboard
from opstui.store.importer import ImportFailed, import_files

from .conftest import run_cli

T0 = "2026-11-01T10:00:00Z"


def write_jsonl(path: Path, records: list[dict[str, Any] | str]) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records),
        encoding="utf-8",
    )
    return path


def small_history(tmp_path: Path) -> Path:
    folder = tmp_path / "history"
    folder.mkdir()
    write_jsonl(
        folder / "pipelines.jsonl",
        [{"type": "pipeline", "name": "web-api", "kind": "devops", "stages": ["build", "test"]}],
    )
    write_jsonl(
        folder / "runs.jsonl",
        [
            # The retry comes first in the file: parents are linked after all runs load.
            {
                "type": "run",
                "key": "web-api/2",
                "pipeline": "web-api",
                "status": "succeeded",
                "trigger": "retry",
                "parent": "web-api/1",
                "attempt": 2,
                "started_at": "2026-11-01T10:20:00Z",
                "finished_at": "2026-11-01T10:25:00Z",
                "stages": [
                    {"name": "build", "status": "succeeded", "exit_code": 0},
                    {"name": "test", "status": "succeeded", "exit_code": 0},
                ],
            },
            {
                "type": "run",
                "key": "web-api/1",
                "pipeline": "web-api",
                "status": "failed",
                "trigger": "push",
                "started_at": T0,
                "finished_at": "2026-11-01T10:10:00Z",
                "message": "stage test failed",
                "stages": [
                    {
                        "name": "build",
                        "status": "succeeded",
                        "exit_code": 0,
                        "started_at": T0,
                        "finished_at": "2026-11-01T10:04:00Z",
                        "logs": ["compiling", {"line": "done", "stream": "stderr"}],
                    },
                    {"name": "test", "status": "failed", "exit_code": 1, "message": "boom"},
                ],
            },
        ],
    )
    write_jsonl(
        folder / "models.jsonl",
        [
            {
                "type": "model_version",
                "model": "churn",
                "version": "1",
                "status": "production",
                "metrics": {"auc": 0.8},
                "run": "web-api/2",
                "created_at": T0,
            }
        ],
    )
    write_jsonl(
        folder / "deployments.jsonl",
        [
            {
                "type": "deployment",
                "key": "d1",
                "environment": "production",
                "target": "web-api",
                "version": "1.0",
                "deployed_at": T0,
            },
            {
                "type": "deployment",
                "key": "d2",
                "environment": "production",
                "target": "web-api",
                "version": "0.9",
                "action": "rollback",
                "replaces": "d1",
                "deployed_at": "2026-11-01T11:00:00Z",
            },
        ],
    )
    write_jsonl(
        folder / "metrics.jsonl",
        [
            {
                "type": "metrics",
                "key": "m1",
                "source": "endpoint/web",
                "name": "http_requests_total",
                "labels": {"code": "5xx"},
                "points": [[1_800_000_000, 1], [1_800_000_060, 3]],
            }
        ],
    )
    write_jsonl(
        folder / "features.jsonl",
        [
            {
                "type": "features",
                "key": "f1",
                "model": "churn",
                "kind": "reference",
                "version": "1",
                "created_at": T0,
                "columns": {"tenure": [1, 2, None], "plan": ["a", "b", "a"]},
            }
        ],
    )
    return folder


def counts(store: Store) -> dict[str, int]:
    tables = ["pipelines", "runs", "stage_runs", "log_lines", "metric_samples"]
    tables += ["model_versions", "deployments", "feature_batches"]
    return {t: store.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def test_import_loads_every_record_type(tmp_path: Path, store: Store) -> None:
    summary = import_files(store, [small_history(tmp_path)])
    assert summary.added == {
        "pipeline": 1,
        "run": 2,
        "model_version": 1,
        "deployment": 2,
        "metrics": 1,
        "features": 1,
    }
    runs = history.run_history(store, "web-api")
    assert [(r.key, r.status, r.attempt) for r in runs] == [
        ("web-api/2", "succeeded", 2),
        ("web-api/1", "failed", 1),
    ]
    assert runs[0].parent_run_id == runs[1].id
    build = runs[1].stages[0]
    logs = history.stage_logs(store, build.id)
    assert [(x.stream, x.line) for x in logs] == [("log", "compiling"), ("stderr", "done")]
    assert all(build.started_at <= x.ts <= build.finished_at for x in logs)  # type: ignore[operator]
    (dep,) = models.current_deployments(store, "web-api")
    assert (dep.version, dep.action, dep.replaced_version) == ("0.9", "rollback", "1.0")
    assert models.model_versions(store, "churn")[0].run_id == runs[0].id
    (series,) = metrics.find_series(store, "endpoint/web")
    assert series.labels == {"code": "5xx"}
    assert len(metrics.samples(store, series.id)) == 2


def test_importing_twice_adds_nothing(tmp_path: Path, store: Store) -> None:
    folder = small_history(tmp_path)
    import_files(store, [folder])
    before = counts(store)
    again = import_files(store, [folder])
    assert sum(again.added.values()) == 0
    assert sum(again.skipped.values()) == 8
    assert counts(store) == before


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"type": "spaceship"}', '"type" must be one of'),
        ('{"type": "run", "key": "k", "status": "failed"}', 'missing "pipeline"'),
        (
            '{"type": "run", "key": "k", "pipeline": "p", "status": "exploded", '
            '"started_at": "2026-11-01T10:00:00Z"}',
            '"status" must be one of',
        ),
        (
            '{"type": "run", "key": "k", "pipeline": "p", "status": "failed", '
            '"started_at": "2026-11-01 10:00"}',
            "no timezone",
        ),
        (
            '{"type": "metrics", "key": "k", "source": "s", "name": "n", "points": [[1]]}',
            "must be [unix_seconds, value]",
        ),
    ],
)
def test_malformed_line_is_reported_and_nothing_is_imported(
    tmp_path: Path, store: Store, bad_line: str, reason: str
) -> None:
    folder = small_history(tmp_path)
    runs_file = folder / "runs.jsonl"
    lines = runs_file.read_text().splitlines()
    runs_file.write_text("\n".join([lines[0], bad_line, lines[1]]) + "\n")
    with pytest.raises(ImportFailed) as info:
        import_files(store, [folder])
    assert "nothing was imported" in str(info.value)
    (detail,) = info.value.details
    assert detail.startswith(f"{runs_file}:2: ")
    assert reason in detail
    assert all(n == 0 for n in counts(store).values())


def test_dangling_reference_rolls_back_everything(tmp_path: Path, store: Store) -> None:
    folder = small_history(tmp_path)
    write_jsonl(
        folder / "zz.jsonl",
        [
            {
                "type": "model_version",
                "model": "m",
                "version": "9",
                "run": "no-such-run",
                "created_at": T0,
            }
        ],
    )
    with pytest.raises(ImportFailed, match=r"zz\.jsonl:1: refers to run 'no-such-run'"):
        import_files(store, [folder])
    assert all(n == 0 for n in counts(store).values())


def test_shift_to_now_moves_history(tmp_path: Path, store: Store) -> None:
    summary = import_files(store, [small_history(tmp_path)], shift_to=1_900_000_000)
    assert summary.shifted_by > 0
    (row,) = Dashboard(store).read()
    assert row.latest is not None
    assert row.latest.finished_at is not None
    assert row.latest.finished_at <= 1_900_000_000


def test_cli_import_reports_file_and_line_and_exits_2(tmp_path: Path) -> None:
    folder = small_history(tmp_path)
    write_jsonl(folder / "runs.jsonl", ['{"type": "run"'])
    store_path = tmp_path / "s.db"
    result = run_cli("import", folder, "--store", store_path)
    assert result.returncode == 2
    assert f"{folder / 'runs.jsonl'}:1: not valid JSON" in result.stderr
    assert not store_path.exists(), "a failed import must not leave an empty store behind"


def test_cli_import_is_idempotent(tmp_path: Path) -> None:
    folder = small_history(tmp_path)
    store_path = tmp_path / "s.db"
    first = run_cli("import", folder, "--store", store_path)
    assert first.returncode == 0, first.stderr
    assert "2 runs" in first.stdout
    second = run_cli("import", folder, "--store", store_path)
    assert second.returncode == 0
    assert "nothing new" in second.stdout
    assert "8 already present" in second.stdout


def test_cli_import_missing_path(tmp_path: Path) -> None:
    result = run_cli("import", tmp_path / "nowhere", "--store", tmp_path / "s.db")
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_a_record_repeated_in_one_import_is_reported(tmp_path: Path, store: Store) -> None:
    folder = small_history(tmp_path)
    runs_file = folder / "runs.jsonl"
    first = runs_file.read_text().splitlines()[0]
    with runs_file.open("a") as f:
        f.write(first.replace('"succeeded"', '"failed"', 1) + "\n")
    with pytest.raises(ImportFailed) as info:
        import_files(store, [folder])
    (detail,) = info.value.details
    assert re.search(r"runs\.jsonl:3: duplicates the record on .*runs\.jsonl:1", detail)
    assert all(n == 0 for n in counts(store).values())


@pytest.mark.parametrize("value", ["null", '"soon"', "-5"])
def test_bad_heartbeat_timeout_is_a_line_error(tmp_path: Path, value: str) -> None:
    folder = small_history(tmp_path)
    runs_file = folder / "runs.jsonl"
    lines = runs_file.read_text().splitlines()
    lines[0] = lines[0].replace('"status":', f'"heartbeat_timeout": {value}, "status":', 1)
    runs_file.write_text("\n".join(lines) + "\n")
    store_path = tmp_path / "s.db"
    result = run_cli("import", folder, "--store", store_path)
    if value == "null":  # null means "not given": accepted
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2
    assert f"{runs_file}:1: run" in result.stderr
    assert "heartbeat_timeout" in result.stderr
    assert not store_path.exists()
