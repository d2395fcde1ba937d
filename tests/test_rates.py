"""Counter increases, error ratios and burn alerts: by hand, and against promtool."""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from opstui.analysis.rates import (
    BURN_RULES,
    WINDOWS,
    BurnAlert,
    burn_alerts,
    burn_rate,
    error_ratio,
    increase,
    rate,
)

Points = list[tuple[float, float]]


# -- increase: by hand ---------------------------------------------------------------------------


def test_reset_is_added_back_facts_example() -> None:
    # 0 -> 50, a reset, 0 -> 40, samples on both edges of the window: no extrapolation.
    values = [0, 10, 20, 30, 40, 50, 0, 10, 20, 30, 40]
    points = [(i * 10.0, float(v)) for i, v in enumerate(values)]
    assert increase(points, 0, 100) == 90


def test_reset_to_a_non_zero_value() -> None:
    # 5 -> 20, then the counter restarted and was already at 3 when scraped: 15 + 3 + 4.
    points: Points = [(0, 5), (10, 20), (20, 3), (30, 7)]
    assert increase(points, 0, 30) == pytest.approx(15 + 3 + 4)


def test_every_drop_is_a_reset() -> None:
    points: Points = [(0, 10), (10, 5), (20, 1)]
    # last - first = -9, plus 10 and 5 added back.
    assert increase(points, 0, 20) == pytest.approx(6)


def test_extrapolates_to_both_edges_when_samples_are_close() -> None:
    # Samples 5 s inside each edge, 10 s apart (threshold 11 s): extended by 5 s each side.
    points: Points = [(5, 100), (15, 110), (25, 120)]
    assert increase(points, 0, 30) == pytest.approx(20 * (20 + 5 + 5) / 20)


def test_series_starting_inside_the_window_extends_half_an_interval() -> None:
    # First sample 30 s after the start (>= 1.1 x 10 s): the series began there,
    # so only 5 s (half the average interval) is added; the end is 10 s away (< 11 s).
    points: Points = [(30, 100), (40, 110), (50, 120)]
    assert increase(points, 0, 60) == pytest.approx(20 * (20 + 5 + 10) / 20)


def test_series_ending_inside_the_window_extends_half_an_interval() -> None:
    points: Points = [(0, 100), (10, 110), (20, 120)]
    assert increase(points, 0, 60) == pytest.approx(20 * (20 + 0 + 5) / 20)


def test_no_extrapolation_below_zero_near_the_start() -> None:
    # The start is 5 s away (< 11 s) but the line through the samples reaches
    # zero 2 s before the first one: extrapolation stops there.
    points: Points = [(5, 2), (15, 12), (25, 22), (35, 32)]
    assert increase(points, 0, 40) == pytest.approx(30 * (30 + 2 + 5) / 30)


def test_no_extrapolation_below_zero_for_a_new_series() -> None:
    # Half an interval would be 5 s; zero is 1 s before the first sample.
    points: Points = [(20, 1), (30, 11), (40, 21)]
    assert increase(points, 0, 60) == pytest.approx(20 * (20 + 1 + 5) / 20)


def test_counter_starting_at_zero_is_not_extended_back() -> None:
    points: Points = [(5, 0), (15, 10), (25, 20)]
    assert increase(points, 0, 30) == pytest.approx(20 * (20 + 0 + 5) / 20)


def test_zero_limit_applies_after_the_half_interval_choice() -> None:
    # Since Prometheus PR #13725: the first sample is 50 s in (a new series, so
    # half an interval, 5 s) and zero lies 8 s back; min(5, 8) = 5. Releases
    # before it extended by the 8 s (33.0); see test_promtool_zero_limit_order.
    points: Points = [(50, 8), (60, 18), (70, 28)]
    assert increase(points, 0, 100) == pytest.approx(20 * (20 + 5 + 5) / 20)


def test_uneven_spacing_uses_the_average_interval() -> None:
    # Intervals 10 and 30: average 20, threshold 22; start 15 s away, end 21 s away.
    points: Points = [(15, 0.5), (25, 10.5), (55, 40.5)]
    expected = 40 * (40 + 0.5 + 21) / 40  # zero point at 40 * 0.5 / 40 = 0.5 s
    assert increase(points, 0, 76) == pytest.approx(expected)


def test_only_points_inside_the_window_count_and_edges_are_inclusive() -> None:
    points: Points = [(0, 1000), (10, 0), (20, 10), (30, 20), (40, 30), (50, 9999)]
    # [10, 40] holds 10..40 only: the reset before it and the jump after it are outside.
    assert increase(points, 10, 40) == pytest.approx(30)


