"""Per-feature drift of a current window against a reference summary, and the
dataset verdict.

The method that decides each feature's verdict follows Evidently's defaults
(``_get_default_stattest``), so verdicts agree with the tool ML engineers use:

| reference rows (non-missing) | numeric, > 5 values | numeric <= 5 values, categorical |
| --- | --- | --- |
| more than ``small_sample`` (1,000) | Wasserstein / std >= 0.1 | Jensen-Shannon >= 0.1 |
| at most ``small_sample`` | KS p-value <= 0.05 | chi-square p < 0.05 (z-test for two values) |

The other statistics are computed and stored beside it, each against its own
threshold, but do not decide: at 100,000 rows a KS test flags a 0.05 sigma
shift, so its p-value only decides on small samples. Missing values,
out-of-range values and unseen categories are data quality, reported apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from opstui.analysis import drift_stats as ds
from opstui.analysis.drift_summary import (
    CATEGORICAL,
    INTEGER_CARDINALITY_LIMIT,
    NUMERIC,
    CategoricalSummary,
    NumericSummary,
    ReferenceSummary,
    as_numbers,
    is_integer_typed,
    read_labels,
)

#: Methods whose p-value decides: drift when the p-value is below the threshold.
PVALUES = frozenset({"ks_pvalue", "chisquare_pvalue", "z_pvalue"})


@dataclass(frozen=True)
class DriftSettings:
    """Every knob of a drift check; ``[drift]`` and ``[models.NAME.drift]`` set them."""

    #: The current window: the newest ``window_rows`` rows recorded in the
    #: last ``window_seconds`` before the newest batch (0: no time limit).
    window_rows: int = 100_000
    window_seconds: float = 86_400.0
    #: A window with fewer rows is not checked (the statistics would be noise).
    min_rows: int = 30
    #: References of at most this many rows are judged by p-values.
    small_sample: int = 1000
    wasserstein: float = 0.1
    jensenshannon: float = 0.1
    ks_pvalue: float = 0.05
    chisquare_pvalue: float = 0.05
    #: PSI bands: below ``psi_warn`` stable, below ``psi`` moderate, else major.
    psi: float = 0.25
    psi_warn: float = 0.1
    psi_bins: int = 10
    #: The dataset drifts when this share of checked features drifts.
    drift_share: float = 0.5
    classifier: bool = True
    classifier_auc: float = 0.55
    #: Rows of each side the domain classifier trains on, at most.
    classifier_rows: int = 10_000
    #: "Retrain suggested" after this many drifting windows in a row.
    retrain_after: int = 3
    #: Missing share alert: the reference's share plus this.
    missing_tolerance: float = 0.05
    #: Share of current values outside the reference's [min, max] that alerts.
    out_of_range: float = 0.05
    #: Features read as categories even when they hold numbers (codes, ids).
    categorical: tuple[str, ...] = ()
    #: Features read as numbers even where Evidently's defaults make them
    #: categories (integer columns with at most 10 distinct values).
    numeric: tuple[str, ...] = ()
    #: Features not checked at all.
    ignore: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["categorical"], out["ignore"] = list(self.categorical), list(self.ignore)
        out["numeric"] = list(self.numeric)
        return out


class MethodResult(NamedTuple):
    method: str
    value: float | None
    threshold: float | None
    #: Against its own threshold; None for a statistic without one.
    drifted: bool | None
    details: Mapping[str, Any] = {}


class FeatureResult(NamedTuple):
    name: str
    kind: str
    #: The method that decides; None when the feature could not be checked.
    method: str | None
    drifted: bool | None
    results: tuple[MethodResult, ...]
    #: Why the feature was not checked, in one line.
    problem: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def verdict(self) -> MethodResult | None:
        return next((r for r in self.results if r.method == self.method), None)

    def result(self, method: str) -> MethodResult | None:
        return next((r for r in self.results if r.method == method), None)

    @property
    def quality_alerts(self) -> list[MethodResult]:
        return [r for r in self.results if r.method in QUALITY and r.drifted]


#: The deciding test's name, short enough for an 80-column terminal.
METHOD_LABELS = {
    "wasserstein": "W/std",
    "jensenshannon": "JS",
    "ks_pvalue": "KS p",
    "chisquare_pvalue": "chi2 p",
    "z_pvalue": "z p",
    #: Text in a numeric column beyond the reference's share (and tolerance).
    "invalid_share": "text",
}

QUALITY = frozenset(
    {"missing_share", "out_of_range_share", "invalid_share", "reference_invalid_share"}
)


class DatasetVerdict(NamedTuple):
    checked: int
    drifted: int
    share: float
    threshold: float

    @property
    def is_drifted(self) -> bool:
        return self.checked > 0 and self.share >= self.threshold


Column = Sequence[Any] | npt.NDArray[Any]


def compare(
    reference: ReferenceSummary, current: Mapping[str, Column], settings: DriftSettings
) -> tuple[FeatureResult, ...]:
    """Drift of every reference feature (except ``settings.ignore``) in ``current``."""
    out = []
    for column in reference.columns:
        if column.name in settings.ignore:
            continue
        if column.name not in current:
            out.append(_unchecked(column, "not in the current window", missing=1.0, s=settings))
        elif column.present == 0:
            out.append(_unchecked(column, "every value is missing in the reference"))
        elif isinstance(column, NumericSummary):
            out.append(_numeric(column, current[column.name], settings))
        else:
            out.append(_categorical(column, current[column.name], settings))
    return tuple(out)


def dataset_verdict(features: Sequence[FeatureResult], settings: DriftSettings) -> DatasetVerdict:
    checked = [f for f in features if f.drifted is not None]
    drifted = sum(1 for f in checked if f.drifted)
    share = drifted / len(checked) if checked else 0.0
    return DatasetVerdict(len(checked), drifted, share, settings.drift_share)


def choose_method(kind: str, reference_rows: int, values: int, small_sample: int) -> str:
    """Evidently's default test for a feature (see the module's table)."""
    small = reference_rows <= small_sample
    if kind == NUMERIC and values > 5:
        return "ks_pvalue" if small else "wasserstein"
    if small:
        return "chisquare_pvalue" if values > 2 else "z_pvalue"
    return "jensenshannon"


def _at_least(
    method: str, value: float, threshold: float, details: Mapping[str, Any] | None = None
) -> MethodResult:
    return MethodResult(method, float(value), threshold, bool(value >= threshold), details or {})


#: Bins or categories kept with a result for drawing (the console's histograms).
SHOWN_SHARES = 40


def _shares(ref: Any, cur: Any, labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Reference and current shares per bin, as the console draws them side by side."""
    out: dict[str, Any] = {
        "reference": [round(float(x), 5) for x in ref[:SHOWN_SHARES]],
        "current": [round(float(x), 5) for x in cur[:SHOWN_SHARES]],
    }
    if labels is not None:
        out["labels"] = [str(x) for x in labels[:SHOWN_SHARES]]
    return out


