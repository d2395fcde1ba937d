"""Drift statistics of one feature: a reference summary against current values.

Each statistic is computed as Evidently 0.7 computes it from raw data
(``evidently/legacy/calculations/stattests/``), with the reference side read
from its summary (``drift_summary``) instead of its rows:

- normalised Wasserstein: ``scipy.stats.wasserstein_distance(ref, cur) /
  max(np.std(ref), 0.001)``; the integral of ``|F_ref - F_cur|`` is taken over
  the summary's CDF, exact where the summary is exact;
- Jensen-Shannon distance: ``scipy.spatial.distance.jensenshannon`` with its
  default **natural** logarithm (Evidently passes no base), over
  ``np.histogram_bin_edges(ref + cur, "sturges")`` bins for a numeric column
  with more than 20 distinct reference values, else over the values or
  categories themselves;
- KS: the two-sample statistic; its p-value (``scipy.stats.ks_2samp``) only for
  small references, whose summary holds every value;
- chi-square and two-proportion z-test p-values, for small samples.

PSI is opstui's own: ten reference-quantile bins (or the categories), shares
clipped at 1e-4, ``sum((cur - ref) * ln(cur / ref))``.

numpy only at import time; the p-value functions import scipy.special (0.2 s),
not scipy.stats (0.7 s), except for KS p-values too large to compute here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from opstui.analysis.drift_summary import Floats, NumericSummary, power_of_two_scale

#: Share given to an empty bin in PSI, so the logarithm stays finite.
PSI_FLOOR = 1e-4


class Cdf:
    """The reference CDF of a numeric summary: exact at knots, linear between.

    ``left(x)`` is the share of values below ``x``, ``right(x)`` at or below.
    """

    def __init__(self, s: NumericSummary) -> None:
        self.x = s.knots
        self.lo = s.below / max(1, s.sampled)
        self.hi = s.upto / max(1, s.sampled)

    def _between(self, p: Floats) -> tuple[npt.NDArray[np.intp], Floats, npt.NDArray[np.bool_]]:
        """Index of the first knot >= p, the interpolated CDF at p, and whether p is a knot."""
        n = len(self.x)
        j = np.searchsorted(self.x, p, side="left")
        last = np.minimum(j, n - 1)
        at = (j < n) & (self.x[last] == p)
        if n < 2:
            return last, np.where(j == 0, 0.0, 1.0), at
        k = np.clip(j, 1, n - 1)
        x0, x1 = self.x[k - 1], self.x[k]
        # Knots are distinct, but a scaled column's smallest ones may be
        # subnormal: equal after the division, or a quotient past float64.
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            t = np.clip(np.where(x1 > x0, (p - x0) / (x1 - x0), 1.0), 0.0, 1.0)
        value = self.hi[k - 1] + (self.lo[k] - self.hi[k - 1]) * t
        return last, np.where(j == 0, 0.0, np.where(j >= n, 1.0, value)), at

    def left(self, p: Floats) -> Floats:
        j, value, at = self._between(p)
        return np.where(at, self.lo[j], value)

    def right(self, p: Floats) -> Floats:
        j, value, at = self._between(p)
        return np.where(at, self.hi[j], value)

    def both(self, p: Floats) -> tuple[Floats, Floats]:
        """``left(p)`` and ``right(p)`` from one search."""
        j, value, at = self._between(p)
        return np.where(at, self.lo[j], value), np.where(at, self.hi[j], value)

    def quantile(self, q: Floats) -> Floats:
        """The smallest ``x`` whose ``right(x) >= q``, interpolated between knots."""
        xs = np.repeat(self.x, 2)
        fs = np.column_stack([self.lo, self.hi]).ravel()
        i = np.clip(np.searchsorted(fs, q, side="left"), 1, len(fs) - 1)
        x0, x1, f0, f1 = xs[i - 1], xs[i], fs[i - 1], fs[i]
        t = np.where(f1 > f0, (q - f0) / np.where(f1 > f0, f1 - f0, 1.0), 1.0)
        return np.where(x1 == x0, x1, x0 + (x1 - x0) * np.clip(t, 0.0, 1.0))


def breakpoints(cdf: Cdf, cur: Floats) -> Floats:
    """Knots and current values, sorted and distinct (``cur`` sorted)."""
    return np.union1d(cdf.x, cur)


def wasserstein(cdf: Cdf, cur: Floats, pts: Floats | None = None) -> float:
    """First Wasserstein distance of the reference and ``cur`` (sorted, no NaN)."""
    return distances(cdf, cur, pts)[0]


def ks_statistic(cdf: Cdf, cur: Floats, pts: Floats | None = None) -> float:
    """Largest gap between the two CDFs (checked on both sides of every breakpoint)."""
    return distances(cdf, cur, pts)[1]


def distances(cdf: Cdf, cur: Floats, pts: Floats | None = None) -> tuple[float, float]:
    """The Wasserstein distance and the KS statistic, from one pass over the
    breakpoints (knots and current values; ``cur`` sorted, no NaN).

    Wasserstein is the integral of ``|F_ref - F_cur|``: between consecutive
    breakpoints the current CDF is constant and the reference CDF linear, so
    each piece is a trapezoid or two triangles. KS is the largest gap, on
    both sides of every breakpoint.
    """
    if pts is None:
        pts = breakpoints(cdf, cur)
    m = len(cur)
    left, right = cdf.both(pts)
    cur_below = np.searchsorted(cur, pts, side="left") / m
    cur_upto = np.searchsorted(cur, pts, side="right") / m
    h = cur_upto[:-1]
    da = right[:-1] - h
    db = left[1:] - h
    width = np.diff(pts)
    same = da * db >= 0
    crossing = (da * da + db * db) / np.where(same, 1.0, 2 * (np.abs(da) + np.abs(db)))
    area = float(np.sum(np.where(same, np.abs(da + db) / 2, crossing) * width))
    gap = float(max(np.abs(left - cur_below).max(), np.abs(right - cur_upto).max()))
    return area, gap


def normalised_wasserstein(s: NumericSummary, wasserstein: float, scale: float = 1.0) -> float:
    # Evidently's floor on the reference's standard deviation: a constant
    # reference column gives a large value for any change, not a division by 0.
    # ``scale``: ``s`` and the distance are divided by it (``scaled``).
    return wasserstein / max(s.std, 0.001 / scale)


#: Columns whose values stay within this size are compared as they are: their
#: differences (up to 2^1001) and areas stay finite.
SAFE = 2.0**1000


def scale_of(s: NumericSummary, cur: Floats) -> float:
    """1, or the power of two to divide both sides by before the distances.

    Differences of values near float64's limit overflow (1.7e308 - -1.7e308
    is inf), and an infinite width made the Wasserstein distance inf or NaN.
    Every statistic here but the distances in the column's own units is
    unchanged by a common scale; a power of two divides exactly.
    """
    top = max(abs(s.min), abs(s.max), abs(float(cur[0])), abs(float(cur[-1])))
    return power_of_two_scale(top) if top > SAFE else 1.0


def scaled(s: NumericSummary, cur: Floats, scale: float) -> tuple[NumericSummary, Floats]:
    """The summary's values and ``cur`` divided by ``scale`` (both as they are at 1)."""
    if scale == 1.0:
        return s, cur
    return (
        s._replace(
            knots=s.knots / scale,
            mean=s.mean / scale,
            std=s.std / scale,
            min=s.min / scale,
            max=s.max / scale,
        ),
        cur / scale,
    )


