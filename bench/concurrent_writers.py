"""Concurrent writers: several processes record through the Tracker into one store.

Each writer process records one run of its own pipeline (a few stages) with
``--lines`` log lines and ``--samples`` metric samples, while the parent reads
the dashboard (``Dashboard.read()``) every ``--interval`` seconds for the whole
duration. Afterwards the rows in ``log_lines`` and ``metric_samples`` are
counted and compared with what the writers recorded.

Exits 1 if any row was lost or any writer or read raised (for example sqlite3
"database is locked"), so it can be used as a check; it is not a test.

    .venv/bin/python bench/concurrent_writers.py            # 4 x 25,000 lines + samples
    .venv/bin/python bench/concurrent_writers.py --quick    # 4 x 2,500, a few seconds
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import sqlite3
import sys
import time
import traceback
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from _report import in_workdir, median, ms, percentile, table

from opstui.store import Store
from opstui.store.dashboard import Dashboard
from opstui.track import Tracker

STAGES = ("checkout", "data", "train", "evaluate", "package", "publish")


@dataclass(frozen=True)
class WriterReport:
    """What one writer process sends back to the parent."""

    index: int
    kind: str  # "ready" or "done"
    run_id: int = 0
    status: str | None = None
    seconds: float = 0.0
    error: str | None = None


def _writer(
    *,
    index: int,
    store_path: str,
    lines: int,
    samples: int,
    stages: int,
    max_buffer: int,
    go: Event,
    reports: Queue[WriterReport],
    host: str | None = None,
) -> None:
    """One pipeline process: open the store, wait for the start signal, record one run.

    ``host`` is set as ``OPSTUI_HOST`` before the Tracker exists, so that the
    run is recorded under it (``runs.host``): processes on one machine would
    otherwise all share its name, and a team store is written from many.
    """
    if host is not None:
        os.environ["OPSTUI_HOST"] = host
    try:
        tracker = Tracker(store_path, actor=f"bench@writer-{index}", max_buffer=max_buffer)
    except BaseException:
        reports.put(WriterReport(index, "done", error=traceback.format_exc()))
        return
    reports.put(WriterReport(index, "ready"))
    go.wait()
    started = time.perf_counter()
    run_id = 0
    status = None
    try:
        names = STAGES[:stages] if stages <= len(STAGES) else [f"s{i}" for i in range(stages)]
        n = max(lines, samples)
        with tracker.run(f"bench-writer-{index}", stages=names, trigger="bench") as run:
            run_id = run.id
            for s, name in enumerate(names):
                lo, hi = s * n // len(names), (s + 1) * n // len(names)
                with run.stage(name) as stage:
                    for i in range(lo, hi):
                        if i < lines:
                            stage.log(f"[{name}] step {i} batch={i % 64} loss={1 / (1 + i):.6f}")
                        if i < samples:
                            run.log_metric("loss", 1 / (1 + i), step=i)
        status = run.status
        error = None
    except BaseException:
        error = traceback.format_exc()
    finally:
        try:
            tracker.close()
        except BaseException:
            error = (error or "") + traceback.format_exc()
    seconds = time.perf_counter() - started
    reports.put(WriterReport(index, "done", run_id, status, seconds, error))


@dataclass
class ReaderStats:
    latencies: list[float]
    errors: list[str]
    pipelines_seen: int = 0


def _read_once(dash: Dashboard, stats: ReaderStats) -> None:
    t0 = time.perf_counter()
    try:
        rows = dash.read()
    except Exception:
        stats.errors.append(traceback.format_exc())
        return
    stats.latencies.append(time.perf_counter() - t0)
    stats.pipelines_seen = len(rows)


def _count(path: Path) -> tuple[dict[str, tuple[int, int]], int, int, str]:
    """Per pipeline (log lines, samples), totals, and ``PRAGMA quick_check``."""
    conn = sqlite3.connect(path)
    try:
        logs = dict(
            conn.execute(
                """SELECT p.name, count(*) FROM log_lines l
                   JOIN stage_runs s ON s.id = l.stage_run_id
                   JOIN runs r ON r.id = s.run_id JOIN pipelines p ON p.id = r.pipeline_id
                   GROUP BY p.name"""
            ).fetchall()
        )
        samples = dict(
            conn.execute(
                """SELECT p.name, count(*) FROM metric_samples m
                   JOIN runs r ON r.id = m.run_id JOIN pipelines p ON p.id = r.pipeline_id
                   GROUP BY p.name"""
            ).fetchall()
        )
        (total_logs,) = conn.execute("SELECT count(*) FROM log_lines").fetchone()
        (total_samples,) = conn.execute("SELECT count(*) FROM metric_samples").fetchone()
        (check,) = conn.execute("PRAGMA quick_check").fetchone()
    finally:
        conn.close()
    names = sorted(set(logs) | set(samples))
    per = {n: (int(logs.get(n, 0)), int(samples.get(n, 0))) for n in names}
    return per, int(total_logs), int(total_samples), str(check)


@dataclass
class DriveResult:
    """What ``drive_writers`` saw: the figures are the caller's to count and print."""

    wall: float  # start signal -> every writer done (or the deadline)
    stats: ReaderStats  # the dashboard reads made meanwhile
    done: dict[int, WriterReport]  # writer index -> its "done" report
    errors: list[str]  # writers unfinished, killed, failed or silent; not the reads'


