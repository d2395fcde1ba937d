"""opstui's drift statistics agree with Evidently's on the same data.

20 features (12 numeric, 8 categorical; ``bench/_drift_data.py``), 20,000
reference and current rows, 10 of the features shifted. Evidently's data
drift preset (0.7.23) runs on the raw rows; opstui on its reference summary,
which at 20,000 rows is not the raw data (the knots interpolate). Per-feature
verdicts must be identical, and normalised Wasserstein and Jensen-Shannon
(its default test for categories; forced for every column in a second run)
must agree to 1e-3. Evidently is a test dependency only; nothing here
reaches the network (its telemetry is off and only used by its UI service).
"""

from __future__ import annotations

import pytest

from opstui.analysis.drift import DriftSettings, compare, dataset_verdict
from opstui.analysis.drift_summary import NumericSummary, summarise

evidently = pytest.importorskip(
    "evidently", reason="install the test extra: pip install -e '.[test]'"
)

import _drift_data as data  # noqa: E402  (bench/, on pytest's pythonpath)

ROWS = 20_000
#: Evidently's display names of the tests opstui's names stand for.
METHODS = {
    "wasserstein": "Wasserstein distance (normed)",
    "jensenshannon": "Jensen-Shannon distance",
}


@pytest.mark.slow
def test_verdicts_and_distances_agree_with_evidently() -> None:
    reference = data.make(ROWS, shifted=False, seed=1)
    current = data.make(ROWS, shifted=True, seed=2)
    theirs = data.evidently_drift(reference, current)
    theirs_js = data.evidently_drift(reference, current, method="jensenshannon")

    summary = summarise([reference], categorical=data.CATEGORICAL)
    amount = summary.column("amount")
    assert isinstance(amount, NumericSummary) and not amount.exact  # interpolated knots
    ours = compare(summary, current, DriftSettings())
    assert len(ours) == 20

    for feature in ours:
        expected = theirs.columns[feature.name]
        verdict = feature.verdict
        assert verdict is not None and verdict.value is not None
        assert METHODS[feature.method or ""] == expected.method, feature.name
        assert feature.drifted == expected.drifted, feature.name
        assert verdict.value == pytest.approx(expected.value, abs=1e-3), feature.name
        js = feature.result("jensenshannon")
        assert js is not None
        assert js.value == pytest.approx(theirs_js.columns[feature.name].value, abs=1e-3), (
            feature.name
        )

    drifted = {f.name for f in ours if f.drifted}
    assert drifted == set(data.SHIFTED)
    dataset = dataset_verdict(ours, DriftSettings())
    assert dataset.share == pytest.approx(theirs.share)
    assert dataset.is_drifted == theirs.dataset_drifted


PVALUE_METHODS = {
    "ks_pvalue": "K-S p_value",
    "chisquare_pvalue": "chi-square p_value",
    "z_pvalue": "Z-test p_value",
}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # chi-square, unseen categories
def test_small_references_use_evidentlys_pvalue_tests() -> None:
    # At most 1,000 reference rows: KS, chi-square and z-test p-values decide,
    # on a summary that holds every value, so the p-values are Evidently's own.
    reference = data.make(800, shifted=False, seed=5)
    current = data.make(600, shifted=True, seed=6)
    theirs = data.evidently_drift(reference, current)
    ours = compare(summarise([reference], categorical=data.CATEGORICAL), current, DriftSettings())
    methods = set()
    for feature in ours:
        expected = theirs.columns[feature.name]
        verdict = feature.verdict
        assert verdict is not None and verdict.value is not None
        assert PVALUE_METHODS[feature.method or ""] == expected.method, feature.name
        assert verdict.value == pytest.approx(expected.value, rel=1e-6, abs=1e-12), feature.name
        assert feature.drifted == expected.drifted, feature.name
        methods.add(feature.method)
    assert methods == set(PVALUE_METHODS)
