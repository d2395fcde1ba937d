"""Drift: opstui's statistics and domain classifier against Evidently's preset.

The data of ``_drift_data.py`` (20 features, 10 of them shifted) at
``--rows`` (100,000) reference and current rows. Each part runs in a process
of its own, so its memory is its own:

  (a) opstui, univariate: every statistic of every feature (``compare``) from
      the reference summary as the store keeps it (encoded, then decoded: a
      cached summary), median of ``--runs``; also building the summary once;
  (b) opstui, the domain classifier on the same data (``classifier_rows``
      10,000 of each side), median of ``--runs``;
  (c) opstui, the whole ``compute_drift`` through a store: the window read
      from its recorded batch (JSON in SQLite), statistics, classifier, the
      check written, with the reference summary already stored;
  (d) Evidently 0.7.23's ``DataDriftPreset`` on the raw rows (one warm-up on
      small data first, so its lazy imports are not counted).

Each part reports wall time, the step's peak traced memory (``tracemalloc``,
a second pass, so tracing does not slow the timed one) and the process's
peak RSS (``VmHWM``, before tracing; imports and the generated data
included). The verdicts of (a) and (d) must be identical (exit 1 otherwise);
the ratio (d) / (a) is the speed-up at identical verdicts.

    .venv/bin/python bench/drift.py              # about 1.5 minutes
    .venv/bin/python bench/drift.py --quick      # 20,000 rows, about 30 s

Evidently is not a runtime dependency: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import _drift_data as data
from _report import in_workdir, table

T = TypeVar("T")
TARGETS = {"stats": 0.5, "classifier": 5.0, "ratio": 10.0}


def timed(fn: Callable[[], T], runs: int) -> tuple[float, T]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    assert result is not None
    return statistics.median(times), result


def traced_peak(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def max_rss() -> int:
    """This process's peak RSS. ``VmHWM``, not ``ru_maxrss``: Linux carries
    the latter over from the parent across fork and exec, so a child would
    report at least the parent's size."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kib) * 1024


def part_stats(rows: int, runs: int) -> dict[str, Any]:
    from opstui.analysis.drift import DriftSettings, compare, dataset_verdict
    from opstui.analysis.drift_summary import decode, encode, summarise

    reference = data.make(rows, shifted=False, seed=1)
    current = data.make(rows, shifted=True, seed=2)
    build, summary = timed(lambda: summarise([reference], categorical=data.CATEGORICAL), 1)
    payload = encode(summary)
    cached = decode(payload)
    settings = DriftSettings()
    seconds, features = timed(lambda: compare(cached, current, settings), runs)
    rss = max_rss()  # before tracing, whose own records would count
    return {
        "seconds": seconds,
        "build_seconds": build,
        "summary_bytes": len(payload),
        "rss": rss,
        "peak": traced_peak(lambda: compare(cached, current, settings)),
        "verdicts": {f.name: f.drifted for f in features},
        "values": {f.name: f.verdict.value for f in features if f.verdict},
        "share": dataset_verdict(features, settings).share,
    }


def part_classifier(rows: int, runs: int) -> dict[str, Any]:
    from opstui import drift_job
    from opstui.analysis.drift import DriftSettings, compare
    from opstui.analysis.drift_summary import summarise

    reference = data.make(rows, shifted=False, seed=1)
    current = data.make(rows, shifted=True, seed=2)
    summary = summarise([reference], categorical=data.CATEGORICAL)
    settings = DriftSettings()
    features = compare(summary, current, settings)

    def run() -> Any:
        return drift_job._classifier(summary, current, features, settings)

    run()  # scikit-learn's imports and OpenMP start-up are not the classifier
    seconds, result = timed(run, runs)
    rss = max_rss()
    return {
        "seconds": seconds,
        "rss": rss,
        "peak": traced_peak(run),
        "auc": result.auc,
        "rows": result.rows,
        "top": result.top[:3],
    }


def part_store(rows: int, runs: int, workdir: str) -> dict[str, Any]:
    import dataclasses

    from opstui import drift_job
    from opstui.analysis.drift import DriftSettings
    from opstui.store import Store
    from opstui.track import Tracker

    reference = data.make(rows, shifted=False, seed=1)
    current = data.make(rows, shifted=True, seed=2)
    store = Store(Path(workdir) / "drift.db")
    with Tracker(store).run("bench") as run:
        run.log_model_version(
            "m", status="production", reference={k: list(v) for k, v in reference.items()}
        )
        run.log_features("m", {k: list(v) for k, v in current.items()})
    base = DriftSettings(categorical=tuple(data.CATEGORICAL))
    drift_job.compute_drift(store, "m", settings=base, save=False)  # builds the summary
    drift_job._CACHE.clear()  # a fresh process: the summary is read from the store
    quick = dataclasses.replace(base, classifier=False)
    univariate, _ = timed(
        lambda: drift_job.compute_drift(store, "m", settings=quick, save=False), runs
    )
    window, _ = timed(lambda: drift_job.current_window(store, "m", base), runs)
    counter = iter(range(1000))

    def saved() -> Any:  # another psi_bins each time: a new check, stored
        settings = dataclasses.replace(base, psi_bins=10 + next(counter))
        return drift_job.compute_drift(store, "m", settings=settings)

    whole, check = timed(saved, runs)
    rss = max_rss()
    return {
        "seconds": whole,
        "univariate_seconds": univariate,
        "window_seconds": window,
        "rss": rss,
        "peak": traced_peak(saved),
        "stored": check.check_id is not None,
    }