def ks_pvalue(s: NumericSummary, cur: Floats) -> float:
    """``scipy.stats.ks_2samp(ref, cur).pvalue`` (two-sided, method "auto").

    scipy.stats costs about 0.7 s to import, most of a small check's time, so
    the exact p-value is computed here by scipy's own algorithms where they
    are cheap in Python (equal sizes; unequal sizes up to ``KS_EXACT_STEPS``),
    else by scipy.stats. A test pins both against ``ks_2samp``.
    """
    ref = s.values()
    n1, n2 = len(ref), len(cur)
    both = np.concatenate([ref, cur])
    diffs = np.searchsorted(ref, both, "right") / n1 - np.searchsorted(cur, both, "right") / n2
    d = float(max(np.clip(-diffs.min(), 0, 1), diffs.max()))
    if max(n1, n2) <= KS_EXACT_N:
        p = _ks_exact(n1, n2, d)
        if p is not None:
            return p
    from scipy.stats import ks_2samp

    return float(ks_2samp(ref, cur).pvalue)


#: ``ks_2samp``'s limit for its exact p-value ("auto" method).
KS_EXACT_N = 10_000
#: Lattice steps computed in Python for unequal sizes (about 0.1 s); more
#: goes to scipy.stats, whose loop is compiled.
KS_EXACT_STEPS = 400_000


