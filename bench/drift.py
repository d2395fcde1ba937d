"""Drift: opstui's statistics and domain classifier against Evidently.

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
  (e-h) in one process, interleaved round by round (``--runs`` rounds after
      a warm-up on small data): (e) ``compare`` on the cached summary, (f)
      building the summary and ``compare``, (g) Evidently 0.7.23's fastest
      path with the same output, a report of one ``ValueDrift`` per column
      with the column types it infers, (h) its ``DataDriftPreset``, which
      computes drift twice. (g)/(e) and (g)/(f) are the speed-ups at
      identical verdicts (exit 1 if any verdict differs);
  (cli) ``opstui drift m`` from a cold process at 100, 10,000 and ``--rows`` current
      rows, classifier off and on (a fresh copy of a store whose reference is
      summarised), next to a cold ``python -c`` reading the same CSVs with
      pandas and running the per-column ValueDrift report; interleaved.

(a)-(c) report wall time, the step's peak traced memory (``tracemalloc``,
a second pass, so tracing does not slow the timed one) and the process's
peak RSS (``VmHWM``, before tracing; imports and the generated data
included).

    .venv/bin/python bench/drift.py              # about 4 minutes
    .venv/bin/python bench/drift.py --quick      # 20,000 rows, about 1.5 minutes

Evidently is not a runtime dependency: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
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
TARGETS = {"stats": 0.5, "classifier": 5.0, "ratio": 15.0, "ratio_built": 8.0}


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
    from opstui.analysis.drift import compare, dataset_verdict
    from opstui.analysis.drift_results import DriftSettings
    from opstui.analysis.drift_summariser import summarise
    from opstui.analysis.drift_summary import decode, encode

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
    from opstui.analysis.drift import compare
    from opstui.analysis.drift_results import DriftSettings
    from opstui.analysis.drift_summariser import summarise
    from opstui.drift import check as drift_check

    reference = data.make(rows, shifted=False, seed=1)
    current = data.make(rows, shifted=True, seed=2)
    summary = summarise([reference], categorical=data.CATEGORICAL)
    settings = DriftSettings()
    features = compare(summary, current, settings)

    def run() -> Any:
        return drift_check._classifier(summary, current, features, settings)

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

    from opstui.analysis.drift_results import DriftSettings
    from opstui.drift import check as drift_check
    from opstui.drift import reference as drift_reference
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
    drift_check.compute_drift(store, "m", settings=base, save=False)  # builds the summary
    drift_reference._CACHE.clear()  # a fresh process: the summary is read from the store
    quick = dataclasses.replace(base, classifier=False)
    univariate, _ = timed(
        lambda: drift_check.compute_drift(store, "m", settings=quick, save=False), runs
    )
    window, _ = timed(lambda: drift_check.current_window(store, "m", base), runs)
    counter = iter(range(1000))

    def saved() -> Any:  # another psi_bins each time: a new check, stored
        settings = dataclasses.replace(base, psi_bins=10 + next(counter))
        return drift_check.compute_drift(store, "m", settings=settings)

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


def part_versus(rows: int, runs: int) -> dict[str, Any]:
    """opstui and Evidently in one process, interleaved round by round.

    Each round times, in turn: opstui's ``compare`` on the cached (decoded)
    summary; building the summary from the raw reference and then
    ``compare``; Evidently's fastest path with the same output (a report of
    one ``ValueDrift`` per column, the types it infers); its
    ``DataDriftPreset``. One untimed warm-up round on small data first."""
    from opstui.analysis.drift import compare, dataset_verdict
    from opstui.analysis.drift_results import DriftSettings
    from opstui.analysis.drift_summariser import summarise
    from opstui.analysis.drift_summary import decode, encode

    settings = DriftSettings()

    def build_and_compare(ref: data.Columns, cur: data.Columns) -> Any:
        return compare(summarise([ref], categorical=data.CATEGORICAL), cur, settings)

    small_ref = data.make(2000, shifted=False, seed=3)
    small_cur = data.make(2000, shifted=True, seed=4)
    build_and_compare(small_ref, small_cur)
    data.evidently_drift(small_ref, small_cur, infer=True, per_column=True)
    data.evidently_drift(small_ref, small_cur, infer=True)

    reference = data.make(rows, shifted=False, seed=1)
    current = data.make(rows, shifted=True, seed=2)
    cached = decode(encode(summarise([reference], categorical=data.CATEGORICAL)))
    steps: dict[str, Callable[[], Any]] = {
        "cached": lambda: compare(cached, current, settings),
        "built": lambda: build_and_compare(reference, current),
        "value_drift": lambda: data.evidently_drift(
            reference, current, infer=True, per_column=True
        ),
        "preset": lambda: data.evidently_drift(reference, current, infer=True),
    }
    times: dict[str, list[float]] = {k: [] for k in steps}
    results: dict[str, Any] = {}
    for _ in range(runs):
        for name, step in steps.items():
            started = time.perf_counter()
            results[name] = step()
            times[name].append(time.perf_counter() - started)
    ours = results["cached"]
    verdicts = {f.name: f.drifted for f in ours}
    return {
        "times": times,
        "same": {
            k: {c: col.drifted for c, col in results[k].columns.items()} == verdicts
            for k in ("value_drift", "preset")
        },
        "worst": max(
            abs(results["value_drift"].columns[f.name].value - f.verdict.value)
            for f in ours
            if f.verdict is not None
        ),
        "share": (dataset_verdict(ours, settings).share, results["value_drift"].share),
    }


EVIDENTLY_CLI = """
import os, sys
os.environ.setdefault("DO_NOT_TRACK", "1")
import pandas as pd
from evidently import Dataset, Report
from evidently.metrics import ValueDrift
reference, current = pd.read_csv(sys.argv[1]), pd.read_csv(sys.argv[2])
datasets = [Dataset.from_pandas(df) for df in (current, reference)]
report = Report([ValueDrift(column=c) for c in reference.columns], include_tests=True)
tests = report.run(*datasets).dict()["tests"]
drifted = sum(t["status"] == "FAIL" for t in tests)
print(f"{drifted} of {len(tests)} columns drifted")
"""


def part_cli(rows: int, runs: int, workdir: str) -> dict[str, Any]:
    """``opstui drift MODEL`` as a command, cold, against the same check in a
    cold Python process running Evidently's per-column ValueDrift report on
    the same CSV files (pandas reads them). The reference (``rows`` rows) is
    set and summarised beforehand, as it is once per model version; each
    opstui run gets a fresh copy of the store, so the check is computed and
    stored, not read back."""
    import csv
    import shutil

    root = Path(workdir)
    reference = data.make(rows, shifted=False, seed=1)
    current = data.make(rows, shifted=True, seed=2)

    def write(path: Path, columns: data.Columns, n: int) -> Path:
        names = list(columns)
        cells = [[_cell(columns[c][i]) for c in names] for i in range(n)]
        with path.open("w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(names)
            out.writerows(cells)
        return path

    ref_csv = write(root / "reference.csv", reference, rows)
    opstui = [sys.executable, "-m", "opstui"]
    config = {}
    for classifier in (False, True):
        config[classifier] = root / f"classifier-{classifier}.toml"
        config[classifier].write_text(f"[drift]\nclassifier = {str(classifier).lower()}\n")
    sizes = cli_sizes(rows)
    bases = {}
    for n in sizes:
        cur_csv = write(root / f"current-{n}.csv", current, n)
        base = root / f"base-{n}.db"
        for args in (
            ["drift", "set-reference", "m", str(ref_csv), "--version", "1"],
            ["record", "features", "m", str(cur_csv)],
        ):
            subprocess.run([*opstui, *args, "--store", str(base)], check=True, capture_output=True)
        bases[n] = (base, cur_csv)
    times: dict[str, list[float]] = {}
    for _ in range(runs):
        for n in sizes:
            base, cur_csv = bases[n]
            for classifier in (False, True):
                store = root / "run.db"
                shutil.copyfile(base, store)
                argv = [*opstui, "drift", "m", "--store", str(store), "--config"]
                argv.append(str(config[classifier]))
                key = f"opstui {n} {'on' if classifier else 'off'}"
                times.setdefault(key, []).append(_wall(argv))
            argv = [sys.executable, "-c", EVIDENTLY_CLI, str(ref_csv), str(cur_csv)]
            times.setdefault(f"evidently {n}", []).append(_wall(argv))
    return {"times": times}


def cli_sizes(rows: int) -> list[int]:
    """Current rows the command is timed at: 100, 10,000 (the 3 s target's), ``rows``."""
    return sorted({100, min(10_000, rows), rows})


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _wall(argv: list[str]) -> float:
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: the dataset drifts
        raise SystemExit(f"{argv[:4]} failed:\n{done.stderr}")
    return seconds


PARTS = {
    "stats": part_stats,
    "classifier": part_classifier,
    "versus": part_versus,
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
    parser.add_argument("--part", choices=[*PARTS, "store", "cli"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part:
        if args.part == "store":
            result = part_store(args.rows, args.runs, args.workdir)
        elif args.part == "cli":
            result = part_cli(args.rows, args.runs, args.workdir)
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
    print(f"classifier: ROC AUC {clf['auc']:.3f} on {clf['rows']:,} rows a side; "
          f"most separating {clf['top']}")  # fmt: skip
    print(table(["", "wall (median)", "step peak", "process RSS", "target"], lines))
    if skip_evidently:
        return 0
    status = versus(rows, runs, root)
    cli(rows, max(2, runs // 2), root)
    return status


def spread(times: list[float]) -> str:
    return f"{s(min(times))} .. {s(max(times))}"


def versus(rows: int, runs: int, root: Path) -> int:
    v = run_part("versus", rows, runs, root)
    t = {k: statistics.median(x) for k, x in v["times"].items()}
    print(f"\nIn one process, interleaved, {runs} rounds (median; min .. max shows the noise):")
    lines = [
        ["(e) opstui compare, cached summary", s(t["cached"]), spread(v["times"]["cached"]), ""],
        ["(f) opstui summary build + compare", s(t["built"]), spread(v["times"]["built"]), ""],
        ["(g) Evidently, one ValueDrift per column", s(t["value_drift"]),
         spread(v["times"]["value_drift"]), "same verdicts" if v["same"]["value_drift"]
         else "VERDICTS DIFFER"],
        ["(h) Evidently DataDriftPreset", s(t["preset"]), spread(v["times"]["preset"]),
         "same verdicts" if v["same"]["preset"] else "VERDICTS DIFFER"],
        ["(g)/(e) cached", f"{t['value_drift'] / t['cached']:.1f}x", "",
         f">= {TARGETS['ratio']:.0f}x"],
        ["(g)/(f) build counted", f"{t['value_drift'] / t['built']:.1f}x", "",
         f">= {TARGETS['ratio_built']:.0f}x"],
        ["(h)/(e), (h)/(f) against the preset",
         f"{t['preset'] / t['cached']:.1f}x, {t['preset'] / t['built']:.1f}x", "", ""],
    ]  # fmt: skip
    print(table(["", "wall (median)", "min .. max", ""], lines))
    print(
        f"largest |opstui - Evidently| of the deciding statistic: {v['worst']:.2e}; "
        f"drift share {v['share'][0]:.2f} / {v['share'][1]:.2f}"
    )
    return 0 if all(v["same"].values()) else 1


def cli(rows: int, runs: int, root: Path) -> None:
    c = run_part("cli", rows, runs, root)["times"]
    print(
        f"\n`opstui drift m` from a cold process ({rows:,}-row reference summarised "
        f"beforehand, a fresh check each run), next to a cold `python -c` that reads the "
        f"same CSVs with pandas and runs Evidently's per-column ValueDrift report; "
        f"{runs} interleaved rounds:"
    )
    lines = []
    for n in cli_sizes(rows):
        for key, label, target in (
            (f"opstui {n} off", f"opstui, {n:,} current rows, classifier off",
             "<= 0.8 s" if n == 100 else "-"),
            (f"opstui {n} on", f"opstui, {n:,} current rows, classifier on",
             "<= 3 s" if n == 10_000 else "-"),
            (f"evidently {n}", f"Evidently ValueDrift, {n:,} current rows", "-"),
        ):  # fmt: skip
            lines.append([label, s(statistics.median(c[key])), spread(c[key]), target])
    print(table(["", "wall (median)", "min .. max", "target"], lines))


if __name__ == "__main__":
    sys.exit(main())