def test_fewer_than_two_points_give_none() -> None:
    assert increase([], 0, 100) is None
    assert increase([(50, 3)], 0, 100) is None
    assert increase([(0, 1), (10, 2), (200, 3)], 20, 100) is None  # none inside
    assert increase([(0, 1), (50, 2), (200, 3)], 20, 100) is None  # one inside


def test_points_sharing_one_timestamp_give_none() -> None:
    assert increase([(10, 1), (10, 2)], 0, 20) is None


def test_rate_is_increase_over_the_window() -> None:
    points: Points = [(5, 100), (15, 110), (25, 120)]
    assert rate(points, 0, 30) == pytest.approx(30 / 30)
    assert rate(points, 30, 30) is None
    assert rate([(1, 1)], 0, 30) is None


# -- error ratio and burn ------------------------------------------------------------------------


def counter(start: float, per_step: float, steps: int, spacing: float = 10) -> Points:
    return [(i * spacing, start + i * per_step) for i in range(steps)]


def test_error_ratio() -> None:
    total = counter(0, 100, 31)
    errors = counter(0, 2, 31)
    assert error_ratio(total, errors, 0, 300) == pytest.approx(0.02)


def test_error_ratio_without_error_series_is_zero() -> None:
    total = counter(0, 100, 31)
    assert error_ratio(total, [], 0, 300) == 0.0
    # An error series that exists, but not in this window, had no increments in it either.
    assert error_ratio(total, [(-500, 3.0)], 0, 300) == 0.0


def test_error_ratio_is_none_without_traffic_or_history() -> None:
    flat = [(i * 10.0, 7.0) for i in range(31)]
    assert error_ratio(flat, [], 0, 300) is None  # no requests: no ratio
    assert error_ratio([(0, 1)], [], 0, 300) is None  # one total sample: unknown
    # An error series that just appeared (one sample) has an unknown increase.
    assert error_ratio(counter(0, 100, 31), [(150, 4.0)], 0, 300) is None


def test_burn_rate() -> None:
    assert burn_rate(0.02, 0.99) == pytest.approx(2.0)
    assert burn_rate(None, 0.99) is None
    assert burn_rate(math.nan, 0.99) is None
    for bad in (0.0, 1.0, 99.9, -0.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            burn_rate(0.1, bad)


def test_windows_are_the_rules_windows() -> None:
    assert WINDOWS["5m"] == 300 and WINDOWS["3d"] == 3 * 86400
    for rule in BURN_RULES:
        assert rule.long_window in WINDOWS and rule.short_window in WINDOWS


# slo = 0.75 makes the budget 0.25, so ratio / budget is exact in binary floating
# point and a burn lands exactly on each threshold.
SLO = 0.75


def ratios_with_burn(burn: float) -> dict[str, float | None]:
    return dict.fromkeys(WINDOWS, burn * (1 - SLO))


def by_rule(alerts: Sequence[BurnAlert]) -> dict[tuple[str, str], BurnAlert]:
    return {(a.long_window, a.short_window): a for a in alerts}


@pytest.mark.parametrize(
    ("long_window", "short_window", "severity", "threshold"),
    [
        ("1h", "5m", "page", 14.4),
        ("6h", "30m", "page", 6.0),
        ("1d", "2h", "ticket", 3.0),
        ("3d", "6h", "ticket", 1.0),
    ],
)
def test_burn_exactly_at_the_threshold_does_not_fire(
    long_window: str, short_window: str, severity: str, threshold: float
) -> None:
    # The workbook's rules are `ratio > threshold * budget`: strictly greater.
    ratios = dict.fromkeys(WINDOWS, 0.0)
    ratios[long_window] = ratios[short_window] = threshold * (1 - SLO)
    alert = by_rule(burn_alerts(ratios, SLO, history=WINDOWS))[(long_window, short_window)]
    assert alert.long_burn == threshold and alert.short_burn == threshold
    assert alert.severity == severity and alert.threshold == threshold
    assert not alert.firing

    just_above = math.nextafter(threshold * (1 - SLO), math.inf)
    ratios[long_window] = ratios[short_window] = just_above
    alert = by_rule(burn_alerts(ratios, SLO, history=WINDOWS))[(long_window, short_window)]
    assert alert.firing


def test_both_windows_must_burn() -> None:
    ratios = ratios_with_burn(0.0)
    ratios["1h"] = 20 * (1 - SLO)  # a spike an hour long that has already stopped
    page = by_rule(burn_alerts(ratios, SLO, history=WINDOWS))[("1h", "5m")]
    assert page.long_burn == 20 and page.short_burn == 0 and not page.firing

    ratios["5m"] = 20 * (1 - SLO)
    assert by_rule(burn_alerts(ratios, SLO, history=WINDOWS))[("1h", "5m")].firing


def test_a_fast_burn_fires_every_condition_it_exceeds() -> None:
    alerts = burn_alerts(ratios_with_burn(10), SLO, history=WINDOWS)
    assert [(a.severity, a.long_window, a.firing) for a in alerts] == [
        ("page", "1h", False),  # 10 < 14.4
        ("page", "6h", True),
        ("ticket", "1d", True),
        ("ticket", "3d", True),
    ]


def test_workbook_example_slo_999() -> None:
    # 99.9%: a 2% error ratio over the last hour and five minutes burns 20x: page.
    ratios: dict[str, float | None] = {"1h": 0.02, "5m": 0.02}
    alerts = burn_alerts(ratios, 0.999, history=WINDOWS)
    page = by_rule(alerts)[("1h", "5m")]
    assert page.firing and page.long_burn == pytest.approx(20)
    assert page.evaluable
    # Nothing else could be evaluated: those windows have no data.
    others = [a for a in alerts if a is not page]
    assert all(not a.firing and not a.evaluable for a in others)


def test_missing_history_is_not_firing_and_not_guessed() -> None:
    ratios: dict[str, float | None] = {"5m": 1.0, "1h": None}  # total outage, 20 minutes old
    page = by_rule(burn_alerts(ratios, 0.999, history=WINDOWS))[("1h", "5m")]
    assert page.long_burn is None and page.short_burn == pytest.approx(1000)
    assert not page.firing and not page.evaluable


def test_burn_alerts_rejects_a_bad_slo() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        burn_alerts({}, 99.9, history=WINDOWS)


# -- against a real Prometheus -------------------------------------------------------------------

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (apt-get install -y prometheus); "
    "the cross-check against Prometheus' own increase() needs it",
)
SENTINEL = -12345.0  # an expected value no case has, so promtool prints what it got


