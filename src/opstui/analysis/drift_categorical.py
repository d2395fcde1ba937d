"""A categorical feature's drift: Jensen-Shannon and PSI on the category
shares, chi-square or z p-values on small references, unseen categories.
"""

from __future__ import annotations

from typing import Any

from opstui.analysis import drift_stats as ds
from opstui.analysis.drift_results import (
    PVALUES,
    Column,
    DriftSettings,
    FeatureResult,
    MethodResult,
    _at_least,
    _categorical_pvalue,
    _missing,
    _psi,
    _shares,
    choose_method,
)
from opstui.analysis.drift_summary import (
    CategoricalSummary,
)
from opstui.analysis.drift_values import (
    read_labels,
)


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