def _pvalue(method: str, value: float, threshold: float) -> MethodResult:
    # Evidently: KS drifts at p <= threshold, chi-square and z at p < threshold.
    drifted = value <= threshold if method == "ks_pvalue" else value < threshold
    return MethodResult(method, float(value), threshold, bool(drifted))


def _psi(value: float, s: DriftSettings) -> MethodResult:
    band = "stable" if value < s.psi_warn else "moderate" if value < s.psi else "major"
    return MethodResult("psi", value, s.psi, value >= s.psi, {"band": band, "warn": s.psi_warn})


def _missing(share: float, reference_share: float, s: DriftSettings) -> MethodResult:
    limit = min(1.0, reference_share + s.missing_tolerance)
    return MethodResult(
        "missing_share", share, limit, share > limit, {"reference": reference_share}
    )


def _unchecked(
    column: NumericSummary | CategoricalSummary,
    problem: str,
    *,
    missing: float | None = None,
    s: DriftSettings | None = None,
) -> FeatureResult:
    results: tuple[MethodResult, ...] = ()
    if missing is not None and s is not None:
        results = (_missing(missing, column.missing / max(1, column.rows), s),)
    return FeatureResult(column.name, column.kind, None, None, results, problem)


def _numeric(s: NumericSummary, values: Column, settings: DriftSettings) -> FeatureResult:
    x, invalid, bad = as_numbers(values)
    n = len(x)
    notes = []
    if not isinstance(values, np.ndarray) and _numbers_as_text(values):
        notes.append("values arrived as text and were read as numbers")
    present = np.sort(x[~np.isnan(x)])
    # Distinct current values (``present`` is sorted).
    distinct = present[np.concatenate([[True], present[1:] != present[:-1]])[: len(present)]]
    # Evidently reads the current column's type from the current data: an
    # integer column (as pandas types it) with at most 10 values is categorical.
    coded = (
        s.name not in settings.numeric
        and s.distinct is not None
        and 0 < len(present) == n
        and len(distinct) <= INTEGER_CARDINALITY_LIMIT
        and is_integer_typed(values, x)
    )
    kind = CATEGORICAL if coded else NUMERIC
    missing = _missing(
        (n - len(present) - invalid) / max(1, n), s.missing / max(1, s.rows), settings
    )
    quality = [missing]
    ref_text = s.invalid / max(1, s.rows)
    if s.invalid:
        quality.append(
            MethodResult(
                "reference_invalid_share", ref_text, 0.0, True, {"examples": list(s.examples)}
            )
        )
    text = invalid / max(1, n)
    # Text beyond the reference's own share plus ``missing_tolerance`` drifts
    # the feature whatever the numbers say: it decides (``invalid_share``).
    text_limit = min(1.0, ref_text + settings.missing_tolerance)
    text_drift = text > text_limit
    if invalid or s.invalid:
        quality.append(
            MethodResult(
                "invalid_share",
                text,
                text_limit,
                text_drift,
                {"examples": bad, "reference": ref_text},
            )
        )
    if not len(present):
        problem = (
            f"holds text, not numbers (e.g. {', '.join(repr(b) for b in bad)})"
            if invalid
            else "every value is missing in the current window"
        )
        return FeatureResult(s.name, kind, None, None, tuple(quality), problem, tuple(notes))
    # The distances are computed on both sides divided by ``scale`` (1 unless
    # values pass 2^400, where differences would overflow).
    scale = ds.scale_of(s, present)
    ss, xs = ds.scaled(s, present, scale)
    cdf = ds.Cdf(ss)
    area, gap = ds.distances(cdf, xs)
    ref_shares, cur_shares = ds.numeric_shares(ss, cdf, xs)
    results = [
        _at_least("wasserstein", ds.normalised_wasserstein(ss, area, scale), settings.wasserstein),
        _at_least(
            "jensenshannon",
            ds.jensenshannon(ref_shares, cur_shares),
            settings.jensenshannon,
            _shares(ref_shares, cur_shares, _codes(s, present) if coded else None),
        ),
        _psi(
            ds.psi(ref_shares, cur_shares) if coded else ds.numeric_psi(cdf, xs, settings.psi_bins),
            settings,
        ),
        MethodResult("ks", gap, None, None),
    ]
    values_seen = len(np.union1d(s.knots, distinct)) if s.distinct is not None else 6
    method = choose_method(kind, s.present, values_seen, settings.small_sample)
    if method in PVALUES and not s.exact:
        notes.append(
            f"reference summary is sampled: {method} needs every value; judged by distance"
        )
        method = "wasserstein" if values_seen > 5 else "jensenshannon"
    if method == "ks_pvalue":
        results.append(_pvalue(method, ds.ks_pvalue(ss, xs), settings.ks_pvalue))
    elif method in PVALUES:
        vals, counts = np.unique(present, return_counts=True)
        ref = dict(zip(s.knots.tolist(), (s.upto - s.below).tolist(), strict=True))
        cur = dict(zip(vals.tolist(), counts.tolist(), strict=True))
        results.append(_categorical_pvalue(method, ref, cur, settings))
    if coded:
        unseen_values, unseen_counts = np.unique(
            present[~np.isin(present, s.knots)], return_counts=True
        )
        order = np.argsort(-unseen_counts, kind="stable")
        results.append(
            MethodResult(
                "unseen_share",
                float(unseen_counts.sum()) / len(present),
                None,
                None,
                {
                    "categories": len(unseen_values),
                    "top": [
                        {"category": _code(unseen_values[i]), "rows": int(unseen_counts[i])}
                        for i in order[:10].tolist()
                    ],
                },
            )
        )
    else:
        outside = np.count_nonzero((present < s.min) | (present > s.max)) / len(present)
        quality.append(
            MethodResult(
                "out_of_range_share",
                outside,
                settings.out_of_range,
                bool(outside > settings.out_of_range),
                {"min": s.min, "max": s.max},
            )
        )
    if text_drift:
        numbers = next(r for r in results if r.method == method)
        notes.append(
            f"{text:.1%} of values are text, not numbers (reference {ref_text:.1%}): "
            f"drift whatever the numbers say (by {METHOD_LABELS[method]} alone: "
            f"{'drift' if numbers.drifted else 'ok'})"
        )
        method = "invalid_share"
    elif invalid:
        examples = ", ".join(repr(b) for b in bad)
        notes.append(f"{text:.1%} of values are text, not numbers (e.g. {examples})")
    decided = next(r for r in (*results, *quality) if r.method == method)
    return FeatureResult(
        s.name, kind, method, bool(decided.drifted), (*results, *quality), None, tuple(notes)
    )


