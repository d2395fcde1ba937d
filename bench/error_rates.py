"""Error rates over a long history: 1,000,000 stored samples of one counter, then the arithmetic.

A temp store gets two counter series of one endpoint, as the poller records
them: ``requests_total`` and ``errors_total``, one sample each every 10 s
(``--samples``, 1,000,000: about 116 days), with the requests counter reset
twice (the service restarted) and the error ratio raised to 5% over the last
two hours (so the page alert fires). Written through
``opstui.store.metrics.record_samples``, not timed. Then, medians of
``--runs``:

  (a) reading the 1M requests samples back (``metrics.series_window``);
  (b) turning the store's rows into ``(ts, value)`` points for ``rates``;
  (c) ``increase()`` over the full range, checked against the true increase;
  (d) ``error_ratio`` for each window 1m..3d ending at the last sample;
  (e) the whole path: read both series, convert, the eight ratios and
      ``burn_alerts``; once reading the full history, once reading only the
      last 3 days (all the longest window needs).

    .venv/bin/python bench/error_rates.py
    .venv/bin/python bench/error_rates.py --quick     # 100,000 samples
"""

from __future__ import annotations

import argparse
import bisect
import functools
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from _report import in_workdir, ms, table

from opstui.analysis.rates import WINDOWS, burn_alerts, error_ratio, increase
from opstui.store import Store
from opstui.store import metrics as store_metrics
from opstui.store.rows import Sample

SOURCE = "endpoint/bench-api"
STEP = 10.0
T0 = 1_780_000_000.0
SLO = 0.999
T = TypeVar("T")
Points = list[tuple[float, float]]


