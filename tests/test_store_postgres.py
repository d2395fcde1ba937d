"""The run store on a real PostgreSQL server: what differs from SQLite, and bad input.

The store's behaviour itself is tested on both back ends by the parametrised
``store`` fixture (tests/conftest.py); this file holds what only a server
has: URLs and passwords, roles, a schema migrated by two processes at once,
a server stopped under writers and readers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opstui.config import Config
from opstui.store import Store, StoreError, history
from opstui.store import runs as store_runs
from opstui.store.failures import StoreMissing, StoreReadOnly, StoreTooNew, StoreUnreachable
from opstui.store.location import BadStoreUrl, parse_location
from opstui.store.schema import SCHEMA_VERSION
from opstui.views.snapshot import SnapshotReader

from .conftest import SAMPLE_RUNS, run_cli
from .pg_server import PASSWORD, READER_PASSWORD, PgServer, running_server
from .processes import free_port


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert 1 <= len(lines) <= 2, result.stderr  # the error, and its hint
    return result.stderr


# --- the schema ----------------------------------------------------------------


def _sqlite_catalogue(store: Store) -> dict[str, object]:
    tables: dict[str, object] = {}
    for (name,) in store.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ):
        columns = sorted(
            (c[1], bool(c[3]) or bool(c[5])) for c in store.query(f"PRAGMA table_info({name})")
        )
        indexes = sorted(
            (i[1], bool(i[2]))
            for i in store.query(f"PRAGMA index_list({name})")
            if not i[1].startswith("sqlite_autoindex")
        )
        tables[name] = (columns, indexes)
    return tables


def _pg_catalogue(store: Store) -> dict[str, object]:
    tables: dict[str, object] = {}
    for (name,) in store.query(
        "SELECT tablename FROM pg_tables "
        "WHERE schemaname = 'public' AND tablename <> 'opstui_schema'"
    ):
        columns = sorted(
            (c[0], c[1] == "NO" or c[2] is not None)
            for c in store.query(
                """SELECT column_name, is_nullable,
                          CASE WHEN column_name = 'id' OR (table_name IN ('counters', 'leases',
                              'endpoint_status', 'imported') AND column_name IN ('name', 'key'))
                              OR (table_name = 'watermarks' AND column_name IN ('source', 'name'))
                          THEN 'pk' END
                   FROM information_schema.columns WHERE table_name = ?""",
                (name,),
            )
        )
        indexes = sorted(
            (i[0], bool(i[1]))
            for i in store.query(
                """SELECT c.relname, x.indisunique FROM pg_index x
                   JOIN pg_class c ON c.oid = x.indexrelid
                   JOIN pg_class t ON t.oid = x.indrelid
                   WHERE t.relname = ? AND NOT x.indisprimary""",
                (name,),
            )
        )
        tables[name] = (columns, indexes)
    return tables


def test_both_back_ends_build_the_same_schema(store_path: Path, pg_url: str) -> None:
    with Store(store_path) as lite, Store(pg_url) as pg:
        ours, theirs = _sqlite_catalogue(lite), _pg_catalogue(pg)
        assert sorted(ours) == sorted(theirs)
        for table in ours:
            assert ours[table] == theirs[table], table
        versions = pg.query("SELECT version FROM opstui_schema ORDER BY version")
        assert [v[0] for v in versions] == list(range(1, SCHEMA_VERSION + 1))


# --- locations and passwords ---------------------------------------------------


def test_a_url_never_becomes_a_file(tmp_path: Path) -> None:
    url = f"postgresql://opstui@127.0.0.1:{free_port()}/nowhere?connect_timeout=2"
    result = run_cli("status", "--store", url, cwd=tmp_path)
    err = one_line_error(result)
    assert "cannot connect to run store postgresql://opstui@127.0.0.1" in err
    assert list(tmp_path.iterdir()) == []  # no ./postgresql:/... file or folder


def test_the_config_and_the_environment_take_a_url_too(tmp_path: Path) -> None:
    url = f"postgresql://opstui@127.0.0.1:{free_port()}/nowhere?connect_timeout=2"
    (tmp_path / "opstui.toml").write_text(f'store = "{url}"\n')
    assert "127.0.0.1" in one_line_error(run_cli("status", cwd=tmp_path))
    result = run_cli("status", cwd=tmp_path, env={"OPSTUI_STORE": url})
    assert "127.0.0.1" in one_line_error(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["opstui.toml"]


def test_another_scheme_is_refused_not_taken_for_a_path(tmp_path: Path) -> None:
    err = one_line_error(run_cli("status", "--store", "mysql://u@h/db", cwd=tmp_path))
    assert "scheme 'mysql'" in err and "postgresql://" in err
    assert list(tmp_path.iterdir()) == []


def test_without_the_driver_the_error_says_what_to_install(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["psycopg"] = None  # as if not installed
        from opstui.cli import main
        sys.argv = ["opstui", "status", "--store", "postgresql://u@127.0.0.1:1/db"]
        main()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    err = one_line_error(result)
    assert "pip install 'opstui[postgres]'" in err


def test_the_password_is_never_shown() -> None:
    where = parse_location("postgresql://ci:s3cr3t@db.example:5433/ops?sslmode=require&password=x2")
    assert "s3cr3t" not in where.display and "x2" not in where.display
    assert where.display == "postgresql://ci@db.example:5433/ops?sslmode=require"
    named = parse_location("postgresql://ci@db/ops?password_env=OPS_PG")
    assert named.password_env == "OPS_PG" and "password_env" not in (named.url or "")
    assert named.for_child().endswith("password_env=OPS_PG")


def test_a_wrong_password_names_where_it_came_from_not_the_value(
    pg_server: PgServer, tmp_path: Path
) -> None:
    db = pg_server.fresh_database()
    url = pg_server.url(db)
    result = run_cli("status", "--store", url, cwd=tmp_path, env={"PGPASSWORD": "hunter2-wrong"})
    err = one_line_error(result)
    assert "password authentication failed" in err and "PGPASSWORD" in err
    assert "hunter2-wrong" not in err
    named = f"{url}?password_env=OPS_PG_PASSWORD"
    result = run_cli("status", "--store", named, cwd=tmp_path, env={"OPS_PG_PASSWORD": "nope-1"})
    err = one_line_error(result)
    assert "OPS_PG_PASSWORD" in err and "nope-1" not in err
    unset = run_cli("status", "--store", named, cwd=tmp_path)
    assert "OPS_PG_PASSWORD" in one_line_error(unset) and "not set" in unset.stderr
    inline = url.replace("opstui@", "opstui:inline-secret@")
    err = one_line_error(run_cli("status", "--store", inline, cwd=tmp_path))
    assert "inline-secret" not in err and "the password in the store URL" in err


def test_the_password_from_a_named_variable_works(pg_server: PgServer, tmp_path: Path) -> None:
    url = f"{pg_server.url(pg_server.fresh_database())}?password_env=OPS_PG_PASSWORD"
    env = {"OPS_PG_PASSWORD": PASSWORD}
    started = run_cli("record", "start", "ci", "--store", url, cwd=tmp_path, env=env)
    assert started.returncode == 0, started.stderr
    status = run_cli("status", "--json", "--store", url, cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    assert PASSWORD not in status.stdout


# --- the schema's life ---------------------------------------------------------


def test_a_database_without_the_schema_tells_readers_how_to_create_it(
    pg_server: PgServer, tmp_path: Path
) -> None:
    url = pg_server.url(pg_server.fresh_database())
    env = pg_server.env()
    err = one_line_error(run_cli("status", "--store", url, cwd=tmp_path, env=env))
    assert "has no opstui schema" in err and "opstui store init" in err
    with pg_server.admin(url.rsplit("/", 1)[1]) as admin:
        assert (
            admin.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[
                0
            ]
            == 0
        )
    # A writer creates it.
    assert run_cli("record", "start", "p", "--store", url, cwd=tmp_path, env=env).returncode == 0
    assert run_cli("status", "--store", url, cwd=tmp_path, env=env).returncode == 0


def test_a_schema_newer_than_the_code_is_refused_and_left_untouched(
    pg_server: PgServer, pg_url: str, tmp_path: Path
) -> None:
    Store(pg_url).close()
    db = pg_url.rsplit("/", 1)[1]
    with pg_server.admin(db) as admin:
        admin.execute("INSERT INTO opstui_schema VALUES (99, 0, 'a newer opstui')")
        before = admin.execute("SELECT count(*) FROM pg_tables").fetchone()[0]
    with pytest.raises(StoreTooNew, match="schema version 99"):
        Store(pg_url)
    err = one_line_error(run_cli("record", "start", "p", "--store", pg_url, cwd=tmp_path))
    assert "schema version 99" in err
    with pg_server.admin(db) as admin:
        assert admin.execute("SELECT count(*) FROM pg_tables").fetchone()[0] == before
        assert admin.execute("SELECT count(*) FROM runs").fetchone()[0] == 0


def test_many_processes_migrating_at_once_migrate_once(pg_url: str) -> None:
    code = "import sys; from opstui.store import Store; Store(sys.argv[1]).close()"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, pg_url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    with Store(pg_url) as store:
        versions = [v[0] for v in store.query("SELECT version FROM opstui_schema ORDER BY 1")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_a_role_that_may_only_read_reads_and_writers_say_so(
    pg_server: PgServer, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store(pg_url) as store:
        run_id, _ = store_runs.create_run(store, "web", stages=["build"])
    reader_url = pg_url.replace("opstui@", "reader@")
    env = {"PGPASSWORD": READER_PASSWORD}
    shown = run_cli("status", "--json", "--store", reader_url, cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert [p["name"] for p in json.loads(shown.stdout)["pipelines"]] == ["web"]
    err = one_line_error(
        run_cli("record", "finish", str(run_id), "--store", reader_url, cwd=tmp_path, env=env)
    )
    assert "may read but not write" in err
    monkeypatch.setenv("PGPASSWORD", READER_PASSWORD)
    with Store(reader_url) as store, pytest.raises(StoreReadOnly):
        store_runs.heartbeat(store, run_id)
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    with Store(pg_url) as store:
        assert history.get_run(store, run_id).recorded_status == "running"


# --- a server that goes away ---------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    """A server of this test's own, to stop and start."""
    with running_server() as server:
        yield server


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql://opstui@127.0.0.1:{free_port()}/ops?connect_timeout=2"
    err = one_line_error(run_cli("record", "start", "p", "--store", url, cwd=tmp_path))
    assert "Connection refused" in err or "connection refused" in err.lower()
    with pytest.raises(StoreUnreachable):
        Store(url)