def _numbers_as_text(values: Column) -> bool:
    """Whether the first number in ``values`` (words and gaps skipped) is text."""
    for v in values:
        if isinstance(v, str):
            try:
                float(v)
            except ValueError:
                continue
            return True
        if v is not None:
            return False
    return False


def _code(x: float) -> str:
    """An integer code's label, as a category: ``3``, not ``3.0``."""
    return str(int(x)) if float(x).is_integer() else str(x)


def _codes(s: NumericSummary, present: Any) -> list[str]:
    """Labels of the bins ``numeric_shares`` gives a few-valued column."""
    return [_code(v) for v in np.union1d(s.knots, present).tolist()]


def _categorical_pvalue(
    method: str, ref: Mapping[Any, int], cur: Mapping[Any, int], settings: DriftSettings
) -> MethodResult:
    keys = list(dict.fromkeys([*ref, *cur]))
    if method == "z_pvalue":
        return _pvalue(method, ds.z_pvalue(keys, ref, cur), settings.chisquare_pvalue)
    return _pvalue(method, ds.chisquare_pvalue(keys, ref, cur), settings.chisquare_pvalue)


def _categorical(s: CategoricalSummary, values: Column, settings: DriftSettings) -> FeatureResult:
    labels = read_labels(values)
    cur: dict[Any, int] = dict(labels.counts)
    total = len(labels.values) - labels.missing
    share = labels.missing / max(1, len(labels.values))
    missing = _missing(share, s.missing / max(1, s.rows), settings)
    if total == 0:
        problem = "every value is missing in the current window"
        return FeatureResult(s.name, s.kind, None, None, (missing,), problem)
    ref = dict(zip(s.categories, s.counts, strict=True))
    keys, p, q = ds.category_shares(ref, cur, s.present, total)
    unseen = sorted(((k, c) for k, c in cur.items() if k not in ref), key=lambda kc: -kc[1])
    results = [
        _at_least(
            "jensenshannon", ds.jensenshannon(p, q), settings.jensenshannon, _shares(p, q, keys)
        ),
        _psi(ds.psi(p, q), settings),
        MethodResult(
            "unseen_share",
            sum(c for _, c in unseen) / total,
            None,
            None,
            {
                "categories": len(unseen),
                "top": [{"category": k, "rows": c} for k, c in unseen[:10]],
            },
        ),
    ]
    method = choose_method(s.kind, s.present, len(keys), settings.small_sample)
    if method in PVALUES:
        results.append(_categorical_pvalue(method, ref, cur, settings))
    decided = next(r for r in results if r.method == method)
    return FeatureResult(s.name, s.kind, method, bool(decided.drifted), (*results, missing))
