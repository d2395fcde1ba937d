"""A numeric feature's drift: the distances (Wasserstein, Jensen-Shannon,
PSI, KS) against the reference's knots, the p-values on small references,
text in a numeric column (``invalid_share``), out-of-range values, and an
integer column with few values read as categories, as Evidently reads it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from opstui.analysis import drift_stats as ds
from opstui.analysis.drift_results import (
    METHOD_LABELS,
    PVALUES,
    Column,
    DriftSettings,
    FeatureResult,
    MethodResult,
    _at_least,
    _categorical_pvalue,
    _missing,
    _psi,
    _pvalue,
    _shares,
    choose_method,
)
from opstui.analysis.drift_summary import (
    CATEGORICAL,
    NUMERIC,
    NumericSummary,
)
from opstui.analysis.drift_values import (
    INTEGER_CARDINALITY_LIMIT,
    as_numbers,
    is_integer_typed,
)


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