def part_evidently(rows: int, runs: int) -> dict[str, Any]:
    small = data.make(2000, shifted=False, seed=3)
    data.evidently_drift(small, data.make(2000, shifted=True, seed=4))  # warm-up
    reference = data.make(rows, shifted=False, seed=1)
    current = data.make(rows, shifted=True, seed=2)
    seconds, result = timed(lambda: data.evidently_drift(reference, current), runs)
    rss = max_rss()
    return {
        "seconds": seconds,
        "rss": rss,
        "peak": traced_peak(lambda: data.evidently_drift(reference, current)),
        "verdicts": {c: col.drifted for c, col in result.columns.items()},
        "values": {c: col.value for c, col in result.columns.items()},
        "share": result.share,
    }


PARTS = {
    "stats": part_stats,
    "classifier": part_classifier,
    "evidently": part_evidently,
}


def run_part(name: str, rows: int, runs: int, workdir: Path) -> dict[str, Any]:
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    argv = [sys.executable, __file__, "--part", name, "--rows", str(rows), "--runs", str(runs)]
    argv += ["--workdir", str(workdir)]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"part {name} failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB"


def s(x: float) -> str:
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="reference and current rows")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per part (median)")
    parser.add_argument("--quick", action="store_true", help="20,000 rows, 3 runs")
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--part", choices=[*PARTS, "store"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part:
        if args.part == "store":
            result = part_store(args.rows, args.runs, args.workdir)
        else:
            result = PARTS[args.part](args.rows, args.runs)
        print(json.dumps(result, default=str))
        return 0
    rows, runs = (20_000, 3) if args.quick else (args.rows, args.runs)
    if not args.skip_evidently and importlib.util.find_spec("evidently") is None:
        print("Evidently is not installed: .venv/bin/pip install -e '.[bench]'")
        return 2
    return in_workdir(args.keep, lambda root: report(rows, runs, root, args.skip_evidently))


def report(rows: int, runs: int, root: Path, skip_evidently: bool) -> int:
    print(f"{len(data.FEATURES)} features x {rows:,} reference and {rows:,} current rows")
    ours = run_part("stats", rows, runs, root)
    clf = run_part("classifier", rows, runs, root)
    whole = run_part("store", rows, max(1, runs // 2), root)
    theirs = None if skip_evidently else run_part("evidently", rows, max(1, runs // 2), root)
    lines = [
        ["(a) opstui univariate, cached summary", s(ours["seconds"]), mb(ours["peak"]),
         mb(ours["rss"]), f"<= {TARGETS['stats']} s"],
        ["    building the summary (once a version)", s(ours["build_seconds"]), "", "",
         f"{ours['summary_bytes'] / 1e6:.1f} MB stored"],
        ["(b) opstui domain classifier", s(clf["seconds"]), mb(clf["peak"]), mb(clf["rss"]),
         f"<= {TARGETS['classifier']} s"],
        ["(c) compute_drift through the store", s(whole["seconds"]), mb(whole["peak"]),
         mb(whole["rss"]), "-"],
        ["    of which reading the window", s(whole["window_seconds"]), "", "", ""],
        ["    without the classifier", s(whole["univariate_seconds"]), "", "", ""],
    ]  # fmt: skip
    status = 0
    if theirs is not None:
        ratio = theirs["seconds"] / ours["seconds"]
        with_classifier = theirs["seconds"] / (ours["seconds"] + clf["seconds"])
        same = theirs["verdicts"] == ours["verdicts"]
        worst = max(abs(theirs["values"][k] - v) for k, v in ours["values"].items())
        lines += [
            ["(d) Evidently DataDriftPreset", s(theirs["seconds"]), mb(theirs["peak"]),
             mb(theirs["rss"]), "-"],
            ["(d)/(a) at identical verdicts" if same else "(d)/(a) VERDICTS DIFFER",
             f"{ratio:.0f}x", "", "", f">= {TARGETS['ratio']:.0f}x"],
            ["(d)/(a+b), classifier included", f"{with_classifier:.1f}x", "", "", "-"],
        ]  # fmt: skip
        print(
            f"verdicts identical: {same}; largest |opstui - Evidently| of the deciding statistic: "
            f"{worst:.2e}; drift share {ours['share']:.2f} / {theirs['share']:.2f}"
        )
        status = 0 if same else 1
    print(f"classifier: ROC AUC {clf['auc']:.3f} on {clf['rows']:,} rows a side; "
          f"most separating {clf['top']}")  # fmt: skip
    print(table(["", "wall (median)", "step peak", "process RSS", "target"], lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
