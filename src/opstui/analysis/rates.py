"""Counter increases, error ratios and SLO burn alerts, computed as Prometheus does.

``increase`` follows ``extrapolatedRate`` in Prometheus' ``promql/functions.go``
(float samples, no offset, no ``anchored``/``smoothed`` modifiers):

1. The samples of the window ``[start, end]`` are the range vector; fewer
   than two give no result (None).
2. The raw increase is ``last - first``; wherever a value is lower than the
   one before it, the counter was reset and the earlier value is added back.
3. The increase is extrapolated to the window's edges. At an edge whose
   nearest sample is less than 1.1 average sample intervals away, all the
   way to the edge; otherwise the series is taken to start (or end) inside
   the window, and the extrapolation goes half an average interval.
4. For a counter, extrapolation at the start stops where the counter would
   reach zero: it cannot have been negative.

Step 4 follows Prometheus since PR #13725 (March 2024), which applies the
zero limit after the half-interval choice. Earlier releases (Debian's 2.42
among them) applied it before, so they extrapolate further when the first
sample lies more than 1.1 intervals from the start of the window *and* the
zero point is between 0.5 and 1.1 intervals before it; everywhere else the
two agree (``tests/test_rates.py`` checks this one against ``promtool``).

The window is closed at both ends, as in Prometheus 2.x. Prometheus 3 left-
opened range selectors: a sample exactly at ``start`` is left out there.

Burn alerts are the multiwindow, multi-burn-rate alerts of the Google SRE
workbook, chapter "Alerting on SLOs", with one addition Prometheus does not
make: a condition is judged only where the history covers its windows
(``history``). PromQL's ``increase(x[3d])`` over five minutes of samples is
simply the increase of those five minutes; a 3-day ticket raised on it would
claim three days it has not seen. ``history`` measures how much of a window
the samples reach back to, with the same slack Prometheus' extrapolation
uses to decide that a series reaches a window's edge (1.1 sample steps).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "BURN_RULES",
    "WINDOWS",
    "BurnAlert",
    "BurnRule",
    "burn_alerts",
    "burn_rate",
    "duration_words",
    "error_ratio",
    "history",
    "increase",
    "mean_over",
    "rate",
]

Point = tuple[float, float]  # (timestamp in seconds, value)

#: The windows burn alerts look at, by the names PromQL gives them; seconds.
WINDOWS: dict[str, float] = {
    "1m": 60,
    "5m": 300,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "6h": 21600,
    "1d": 86400,
    "3d": 259200,
}


def _ts(point: Point) -> float:
    return point[0]


def _window(points: Sequence[Point], start: float, end: float) -> tuple[int, int]:
    """Indexes ``lo, hi`` of the points with ``start <= ts <= end`` (``points[lo:hi]``)."""
    lo = bisect.bisect_left(points, start, key=_ts)
    hi = bisect.bisect_right(points, end, lo=lo, key=_ts)
    return lo, hi


def increase(points: Sequence[Point], start: float, end: float) -> float | None:
    """The counter's increase over ``[start, end]``, as PromQL's ``increase()`` gives it.

    ``points`` are ``(ts, value)`` sorted by ``ts``; only those inside the
    window count. None when fewer than two are, or when they all share one
    timestamp (Prometheus never stores that; a store might).
    """
    lo, hi = _window(points, start, end)
    if hi - lo < 2:
        return None
    first_t, first_v = points[lo]
    last_t, last_v = points[hi - 1]
    sampled = last_t - first_t
    if not sampled > 0:
        return None

    result = last_v - first_v
    prev = first_v
    # islice walks from the sequence's start, a slice copies the window: take
    # whichever touches fewer items (a short window at the end of a long history).
    rest = itertools.islice(points, lo + 1, hi) if lo < hi - lo else points[lo + 1 : hi]
    for _, value in rest:
        if value < prev:  # a reset: the counter went back to zero and counted on
            result += prev
        prev = value

    average = sampled / (hi - lo - 1)
    threshold = average * 1.1
    to_start = first_t - start
    to_end = end - last_t
    if to_start >= threshold:
        to_start = average / 2
    # A counter cannot go below zero: if extrapolating back to the start would
    # take it there, stop at the point where the line through the samples
    # crosses zero.
    if result > 0 and first_v >= 0:
        to_zero = sampled * (first_v / result)
        to_start = min(to_start, to_zero)
    if to_end >= threshold:
        to_end = average / 2
    return result * ((sampled + to_start + to_end) / sampled)


def rate(points: Sequence[Point], start: float, end: float) -> float | None:
    """Per-second ``increase`` over ``[start, end]``, as PromQL's ``rate()``."""
    if not end > start:
        return None
    inc = increase(points, start, end)
    return None if inc is None else inc / (end - start)


