"""What a drift check is set with and what it finds: the settings
(``DriftSettings``), one statistic's result (``MethodResult``), a feature's
(``FeatureResult``), the dataset's (``DatasetVerdict``), which method decides
(``choose_method``, the table in ``drift``'s docstring), and the helpers that
turn a statistic into a result against its threshold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy.typing as npt

from opstui.analysis import drift_stats as ds
from opstui.analysis.drift_summary import (
    NUMERIC,
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


def choose_method(kind: str, reference_rows: int, values: int, small_sample: int) -> str:
    """Evidently's default test for a feature (see the table in ``drift``'s docstring)."""
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


def _categorical_pvalue(
    method: str, ref: Mapping[Any, int], cur: Mapping[Any, int], settings: DriftSettings
) -> MethodResult:
    keys = list(dict.fromkeys([*ref, *cur]))
    if method == "z_pvalue":
        return _pvalue(method, ds.z_pvalue(keys, ref, cur), settings.chisquare_pvalue)
    return _pvalue(method, ds.chisquare_pvalue(keys, ref, cur), settings.chisquare_pvalue)