WRITER = textwrap.dedent(
    """
    import sys, time
    from opstui.track import Tracker
    store, n = sys.argv[1], int(sys.argv[2])
    tracker = Tracker(store, max_buffer=20, flush_interval=0.05, heartbeat_interval=0.2)
    with tracker.run("steady", stages=["work"]) as run:
        with run.stage("work") as stage:
            for i in range(n):
                stage.log(f"line {i}")
                run.log_metric("i", i, step=i)
                time.sleep(0.002)
    print(run.id, run.status, flush=True)
    """
)


def test_a_server_restart_loses_nothing_committed_and_the_tracker_keeps_its_buffer(
    own_server: PgServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    url = own_server.url(own_server.fresh_database())
    Store(url).close()
    n = 2500  # ~5 s of writing
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, str(n)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reader = SnapshotReader(url, Config())
    first = reader.snapshot()
    stale_seen = threading.Event()
    try:
        time.sleep(1.5)
        own_server.stop("fast")
        # While it is down the console keeps its last data, marked stale.
        down = reader.snapshot()
        assert down.problems, "a reader of a stopped server must say so"
        stale_seen.set()
        time.sleep(2.0)
        own_server.start()
        out, err = writer.communicate(timeout=120)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, err
    assert "Traceback" not in err
    run_id, status = out.split()
    assert status == "succeeded"
    with Store(url) as store:
        (lines,) = store.query_one("SELECT count(*) FROM log_lines")
        (samples,) = store.query_one("SELECT count(*) FROM metric_samples")
        assert store.query_one("SELECT status FROM runs WHERE id = ?", (int(run_id),))[0] == status
    assert lines == n and samples == n
    back = reader.snapshot()
    assert not back.problems and [p.name for p in back.pipelines] == ["steady"]
    assert first.at <= back.at
    reader.close()


def test_a_network_cut_in_the_middle_of_an_import_leaves_nothing(
    pg_server: PgServer, pg_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "history"
    folder.mkdir()
    with (folder / "runs.jsonl").open("w") as f:
        for i in range(20_000):
            f.write(
                json.dumps(
                    {
                        "type": "run",
                        "pipeline": f"p{i % 50}",
                        "key": f"k{i}",
                        "status": "succeeded",
                        "created_at": 1_800_000_000 + i,
                        "finished_at": 1_800_000_001 + i,
                    }
                )
                + "\n"
            )
    Store(pg_url).close()
    importer = subprocess.Popen(
        [sys.executable, "-m", "opstui", "import", str(folder), "--store", pg_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    db = pg_url.rsplit("/", 1)[1]
    cut = False
    with pg_server.admin(db) as admin:
        deadline = time.monotonic() + 60
        while importer.poll() is None and time.monotonic() < deadline:
            # Cut it once its transaction has written rows.
            killed = admin.execute(
                """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                   WHERE datname = %s AND application_name = 'opstui'
                     AND backend_xid IS NOT NULL""",
                (db,),
            ).fetchall()
            if killed:
                cut = True
                break
            time.sleep(0.01)
    out, err = importer.communicate(timeout=120)
    assert cut, "the import finished before it could be cut"
    assert importer.returncode == 2, (out, err)
    assert "Traceback" not in err and "run store" in err
    with Store(pg_url) as store:
        assert store.query_one("SELECT count(*) FROM runs")[0] == 0
        assert store.query_one("SELECT count(*) FROM pipelines")[0] == 0


def test_the_sample_history_imports_the_same_on_both(pg_url: str, store_path: Path) -> None:
    counts = []
    for where in (store_path, pg_url):
        result = run_cli("import", SAMPLE_RUNS, "--store", where)
        assert result.returncode == 0, result.stderr
        with Store(where) as store:
            counts.append(
                [
                    store.query_one(f"SELECT count(*) FROM {t}")[0]
                    for t in (
                        "pipelines",
                        "runs",
                        "stage_runs",
                        "log_lines",
                        "metric_samples",
                        "models",
                        "model_versions",
                        "deployments",
                        "feature_batches",
                    )
                ]
            )
    assert counts[0] == counts[1] and counts[0][1] > 0
    again = run_cli("import", SAMPLE_RUNS, "--store", pg_url)
    assert again.returncode == 0, again.stderr
    with Store(pg_url) as store:
        assert store.query_one("SELECT count(*) FROM runs")[0] == counts[1][1]


def test_errors_of_the_store_are_store_errors(pg_url: str) -> None:
    # A value PostgreSQL's TEXT cannot hold (NUL) is stored visibly, not refused.
    with Store(pg_url) as store:
        run_id, _ = store_runs.create_run(store, "p", stages=["s"])
        sid = store_runs.start_stage(store, run_id, "s")
        store_runs.append_logs(store, [(sid, 1_800_000_000.0, "stdout", "a\x00b")])
        (line,) = store.query_one("SELECT line FROM log_lines")
    assert line == "a\ufffdb"
    assert issubclass(StoreMissing, StoreError) and issubclass(StoreUnreachable, StoreError)


RECORD_KEY = (
    "import sys; from opstui.store import Store; from opstui.store.runs import create_run\n"
    "with Store(sys.argv[1]) as s: print(create_run(s, 'ci', key=sys.argv[2])[0])"
)


def test_one_key_from_many_hosts_at_once_records_one_run(pg_url: str) -> None:
    Store(pg_url).close()
    for attempt in range(3):
        key = f"build-{attempt}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", RECORD_KEY, pg_url, key],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "OPSTUI_HOST": f"runner-{i}"},
            )
            for i in range(6)
        ]
        ids = {p.communicate(timeout=60)[0].strip() for p in procs}
        assert [p.returncode for p in procs] == [0] * 6
        assert len(ids) == 1, ids
    with Store(pg_url) as store:
        assert store.query_one("SELECT count(*) FROM runs")[0] == 3