#: Slack on a sample step when asking whether a series reaches a window's
#: start: Prometheus' extrapolatedRate takes a series whose first sample is
#: within 1.1 average intervals of the edge to reach the edge.
EDGE_SLACK = 1.1


def history(points: Sequence[Point], start: float, end: float, step: float) -> float:
    """Seconds of ``[start, end]`` the samples cover, counted back from ``end``.

    The whole window (``end - start``) when the oldest sample inside it is at
    most ``EDGE_SLACK`` sample steps after ``start`` (``step``: how far apart
    samples are expected there, e.g. the poll interval); otherwise
    ``end - oldest``: the window is covered only from its oldest sample on.
    0.0 without a sample in the window. Only the start matters: a counter's
    increase spans a gap inside the window, and a window whose newest sample
    is old has a stale endpoint, which its state says.
    """
    lo, hi = _window(points, start, end)
    if hi == lo:
        return 0.0
    oldest = points[lo][0]
    if oldest - start <= EDGE_SLACK * step:
        return end - start
    return end - oldest


def mean_over(points: Sequence[Point], start: float, end: float) -> float | None:
    """The mean of the sample values in ``[start, end]``, as PromQL's ``avg_over_time``.

    For a gauge that already is a ratio (an ``error_ratio`` query): None
    without samples, and NaN values are left out.
    """
    lo, hi = _window(points, start, end)
    values = [v for _, v in points[lo:hi] if not math.isnan(v)]
    return sum(values) / len(values) if values else None


def error_ratio(
    total: Sequence[Point], errors: Sequence[Point], start: float, end: float
) -> float | None:
    """``increase(errors) / increase(total)`` over ``[start, end]``.

    None when the total's increase cannot be computed or is zero (no
    traffic: no ratio). 0.0 when the error counter has no sample in the
    window while the total has an increase: client libraries create an
    error series at its first increment, so no series means no errors. An
    error counter with a single sample in the window has just appeared and
    its increase is unknown: None, as PromQL would give no result.

    The ratio is not clamped to [0, 1]: the two counters are extrapolated
    separately (as in PromQL), so at the edges of a series it can exceed 1.
    """
    denominator = increase(total, start, end)
    if denominator is None or denominator == 0:
        return None
    lo, hi = _window(errors, start, end)
    if hi == lo:
        return 0.0
    numerator = increase(errors, start, end)
    if numerator is None:
        return None
    return numerator / denominator


def burn_rate(ratio: float | None, slo: float) -> float | None:
    """How many times faster than the SLO allows the error budget is spent.

    ``slo`` is the target success ratio, e.g. 0.999; the budget is ``1 - slo``.
    None when ``ratio`` is None or NaN (a NaN counter value): nothing to judge.
    """
    _check_slo(slo)
    if ratio is None or math.isnan(ratio):
        return None
    return ratio / (1 - slo)


def _check_slo(slo: float) -> None:
    if not 0 < slo < 1:
        raise ValueError(f"SLO must be a ratio between 0 and 1 (e.g. 0.999), got {slo!r}")


@dataclass(frozen=True)
class BurnRule:
    """One multiwindow condition: both windows burn faster than ``threshold``."""

    severity: str
    long_window: str
    short_window: str
    threshold: float


#: The SRE workbook's recommended conditions, for a 30-day SLO period: 2% of
#: the budget in an hour or 5% in six hours pages; 10% in a day or 10% in
#: three days opens a ticket.
BURN_RULES: tuple[BurnRule, ...] = (
    BurnRule("page", "1h", "5m", 14.4),
    BurnRule("page", "6h", "30m", 6.0),
    BurnRule("ticket", "1d", "2h", 3.0),
    BurnRule("ticket", "3d", "6h", 1.0),
)


