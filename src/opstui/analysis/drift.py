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

from collections.abc import Mapping, Sequence

from opstui.analysis.drift_categorical import _categorical
from opstui.analysis.drift_numeric import _numeric
from opstui.analysis.drift_results import (
    Column,
    DatasetVerdict,
    DriftSettings,
    FeatureResult,
    MethodResult,
    _missing,
)
from opstui.analysis.drift_summary import (
    CategoricalSummary,
    NumericSummary,
    ReferenceSummary,
)


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