def drive_writers(
    where: str,
    *,
    writers: int,
    lines: int,
    samples: int,
    stages: int,
    max_buffer: int,
    interval: float,
    timeout: float,
    start_method: str,
    host_names: bool = False,
) -> DriveResult:
    """Run ``writers`` writer processes against the store at ``where`` while
    this process reads the dashboard every ``interval`` seconds.

    The writers are released together only once all have opened the store, so
    the wall time is the recording, not process start-up; a writer that never
    reports is an error line rather than a hang (``timeout`` bounds it all).
    ``host_names`` runs writer i as ``OPSTUI_HOST=host-i``, as machines of a
    team would. Shared by this script and ``team_store.py`` so that the two
    measure writers in the same way.
    """
    ctx: Any = mp.get_context(start_method)  # typeshed: a str method gives no .Process
    go = ctx.Event()
    reports: Queue[WriterReport] = ctx.Queue()
    procs = [
        ctx.Process(
            target=_writer,
            kwargs={
                "index": i,
                "store_path": where,
                "lines": lines,
                "samples": samples,
                "stages": stages,
                "max_buffer": max_buffer,
                "go": go,
                "reports": reports,
                "host": f"host-{i}" if host_names else None,
            },
            name=f"writer-{i}",
        )
        for i in range(writers)
    ]
    for p in procs:
        p.start()

    done: dict[int, WriterReport] = {}
    ready = 0
    deadline = time.monotonic() + timeout
    while ready + len(done) < writers and time.monotonic() < deadline:
        try:
            report = reports.get(timeout=1.0)
        except queue.Empty:
            continue
        if report.kind == "ready":
            ready += 1
        else:
            done[report.index] = report

    stats = ReaderStats([], [])
    store = Store(where, create=False)
    dash = Dashboard(store)
    go.set()
    start = time.perf_counter()
    next_read = start
    while len(done) < writers and time.monotonic() < deadline:
        now = time.perf_counter()
        if now >= next_read:
            _read_once(dash, stats)
            next_read += interval
            if next_read < time.perf_counter():  # a slow read: do not try to catch up
                next_read = time.perf_counter() + interval
        try:
            report = reports.get(timeout=max(0.0, next_read - time.perf_counter()))
        except queue.Empty:
            continue
        done[report.index] = report
    wall = time.perf_counter() - start
    unfinished = writers - len(done)
    _read_once(dash, stats)  # the final state, once every writer is done
    store.close()

    errors: list[str] = []
    if unfinished:
        errors.append(f"{unfinished} writer(s) not finished after --timeout {timeout}s")
    for p in procs:
        p.join(timeout=max(1.0, deadline - time.monotonic()))
        if p.is_alive():
            p.terminate()
            p.join()
            errors.append(f"{p.name}: still running after {timeout}s, terminated")
        elif p.exitcode != 0:
            errors.append(f"{p.name}: exit code {p.exitcode}")
    while True:  # reports sent after the deadline
        try:
            late = reports.get(timeout=0.1)
        except queue.Empty:
            break
        if late.kind == "done":
            done[late.index] = late
    for i in range(writers):
        final = done.get(i)
        if final is None:
            errors.append(f"writer-{i}: sent no report")
        elif final.error:
            errors.append(f"writer-{i}: {final.error}")
        elif final.status != "succeeded":
            errors.append(f"writer-{i}: run ended {final.status}")
    return DriveResult(wall, stats, done, errors)


