"""``opstui store copy`` and ``opstui store check``, between SQLite and a real PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opstui.store import Store
from opstui.store import runs as store_runs
from opstui.store.copy import NotACopy, copy_store
from opstui.store.dashboard import Dashboard
from opstui.store.tables import TABLES, columns, present

from .conftest import SAMPLE_RUNS, run_cli
from .pg_server import PgServer


def rows_of(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """Every copied table's rows, ordered by key, without the revision stamps."""
    out: dict[str, list[tuple[object, ...]]] = {}
    for t in TABLES:
        if not t.copied:
            continue
        names = [c for c in columns(store, t.name) if c != "rev"]
        rows = store.query(f"SELECT {', '.join(names)} FROM {t.name} ORDER BY {', '.join(t.key)}")
        out[t.name] = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows]
    out["imported"] = [r for r in out["imported"] if not str(r[0]).startswith("copy-of:")]
    return out


def sample_store(path: Path) -> Path:
    result = run_cli("import", SAMPLE_RUNS, "--store", path)
    assert result.returncode == 0, result.stderr
    return path


def test_every_table_of_the_schema_is_copied_or_named(store: Store) -> None:
    assert present(store) - {"opstui_schema", "sqlite_sequence"} == {t.name for t in TABLES}


def test_a_history_goes_to_postgresql_and_back_unchanged(tmp_path: Path, pg_url: str) -> None:
    lite = sample_store(tmp_path / "a.db")
    with Store(lite) as a, Store(pg_url) as pg:
        seen: list[tuple[str, int, int]] = []
        summary = copy_store(a, pg, on_progress=lambda t, d, n: seen.append((t, d, n)))
        original = rows_of(a)
        assert rows_of(pg) == original
        assert summary.total == sum(len(v) for v in original.values())
        assert ("runs", len(original["runs"]), len(original["runs"])) in seen
        # The dashboards agree, and the copy's ids go on after the copied ones.
        assert [p.name for p in Dashboard(pg).read()] == [p.name for p in Dashboard(a).read()]
        new_id, _ = store_runs.create_run(pg, "after-the-copy")
        assert new_id == max(int(str(r[0])) for r in original["runs"]) + 1
    back = tmp_path / "back.db"
    with Store(pg_url) as pg, Store(back) as b:
        copy_store(pg, b)
        expected = rows_of(pg)
        assert rows_of(b) == expected


def test_copying_again_updates_the_copy_and_adds_nothing_twice(tmp_path: Path, pg_url: str) -> None:
    lite = sample_store(tmp_path / "a.db")
    with Store(lite) as a, Store(pg_url) as pg:
        copy_store(a, pg)
        again = copy_store(a, pg)
        assert again.again
        assert rows_of(pg) == rows_of(a)
        # The source moves on: a run finishes, another starts.
        run_id, _ = store_runs.create_run(a, "late", stages=["x"])
        store_runs.finish_run(a, run_id, status="failed", message="late failure")
        dash = Dashboard(pg)
        dash.read()
        copy_store(a, pg)
        assert rows_of(pg) == rows_of(a)
        # A console already watching the copy sees the new run at its next read.
        late = {p.name: p for p in dash.read()}["late"]
        assert late.status == "failed"


def test_a_store_with_a_history_of_its_own_is_refused_untouched(
    tmp_path: Path, pg_url: str
) -> None:
    lite = sample_store(tmp_path / "a.db")
    with Store(pg_url) as pg:
        store_runs.create_run(pg, "theirs")
        before = rows_of(pg)
        with Store(lite) as a, pytest.raises(NotACopy, match="history of its own"):
            copy_store(a, pg)
        assert rows_of(pg) == before
    result = run_cli("store", "copy", lite, pg_url)
    assert result.returncode == 2 and "nothing was copied" in result.stderr
    assert "Traceback" not in result.stderr
    assert run_cli("store", "copy", lite, lite).returncode == 2  # onto itself


def test_a_cut_in_the_middle_of_a_copy_leaves_the_destination_as_it_was(
    tmp_path: Path, pg_server: PgServer, pg_url: str
) -> None:
    lite = tmp_path / "big.db"
    with Store(lite) as a:
        for i in range(30):
            run_id, _ = store_runs.create_run(a, f"p{i}", stages=["s"])
            sid = store_runs.start_stage(a, run_id, "s")
            store_runs.append_logs(
                a, [(sid, 1_800_000_000.0 + j, "out", f"l{j}") for j in range(5000)]
            )
    Store(pg_url).close()
    copier = subprocess.Popen(
        [sys.executable, "-m", "opstui", "store", "copy", str(lite), pg_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    db = pg_url.rsplit("/", 1)[1]
    cut = False
    with pg_server.admin(db) as admin:
        deadline = time.monotonic() + 60
        while copier.poll() is None and time.monotonic() < deadline and not cut:
            cut = bool(
                admin.execute(
                    """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                       WHERE datname = %s AND application_name = 'opstui'
                         AND backend_xid IS NOT NULL""",
                    (db,),
                ).fetchall()
            )
            time.sleep(0.01)
    _, err = copier.communicate(timeout=120)
    assert cut, "the copy finished before it could be cut"
    assert copier.returncode == 2 and "Traceback" not in err, err
    with Store(pg_url) as pg:
        assert all(not rows for rows in rows_of(pg).values())


def test_check_reports_a_healthy_store_on_both(tmp_path: Path, pg_url: str) -> None:
    lite = sample_store(tmp_path / "a.db")
    assert run_cli("store", "copy", lite, pg_url).returncode == 0
    for where in (lite, pg_url):
        result = run_cli("store", "check", "--json", "--store", where)
        assert result.returncode == 0, result.stderr
        doc = json.loads(result.stdout)
        assert doc["ok"] and doc["problems"] == []
        assert doc["schema_version"] == doc["code_schema_version"]
        assert doc["counts"]["runs"] == 163 and doc["size_bytes"] > 0
        assert "secret" not in result.stdout
    text = run_cli("store", "check", "--store", pg_url)
    assert "backend  postgresql 15" in text.stdout and "result   ok" in text.stdout


def test_check_finds_a_damaged_file_and_a_counter_behind(tmp_path: Path) -> None:
    lite = sample_store(tmp_path / "a.db")
    with Store(lite) as a, a.write() as tx:
        tx.execute("UPDATE runs SET rev = 10000000 WHERE id = 1")
    result = run_cli("store", "check", "--store", lite)
    assert result.returncode == 1
    assert "runs has revision 10000000, past the counter's" in result.stdout
    damaged = tmp_path / "damaged.db"
    data = bytearray(lite.read_bytes())
    page = 4096
    data[page * 5 : page * 5 + 200] = b"\xff" * 200  # a b-tree page's header
    damaged.write_bytes(bytes(data))
    result = run_cli("store", "check", "--full", "--store", damaged)
    assert result.returncode in (1, 2), result.stderr
    assert "Traceback" not in result.stderr
    assert "problem" in result.stdout and "malformed" in result.stdout


def test_init_creates_the_schema_a_reader_then_finds(pg_url: str) -> None:
    result = run_cli("store", "init", "--store", pg_url)
    assert result.returncode == 0 and "schema version" in result.stdout
    assert run_cli("status", "--store", pg_url).returncode == 0
