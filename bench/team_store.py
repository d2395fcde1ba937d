"""The team store: SQLite and PostgreSQL side by side, in one run.

Three parts, each measured on both back ends and printed with the
PostgreSQL/SQLite ratio:

  1. writers: 8 writer processes (``--writers``), each with its own host
     name (``OPSTUI_HOST=host-N``), record one run through
     ``opstui.track.Tracker`` with 25,000 log lines and 25,000 metric
     samples (``concurrent_writers.drive_writers``), while this process reads the
     dashboard every 100 ms; then the rows are counted (target: 0 lost);
  2. the dashboard on a 1M-run store (200 pipelines, 1,000,000 runs,
     6,000,000 stage rows; the rows of ``dashboard_read.Builder``): (b) a
     full re-read (a new ``Dashboard``, on an open Store and on a new
     ``Store``), (c) an incremental read after another connection beat one
     running run's heartbeat (target: median <= 10 ms), (d) a read when
     nothing changed. SQLite uses ``dashboard_read.py``'s cached store; the
     PostgreSQL one is built with COPY from the same generator (10,000,000
     metric samples too; ``--pg-samples 0`` leaves them out) and cached in
     ``bench/.cache/pg-1m/``;
  3. launch -> first frame with data of ``python -m opstui --store WHERE`` in
     tmux at 80x24 (``tui.launch_once``), median of 5 (target <= 1.0 s).

The PostgreSQL server is this script's own (``_postgres.py``), with the
durable defaults (fsync, synchronous_commit and full_page_writes on); only
the bulk build runs with them off, and the server is restarted durable
before anything is measured. It is stopped at the end, even on an error.

    .venv/bin/python bench/team_store.py            # ~10 min (+ ~5 min the first time: builds)
    .venv/bin/python bench/team_store.py --quick    # 8 x 2,500 rows, 200 x 20,000 runs, 2 launches
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _postgres import PgCluster, running_cluster
from _report import median, ms, percentile, table
from action_latency import child_env
from concurrent_writers import drive_writers
from dashboard_read import DEFAULT_CACHE, Builder, Spec
from tui import cached_store, launch_once

from opstui.store import SCHEMA_VERSION, Store
from opstui.store import runs as store_runs
from opstui.store.dashboard import Dashboard

PG_ROOT = DEFAULT_CACHE / "pg-1m"
TARGET_INCREMENTAL = 0.010  # (c) median
TARGET_LAUNCH = 1.0  # launch -> first frame with data, median
BACKENDS = ("SQLite", "PostgreSQL")


# -- 1. writers -----------------------------------------------------------------------------------


@dataclass
class WritersResult:
    wall: float = math.nan
    expected: int = 0
    stored: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    hosts: int = 0
    runs: int = 0


def run_writers(where: str, args: argparse.Namespace) -> WritersResult:
    """``args.writers`` processes record into the store at ``where`` (created first)."""
    Store(where).close()
    drive = drive_writers(
        where,
        writers=args.writers,
        lines=args.lines,
        samples=args.samples,
        stages=4,
        max_buffer=1000,
        interval=args.interval,
        timeout=args.timeout,
        start_method="spawn",
        host_names=True,
    )
    result = WritersResult(
        wall=drive.wall,
        latencies=drive.stats.latencies,
        errors=drive.stats.errors + drive.errors,
    )
    store = Store(where, create=False)
    conn = store.conn
    logs = conn.execute("SELECT count(*) FROM log_lines").fetchone()[0]
    samples = conn.execute("SELECT count(*) FROM metric_samples").fetchone()[0]
    result.hosts, result.runs = conn.execute(
        "SELECT count(DISTINCT host), count(*) FROM runs"
    ).fetchone()
    store.close()
    result.expected = args.writers * (args.lines + args.samples)
    result.stored = int(logs) + int(samples)
    for e in result.errors:
        print(f"ERROR {e.rstrip()}", file=sys.stderr)
    return result


# -- 2. the dashboard on a 1M-run store ---------------------------------------------------------

RUN_COLUMNS = (
    "id, pipeline_id, key, status, trigger, actor, parent_run_id, attempt, created_at, "
    "started_at, finished_at, heartbeat_at, heartbeat_timeout, host, pid, message, params, rev"
)
STAGE_COLUMNS = (
    "id, run_id, name, position, status, attempt, exit_code, started_at, finished_at, "
    "message, reused_from_id"
)
BULK_TABLES = ("runs", "stage_runs", "metric_samples")


def pg_database(spec: Spec) -> str:
    return (
        f"dash_p{spec.pipelines}_r{spec.runs}_m{spec.samples}_g{spec.generator}_v{SCHEMA_VERSION}"
    )


def build_pg(cluster: PgCluster, database: str, spec: Spec) -> float:
    """Build the store in ``database`` by COPY; return seconds. The server is
    restarted without fsync for the build and durable again afterwards; the
    rows are made and sent by a child process (what a build leaves in this
    one would slow the measurements)."""
    t_start = time.perf_counter()
    cluster.stop()
    cluster.start(durable=False)
    try:
        cluster.create_database(database)
        child = mp.get_context("spawn").Process(
            target=load_pg, args=(cluster, database, spec, t_start)
        )
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"building the PostgreSQL store failed (exit code {child.exitcode})")
    finally:
        cluster.stop()
        subprocess.run(["sync"], check=False)
        cluster.start()
    return time.perf_counter() - t_start


def load_pg(cluster: PgCluster, database: str, spec: Spec, t_start: float) -> None:
    """The schema (by the migrations, as the store's owner), then the rows by COPY."""

    def progress(what: str, done: int, total: int) -> None:
        elapsed = time.perf_counter() - t_start
        print(f"  {what}: {done:>12,} / {total:,}  ({elapsed:6.1f} s)", flush=True)

    os.environ.update(cluster.env())
    Store(cluster.url(database)).close()
    builder = Builder(spec, t_end=time.time())
    with cluster.admin(database) as conn:
        # Build-time only: no foreign-key triggers, and the secondary indexes
        # built once at the end (from their own definitions), not row by row.
        conn.execute("SET session_replication_role = replica")
        indexes = conn.execute(
            """SELECT indexname, indexdef FROM pg_indexes
               WHERE schemaname = 'public' AND tablename = ANY(%s)
                 AND indexname NOT LIKE '%%_pkey'""",
            (list(BULK_TABLES),),
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        with conn.cursor() as cur:
            pipelines = "COPY pipelines (id, name, kind, stages, created_at, rev) FROM STDIN"
            with cur.copy(pipelines) as cp:
                for row in builder.pipeline_rows():
                    cp.write_row(row)
            done = 0
            step = max(spec.runs // 10, 1)
            for runs, stages in builder.runs_and_stages(chunk=50_000):
                with cur.copy(f"COPY runs ({RUN_COLUMNS}) FROM STDIN") as cp:
                    for row in runs:
                        cp.write_row(row)
                with cur.copy(f"COPY stage_runs ({STAGE_COLUMNS}) FROM STDIN") as cp:
                    for row in stages:
                        cp.write_row(row)
                before, done = done, done + len(runs)
                if done // step != before // step or done == spec.runs:
                    progress("runs (+6 stage rows each)", done, spec.runs)
            if spec.samples:
                series = builder.series_rows()
                with cur.copy("COPY series (id, source, name, labels) FROM STDIN") as cp:
                    for sid, _p, source, name, labels in series:
                        cp.write_row((sid, source, name, labels))
                done = 0
                step = max(spec.samples // 10, 1)
                for rows in builder.samples(series, chunk=200_000):
                    with cur.copy(
                        "COPY metric_samples (series_id, ts, value, run_id, step) FROM STDIN"
                    ) as cp:
                        for row in rows:
                            cp.write_row(row)
                    before, done = done, done + len(rows)
                    if done // step != before // step:
                        progress("metric samples", done, spec.samples)
                progress("metric samples", done, spec.samples)
        conn.execute("UPDATE counters SET value = %s WHERE name = 'rev'", (builder.max_rev,))
        for name, definition in indexes:
            t0 = time.perf_counter()
            conn.execute(definition)
            print(f"  index {name}: {time.perf_counter() - t0:.1f} s", flush=True)
        conn.execute("RESET session_replication_role")
        for table_name in ("pipelines", "runs", "stage_runs", "series", "metric_samples"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table_name}', 'id'),"
                f" coalesce((SELECT max(id) FROM {table_name}), 0) + 1, false)"
            )
        t0 = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
        print(f"  VACUUM (ANALYZE): {time.perf_counter() - t0:.1f} s", flush=True)
        conn.execute("CHECKPOINT")


def pg_store(cluster: PgCluster, spec: Spec, rebuild: bool) -> str:
    """The URL of the cached PostgreSQL store for ``spec``, built when missing."""
    database = pg_database(spec)
    meta_file = cluster.root / f"{database}.json"
    if rebuild or not meta_file.exists() or not cluster.has_database(database):
        print(
            f"building PostgreSQL database {database} in {cluster.root}: {spec.pipelines} "
            f"pipelines, {spec.runs:,} runs ({spec.runs * spec.stages:,} stage rows), "
            f"{spec.samples:,} metric samples, by COPY",
            flush=True,
        )
        meta_file.unlink(missing_ok=True)
        seconds = build_pg(cluster, database, spec)
        meta = {"spec": spec.__dict__, "built_at": time.time(), "build_seconds": round(seconds, 1)}
        meta_file.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        print(f"build time: {seconds:.1f} s (server restarted durable)")
    else:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        built = time.strftime("%Y-%m-%d %H:%M", time.localtime(meta["built_at"]))
        print(
            f"reusing cached PostgreSQL database {database} in {cluster.root} "
            f"(built {built} in {meta['build_seconds']} s; --rebuild to build it again)"
        )
    with cluster.admin(database) as conn:
        counts = {
            t: conn.execute(
                f"SELECT reltuples::bigint FROM pg_class WHERE relname = '{t}'"
            ).fetchone()[0]
            for t in ("runs", "stage_runs", "metric_samples")
        }
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    print(
        "PostgreSQL store holds about: "
        + ", ".join(f"{v:,} {k}" for k, v in counts.items())
        + f"; {size / 1e9:.2f} GB"
    )
    return cluster.url(database)


def timed(fn: Callable[[], object], n: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


class StatementLog:
    """Wraps a store connection's ``execute``: each statement's text and time."""

    def __init__(self, store: Store) -> None:
        self.conn = store.conn
        self.inner = store.conn.execute
        self.seen: list[tuple[str, float]] = []

    def __enter__(self) -> StatementLog:
        inner = self.inner

        def execute(sql: str, params: Any = ()) -> Any:
            t0 = time.perf_counter()
            out = inner(sql, params)
            self.seen.append((" ".join(sql.split()), time.perf_counter() - t0))
            return out

        self.conn.execute = execute  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        del self.conn.execute  # back to the class's method


@dataclass
class DashTimes:
    pipelines: int = 0
    full: list[float] = field(default_factory=list)
    full_new_store: list[float] = field(default_factory=list)
    incremental: list[float] = field(default_factory=list)
    unchanged: list[float] = field(default_factory=list)
    changed_per_read: set[int] = field(default_factory=set)
    statements: dict[str, list[tuple[str, float]]] = field(default_factory=dict)


def measure_dashboard(where: str, n: int, opens: int) -> DashTimes:
    out = DashTimes()
    store = Store(where, create=False)
    pipelines = Dashboard(store).read()
    out.pipelines = len(pipelines)
    out.full = timed(lambda: Dashboard(store).read(), n)

    def new_store_read() -> None:
        fresh = Store(where, create=False)
        try:
            Dashboard(fresh).read()
        finally:
            fresh.close()

    out.full_new_store = timed(new_store_read, opens, warmup=1)
    running = [p for p in pipelines if p.latest and p.latest.recorded_status == "running"]
    chosen = (running or [p for p in pipelines if p.latest])[0]
    assert chosen.latest is not None
    run_id = chosen.latest.id
    writer = Store(where, create=False)
    dash = Dashboard(store)
    dash.read()
    for _ in range(n):
        store_runs.heartbeat(writer, run_id)
        t0 = time.perf_counter()
        dash.read()
        out.incremental.append(time.perf_counter() - t0)
        out.changed_per_read.add(dash.last_read_changed)
    traced = store.dialect == "postgresql"  # sqlite3.Connection cannot be wrapped
    if traced:
        store_runs.heartbeat(writer, run_id)
        with StatementLog(store) as log:
            dash.read()
        out.statements["incremental"] = log.seen
    writer.close()
    out.unchanged = timed(dash.read, n)
    if traced:
        with StatementLog(store) as log:
            Dashboard(store).read()
        out.statements["full"] = log.seen
    store.close()
    return out


def print_statements(label: str, times: DashTimes) -> None:
    for what in ("full", "incremental"):
        seen = times.statements.get(what, [])
        total = sum(t for _, t in seen)
        print(f"\n{label}: the statements one {what} read ran ({len(seen)}, {ms(total)} in all)")
        for sql, t in seen:
            short = sql if len(sql) <= 110 else sql[:107] + "..."
            print(f"  {ms(t):>10}  {short}")


# -- 3. launch ------------------------------------------------------------------------------------


def measure_launches(
    where: str, config: Path, pipelines: int, env: dict[str, str], args: argparse.Namespace
) -> list[float]:
    needle = f"Pipelines ({pipelines})"
    argv = [sys.executable, "-m", "opstui", "--store", where, "--config", str(config)]
    command = "exec " + shlex.join(argv)
    print(f"  {command}", flush=True)
    warm = launch_once(command, needle, env, args.launch_timeout)
    print(f"  untimed warm-up launch: {ms(warm.data_frame)}")
    out = []
    for _ in range(args.launches):
        got = launch_once(command, needle, env, args.launch_timeout)
        out.append(got.data_frame)
        print(f"  data shown after {ms(got.data_frame)} (CPU used by then {ms(got.cpu)})")
    return out


# -- the report -----------------------------------------------------------------------------------


@dataclass
class Row:
    figure: str
    sqlite: float | int | str
    pg: float | int | str
    target: str = "-"
    met: Callable[[Any], bool] | None = None
    unit: str = "s"


def cell(value: float | int | str, unit: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if unit == "s":
        return ms(value) if value < 1 else f"{value:.2f} s"
    if unit == "n":
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def ratio(a: object, b: object) -> str:
    if isinstance(a, int | float) and isinstance(b, int | float) and a and not math.isnan(a):
        if isinstance(b, float) and math.isnan(b):
            return "-"
        return f"{b / a:.2f}x"
    return "-"


def report(rows: Sequence[Row]) -> None:
    lines = []
    missed = 0
    for r in rows:
        verdict = "-"
        if r.met is not None:
            marks = []
            for name, value in (("SQLite", r.sqlite), ("PG", r.pg)):
                if isinstance(value, str) or (isinstance(value, float) and math.isnan(value)):
                    continue
                ok = r.met(value)
                missed += not ok
                marks.append(f"{name} {'met' if ok else 'MISSED'}")
            verdict = ", ".join(marks) or "-"
        lines.append(
            [
                r.figure,
                cell(r.sqlite, r.unit),
                cell(r.pg, r.unit),
                ratio(r.sqlite, r.pg),
                r.target,
                verdict,
            ]
        )
    print("\nTeam store: SQLite and PostgreSQL")
    print(table(["figure", "SQLite", "PostgreSQL", "PG/SQLite", "target", "result"], lines))
    print(f"\n{missed} target(s) missed" if missed else "\nall targets met")


def run(args: argparse.Namespace, work: Path) -> int:
    parts = set(args.parts)
    spec = (
        Spec(pipelines=200, runs=20_000, samples=200_000, series=200)
        if args.quick
        else Spec(pipelines=200, runs=1_000_000)
    )
    samples = spec.samples if args.pg_samples is None else args.pg_samples
    pg_spec = Spec(
        pipelines=spec.pipelines,
        runs=spec.runs,
        samples=samples,
        series=spec.series if samples else 0,
    )
    rows: list[Row] = []
    print("load average at the start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    with running_cluster(PG_ROOT) as cluster:
        os.environ.update(cluster.env())  # PGPASSWORD, for this process and its children
        print(
            f"PostgreSQL {cluster.setting('server_version')} in {cluster.root}, port "
            f"{cluster.port}: fsync={cluster.setting('fsync')}, synchronous_commit="
            f"{cluster.setting('synchronous_commit')}, full_page_writes="
            f"{cluster.setting('full_page_writes')}, shared_buffers="
            f"{cluster.setting('shared_buffers')}",
            flush=True,
        )
        if "writers" in parts:
            rows += part_writers(cluster, work, args)
        sqlite_where = pg_where = ""
        if {"dashboard", "launch"} & parts:
            sqlite_where = str(cached_store(spec, DEFAULT_CACHE))
            pg_where = pg_store(cluster, pg_spec, args.rebuild)
            if not samples:
                print("(the PostgreSQL store has no metric samples: --pg-samples 0)")
        if "dashboard" in parts:
            rows += part_dashboard(sqlite_where, pg_where, args)
        if "launch" in parts:
            rows += part_launch(sqlite_where, pg_where, spec.pipelines, work, args)
    report(rows)
    print("load average at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0  # a benchmark: missed targets are printed, not failed


def part_writers(cluster: PgCluster, work: Path, args: argparse.Namespace) -> list[Row]:
    n = args.writers
    print(
        f"\n1. writers: {n} processes (OPSTUI_HOST=host-0..{n - 1}) x ({args.lines:,} log lines"
        f" + {args.samples:,} metric samples), dashboard read every "
        f"{args.interval * 1000:.0f} ms",
        flush=True,
    )
    results: dict[str, WritersResult] = {}
    print("  SQLite ...", flush=True)
    results["SQLite"] = run_writers(str(work / "writers.db"), args)
    database = "writers_bench"
    cluster.create_database(database)
    try:
        print("  PostgreSQL ...", flush=True)
        results["PostgreSQL"] = run_writers(cluster.url(database), args)
    finally:
        cluster.drop_database(database)
    s, p = results["SQLite"], results["PostgreSQL"]
    for name, r in results.items():
        print(
            f"  {name}: {r.wall:.2f} s, {r.stored:,} of {r.expected:,} rows, {len(r.errors)} "
            f"errors, {r.runs} runs from {r.hosts} hosts, {len(r.latencies)} dashboard reads"
        )
    return [
        Row("1. writers: wall time (start signal -> all runs finished)", s.wall, p.wall),
        Row("1. writers: rows/s (stored / wall)", s.stored / s.wall, p.stored / p.wall, unit="n"),
        Row("1. writers: rows expected", s.expected, p.expected, unit="n"),
        Row("1. writers: rows stored", s.stored, p.stored, unit="n"),
        Row(
            "1. writers: rows lost",
            s.expected - s.stored,
            p.expected - p.stored,
            "0",
            lambda v: v == 0,
            unit="n",
        ),
        Row("1. writers: errors", len(s.errors), len(p.errors), "0", lambda v: v == 0, unit="n"),
        Row("1. writers: distinct runs.host", s.hosts, p.hosts, unit="n"),
        Row("1. dashboard read while writing: median", median(s.latencies), median(p.latencies)),
        Row(
            "1. dashboard read while writing: p99",
            percentile(s.latencies, 99),
            percentile(p.latencies, 99),
        ),
    ]


def part_dashboard(sqlite_where: str, pg_where: str, args: argparse.Namespace) -> list[Row]:
    print(f"\n2. the dashboard, {args.iterations} reads per figure", flush=True)
    times = {}
    for name, where in (("SQLite", sqlite_where), ("PostgreSQL", pg_where)):
        print(f"  {name} ...", flush=True)
        times[name] = measure_dashboard(where, args.iterations, args.opens)
    s, p = times["SQLite"], times["PostgreSQL"]
    print_statements("PostgreSQL", p)
    changed = f"{sorted(s.changed_per_read)} / {sorted(p.changed_per_read)}"
    print(f"\npipelines re-read per incremental read (SQLite / PostgreSQL): {changed}")
    inc = f"<= {ms(TARGET_INCREMENTAL)}"
    return [
        Row("2. pipelines read", s.pipelines, p.pipelines, unit="n"),
        Row("2. (b) full re-read, new Dashboard: median", median(s.full), median(p.full)),
        Row(
            "2. (b) full re-read, new Dashboard: p99",
            percentile(s.full, 99),
            percentile(p.full, 99),
        ),
        Row(
            f"2. (b') new Store + Dashboard + read, median of {args.opens}",
            median(s.full_new_store),
            median(p.full_new_store),
        ),
        Row(
            "2. (c) incremental read, 1 run changed: median",
            median(s.incremental),
            median(p.incremental),
            inc,
            lambda v: v <= TARGET_INCREMENTAL,
        ),
        Row(
            "2. (c) incremental read: p99",
            percentile(s.incremental, 99),
            percentile(p.incremental, 99),
        ),
        Row("2. (d) no-change read: median", median(s.unchanged), median(p.unchanged)),
        Row(
            "2. (d) no-change read: p99",
            percentile(s.unchanged, 99),
            percentile(p.unchanged, 99),
        ),
    ]


def part_launch(
    sqlite_where: str, pg_where: str, pipelines: int, work: Path, args: argparse.Namespace
) -> list[Row]:
    print(f"\n3. launch -> first frame with data, tmux 80x24, x{args.launches}", flush=True)
    config = work / "opstui.toml"
    config.write_text("# nothing configured: no endpoints, no models\n", encoding="utf-8")
    env = child_env(work, True)  # a private bytecode cache, filled by the warm-up launch
    times = {}
    for name, where in (("SQLite", sqlite_where), ("PostgreSQL", pg_where)):
        print(f"  {name}:", flush=True)
        times[name] = measure_launches(where, config, pipelines, env, args)
    s, p = times["SQLite"], times["PostgreSQL"]
    return [
        Row(
            f"3. launch -> first frame with data: median of {args.launches}",
            median(s),
            median(p),
            f"<= {TARGET_LAUNCH:.1f} s",
            lambda v: v <= TARGET_LAUNCH,
        ),
        Row("3. launch -> first frame with data: max", max(s), max(p)),
    ]


PARTS = ("writers", "dashboard", "launch")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 x 2,500 rows, 20,000 runs")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--writers", type=int, default=8, help="writer processes (default 8)")
    parser.add_argument("--lines", type=int, default=25_000, help="log lines per writer")
    parser.add_argument("--samples", type=int, default=25_000, help="metric samples per writer")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between reads")
    parser.add_argument("--timeout", type=float, default=900.0, help="for the writers")
    parser.add_argument("--iterations", type=int, default=200, help="per dashboard figure")
    parser.add_argument("--opens", type=int, default=20, help="new Stores for (b')")
    parser.add_argument(
        "--pg-samples",
        type=int,
        default=None,
        help="metric samples in the PostgreSQL store (default: as many as the SQLite one, "
        "10,000,000; 0 builds faster, and the dashboard reads none)",
    )
    parser.add_argument("--launches", type=int, default=5)
    parser.add_argument("--launch-timeout", type=float, default=60.0)
    parser.add_argument("--rebuild", action="store_true", help="build the PostgreSQL store again")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()
    if args.quick:
        args.lines = min(args.lines, 2_500)
        args.samples = min(args.samples, 2_500)
        args.launches = min(args.launches, 2)
        args.iterations = min(args.iterations, 100)
        args.opens = min(args.opens, 10)
    if "launch" in args.parts and shutil.which("tmux") is None:
        print("tmux is not installed (apt-get install tmux)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="opstui-bench-team-"))
    try:
        return run(args, work)
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        if args.keep:
            print(f"keeping {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