def _ks_exact(n1: int, n2: int, d: float) -> float | None:
    """scipy's ``_attempt_exact_2kssamp`` (two-sided); None where it would give
    up (overflow) or where it is too slow in Python."""
    g = math.gcd(n1, n2)
    lcm = (n1 // g) * n2
    h = int(np.round(d * lcm))
    if h == 0:
        return 1.0
    if n1 == n2:
        prob = _outside_square(n1, h)
    elif max(n1, n2) * (min(n1, n2) + 1) <= KS_EXACT_STEPS:
        prob = _outer_inside(n1, n2, g, h)
    else:
        return None
    if not math.isfinite(prob) or not 0 <= prob <= 1:
        return None
    return prob


def _outside_square(n: int, h: int) -> float:
    """scipy's ``_compute_prob_outside_square``: P(D_{n,n} >= h/n)."""
    p = 0.0
    k = math.floor(n / h)
    while k >= 0:
        p1 = 1.0
        for j in range(h):
            p1 = (n - k * h - j) * p1 / (n + k * h + j + 1)
        p = p1 * (1.0 - p)
        k -= 1
    return 2 * p


def _outer_inside(m: int, n: int, g: int, h: int) -> float:
    """scipy's ``_compute_outer_prob_inside_method`` (Hodges' inside method,
    computing 1 - p directly as in Viehmann, arXiv:2102.08037)."""
    if m < n:
        m, n = n, m
    mg = m // g
    ng = n // g
    minj, maxj = 0, min(math.ceil(h / mg), n + 1)
    curlen = maxj - minj
    a = [1.0] * min(2 * maxj + 2, n + 1)
    for j in range(minj, maxj):
        a[j] = 0.0
    for i in range(1, m + 1):
        lastminj, lastlen = minj, curlen
        minj = min(max(math.floor((ng * i - h) / mg) + 1, 0), n)
        maxj = min(math.ceil((ng * i + h) / mg), n + 1)
        if maxj <= minj:
            return 1.0
        val = 0.0 if minj == 0 else 1.0
        for jj in range(maxj - minj):
            j = jj + minj
            val = (a[jj + minj - lastminj] * i + val * j) / (i + j)
            a[jj] = val
        curlen = maxj - minj
        if lastlen > curlen:
            for k in range(curlen, curlen + (lastlen - curlen)):
                if k < len(a):
                    a[k] = 1.0
    return a[maxj - minj - 1]


def sturges_edges(lo: float, hi: float, n: int) -> Floats:
    """``np.histogram_bin_edges(data, "sturges")`` from the data's range and size."""
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
        bins = 1
    else:
        width = (hi - lo) / (np.log2(n) + 1.0)
        bins = int(np.ceil((hi - lo) / width))
    return np.linspace(lo, hi, bins + 1)


def numeric_shares(s: NumericSummary, cdf: Cdf, cur: Floats) -> tuple[Floats, Floats]:
    """Reference and current shares in Evidently's bins for a numeric column."""
    if s.distinct is not None and s.distinct <= 20:
        values = np.union1d(s.knots, cur)
        ref = np.zeros(len(values))
        ref[np.searchsorted(values, s.knots)] = (s.upto - s.below) / s.sampled
        cur_counts = np.searchsorted(cur, values, "right") - np.searchsorted(cur, values, "left")
        return ref, cur_counts / len(cur)
    lo = min(float(s.min), float(cur[0]))
    hi = max(float(s.max), float(cur[-1]))
    edges = sturges_edges(lo, hi, s.present + len(cur))
    ref = np.diff(np.concatenate([[0.0], cdf.left(edges[1:-1]), [1.0]]))
    cur_counts, _ = np.histogram(cur, edges)
    return ref, cur_counts / len(cur)


def jensenshannon(p: Floats, q: Floats) -> float:
    """``scipy.spatial.distance.jensenshannon(p, q)``, natural logarithm."""
    p = p / p.sum()
    q = q / q.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        right = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    return math.sqrt(max(0.0, float(left + right) / 2))


def psi(ref: Floats, cur: Floats) -> float:
    ref = np.maximum(ref, PSI_FLOOR)
    cur = np.maximum(cur, PSI_FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def numeric_psi(cdf: Cdf, cur: Floats, bins: int) -> float:
    edges = np.unique(cdf.quantile(np.arange(1, bins) / bins))
    ref = np.diff(np.concatenate([[0.0], cdf.right(edges), [1.0]]))
    cur_share = np.diff(np.concatenate([[0], np.searchsorted(cur, edges, "right"), [len(cur)]]))
    return psi(ref, cur_share / len(cur))


def category_shares(
    ref: Mapping[Any, int], cur: Mapping[Any, int], ref_total: int, cur_total: int
) -> tuple[list[Any], Floats, Floats]:
    """Keys of both sides and each side's share of its own total (Evidently's
    ``get_binned_data`` for categories)."""
    keys = list(dict.fromkeys([*ref, *cur]))
    p = np.array([ref.get(k, 0) for k in keys], dtype=np.float64) / ref_total
    q = np.array([cur.get(k, 0) for k in keys], dtype=np.float64) / cur_total
    return keys, p, q


def chisquare_pvalue(keys: list[Any], ref: Mapping[Any, int], cur: Mapping[Any, int]) -> float:
    """Evidently's chi-square test: current counts against reference counts
    scaled to the current total."""
    from scipy.special import chdtrc  # chi2.sf, without scipy.stats' import

    ref_total, cur_total = sum(ref.values()), sum(cur.values())
    expected = np.array([ref.get(k, 0) for k in keys]) * (cur_total / ref_total)
    observed = np.array([cur.get(k, 0) for k in keys])
    with np.errstate(divide="ignore", invalid="ignore"):
        # scipy.stats.chisquare: sum((o - e)^2 / e), k - 1 degrees of freedom.
        statistic = float(np.sum((observed - expected) ** 2 / expected))
        p = float(chdtrc(len(keys) - 1, statistic))
    return 0.0 if math.isnan(p) else p


def z_pvalue(keys: list[Any], ref: Mapping[Any, int], cur: Mapping[Any, int]) -> float:
    """Evidently's two-proportion z-test for a feature with at most two values."""
    from scipy.special import ndtr  # norm.cdf, without scipy.stats' import

    if len(keys) == 1:
        return 1.0
    first = sorted(keys)[0]
    n1, n2 = sum(ref.values()), sum(cur.values())
    p1 = 1 - ref.get(first, 0) / n1
    p2 = 1 - cur.get(first, 0) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return 1.0
    return float(2 * (1 - ndtr(abs((p1 - p2) / spread))))
