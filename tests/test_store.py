"""Opening stores: schema, pragmas, and every kind of bad file."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from opstui.store import SCHEMA_VERSION, NotAStore, Store, StoreMissing, StoreTooNew
from opstui.store import runs as store_runs

from .conftest import run_cli

EXPECTED_TABLES = {
    "pipelines",
    "runs",
    "stage_runs",
    "log_lines",
    "series",
    "metric_samples",
    "models",
    "model_versions",
    "deployments",
    "feature_batches",
    "drift_results",
    "drift_references",
    "drift_checks",
    "actions",
    "watermarks",
}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_new_store_has_schema_and_pragmas(store: Store) -> None:
    conn = store.conn
    if store.dialect == "postgresql":
        listed = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        tables = {r[0] for r in conn.execute(listed)}
        assert tables >= EXPECTED_TABLES
        version = "SELECT max(version) FROM opstui_schema"
        assert conn.execute(version).fetchone()[0] == SCHEMA_VERSION
        return
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables >= EXPECTED_TABLES
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_foreign_keys_are_enforced(store: Store) -> None:
    import psycopg

    with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)), store.write() as tx:
        tx.execute(
            "INSERT INTO stage_runs(run_id, name, position, status) VALUES (999, 'x', 0, 'pending')"
        )


def test_reopening_does_not_migrate_again(store_path: Path) -> None:
    Store(store_path).close()
    before = digest(store_path)
    Store(store_path).close()
    assert digest(store_path) == before


def test_older_store_is_migrated_forward(store_path: Path) -> None:
    # A store from before any migration (user_version 0, an empty database)
    # is brought up to date on open.
    sqlite3.connect(store_path).execute("CREATE TABLE unrelated(x)").connection.close()
    with Store(store_path) as s:
        assert s.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_v4_store_gains_watermarks_and_keeps_its_samples(store_path: Path) -> None:
    # A store as opstui wrote it before watermarks (schema v4), holding a
    # range query's points: migrated forward, the points stay, and the query
    # goes on from its last point instead of fetching the hour again.
    import sqlite_utils

    from opstui.store.metrics import read_watermarks
    from opstui.store.schema import MIGRATIONS

    conn = sqlite3.connect(store_path)
    db = sqlite_utils.Database(conn)
    for migration in MIGRATIONS[:4]:
        migration(db)
    conn.execute("INSERT INTO series(id, source, name) VALUES (1, 'endpoint/prom', 'total')")
    conn.executemany(
        "INSERT INTO metric_samples(series_id, ts, value) VALUES (1, ?, ?)",
        [(1_800_000_000.0 + i, float(i)) for i in range(3)],
    )
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()
    with Store(store_path) as s:
        assert s.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert s.conn.execute("SELECT count(*) FROM metric_samples").fetchone()[0] == 3
        assert s.conn.execute("SELECT count(*) FROM watermarks").fetchone()[0] == 0
        assert read_watermarks(s, "endpoint/prom", ["total", "new"]) == {"total": 1_800_000_002.0}


def test_missing_store_for_reading_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.db"
    with pytest.raises(StoreMissing, match="no run store at"):
        Store(path, create=False)
    assert not path.exists()


def test_missing_store_is_created_by_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "new.db"
    with Store(path) as s:
        store_runs.create_run(s, "p")
    assert path.exists()


def test_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 50)
    before = digest(path)
    with pytest.raises(NotAStore, match="not an SQLite database"):
        Store(path)
    assert digest(path) == before
    assert not (tmp_path / "notes.db-wal").exists()


def test_store_newer_than_code_is_refused_untouched(store_path: Path) -> None:
    Store(store_path).close()
    conn = sqlite3.connect(store_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    before = digest(store_path)
    with pytest.raises(StoreTooNew, match=f"schema version {SCHEMA_VERSION + 5}"):
        Store(store_path)
    assert digest(store_path) == before


def test_directory_as_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotAStore, match="is a directory"):
        Store(tmp_path)


@pytest.mark.parametrize(
    ("prepare", "expected"),
    [
        ("missing", "no run store at"),
        ("garbage", "is not an SQLite database"),
        ("newer", "this opstui knows up to"),
    ],
)
def test_cli_reports_bad_store_in_one_line(tmp_path: Path, prepare: str, expected: str) -> None:
    path = tmp_path / "s.db"
    if prepare == "garbage":
        path.write_bytes(b"\x00\x01garbage" * 100)
    elif prepare == "newer":
        Store(path).close()
        c = sqlite3.connect(path)
        c.execute("PRAGMA user_version = 99")
        c.close()
    result = run_cli("status", "--store", path)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_writer_held_too_long_gives_a_clear_busy_error(store_path: Path) -> None:
    from opstui.store import StoreBusy

    Store(store_path).close()
    hog = sqlite3.connect(store_path, isolation_level=None)
    hog.execute("BEGIN IMMEDIATE")
    try:
        with Store(store_path, busy_timeout=0.2) as s, pytest.raises(StoreBusy) as info:
            store_runs.create_run(s, "p")
        assert "stayed locked" in str(info.value)
        assert "retry" in str(info.value)
    finally:
        hog.execute("ROLLBACK")
        hog.close()


def test_a_second_store_in_one_process_keeps_the_first_ones_locks(store_path: Path) -> None:
    # Regression: reading the file's header with Python's open()/close()
    # dropped the POSIX locks of the process's open connection; the next
    # process to close its connection then deleted the WAL under it, and
    # later writes were lost (or the store corrupted).
    import subprocess
    import sys

    first = Store(store_path)
    store_runs.create_run(first, "before")
    Store(store_path).close()  # e.g. the runner's heartbeat connection
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"from opstui.store import Store; Store({str(store_path)!r}).close()",
        ],
        check=True,
    )
    assert Path(f"{store_path}-wal").exists(), "the WAL was deleted under an open connection"
    store_runs.create_run(first, "after")
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from opstui.store import Store\n"
            f"s = Store({str(store_path)!r})\n"
            "print(sorted(r[0] for r in s.conn.execute('SELECT name FROM pipelines')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "['after', 'before']"
    first.close()
