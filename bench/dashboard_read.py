"""Dashboard reads on a large store: 200 pipelines, 1M runs, 6M stage rows, 10M samples.

The store is built once (the schema by ``opstui.store.Store``, the rows by bulk
SQL) and cached in ``bench/.cache/`` (git-ignored); ``--rebuild`` builds it
again. Then it measures, on that store:

  (a) the first ``Dashboard.read()`` on a freshly opened Store, with the file
      evicted from the OS page cache (truly cold) and with it cached;
  (b) a full re-read of every pipeline (a new ``Dashboard`` each time);
  (c) an incremental read after another connection beat one run's heartbeat;
  (d) a read when nothing changed;
  (e) ``opstui status --store PATH`` (and ``--json``) as a subprocess, next
      to ``python -c pass``, the interpreter's floor;
  (f) a one-day window of one metric series.

    .venv/bin/python bench/dashboard_read.py            # builds ~1.5 GB once, a few minutes
    .venv/bin/python bench/dashboard_read.py --quick    # a small store, seconds

Measuring (c) writes to the cached store (one run's heartbeat and ``rev``);
that changes nothing the other figures depend on.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import re
import sqlite3
import subprocess
import sys
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from _report import median, ms, percentile, table

from opstui.store import SCHEMA_VERSION, Store
from opstui.store import metrics as store_metrics
from opstui.store import runs as store_runs
from opstui.store.dashboard import Dashboard

DAY = 86_400.0
DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"
#: Bump when the generator changes, so a cached store is built again.
GENERATOR_VERSION = 1

MODEL_STAGES = ("data", "validate", "features", "train", "evaluate", "register")
SERVICE_STAGES = ("checkout", "build", "test", "package", "deploy", "verify")
#: Where each stage ends, as a fraction of the run's duration.
MODEL_CUTS = (0.08, 0.12, 0.25, 0.80, 0.95, 1.0)
SERVICE_CUTS = (0.05, 0.35, 0.70, 0.80, 0.95, 1.0)
#: The stage a failing run fails at, drawn uniformly from this list.
FAIL_AT = (1, 2, 2, 2, 3, 3, 4, 5)
MODEL_TOPICS = ("churn", "fraud", "ranker", "forecast", "ltv", "intent", "vision-qc", "recsys")
SERVICE_TOPICS = ("api", "billing", "auth", "search", "gateway", "checkout", "ledger", "notify")
METRIC_NAMES = ("loss", "val_auc", "val_f1", "train_seconds")
USERS = ("alice@ops-laptop", "bob@ml-ws-02", "chen@ops-laptop-3", "dana@ml-ws-07")
BIG_TABLES = frozenset({"runs", "r", "stage_runs", "metric_samples", "log_lines"})
#: Store revisions one run consumes when recorded through the tracker
#: (create, 6 stage starts, 6 stage ends, finish).
REVS_PER_RUN = 14


@dataclass(frozen=True)
class Spec:
    """What the generated store holds."""

    pipelines: int = 200
    runs: int = 1_000_000
    samples: int = 10_000_000
    series: int = 200
    days: float = 180.0
    seed: int = 7
    generator: int = GENERATOR_VERSION

    @property
    def stages(self) -> int:
        return len(MODEL_STAGES)

    def file_name(self) -> str:
        return (
            f"dashboard-p{self.pipelines}-r{self.runs}-m{self.samples}-s{self.series}"
            f"-d{self.days:g}-seed{self.seed}-g{self.generator}-v{SCHEMA_VERSION}.db"
        )


QUICK = Spec(pipelines=50, runs=20_000, samples=200_000, series=50)


def cuts_for(model: bool) -> tuple[float, ...]:
    return MODEL_CUTS if model else SERVICE_CUTS


# -- building the store --------------------------------------------------------------------------


@dataclass
class PipelineState:
    """What the generator remembers about a pipeline's previous run."""

    run: int = 0  # run id, 0 = none yet
    status: str = ""
    attempt: int = 1
    failed_at: int = -1


