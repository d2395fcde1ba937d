"""Logging metrics: opstui's Tracker against MLflow's tracking client, both on SQLite.

The same 10,000 values of one metric ("loss", steps 0..9999, one run) are logged
through:

  (a) opstui: ``run.log_metric`` per value, the final ``run.flush()`` counted;
  (b) MLflow: ``mlflow.log_metric`` per value (``sqlite:///`` tracking URI);
  (c) MLflow: ``MlflowClient().log_batch`` in chunks of 1,000, its fastest path.

Setup is not timed: MLflow's first database init (alembic migrations) takes
seconds, so the experiment and runs are created first and only the logging is
timed; for opstui likewise the store is created and the run started first.
Afterwards both stores are read back to check they hold every value.

MLflow is not a runtime dependency: ``pip install -e '.[bench]'``.

    .venv/bin/python bench/vs_mlflow.py
    .venv/bin/python bench/vs_mlflow.py --quick     # 1,000 values
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sqlite3
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _report import in_workdir, table

from opstui.store import metrics as store_metrics
from opstui.track import Tracker

PIPELINE = "bench-vs-mlflow"


@dataclass(frozen=True)
class Result:
    label: str
    values: int  # values logged and timed
    seconds: float
    stored: int  # values found in the store afterwards
    note: str = ""

    @property
    def per_second(self) -> float:
        return self.values / self.seconds if self.seconds > 0 else float("inf")


def make_values(n: int, seed: int = 42) -> list[float]:
    """A decreasing, noisy loss curve: the same values for every client."""
    rng = random.Random(seed)
    return [0.05 + 2.0 / (1 + i / 250) * (0.95 + 0.1 * rng.random()) for i in range(n)]


# -- opstui -------------------------------------------------------------------------------------


def opstui_log(workdir: Path, values: Sequence[float], *, flush_each: bool) -> Result:
    """Log through the Tracker; the timer stops after the final flush."""
    path = workdir / f"opstui-{'each' if flush_each else 'buffered'}.db"
    tracker = Tracker(path)
    try:
        with tracker.run(PIPELINE, stages=["train"]) as run, run.stage("train"):
            t0 = time.perf_counter()
            for step, value in enumerate(values):
                run.log_metric("loss", value, step=step)
                if flush_each:
                    run.flush()
            run.flush()
            seconds = time.perf_counter() - t0
        stored = store_metrics.series_window(tracker.store, f"pipeline/{PIPELINE}", "loss")
        steps_ok = [s.step for s in stored] == list(range(len(values)))
    finally:
        tracker.close()
    if flush_each:
        label = "(a2) opstui Tracker, flush() after every value"
        note = "one transaction per value, like MLflow's per-call path"
    else:
        label = "(a) opstui Tracker, log_metric per value"
        note = "buffered, written in batches of 1,000"
    if not steps_ok:
        note += "; STEPS DO NOT MATCH"
    return Result(label, len(values), seconds, len(stored), note)


# -- MLflow -------------------------------------------------------------------------------------


def import_mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        print(
            "MLflow is not installed; it is an optional benchmark dependency:\n"
            "    .venv/bin/pip install -e '.[bench]'     (or: pip install 'mlflow>=3.0')",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    return mlflow


def quiet_mlflow() -> None:
    """MLflow and alembic log their database init at INFO; keep the output to the figures."""
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="mlflow")


def mlflow_per_call(
    mlflow: Any,
    values: Sequence[float],
    *,
    budget: float,
    fallback: int,
    probe: int,
) -> Result:
    """``mlflow.log_metric`` per value; fewer values (extrapolated) if all would exceed budget."""
    from mlflow import MlflowClient

    client = MlflowClient()
    with mlflow.start_run(run_name="per-call") as active:
        run_id = active.info.run_id
        n = len(values)
        logged = 0
        t0 = time.perf_counter()
        for step in range(min(probe, n)):
            mlflow.log_metric("loss", values[step], step=step)
        logged = min(probe, n)
        projected = (time.perf_counter() - t0) / logged * n
        limit = n if projected <= budget else max(fallback, logged)
        for step in range(logged, min(limit, n)):
            mlflow.log_metric("loss", values[step], step=step)
        logged = min(limit, n)
        seconds = time.perf_counter() - t0
    stored = len(client.get_metric_history(run_id, "loss"))
    note = ""
    if logged < n:
        note = (
            f"ONLY {logged:,} of {n:,} values logged (all would take ~{projected:.0f} s); "
            f"throughput measured on {logged:,} and extrapolated"
        )
    return Result("(b) MLflow mlflow.log_metric per value", logged, seconds, stored, note)


def mlflow_batch(mlflow: Any, values: Sequence[float], *, chunk: int) -> Result:
    """``MlflowClient.log_batch`` with ``chunk`` metrics per call."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient()
    experiment = mlflow.get_experiment_by_name(PIPELINE)
    run_id = client.create_run(experiment.experiment_id, run_name="log-batch").info.run_id
    t0 = time.perf_counter()
    for lo in range(0, len(values), chunk):
        now_ms = int(time.time() * 1000)
        batch = [
            Metric("loss", values[step], now_ms, step)
            for step in range(lo, min(lo + chunk, len(values)))
        ]
        client.log_batch(run_id, metrics=batch)
    seconds = time.perf_counter() - t0
    client.set_terminated(run_id)
    stored = len(client.get_metric_history(run_id, "loss"))
    return Result(
        f"(c) MLflow MlflowClient.log_batch, {chunk:,} per call",
        len(values),
        seconds,
        stored,
        "MLflow's fastest path",
    )