def test_the_demo_runs_its_world_in_a_team_store(pg_url: str, tmp_path: Path) -> None:
    """``opstui demo --store URL``: seeded, runs started by the simulator,
    the endpoint polled, drift checked; Ctrl-C leaves no run in flight."""
    from opstui.store.endpoints import endpoint_statuses

    from .demo_support import interrupt, start_demo, wait_for

    process = start_demo(tmp_path / "world", "--speed", "20", "--store", pg_url, cwd=tmp_path)
    try:
        with Store(pg_url) as store:

            def live_run() -> bool:
                rows = store.query("SELECT count(*) FROM runs WHERE actor LIKE '%@demo'")
                return bool(rows and rows[0][0])

            wait_for(live_run, "a run of the demo's simulator", timeout=90)
            wait_for(lambda: endpoint_statuses(store), "web-api polled", timeout=60)
            wait_for(
                lambda: store.query_one("SELECT count(*) FROM drift_checks")[0],
                "a drift check",
                timeout=90,
            )
        code, out = interrupt(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 130, out
    assert "Traceback" not in out, out
    assert not (tmp_path / "world" / "opstui.db").exists()  # the team store, not a file
    with Store(pg_url) as store:
        flight = store.query("SELECT id, status FROM runs WHERE status IN ('queued', 'running')")
        # Only the bundled history's one "running" run (it reads lost).
        assert len(flight) <= 1, flight


CHECK_OK = "import os, sys; sys.exit(0 if os.path.exists('ok') else 3)"


def test_the_runner_runs_a_pipeline_into_a_team_store(pg_url: str, tmp_path: Path) -> None:
    """``opstui run`` with the store named in opstui.toml: stages, logs and exit
    codes land in PostgreSQL; a retry from the CLI resumes at the failed stage."""
    py = sys.executable
    (tmp_path / "opstui.toml").write_text(
        textwrap.dedent(
            f"""\
            store = "{pg_url}"
            [pipelines.p]
            kind = "devops"
            stages = [
              {{ name = "build", run = ["{py}", "-c", "print('built')"] }},
              {{ name = "test", run = ["{py}", "-c", "{CHECK_OK}"] }},
            ]
            """
        )
    )
    first = run_cli("run", "p", "--yes", cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    (tmp_path / "ok").touch()
    with Store(pg_url) as store:
        failed = history.run_history(store, "p", limit=1)[0].id
    again = run_cli("retry", str(failed), "--yes", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    with Store(pg_url) as store:
        runs = history.run_history(store, "p", limit=10)
        assert [(r.trigger, r.status) for r in runs] == [
            ("retry", "succeeded"),
            ("manual", "failed"),
        ]
        stages = {s.name: s for s in runs[1].stages}
        assert stages["test"].exit_code == 3
        logs = history.stage_logs(store, stages["build"].id)
        assert [x.line for x in logs] == ["built"]


# --- the URL parser, fuzzed ------------------------------------------------------

_URL_PARTS = st.sampled_from(
    ["postgresql://", "postgres://", "POSTGRESQL://", "mysql://", "", "postgresql:/", "://"]
)


@settings(max_examples=400, deadline=None, database=None)
@given(
    scheme=_URL_PARTS,
    user=st.text(max_size=12),
    secret=st.text(alphabet="abcdefXYZ0123456789!$%&*+-.", min_size=4, max_size=12),
    rest=st.text(max_size=40),
)
def test_any_store_text_parses_or_is_refused_in_one_line_and_never_shows_a_password(
    scheme: str, user: str, secret: str, rest: str
) -> None:
    text = f"{scheme}{user}:{secret}@{rest}"
    try:
        where = parse_location(text)
    except BadStoreUrl as exc:
        assert "\n" not in str(exc)
        assert f":{secret}@" not in str(exc)
        return
    if where.is_postgres:
        assert f":{secret}@" not in where.display
        assert where.url is not None
    else:
        assert where.path is not None


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("bogus=1", 'invalid URI query parameter: "bogus"'),
        ("sslmode=sometimes", "sslmode"),
        ("connect_timeout=soon", "connect_timeout"),
    ],
)
def test_a_parameter_libpq_refuses_is_one_line(tmp_path: Path, query: str, said: str) -> None:
    url = f"postgresql://opstui@127.0.0.1:{free_port()}/ops?{query}"
    err = one_line_error(run_cli("status", "--store", url, cwd=tmp_path))
    assert said in err


def test_a_writer_held_up_past_the_busy_timeout_says_locked(
    pg_server: PgServer, pg_url: str
) -> None:
    from opstui.store.failures import StoreBusy
    from opstui.store.postgres import WRITE_LOCK

    Store(pg_url).close()
    db = pg_url.rsplit("/", 1)[1]
    with pg_server.admin(db) as admin:
        admin.execute("BEGIN")
        admin.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")  # a long writer
        with Store(pg_url, busy_timeout=0.5) as store:
            started = time.monotonic()
            with pytest.raises(StoreBusy, match="stayed locked"):
                store_runs.create_run(store, "waits")
            assert time.monotonic() - started < 5
        admin.execute("ROLLBACK")
    with Store(pg_url) as store:  # and then it goes through
        store_runs.create_run(store, "waits")


def test_a_table_gone_from_the_database_is_named(
    pg_server: PgServer, pg_url: str, tmp_path: Path
) -> None:
    Store(pg_url).close()
    with pg_server.admin(pg_url.rsplit("/", 1)[1]) as admin:
        admin.execute("DROP TABLE watermarks")
    check = run_cli("store", "check", "--store", pg_url)
    assert check.returncode == 1 and "table watermarks is missing" in check.stdout
    assert run_cli("status", "--store", pg_url).returncode == 0  # what does not need it works