def prom_duration(seconds: int) -> str:
    """Seconds as Prometheus' model.Duration prints them (promtool's "time: 1m40s", "13m")."""
    assert 0 <= seconds < 86400
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)
    return text or "0s"


def promtool_eval(
    tmp_path: Path,
    interval: int,
    series: dict[str, list[float | None]],
    cases: list[tuple[str, int]],
) -> dict[tuple[str, int], float | None]:
    """Evaluate PromQL ``expr`` at ``eval_time`` for each case with ``promtool test rules``.

    Every case expects a sentinel, so every case fails and promtool prints
    the value it computed ("got"); None where the result was empty.

    ``evaluation_interval`` is 1 s because promtool loads the input series
    only up to the last multiple of it at or before the latest ``eval_time``:
    with the default 1 m, a case at 100 s would not see samples after 60 s.
    """
    assert PROMTOOL is not None
    tests = {
        "rule_files": [],
        "evaluation_interval": "1s",
        "tests": [
            {
                "interval": f"{interval}s",
                "input_series": [
                    {"series": name, "values": " ".join("_" if v is None else repr(v) for v in vs)}
                    for name, vs in series.items()
                ],
                "promql_expr_test": [
                    {
                        "expr": expr,
                        "eval_time": f"{at}s",
                        "exp_samples": [{"labels": "{}", "value": SENTINEL}],
                    }
                    for expr, at in cases
                ],
            }
        ],
    }
    path = tmp_path / "cases.yml"
    path.write_text(json.dumps(tests), encoding="utf-8")  # JSON is YAML
    # promtool exits 1 (every case fails on purpose); its output is what is read.
    out = subprocess.run(
        [PROMTOOL, "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    text = out.stdout + out.stderr
    pattern = re.compile(r'expr: "(.*)", time: (\S+),\n\s+exp: .*\n\s+got: (.*)')
    found = {(m.group(1), m.group(2)): m.group(3).strip() for m in pattern.finditer(text)}
    results: dict[tuple[str, int], float | None] = {}
    for expr, at in cases:
        got = found.get((expr, prom_duration(at)))
        assert got is not None, f"no result for {expr} at {at}s in promtool's output:\n{text}"
        value = re.fullmatch(r"\{\} (\S+)", got)
        results[(expr, at)] = float(value.group(1)) if value else None
    return results


def points_of(values: list[float | None], interval: int) -> Points:
    return [(i * interval * 1.0, v) for i, v in enumerate(values) if v is not None]


def legacy_increase(points: Points, start: float, end: float) -> float | None:
    """Prometheus before PR #13725 (Debian's 2.42): the zero limit came first."""
    inside = [p for p in points if start <= p[0] <= end]
    if len(inside) < 2:
        return None
    result = inside[-1][1] - inside[0][1]
    for (_, a), (_, b) in itertools.pairwise(inside):
        if b < a:
            result += a
    sampled = inside[-1][0] - inside[0][0]
    average = sampled / (len(inside) - 1)
    to_start, to_end = inside[0][0] - start, end - inside[-1][0]
    if result > 0 and inside[0][1] >= 0:
        to_start = min(to_start, sampled * inside[0][1] / result)
    extended = sampled
    extended += to_start if to_start < average * 1.1 else average / 2
    extended += to_end if to_end < average * 1.1 else average / 2
    return result * extended / sampled


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=0, abs_tol=1e-9)


@needs_promtool
def test_increase_matches_promtool(tmp_path: Path) -> None:
    rng = random.Random(7)
    interval = 15
    total: list[float | None] = [0.0]
    errors: list[float | None] = [None] * 5 + [0.0]  # the error series appears later
    for i in range(1, 80):
        prev = total[-1] or 0.0
        total.append(
            round(prev + rng.uniform(0, 40), 3) if i not in (30, 61) else float(rng.randint(0, 5))
        )  # two resets
        if i > 5:
            e = errors[-1] or 0.0
            errors.append(e + rng.choice((0, 0, 1, 2)) if i != 45 else 1.0)  # a reset
    for gap in (12, 40, 41, 70):  # missed scrapes
        total[gap] = None
    # Evaluation times 7 s off the sample grid: no sample sits on a window's edge,
    # where Prometheus 2 (closed windows) and 3 (left-open) differ.
    times = list(range(67, 80 * interval + 200, 23))
    windows = {"1m": 60, "2m": 120, "5m": 300}
    ratio_expr = "increase(errors[5m]) / increase(total[5m])"
    exprs = {f"increase(total[{name}])": seconds for name, seconds in windows.items()}
    cases = [(expr, at) for expr in [*exprs, ratio_expr] for at in times]
    got = promtool_eval(tmp_path, interval, {"total": total, "errors": errors}, cases)

    total_points, error_points = points_of(total, interval), points_of(errors, interval)
    compared = 0
    for (expr, at), theirs in got.items():
        if expr == ratio_expr:
            ours = error_ratio(total_points, error_points, at - 300, at)
            if increase(error_points, at - 300, at) is None:
                # PromQL has no result without two error samples; error_ratio says 0.0
                # (no error series in the window) or None (one sample).
                assert theirs is None
                continue
            if theirs is None or math.isinf(theirs) or math.isnan(theirs):
                assert ours is None  # no traffic: PromQL divides by zero
                continue
        else:
            seconds = exprs[expr]
            ours = increase(total_points, at - seconds, at)
            legacy = legacy_increase(total_points, at - seconds, at)
            if not close(ours, legacy):
                # The one case where releases differ (test_promtool_zero_limit_order).
                assert close(theirs, ours) or close(theirs, legacy), (expr, at, theirs, ours)
                continue
        assert close(ours, theirs), (expr, at, ours, theirs)
        compared += 1
    assert compared > 150, compared


@needs_promtool
def test_promtool_zero_limit_order(tmp_path: Path) -> None:
    """The series of test_zero_limit_applies_after_the_half_interval_choice, in promtool.

    Prometheus since PR #13725 gives 30.0 (as ``increase`` here); releases
    before it give 33.0. Either is accepted, and the output says which.
    """
    series: list[float | None] = [None] * 5 + [8.0, 18.0, 28.0]
    got = promtool_eval(tmp_path, 10, {"x": series}, [("increase(x[100s])", 100)])
    theirs = got[("increase(x[100s])", 100)]
    ours = increase(points_of(series, 10), 0, 100)
    legacy = legacy_increase(points_of(series, 10), 0, 100)
    assert ours == pytest.approx(30.0) and legacy == pytest.approx(33.0)
    assert close(theirs, ours) or close(theirs, legacy), theirs


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    from opstui.analysis.rates import histogram_quantile, latency_quantile

    buckets = {0.1: 50.0, 0.5: 90.0, 1.0: 100.0, math.inf: 100.0}
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.7, buckets) == pytest.approx(0.3)
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.75)
    assert histogram_quantile(0.99, {0.1: 0.0, 1.0: 0.0, math.inf: 10.0}) == 1.0
    assert histogram_quantile(0.5, {0.1: 0.0, math.inf: 0.0}) is None
    assert histogram_quantile(0.5, {0.1: 5.0}) is None
    series = {le: [(0.0, 0.0), (60.0, count)] for le, count in buckets.items()}
    assert latency_quantile(series, 0.5, 0.0, 60.0) == pytest.approx(0.1)