def mlflow_setup(mlflow: Any, workdir: Path) -> float:
    """Create the database (migrations) and the experiment; return seconds (not timed)."""
    t0 = time.perf_counter()
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    mlflow.set_experiment(PIPELINE)
    return time.perf_counter() - t0


# -- report -------------------------------------------------------------------------------------


def run_benchmark(args: argparse.Namespace, workdir: Path) -> int:
    mlflow = import_mlflow()
    quiet_mlflow()
    os.environ.pop("MLFLOW_ENABLE_ASYNC_LOGGING", None)  # MLflow's default: synchronous
    values = make_values(args.values)
    print(f"logging {len(values):,} values of one metric, one run, into SQLite under {workdir}")

    results = [opstui_log(workdir, values, flush_each=False)]
    if args.flush_each:
        results.append(opstui_log(workdir, values, flush_each=True))
    setup = mlflow_setup(mlflow, workdir)
    print(f"MLflow {mlflow.__version__}: database init + experiment took {setup:.1f} s (not timed)")
    results.append(
        mlflow_per_call(
            mlflow, values, budget=args.mlflow_budget, fallback=args.mlflow_fallback, probe=200
        )
    )
    results.append(mlflow_batch(mlflow, values, chunk=args.chunk))

    opstui_rate = results[0].per_second
    rows = []
    problems = 0
    for r in results:
        ok = r.stored == r.values
        problems += not ok
        rows.append(
            [
                r.label,
                f"{r.values:,}",
                f"{r.seconds:.3f} s",
                f"{r.per_second:,.0f}",
                f"{opstui_rate / r.per_second:,.1f}x",
                f"{r.stored:,}" + ("" if ok else "  MISMATCH"),
                r.note,
            ]
        )
    print("\nLogging metric values: results (setup excluded from timing)")
    print(
        table(
            ["client", "values", "time", "values/s", "opstui(a)/this", "stored", "note"],
            rows,
        )
    )
    print(
        "\nopstui(a)/this is the throughput ratio: how many times faster opstui's buffered\n"
        "Tracker logs than each path. MLflow's per-call path writes each value in its own\n"
        "transaction before it returns; opstui buffers and writes every 1,000 values or\n"
        "0.5 s, which is why (a2) shows opstui with a transaction per value as well.\n"
        f"Durability differs too: MLflow's SQLite store uses journal_mode={journal_mode(workdir)}\n"
        "with SQLite's default synchronous=FULL (an fsync per commit); opstui's store is WAL\n"
        "with synchronous=NORMAL (no fsync per commit; a process crash loses nothing\n"
        "committed, an OS crash may lose the last commits)."
    )
    if problems:
        print(f"\n{problems} store(s) do not hold every value logged")
    return 1 if problems else 0


def journal_mode(workdir: Path) -> str:
    conn = sqlite3.connect(workdir / "mlflow.db")
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--values", type=int, default=10_000, help="values to log (10,000)")
    parser.add_argument("--chunk", type=int, default=1_000, help="values per log_batch call")
    parser.add_argument(
        "--mlflow-budget",
        type=float,
        default=180.0,
        help="if MLflow's per-call logging of every value would take longer (s), "
        "log --mlflow-fallback values and extrapolate",
    )
    parser.add_argument("--mlflow-fallback", type=int, default=2_000)
    parser.add_argument(
        "--no-flush-each",
        dest="flush_each",
        action="store_false",
        help="skip opstui with a flush after every value",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with both stores")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1,000 values")
    args = parser.parse_args()
    if args.quick:
        args.values = min(args.values, 1_000)
        args.chunk = min(args.chunk, 250)
    return in_workdir(args.keep, lambda root: run_benchmark(args, root), prefix="opstui-vs-mlflow-")


if __name__ == "__main__":
    sys.exit(main())
