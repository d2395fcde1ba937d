"""opstui's drift statistics agree with Evidently's on the same data.

20 features (12 numeric, 8 categorical; ``bench/_drift_data.py``), 20,000
reference and current rows, 10 of the features shifted. Evidently's data
drift preset (0.7.23) runs on the raw rows with the column types it infers
(its defaults: an integer column with at most 10 distinct values is
categorical); opstui on its reference summary, which at 20,000 rows is not
the raw data (the knots interpolate). Per-feature verdicts must be
identical, and normalised Wasserstein and Jensen-Shannon (its default test
for categories; forced for every column in a second run) must agree to
1e-3. ``numeric`` overrides the integer rule as an explicit Evidently data
definition does. Survey-style integer codes (Likert answers, bands, counts,
0/1 flags, an 11-point scale, a float-typed rating, an integer column with
gaps) agree exactly. Evidently is a test dependency only; nothing here
reaches the network (its telemetry is off and only used by its UI service).
"""

from __future__ import annotations

import pytest

from opstui.analysis.drift import compare, dataset_verdict
from opstui.analysis.drift_results import DriftSettings
from opstui.analysis.drift_summariser import summarise
from opstui.analysis.drift_summary import NumericSummary

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
    theirs = data.evidently_drift(reference, current, infer=True)
    theirs_js = data.evidently_drift(reference, current, method="jensenshannon", infer=True)

    summary = summarise([reference], categorical=data.CATEGORICAL)
    amount = summary.column("amount")
    assert isinstance(amount, NumericSummary) and not amount.exact  # interpolated knots
    ours = compare(summary, current, DriftSettings())
    assert len(ours) == 20
    # Integer columns with at most 10 values are categories, as Evidently
    # infers them: from the current data (n_tx_24h has 10 values in the
    # reference, 11 in the current window: numeric).
    kinds = {f.name: f.kind for f in ours}
    assert kinds["tier"] == kinds["is_new"] == "categorical"
    assert kinds["n_tx_24h"] == kinds["hour"] == kinds["account_age_days"] == "numeric"

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

    # ``numeric`` keeps integer codes numeric, as Evidently does when its data
    # definition lists them as numerical columns.
    explicit = data.evidently_drift(reference, current)
    as_numbers = compare(summary, current, DriftSettings(numeric=tuple(data.NUMERIC)))
    assert {f.name: f.kind for f in as_numbers}["tier"] == "numeric"
    for feature in as_numbers:
        expected = explicit.columns[feature.name]
        verdict = feature.verdict
        assert verdict is not None and verdict.value is not None
        assert METHODS[feature.method or ""] == expected.method, feature.name
        assert feature.drifted == expected.drifted, feature.name
        assert verdict.value == pytest.approx(expected.value, abs=1e-3), feature.name


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
    theirs = data.evidently_drift(reference, current, infer=True)
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


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # chi-square, unseen values
@pytest.mark.parametrize(("reference_rows", "current_rows"), [(20_000, 20_000), (800, 600)])
def test_integer_coded_survey_columns_follow_evidentlys_types(
    reference_rows: int, current_rows: int
) -> None:
    # Survey codes: Evidently's inferred types (integers with at most 10
    # values are categories; a float column never is; an integer column with
    # gaps is float to pandas) decide the tests, on either sample size.
    reference = data.make_survey(reference_rows, shifted=False, seed=11)
    current = data.make_survey(current_rows, shifted=True, seed=12)
    theirs = data.evidently_drift(reference, current, infer=True)
    ours = compare(summarise([reference]), current, DriftSettings())
    assert len(ours) == len(data.SURVEY)
    names = {**METHODS, **PVALUE_METHODS}
    for feature in ours:
        expected = theirs.columns[feature.name]
        verdict = feature.verdict
        assert verdict is not None and verdict.value is not None
        assert names[feature.method or ""] == expected.method, feature.name
        assert feature.drifted == expected.drifted, feature.name
        assert verdict.value == pytest.approx(expected.value, rel=1e-6, abs=1e-9), feature.name
    kinds = {f.name: f.kind for f in ours}
    assert kinds["household"] == kinds["income_band"] == kinds["employed"] == "categorical"
    assert kinds["rating_float"] == kinds["children"] == kinds["age"] == "numeric"
    dataset = dataset_verdict(ours, DriftSettings())
    assert dataset.share == pytest.approx(theirs.share)