class Builder:
    """Generates the rows, deterministically from ``spec.seed``."""

    def __init__(self, spec: Spec, t_end: float) -> None:
        if spec.runs % spec.pipelines:
            raise SystemExit("--runs must be a multiple of --pipelines")
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.t_end = t_end
        self.t0 = t_end - spec.days * DAY
        self.rounds = spec.runs // spec.pipelines
        self.is_model = [p % 2 == 0 for p in range(spec.pipelines)]
        self.names = [self._name(p) for p in range(spec.pipelines)]
        # Per run (index = id - 1): start and end (NaN when not started/ended).
        self.started = array("d", bytes(8 * spec.runs))
        self.ended = array("d", bytes(8 * spec.runs))
        # Per pipeline: its run ids in time order.
        self.runs_of: list[array[int]] = [array("l") for _ in range(spec.pipelines)]
        self.latest_status = self._latest_statuses()
        self.max_rev = spec.pipelines

    def _name(self, p: int) -> str:
        if self.is_model[p]:
            return f"train-{MODEL_TOPICS[(p // 2) % len(MODEL_TOPICS)]}-{p:03d}"
        return f"svc-{SERVICE_TOPICS[(p // 2) % len(SERVICE_TOPICS)]}-{p:03d}"

    def _latest_statuses(self) -> list[str]:
        """The status of each pipeline's latest run: ~5% failed, a few running/queued."""
        n = self.spec.pipelines
        order = list(range(n))
        self.rng.shuffle(order)
        failed, running, queued, cancelled = (
            max(1, round(n * 0.05)),
            max(1, round(n * 0.03)),
            max(1, round(n * 0.01)),
            max(1, round(n * 0.01)),
        )
        statuses = ["succeeded"] * n
        plan = ["failed"] * failed + ["running"] * running + ["queued"] * queued
        plan += ["cancelled"] * cancelled
        for p, status in zip(order, plan, strict=False):
            statuses[p] = status
        return statuses

    def pipeline_rows(self) -> list[tuple[object, ...]]:
        rows: list[tuple[object, ...]] = []
        for p, name in enumerate(self.names):
            stages = MODEL_STAGES if self.is_model[p] else SERVICE_STAGES
            rows.append(
                (
                    p + 1,
                    name,
                    "model" if self.is_model[p] else "service",
                    json.dumps(list(stages)),
                    self.t0 - DAY + p * 60.0,
                    p + 1,
                )
            )
        return rows

    def _history_status(self) -> str:
        r = self.rng.random()
        if r < 0.87:
            return "succeeded"
        if r < 0.95:
            return "failed"
        if r < 0.98:
            return "cancelled"
        return "timed_out"

    def runs_and_stages(
        self, chunk: int
    ) -> Iterator[tuple[list[tuple[object, ...]], list[tuple[object, ...]]]]:
        """Runs in creation order (ids increasing with ``created_at``), in chunks."""
        spec, rng = self.spec, self.rng
        n_p = spec.pipelines
        spacing = (self.t_end - self.t0) / spec.runs
        state = [PipelineState() for _ in range(n_p)]
        runs: list[tuple[object, ...]] = []
        stages: list[tuple[object, ...]] = []
        order = list(range(n_p))
        for k in range(self.rounds):
            rng.shuffle(order)
            last_round = k == self.rounds - 1
            for j, p in enumerate(order):
                i = k * n_p + j
                run_id = i + 1
                model = self.is_model[p]
                prev = state[p]
                created = self.t0 + (i + 0.9 * rng.random()) * spacing
                status = self.latest_status[p] if last_round else self._history_status()
                parent: int | None = None
                attempt = 1
                key: str | None = None
                reuse_until = 0
                if prev.status in ("failed", "timed_out") and rng.random() < 0.5:
                    trigger, parent, attempt = "retry", prev.run, min(prev.attempt + 1, 5)
                    reuse_until = max(prev.failed_at, 0)
                    actor = USERS[rng.randrange(len(USERS))]
                elif model:
                    r = rng.random()
                    trigger = "schedule" if r < 0.6 else "retrain" if r < 0.8 else "manual"
                    actor = "scheduler@ops-cron" if r < 0.8 else USERS[rng.randrange(len(USERS))]
                else:
                    r = rng.random()
                    trigger = "push" if r < 0.7 else "schedule" if r < 0.9 else "manual"
                    actor = "ci@github-actions" if r < 0.9 else USERS[rng.randrange(len(USERS))]
                    if trigger == "push":
                        key = f"gh-{self.names[p]}-{k}"
                duration = rng.uniform(600, 2400) if model else rng.uniform(120, 900)
                stop_at = FAIL_AT[rng.randrange(len(FAIL_AT))]
                started: float | None = None
                if status != "queued":
                    started = created + rng.uniform(1, 30)
                if status == "running":
                    # Still in stage ``stop_at``, which began before now.
                    started = min(started or created, self.t_end - 60)
                    duration = min(duration, (self.t_end - started) / cuts_for(model)[stop_at])
                cuts = cuts_for(model)
                names = MODEL_STAGES if model else SERVICE_STAGES
                finished: float | None = None
                message: str | None = None
                if status in ("succeeded", "failed", "cancelled", "timed_out") and started:
                    last = len(names) - 1 if status == "succeeded" else stop_at
                    finished = started + duration * cuts[last]
                    if status == "failed":
                        message = f"stage {names[stop_at]} failed: exited with code 1"
                    elif status == "timed_out":
                        message = f"stage {names[stop_at]} timed_out: timed out after 3600s"
                    elif status == "cancelled":
                        message = "interrupted (Ctrl-C)"
                heartbeat = finished if finished is not None else created
                if status == "running":
                    heartbeat = self.t_end - rng.uniform(0, 5)
                rev = n_p + REVS_PER_RUN * run_id
                self.max_rev = rev
                if model:
                    params = f'{{"lr": {rng.choice((0.1, 0.03, 0.01))}, "epochs": 20}}'
                else:
                    params = f'{{"branch": "main", "commit": "{rng.getrandbits(28):07x}"}}'
                runs.append(
                    (
                        run_id,
                        p + 1,
                        key,
                        status,
                        trigger,
                        actor,
                        parent,
                        attempt,
                        created,
                        started,
                        finished,
                        heartbeat,
                        60.0,
                        f"ci-runner-{rng.randrange(12):02d}",
                        rng.randrange(1000, 65000),
                        message,
                        params,
                        rev,
                    )
                )
                self._stage_rows(
                    stages,
                    run_id,
                    status=status,
                    names=names,
                    cuts=cuts,
                    started=started,
                    duration=duration,
                    stop_at=stop_at,
                    parent=parent,
                    reuse_until=reuse_until,
                )
                self.started[i] = started if started is not None else math.nan
                self.ended[i] = finished if finished is not None else self.t_end
                self.runs_of[p].append(run_id)
                state[p] = PipelineState(
                    run_id, status, attempt, stop_at if status != "succeeded" else -1
                )
                if len(runs) >= chunk:
                    yield runs, stages
                    runs, stages = [], []
        if runs:
            yield runs, stages

    @staticmethod
    def _stage_rows(
        out: list[tuple[object, ...]],
        run_id: int,
        *,
        status: str,
        names: Sequence[str],
        cuts: Sequence[float],
        started: float | None,
        duration: float,
        stop_at: int,
        parent: int | None,
        reuse_until: int,
    ) -> None:
        """Six stage rows consistent with the run's status (ids ``6 * (run_id - 1) + pos + 1``)."""
        base = len(names) * (run_id - 1) + 1
        for pos, name in enumerate(names):
            begin = end = None
            exit_code: int | None = None
            message: str | None = None
            reused: int | None = None
            if started is not None:
                begin = started + duration * (cuts[pos - 1] if pos else 0.0)
                end = started + duration * cuts[pos]
            if status == "queued":
                stage_status, begin, end = "pending", None, None
            elif status == "succeeded" or pos < stop_at:
                stage_status, exit_code = "succeeded", 0
            elif pos == stop_at:
                stage_status = status
                if status == "failed":
                    exit_code, message = 1, "exited with code 1"
                elif status == "timed_out":
                    message = "timed out after 3600s"
                elif status == "cancelled":
                    message = "interrupted"
                elif status == "running":
                    end = None
            else:
                stage_status = "pending" if status == "running" else "skipped"
                begin = end = None
            if parent is not None and pos < reuse_until and stage_status == "succeeded":
                reused = len(names) * (parent - 1) + pos + 1
            out.append(
                (
                    base + pos,
                    run_id,
                    name,
                    pos,
                    stage_status,
                    1,
                    exit_code,
                    begin,
                    end,
                    message,
                    reused,
                )
            )

    def series_rows(self) -> list[tuple[int, int, str, str, str]]:
        """(series id, pipeline index, source, name, labels): the model pipelines' metrics."""
        models = [p for p in range(self.spec.pipelines) if self.is_model[p]]
        if self.spec.series > len(models) * len(METRIC_NAMES):
            raise SystemExit("too many series for the model pipelines")
        rows = []
        for s in range(self.spec.series):
            p = models[s % len(models)]
            name = METRIC_NAMES[s // len(models)]
            rows.append((s + 1, p, f"pipeline/{self.names[p]}", name, "{}"))
        return rows

    def samples(
        self, series: Sequence[tuple[int, int, str, str, str]], chunk: int
    ) -> Iterator[list[tuple[int, float, float, int, int]]]:
        """Samples series by series, in time order: each run logs a few steps of each metric."""
        rng = self.rng
        per_series = self.spec.samples // len(series)
        out: list[tuple[int, float, float, int, int]] = []
        for sid, p, _source, name, _labels in series:
            run_ids = self.runs_of[p]
            n_runs = len(run_ids)
            for k, run_id in enumerate(run_ids):
                q = (k + 1) * per_series // n_runs - k * per_series // n_runs
                start = self.started[run_id - 1]
                if q == 0 or math.isnan(start):
                    continue
                span = self.ended[run_id - 1] - start
                for step in range(q):
                    noise = rng.random()
                    if name == "loss":
                        value = (0.2 + 0.8 / (1 + step)) * (0.9 + 0.2 * noise)
                    elif name == "train_seconds":
                        value = span * (step + 1) / q
                    else:
                        value = 0.70 + 0.2 * (1 - 1 / (1 + step)) + 0.05 * noise
                    out.append((sid, start + span * (step + 1) / (q + 1), value, run_id, step))
                if len(out) >= chunk:
                    yield out
                    out = []
        if out:
            yield out


def build_store(path: Path, spec: Spec) -> float:
    """Build the store at ``path`` (via a temp file, renamed when complete); return seconds."""
    tmp = path.with_name(path.name + ".building")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
        leftover.unlink(missing_ok=True)
    t_start = time.perf_counter()
    Store(tmp).close()  # the schema, by the migrations
    builder = Builder(spec, t_end=time.time())
    conn = sqlite3.connect(tmp, isolation_level=None)
    # Build-time only: no journal and no fsync (a failed build is thrown away),
    # a big page cache. The store goes back to WAL at the end.
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")
    conn.execute("PRAGMA temp_store = MEMORY")

    def progress(what: str, done: int, total: int) -> None:
        elapsed = time.perf_counter() - t_start
        print(f"  {what}: {done:>12,} / {total:,}  ({elapsed:6.1f} s)", flush=True)

    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO pipelines(id, name, kind, stages, created_at, rev) VALUES (?, ?, ?, ?, ?, ?)",
        builder.pipeline_rows(),
    )
    done = 0
    step = max(spec.runs // 10, 1)
    for runs, stages in builder.runs_and_stages(chunk=50_000):
        conn.executemany(
            """INSERT INTO runs(id, pipeline_id, key, status, trigger, actor, parent_run_id,
                   attempt, created_at, started_at, finished_at, heartbeat_at,
                   heartbeat_timeout, host, pid, message, params, rev)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            runs,
        )
        conn.executemany(
            """INSERT INTO stage_runs(id, run_id, name, position, status, attempt, exit_code,
                   started_at, finished_at, message, reused_from_id)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            stages,
        )
        before, done = done, done + len(runs)
        if done // step != before // step or done == spec.runs:
            progress("runs (+6 stage rows each)", done, spec.runs)
    conn.execute("UPDATE counters SET value = ? WHERE name = 'rev'", (builder.max_rev,))
    conn.execute("COMMIT")

    series = builder.series_rows()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO series(id, source, name, labels) VALUES (?, ?, ?, ?)",
        [(sid, source, name, labels) for sid, _p, source, name, labels in series],
    )
    done = shown = 0
    step = max(spec.samples // 10, 1)
    for rows in builder.samples(series, chunk=200_000):
        conn.executemany(
            "INSERT INTO metric_samples(series_id, ts, value, run_id, step) VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        before, done = done, done + len(rows)
        if done // step != before // step:
            progress("metric samples", done, spec.samples)
            shown = done
    conn.execute("COMMIT")
    if shown != done:
        progress("metric samples", done, spec.samples)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    # Write the file out now: the kernel writing back a freshly built 1.3 GB
    # during the measurements shows up as a slow tail (p99 about doubled).
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.rename(path)
    seconds = time.perf_counter() - t_start
    meta = {
        "spec": asdict(spec),
        "built_at": builder.t_end,
        "build_seconds": round(seconds, 1),
        "schema_version": SCHEMA_VERSION,
    }
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return seconds


# -- measuring ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    label: str
    seconds: float
    target: float | None = None
    note: str = ""


def timed(fn: Callable[[], object], n: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def evict_from_page_cache(path: Path) -> bool:
    """Drop ``path``'s pages from the OS page cache (Linux; no root needed)."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def cold_reads(path: Path, opens: int, *, evict: bool) -> tuple[list[float], list[float]]:
    """(open times, first-read times) over ``opens`` fresh Stores."""
    open_s, read_s = [], []
    for _ in range(opens):
        if evict:
            evict_from_page_cache(path)
        t0 = time.perf_counter()
        store = Store(path, create=False)
        t1 = time.perf_counter()
        rows = Dashboard(store).read()
        t2 = time.perf_counter()
        store.close()
        assert rows, "the store holds no pipelines"
        open_s.append(t1 - t0)
        read_s.append(t2 - t1)
    return open_s, read_s


def subprocess_times(argv: Sequence[str], n: int) -> list[float]:
    out = []
    for i in range(n + 1):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, check=False)
        elapsed = time.perf_counter() - t0
        if proc.returncode not in (0, 1):
            raise SystemExit(
                f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr.decode()[-2000:]}"
            )
        if i:  # the first run warms the OS cache for the interpreter and packages
            out.append(elapsed)
    return out


def traced(store: Store, fn: Callable[[], object]) -> list[str]:
    """The SQL statements ``fn`` runs on ``store``'s connection, with their values."""
    seen: list[str] = []
    conn = store.conn
    assert isinstance(conn, sqlite3.Connection), "an SQLite store"
    conn.set_trace_callback(seen.append)
    try:
        fn()
    finally:
        conn.set_trace_callback(None)
    return seen


def _shape(sql: str) -> str:
    text = re.sub(r"IN \([^)]*\)", "IN (...)", " ".join(sql.split()))
    return re.sub(r"\b\d+(\.\d+)?(e[+-]?\d+)?\b", "?", text)


def explain(store: Store, label: str, statements: Sequence[str]) -> None:
    """EXPLAIN QUERY PLAN of each distinct SELECT a read ran (as it ran it)."""
    print(f"\nEXPLAIN QUERY PLAN of the SELECTs {label} ran:")
    shapes = [_shape(sql) for sql in statements]
    shown: set[str] = set()
    for sql, shape in zip(statements, shapes, strict=True):
        if not sql.lstrip().upper().startswith("SELECT") or shape in shown:
            continue
        shown.add(shape)
        print(f"  [x{shapes.count(shape)}] {shape}")
        for row in store.conn.execute(f"EXPLAIN QUERY PLAN {sql}"):
            detail = str(row[3])
            words = detail.split()
            full_scan = words[:1] == ["SCAN"] and len(words) > 1 and words[1] in BIG_TABLES
            print(
                f"        {detail}"
                + ("    <-- reads every row of a big table" if full_scan else "")
            )


def measure(path: Path, args: argparse.Namespace) -> list[Figure]:
    figures: list[Figure] = []
    n = args.iterations

    # (a) first read on a freshly opened store.
    can_evict = evict_from_page_cache(path)
    if can_evict:
        open_s, read_s = cold_reads(path, args.cold_opens, evict=True)
        figures.append(
            Figure("(a) cold: Store() open, file evicted from page cache (mean)", mean(open_s))
        )
        figures.append(Figure("(a) cold: first Dashboard.read(), evicted (mean)", mean(read_s)))
    open_s, read_s = cold_reads(path, args.cold_opens, evict=False)
    figures.append(Figure("(a) Store() open, OS cache warm (mean)", mean(open_s)))
    figures.append(Figure("(a) first Dashboard.read() on a fresh Store (mean)", mean(read_s)))

    store = Store(path, create=False)
    pipelines = Dashboard(store).read()
    n_pipelines = len(pipelines)

    # (b) full re-read of every pipeline.
    full = timed(lambda: Dashboard(store).read(), n)
    figures.append(Figure(f"(b) full re-read, {n_pipelines} pipelines: median", median(full), 5e-3))
    figures.append(Figure("(b) full re-read: p99", percentile(full, 99), 20e-3))

    # (c) incremental read after another connection changed one run.
    target = next(
        (p for p in pipelines if p.latest and p.latest.recorded_status == "running"), None
    )
    target = target or next(p for p in pipelines if p.latest)
    assert target.latest is not None
    run_id = target.latest.id
    writer = Store(path, create=False)
    dash = Dashboard(store)
    dash.read()
    incremental: list[float] = []
    changed: set[int] = set()
    for _ in range(n):
        store_runs.heartbeat(writer, run_id)
        t0 = time.perf_counter()
        dash.read()
        incremental.append(time.perf_counter() - t0)
        changed.add(dash.last_read_changed)
    store_runs.heartbeat(writer, run_id)
    inc_statements = traced(store, dash.read)
    writer.close()
    figures.append(
        Figure(
            "(c) incremental read, 1 run changed: median",
            median(incremental),
            note=f"pipelines re-read per read: {sorted(changed)}",
        )
    )
    figures.append(Figure("(c) incremental read: p99", percentile(incremental, 99)))

    # (d) nothing changed.
    unchanged = timed(dash.read, n)
    assert dash.last_read_changed == 0
    figures.append(Figure("(d) no-change read: median", median(unchanged)))
    figures.append(Figure("(d) no-change read: p99", percentile(unchanged, 99)))

    # (f) one day of one metric series.
    (sid, t_min, t_max) = store.conn.execute(
        "SELECT id, (SELECT min(ts) FROM metric_samples WHERE series_id = s.id),"
        " (SELECT max(ts) FROM metric_samples WHERE series_id = s.id) FROM series s"
        " ORDER BY id LIMIT 1"
    ).fetchone()
    rng = random.Random(1)
    starts = [rng.uniform(t_min, t_max - DAY) for _ in range(n)]
    got: list[int] = []
    it = iter(starts * 2)

    def window() -> None:
        t = next(it)
        got.append(len(store_metrics.samples(store, sid, start=t, end=t + DAY)))

    windows = timed(window, n)
    figures.append(
        Figure(
            "(f) metric window, 1 day of 1 series: median",
            median(windows),
            note=f"{median([float(g) for g in got]):.0f} samples per window",
        )
    )
    figures.append(Figure("(f) metric window: p99", percentile(windows, 99)))

    # (g) the events panel's read: the timeline's 30 newest events (every
    # refresh reads it beside the incremental dashboard read), and a
    # 30-day postmortem window (`opstui incident --since 30d`).
    from opstui.store.timeline import timeline

    panel = timed(lambda: timeline(store, since=0.0, limit=30), n)
    figures.append(
        Figure(
            "(g) events panel: the timeline's 30 newest: median",
            median(panel),
            note=f"{median(panel) / median(incremental):.1f}x the incremental read (c)",
        )
    )
    figures.append(Figure("(g) events panel: p99", percentile(panel, 99)))
    newest = store.conn.execute("SELECT max(finished_at) FROM runs").fetchone()[0]
    month = timed(lambda: timeline(store, since=newest - 30 * DAY, limit=2000), max(5, n // 30))
    found = len(timeline(store, since=newest - 30 * DAY, limit=2000))
    figures.append(
        Figure(
            "(g) incident window, 30 days (<= 2,000 events): median",
            median(month),
            note=f"{found} events",
        )
    )

    explain(store, "a full read (a new Dashboard)", traced(store, Dashboard(store).read))
    explain(
        store,
        "the events panel (timeline, 30 newest)",
        traced(store, lambda: timeline(store, since=0.0, limit=30)),
    )
    explain(store, "an incremental read (1 run changed)", inc_statements)
    explain(store, "a metric window read", traced(store, window))
    store.close()

    # (e) `opstui status` as an operator (or a cron job) runs it.
    exe = Path(sys.executable).with_name("opstui")
    cli = [str(exe)] if exe.exists() else [sys.executable, "-m", "opstui"]
    floor = subprocess_times([sys.executable, "-c", "pass"], args.cli_runs)
    status = subprocess_times([*cli, "status", "--store", str(path)], args.cli_runs)
    status_json = subprocess_times([*cli, "status", "--json", "--store", str(path)], args.cli_runs)
    version = subprocess_times([*cli, "--version"], args.cli_runs)
    fl = median(floor)
    figures.append(Figure("(e) python -c pass (interpreter floor): median", fl))
    figures.append(Figure("(e) opstui --version (imports only): median", median(version)))
    for label, times in (("opstui status", status), ("opstui status --json", status_json)):
        figures.append(
            Figure(
                f"(e) {label}: median of {len(times)}",
                median(times),
                0.5,
                note=f"{median(times) / fl:.1f}x the floor; max {max(times) * 1000:.0f} ms",
            )
        )
    return figures


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def report(figures: Sequence[Figure]) -> int:
    rows = []
    missed = 0
    for f in figures:
        if f.target is None:
            target = ratio = "-"
        else:
            target = ms(f.target)
            ratio = f"{f.seconds / f.target:.2f}"
            if f.seconds > f.target:
                ratio += "  MISSED"
                missed += 1
        rows.append([f.label, ms(f.seconds), target, ratio, f.note])
    print("\nDashboard reads: results")
    print(table(["figure", "value", "target", "value/target", "note"], rows))
    print(f"\n{missed} target(s) missed" if missed else "\nall targets met")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--rebuild", action="store_true", help="build the store even if cached")
    parser.add_argument("--quick", action="store_true", help="small store, fewer iterations")
    parser.add_argument("--pipelines", type=int, default=Spec.pipelines)
    parser.add_argument("--runs", type=int, default=Spec.runs)
    parser.add_argument("--samples", type=int, default=Spec.samples)
    parser.add_argument("--series", type=int, default=Spec.series)
    parser.add_argument("--iterations", type=int, default=300, help="per in-process figure")
    parser.add_argument("--cold-opens", type=int, default=5)
    parser.add_argument("--cli-runs", type=int, default=9, help="per subprocess figure (>= 7)")
    args = parser.parse_args()
    if args.quick:
        spec = QUICK
        args.iterations = min(args.iterations, 200)
        args.cold_opens = min(args.cold_opens, 3)
        args.cli_runs = min(args.cli_runs, 7)
    else:
        spec = Spec(
            pipelines=args.pipelines, runs=args.runs, samples=args.samples, series=args.series
        )
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    path = args.cache_dir / spec.file_name()
    if args.rebuild:
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), path.with_suffix(".json")):
            stale.unlink(missing_ok=True)
    if path.exists():
        print(f"reusing cached store {path} (--rebuild to build it again)")
        meta_file = path.with_suffix(".json")
        if meta_file.exists():
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            built = time.strftime("%Y-%m-%d %H:%M", time.localtime(meta["built_at"]))
            print(f"build time: {meta.get('build_seconds', '?')} s (built {built})")
    else:
        print(
            f"building {path}: {spec.pipelines} pipelines, {spec.runs:,} runs "
            f"({spec.runs * spec.stages:,} stage rows), {spec.samples:,} samples "
            f"in {spec.series} series",
            flush=True,
        )
        # In a child process: what a build leaves in this one (memory, objects
        # for the garbage collector to walk) would slow the measurements.
        child = mp.get_context("spawn").Process(target=build_store, args=(path, spec))
        child.start()
        child.join()
        if child.exitcode != 0 or not path.exists():
            raise SystemExit(f"building the store failed (exit code {child.exitcode})")
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        print(f"build time: {meta['build_seconds']} s (including writing it to disk)")
    counts = {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    for name in ("pipelines", "runs", "stage_runs", "series", "metric_samples"):
        counts[name] = conn.execute(f"SELECT max(rowid) FROM {name}").fetchone()[0] or 0
    conn.close()
    size = path.stat().st_size
    print(
        "store holds: "
        + ", ".join(f"{v:,} {k}" for k, v in counts.items())
        + f"; {size / 1e9:.2f} GB on disk",
        flush=True,
    )
    report(measure(path, args))
    return 0  # a benchmark: missed targets are reported, not failed


if __name__ == "__main__":
    sys.exit(main())