def run_benchmark(args: argparse.Namespace, workdir: Path) -> int:
    path = workdir / "store.db"
    if not args.race_create:
        Store(path).close()  # a fresh, migrated store; writers only open it
    print(
        f"store: {path}\nstarting {args.writers} writers ({args.start_method}), each "
        f"{args.lines:,} log lines + {args.samples:,} metric samples over {args.stages} stages"
        f" (Tracker max_buffer={args.max_buffer})"
        + (" (writers create the store concurrently)" if args.race_create else ""),
        flush=True,
    )
    drive = drive_writers(
        str(path),
        writers=args.writers,
        lines=args.lines,
        samples=args.samples,
        stages=args.stages,
        max_buffer=args.max_buffer,
        interval=args.interval,
        timeout=args.timeout,
        start_method=args.start_method,
    )
    wall, stats, done = drive.wall, drive.stats, drive.done

    per, total_logs, total_samples, check = _count(path)
    expected_logs = args.writers * args.lines
    expected_samples = args.writers * args.samples
    lost_logs = expected_logs - total_logs
    lost_samples = expected_samples - total_samples
    errors = drive.errors + stats.errors
    if check != "ok":
        errors.append(f"PRAGMA quick_check: {check}")

    for e in errors:
        print(f"\nERROR {e.rstrip()}", file=sys.stderr)
    locked = sum("locked" in e or "busy" in e.lower() for e in errors)

    print("\nPer writer")
    rows = []
    for i in range(args.writers):
        name = f"bench-writer-{i}"
        logs, samples = per.get(name, (0, 0))
        final = done.get(i)
        if final is None:
            rows.append([name, "-", "-", f"{logs:,}", f"{samples:,}", "-"])
        else:
            run = str(final.run_id or "-")
            seconds = f"{final.seconds:.2f} s"
            rows.append([name, run, final.status or "-", f"{logs:,}", f"{samples:,}", seconds])
    print(table(["pipeline", "run", "status", "log lines", "samples", "recording time"], rows))

    lat = stats.latencies
    stored = total_logs + total_samples
    print("\nConcurrent writers: summary")
    print(
        table(
            ["figure", "log_lines", "metric_samples"],
            [
                ["expected", f"{expected_logs:,}", f"{expected_samples:,}"],
                ["stored", f"{total_logs:,}", f"{total_samples:,}"],
                ["lost (must be 0)", f"{lost_logs:,}", f"{lost_samples:,}"],
            ],
        )
    )
    print()
    print(
        table(
            ["figure", "value"],
            [
                ["errors (must be 0)", len(errors)],
                ["  of which locked/busy", locked],
                ["PRAGMA quick_check", check],
                [
                    "writers x (lines + samples)",
                    f"{args.writers} x ({args.lines:,} + {args.samples:,})",
                ],
                ["wall time (start signal -> all runs finished)", f"{wall:.2f} s"],
                ["rows/s overall (stored / wall)", f"{stored / wall:,.0f}"],
                ["dashboard reads", f"{len(lat)} (every {args.interval * 1000:.0f} ms)"],
                ["read latency median", ms(median(lat))],
                ["read latency p99", ms(percentile(lat, 99))],
                ["read latency max", ms(max(lat) if lat else float("nan"))],
                ["pipelines in the final dashboard read", stats.pipelines_seen],
            ],
        )
    )
    ok = lost_logs == 0 and lost_samples == 0 and not errors
    print("\nRESULT:", "ok" if ok else "FAILED (rows lost or errors)")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=4, help="writer processes (default 4)")
    parser.add_argument("--lines", type=int, default=25_000, help="log lines per writer")
    parser.add_argument("--samples", type=int, default=25_000, help="metric samples per writer")
    parser.add_argument("--stages", type=int, default=4, help="stages per run (default 4)")
    parser.add_argument(
        "--max-buffer",
        type=int,
        default=1000,
        help="Tracker max_buffer: rows per write transaction (default 1000, the Tracker's own)",
    )
    parser.add_argument(
        "--interval", type=float, default=0.1, help="seconds between dashboard reads"
    )
    parser.add_argument("--start-method", choices=["spawn", "fork", "forkserver"], default="spawn")
    parser.add_argument(
        "--race-create",
        action="store_true",
        help="do not create the store first: the writers create and migrate it concurrently",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this long")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with the store")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,500 lines + samples")
    args = parser.parse_args()
    if args.quick:
        args.lines = min(args.lines, 2_500)
        args.samples = min(args.samples, 2_500)
    return in_workdir(args.keep, lambda root: run_benchmark(args, root), prefix="opstui-bench-")


if __name__ == "__main__":
    sys.exit(main())