def make_counters(n: int, seed: int = 11) -> tuple[Points, Points, float]:
    """Requests and errors counters; returns them and the true increase of requests.

    At a reset the counter restarts from 0 and the step's requests are lost
    to any scraper, so the true increase is the sum of the visible steps.
    """
    rng = random.Random(seed)
    resets = {n // 3, 2 * n // 3}
    hot_from = n - int(2 * 3600 / STEP)  # the last two hours burn at 5%
    requests: Points = []
    errors: Points = []
    req = err = 0.0
    true_increase = 0.0
    for i in range(n):
        ts = T0 + i * STEP
        if i in resets:
            req = err = 0.0
        elif i:
            inc = float(rng.randint(50, 150))
            ratio = 0.05 if i >= hot_from else 0.0005
            req += inc
            err += float(int(inc * ratio + rng.random()))
            true_increase += inc
        requests.append((ts, req))
        errors.append((ts, err))
    return requests, errors, true_increase


def timed(fn: Callable[[], T], runs: int) -> tuple[float, T]:
    """Median wall time of ``runs`` calls, and the last call's result."""
    times = []
    result: T
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def points(rows: Sequence[Sample]) -> Points:
    return [(r.ts, r.value) for r in rows]


def all_windows(requests: Points, errors: Points, end: float) -> dict[str, float | None]:
    return {name: error_ratio(requests, errors, end - secs, end) for name, secs in WINDOWS.items()}


def per_second(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds > 0 else "-"


def run_benchmark(args: argparse.Namespace, workdir: Path) -> int:
    n = args.samples
    requests, errors, true_increase = make_counters(n)
    store = Store(workdir / "bench.db")
    try:
        t0 = time.perf_counter()
        store_metrics.record_samples(store, SOURCE, "requests_total", requests)
        store_metrics.record_samples(store, SOURCE, "errors_total", errors)
        build = time.perf_counter() - t0
        print(
            f"stored 2 series x {n:,} samples (10 s apart, {n * STEP / 86400:.0f} days, "
            f"2 resets) in {build:.1f} s (not timed below); medians of {args.runs} runs"
        )
        end = requests[-1][0]
        three_days = WINDOWS["3d"]

        def read_all() -> list[Sample]:
            return store_metrics.series_window(store, SOURCE, "requests_total")

        def read_pairs() -> list[tuple[float, float]]:
            # What a read model returning (ts, value) directly would cost: no row objects.
            with store.lock:
                return store.conn.execute(
                    "SELECT ts, value FROM metric_samples WHERE series_id = "
                    "(SELECT id FROM series WHERE source = ? AND name = ?) ORDER BY ts",
                    (SOURCE, "requests_total"),
                ).fetchall()

        def whole_path(start: float | None) -> dict[str, float | None]:
            req = store_metrics.series_window(store, SOURCE, "requests_total", start=start)
            err = store_metrics.series_window(store, SOURCE, "errors_total", start=start)
            ratios = all_windows(points(req), points(err), end)
            # The series spans days: every window is covered by history.
            burn_alerts(ratios, SLO, history=WINDOWS)
            return ratios

        rows: list[list[str]] = []
        t_read, stored = timed(read_all, args.runs)
        rows.append(["(a) read 1 series (metrics.series_window)", f"{len(stored):,}"])
        rows[-1] += [ms(t_read), per_second(len(stored), t_read)]
        t_pairs, pairs = timed(read_pairs, args.runs)
        rows.append(["(a') read as (ts, value) pairs (raw SQL)", f"{len(pairs):,}"])
        rows[-1] += [ms(t_pairs), per_second(len(pairs), t_pairs)]
        t_conv, pts = timed(lambda: points(stored), args.runs)
        rows.append(["(b) rows -> (ts, value) points", f"{len(pts):,}"])
        rows[-1] += [ms(t_conv), per_second(len(pts), t_conv)]
        t_inc, full = timed(lambda: increase(pts, pts[0][0], pts[-1][0]), args.runs)
        rows.append(["(c) increase() over the full range", f"{len(pts):,}"])
        rows[-1] += [ms(t_inc), per_second(len(pts), t_inc)]

        err_pts = points(store_metrics.series_window(store, SOURCE, "errors_total"))
        ratios: dict[str, float | None] = {}
        t_windows = 0.0
        for name, secs in WINDOWS.items():
            window = len(pts) - bisect.bisect_left(pts, (end - secs,))
            t_w, ratios[name] = timed(
                functools.partial(error_ratio, pts, err_pts, end - secs, end), args.runs
            )
            t_windows += t_w
            rows.append([f"(d) error_ratio {name}", f"2 x {window:,}", ms(t_w)])
            rows[-1].append(per_second(2 * window, t_w))
        rows.append(["(d) error_ratio, all 8 windows", "", ms(t_windows), ""])
        t_all, _ = timed(lambda: whole_path(None), args.runs)
        rows.append(["(e) read full history + 8 ratios + burn_alerts", f"2 x {n:,}"])
        rows[-1] += [ms(t_all), per_second(2 * n, t_all)]
        last_3d = len(pts) - bisect.bisect_left(pts, (end - three_days,))
        t_3d, ratios_3d = timed(lambda: whole_path(end - three_days), args.runs)
        rows.append(["(e') read last 3d + 8 ratios + burn_alerts", f"2 x {last_3d:,}"])
        rows[-1] += [ms(t_3d), per_second(2 * last_3d, t_3d)]
    finally:
        store.close()

    print()
    print(table(["figure", "samples", "median", "samples/s"], rows))

    ok = full is not None and abs(full - true_increase) <= 1e-6 * true_increase
    same = ratios_3d == ratios
    print(
        f"\nincrease over the full range: {full:,.0f}, true increase {true_increase:,.0f} "
        f"({'OK' if ok else 'MISMATCH'}); ratios from the 3-day read "
        f"{'equal' if same else 'DIFFER FROM'} the full read's"
    )
    print("error ratios and burn alerts at the end of the series (SLO 99.9%):")
    print(
        "  " + ", ".join(f"{k} {v:.4%}" if v is not None else f"{k} -" for k, v in ratios.items())
    )
    for alert in burn_alerts(ratios, SLO, history=WINDOWS):
        burns = f"{alert.long_burn or 0:.1f}x / {alert.short_burn or 0:.1f}x"
        state = "FIRING" if alert.firing else "ok"
        print(
            f"  {alert.severity:6} {alert.long_window:>3} & {alert.short_window:<3} > "
            f"{alert.threshold:g}x: {burns:>14}  {state}"
        )
    return 0 if ok and same else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=1_000_000, help="per series (1,000,000)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per figure (median)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with the store")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100,000 samples, 3 runs")
    args = parser.parse_args()
    if args.quick:
        args.samples = min(args.samples, 100_000)
        args.runs = min(args.runs, 3)
    if args.samples < 30_000:
        parser.error("--samples must cover the 3-day window: at least 30,000")
    return in_workdir(args.keep, lambda root: run_benchmark(args, root), prefix="opstui-rates-")


if __name__ == "__main__":
    sys.exit(main())