@dataclass(frozen=True)
class BurnAlert:
    """One burn-alert condition evaluated: the burns seen and whether it fires."""

    severity: str  # "page" or "ticket"
    long_window: str
    short_window: str
    threshold: float
    long_burn: float | None
    short_burn: float | None
    firing: bool
    #: Seconds of the long window the history covers (``history``); equal to
    #: the window's length when it is covered.
    long_history: float = 0.0
    short_history: float = 0.0
    #: Whether both windows are covered by history (else the pair is partial).
    covered: bool = False

    @property
    def evaluable(self) -> bool:
        """Both windows had data and history; False means "cannot say", not "fine"."""
        return self.covered and self.long_burn is not None and self.short_burn is not None

    @property
    def status(self) -> str:
        """``firing``, ``ok``, ``partial`` (history shorter than the long window)
        or ``no data`` (a window without a ratio: no traffic or no samples)."""
        if self.firing:
            return "firing"
        if not self.covered:
            return "partial"
        return "ok" if self.evaluable else "no data"

    @property
    def partial(self) -> str | None:
        """``"5m of 1h"``: how much history the long window has, when it is short."""
        if self.covered:
            return None
        if self.long_history < WINDOWS[self.long_window]:
            return f"{duration_words(self.long_history)} of {self.long_window}"
        # The long window is covered but the short one has a gap at its start.
        return f"{duration_words(self.short_history)} of {self.short_window}"

    @property
    def would_fire(self) -> bool:
        """Partial, but every burn it has is over the threshold: what the
        operator should hear about without being paged."""
        return (
            not self.covered
            and self.long_burn is not None
            and self.short_burn is not None
            and self.long_burn > self.threshold
            and self.short_burn > self.threshold
        )


def duration_words(seconds: float) -> str:
    """``45s``, ``5m``, ``2h10m``, ``1d6h``: a history length, rounded down."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h}h{m}m" if m else f"{h}h"
    d, h = divmod(s // 3600, 24)
    return f"{d}d{h}h" if h else f"{d}d"


def burn_alerts(
    ratios: Mapping[str, float | None], slo: float, *, history: Mapping[str, float]
) -> list[BurnAlert]:
    """The workbook's four multiwindow burn conditions, from error ratios by window.

    ``ratios`` maps window names (``"1h"``, ``"5m"``, ... as in ``WINDOWS``)
    to error ratios; ``history`` maps them to the seconds of each window the
    samples cover (``history()``). A condition fires when the burn rate of
    both its windows is strictly greater than its threshold, as the
    workbook's PromQL ``>`` has it: a burn of exactly 14.4 does not page.
    It fires only where the history covers both windows: a pair whose long
    window reaches back further than the samples is partial and never fires,
    whatever its burns (a fresh endpoint's five minutes say nothing of
    three days). A condition with a ratio missing or None is reported not
    firing (``evaluable`` is False): it cannot be evaluated, and is not guessed.
    """
    _check_slo(slo)
    alerts = []
    for rule in BURN_RULES:
        long_burn = burn_rate(ratios.get(rule.long_window), slo)
        short_burn = burn_rate(ratios.get(rule.short_window), slo)
        long_history = history.get(rule.long_window, 0.0)
        short_history = history.get(rule.short_window, 0.0)
        covered = (
            long_history >= WINDOWS[rule.long_window]
            and short_history >= WINDOWS[rule.short_window]
        )
        firing = (
            covered
            and long_burn is not None
            and short_burn is not None
            and long_burn > rule.threshold
            and short_burn > rule.threshold
        )
        alerts.append(
            BurnAlert(
                rule.severity,
                rule.long_window,
                rule.short_window,
                rule.threshold,
                long_burn,
                short_burn,
                firing,
                long_history,
                short_history,
                covered,
            )
        )
    return alerts


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The ``q`` quantile from cumulative bucket counts ``{le: count}``, as Prometheus does.

    Linear interpolation inside the bucket holding the rank; a rank in the
    ``+Inf`` bucket returns the highest finite bound; the lowest bucket
    interpolates from 0. None without observations or without a ``+Inf``
    bucket (the histogram is incomplete).
    """
    if not 0 <= q <= 1 or not buckets or math.inf not in buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[math.inf]
    if not total or total <= 0:
        return None
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == math.inf:
                return bounds[-2] if len(bounds) > 1 else None
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (
                count - previous_count
            )
        previous_bound, previous_count = bound, count
    return None


def latency_quantile(
    buckets: Mapping[float, Sequence[Point]], q: float, start: float, end: float
) -> float | None:
    """``histogram_quantile(q, increase(bucket[window]))`` from stored bucket series."""
    increases = {}
    for le, points in buckets.items():
        inc = increase(points, start, end)
        if inc is None:
            return None
        increases[le] = inc
    return histogram_quantile(q, increases)
