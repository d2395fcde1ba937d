"""Drift statistics from reference summaries, against scipy on the raw rows."""

from __future__ import annotations

import math
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from opstui.analysis import drift_stats as ds
from opstui.analysis.domain import Side, domain_classifier, roc_auc
from opstui.analysis.drift import compare, dataset_verdict
from opstui.analysis.drift_results import DriftSettings, choose_method
from opstui.analysis.drift_summariser import summarise
from opstui.analysis.drift_summary import SAMPLE_CELLS, NumericSummary, decode, encode

SETTINGS = DriftSettings()


def numeric(summary: Any, name: str = "x") -> NumericSummary:
    column = summary.column(name)
    assert isinstance(column, NumericSummary)
    return column


def sturges_js(ref: np.ndarray, cur: np.ndarray) -> float:
    """Evidently's Jensen-Shannon distance of a numeric column, from raw rows."""
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    p = np.histogram(ref, edges)[0] / len(ref)
    q = np.histogram(cur, edges)[0] / len(cur)
    return float(distance.jensenshannon(p, q))


Make = Callable[[np.random.Generator, int, float], Any]
DISTRIBUTIONS: dict[str, Make] = {
    "normal": lambda g, n, s: g.normal(s, 1.0, n),
    "lognormal": lambda g, n, s: g.lognormal(3.6, 0.9, n) * (1 + s),
    "pareto": lambda g, n, s: g.pareto(2.5, n) + s,
    "zero-inflated": lambda g, n, s: np.where(g.random(n) < 0.4 - s / 2, 0.0, g.gamma(2, 40, n)),
    "integers": lambda g, n, s: g.exponential(700 * (1 + s), n).astype(np.int64),
}


@pytest.mark.parametrize("shape", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("shift", [0.0, 0.05, 0.3])
def test_summary_statistics_match_the_raw_computation(shape: str, shift: float) -> None:
    g = np.random.default_rng(11)
    make = DISTRIBUTIONS[shape]
    ref, cur = make(g, 60_000, 0.0), make(g, 40_000, shift)
    s = numeric(summarise([{"x": ref}]))
    cdf = ds.Cdf(s)
    cur_sorted = np.sort(cur.astype(np.float64))
    exact_w = stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001)
    assert ds.normalised_wasserstein(s, ds.wasserstein(cdf, cur_sorted)) == pytest.approx(
        exact_w, abs=2e-4
    )
    p, q = ds.numeric_shares(s, cdf, cur_sorted)
    assert ds.jensenshannon(p, q) == pytest.approx(sturges_js(ref, cur), abs=5e-4)
    assert ds.ks_statistic(cdf, cur_sorted) == pytest.approx(
        stats.ks_2samp(ref, cur).statistic, abs=2e-3
    )


def test_small_references_are_summarised_exactly() -> None:
    g = np.random.default_rng(5)
    ref, cur = g.normal(0, 1, 800), g.normal(0.3, 1, 500)
    s = numeric(summarise([{"x": ref}]))
    assert s.exact
    assert np.array_equal(s.values(), np.sort(ref))
    cdf = ds.Cdf(s)
    cur_sorted = np.sort(cur)
    assert ds.wasserstein(cdf, cur_sorted) == pytest.approx(
        stats.wasserstein_distance(ref, cur), rel=1e-12
    )
    assert ds.ks_pvalue(s, cur_sorted) == pytest.approx(stats.ks_2samp(ref, cur).pvalue)
    assert ds.ks_statistic(cdf, cur_sorted) == pytest.approx(stats.ks_2samp(ref, cur).statistic)


def test_pvalues_without_scipy_stats_equal_scipy_stats() -> None:
    # ks_pvalue, chisquare_pvalue and z_pvalue use scipy.special (and scipy's
    # exact KS algorithms in Python) to keep scipy.stats' import off a check.
    g = np.random.default_rng(21)
    for trial in range(120):
        n1 = int(g.integers(5, 1001))
        n2 = [n1, int(g.integers(5, 1200)), int(g.integers(30, 400))][trial % 3]
        if trial % 2:
            ref, cur = g.normal(0, 1, n1), g.normal(g.uniform(0, 0.4), 1, n2)
        else:
            ref = g.integers(0, 30, n1).astype(float)
            cur = g.integers(0, 32, n2).astype(float)
        s = numeric(summarise([{"x": ref}]))
        assert ds.ks_pvalue(s, np.sort(cur)) == stats.ks_2samp(ref, cur).pvalue, (n1, n2)
    # Past the Python budget, and past ks_2samp's exact limit: scipy.stats itself.
    for n1, n2 in [(1000, 3000), (900, 12_000)]:
        ref, cur = g.normal(0, 1, n1), g.normal(0.05, 1, n2)
        s = numeric(summarise([{"x": ref}]))
        assert ds.ks_pvalue(s, np.sort(cur)) == stats.ks_2samp(ref, cur).pvalue

    for k in (2, 3, 6, 12):
        keys = list(range(k))
        ref_counts = {i: int(c) for i, c in enumerate(g.integers(1, 400, k))}
        cur_counts = {i: int(c) for i, c in enumerate(g.integers(0, 300, k))}
        observed = np.array([cur_counts[i] for i in keys])
        scale = sum(cur_counts.values()) / sum(ref_counts.values())
        expected = np.array([ref_counts[i] for i in keys]) * scale
        theirs = stats.chisquare(observed, expected).pvalue
        ours = ds.chisquare_pvalue(keys, ref_counts, cur_counts)
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-300)
    for a, b in [(300, 500), (280, 120), (10, 990)]:
        n1, n2 = 1000, a + b
        p1, p2 = 600 / n1, b / n2
        pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
        z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        theirs = 2 * (1 - stats.norm.cdf(abs(z)))
        assert ds.z_pvalue(["0", "1"], {"0": 400, "1": 600}, {"0": a, "1": b}) == theirs


def test_a_small_check_does_not_import_scipy_stats_or_sklearn() -> None:
    code = (
        "import sys, numpy as np\n"
        "from opstui.analysis.drift import compare\n"
        "from opstui.analysis.drift_results import DriftSettings\n"
        "from opstui.analysis.drift_summariser import summarise\n"
        "g = np.random.default_rng(1)\n"
        "ref = {'x': g.normal(0, 1, 600), 'k': g.integers(0, 7, 600), 'c': ['a', 'b', 'c'] * 200}\n"
        "cur = {'x': g.normal(0, 1, 100), 'k': g.integers(0, 7, 100), 'c': ['a', 'b'] * 50}\n"
        "found = compare(summarise([ref]), cur, DriftSettings(classifier=False))\n"
        "assert {f.method for f in found} == {'ks_pvalue', 'chisquare_pvalue'}, found\n"
        "print(sorted(m for m in sys.modules if m in ('scipy.stats', 'sklearn')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_jensen_shannon_uses_the_natural_logarithm_as_evidently_does() -> None:
    p, q = np.array([1 / 3, 1 / 3, 1 / 3, 0]), np.array([0.25] * 4)
    assert ds.jensenshannon(p, q) == pytest.approx(distance.jensenshannon(p, q), abs=1e-12)
    assert ds.jensenshannon(p, q) != pytest.approx(distance.jensenshannon(p, q, base=2))


@pytest.mark.parametrize(("lo", "hi", "n"), [(0.0, 1.0, 100), (-3.5, 1900.25, 200_000), (5, 5, 9)])
def test_sturges_edges_are_numpys(lo: float, hi: float, n: int) -> None:
    data = np.concatenate([[lo, hi], np.full(n - 2, (lo + hi) / 2)])
    assert np.array_equal(ds.sturges_edges(lo, hi, n), np.histogram_bin_edges(data, "sturges"))


@pytest.mark.parametrize(("sigmas", "expected"), [(0.3, 0.085), (0.5, 0.235), (1.0, 0.94)])
def test_psi_on_reference_deciles_grows_with_the_shift(sigmas: float, expected: float) -> None:
    g = np.random.default_rng(3)
    s = numeric(summarise([{"x": g.normal(0, 1, 200_000)}]))
    value = ds.numeric_psi(ds.Cdf(s), np.sort(g.normal(sigmas, 1, 200_000)), bins=10)
    assert value == pytest.approx(expected, rel=0.1)


def test_evidently_default_methods() -> None:
    assert choose_method("numeric", 5000, 100, 1000) == "wasserstein"
    assert choose_method("numeric", 5000, 4, 1000) == "jensenshannon"
    assert choose_method("numeric", 1000, 100, 1000) == "ks_pvalue"
    assert choose_method("numeric", 800, 4, 1000) == "chisquare_pvalue"
    assert choose_method("categorical", 800, 2, 1000) == "z_pvalue"
    assert choose_method("categorical", 5000, 2, 1000) == "jensenshannon"


def test_summary_survives_the_store_encoding() -> None:
    g = np.random.default_rng(1)
    labels = ["a", "b", None]
    rows: dict[str, Any] = {
        "x": g.normal(0, 1, 30_000),
        "c": [labels[i] for i in g.integers(0, 3, 30_000)],
    }
    summary = summarise([rows])
    back = decode(encode(summary))
    assert back.rows == summary.rows
    assert back.columns[1] == summary.columns[1]
    x, y = numeric(summary), numeric(back)
    assert np.array_equal(x.knots, y.knots)
    assert (x.mean, x.std, x.present, x.distinct) == (y.mean, y.std, y.present, y.distinct)
    for name in summary.sample:
        assert np.array_equal(back.sample[name], summary.sample[name])


# --- bad input -------------------------------------------------------------


def checked(reference: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    features = compare(summarise([reference]), current, SETTINGS)
    return {f.name: f for f in features}


def test_a_constant_reference_column_is_floored_like_evidently() -> None:
    g = np.random.default_rng(2)
    same = checked({"x": np.full(5000, 3.0)}, {"x": np.full(500, 3.0)})["x"]
    assert (same.method, same.drifted) == ("jensenshannon", False)  # one value: categorical
    cur = 3.0 + g.normal(0, 0.01, 500)
    moved = checked({"x": np.full(5000, 3.0)}, {"x": cur})["x"]
    assert moved.method == "wasserstein"
    w = moved.verdict
    assert w is not None and w.value is not None
    # std 0 -> divided by 0.001 (Evidently's floor), not by zero
    exact = stats.wasserstein_distance(np.full(5000, 3.0), cur) / 0.001
    assert w.value == pytest.approx(exact, rel=1e-9)
    assert math.isfinite(w.value) and w.drifted


def test_all_missing_columns_are_reported_not_checked() -> None:
    ref = {"x": [None] * 2000, "y": np.arange(2000.0), "z": np.arange(2000.0)}
    got = checked(ref, {"x": [1.0] * 50, "y": [float("nan")] * 50, "z": np.arange(50.0)})
    assert got["x"].problem == "every value is missing in the reference"
    assert got["y"].problem == "every value is missing in the current window"
    missing = got["y"].result("missing_share")
    assert missing is not None and missing.value == 1.0 and missing.drifted
    assert got["z"].drifted is not None
    verdict = dataset_verdict(list(got.values()), SETTINGS)
    assert verdict.checked == 1


def test_numbers_arriving_as_text_are_read_and_text_is_reported() -> None:
    g = np.random.default_rng(4)
    ref = {"amount": g.normal(50, 10, 3000)}
    as_text = [f"{v:.3f}" for v in g.normal(50, 10, 400)]
    got = checked(ref, {"amount": as_text})["amount"]
    assert got.drifted is False
    assert "arrived as text" in got.notes[0]
    garbage = checked(ref, {"amount": ["abc", "n/a", "12.5"] * 100})["amount"]
    invalid = garbage.result("invalid_share")
    assert invalid is not None and invalid.value == pytest.approx(1 / 3) and invalid.drifted
    words = checked(ref, {"amount": ["abc", "def"] * 100})["amount"]
    assert words.problem is not None and words.problem.startswith("holds text, not numbers")


def dirty(g: np.random.Generator, n: int, text: float, shift: float = 0.0) -> list[Any]:
    values = [f"{v:.2f}" for v in g.normal(50 + shift, 10, n)]
    for i in np.flatnonzero(g.random(n) < text).tolist():
        values[i] = "unknown"
    return values


def test_a_reference_mostly_numbers_with_some_text_stays_numeric() -> None:
    # 20% "unknown" in training: numeric, the text a finding with its share;
    # a current window with as much text is not drift, one with more is.
    g = np.random.default_rng(12)
    summary = summarise([{"income": dirty(g, 5000, 0.2)}])
    column = numeric(summary, "income")
    assert column.invalid / column.rows == pytest.approx(0.2, abs=0.02)
    assert column.examples == ("unknown",)
    assert numeric(decode(encode(summary)), "income").examples == ("unknown",)

    same = compare(summary, {"income": dirty(g, 2000, 0.2)}, SETTINGS)[0]
    assert same.kind == "numeric" and same.method == "wasserstein" and same.drifted is False
    assert same.result("unseen_share") is None
    reference_text = same.result("reference_invalid_share")
    assert reference_text is not None and reference_text.drifted
    assert reference_text.value == pytest.approx(0.2, abs=0.02)
    assert reference_text.details["examples"] == ["unknown"]
    current_text = same.result("invalid_share")
    assert current_text is not None and current_text.details["reference"] == reference_text.value

    more = compare(summary, {"income": dirty(g, 2000, 0.5)}, SETTINGS)[0]
    distance = more.result("wasserstein")
    assert distance is not None and not distance.drifted  # the numbers have not moved ...
    assert more.drifted is True and more.method == "invalid_share"  # ... half are words
    assert any("of values are text" in n for n in more.notes)

    # Mostly words is still a categorical column.
    words = summarise([{"size": ["small", "large", "12"] * 100}])
    assert words.columns[0].kind == "categorical"


def test_words_in_a_clean_numeric_current_column_count_against_it() -> None:
    g = np.random.default_rng(13)
    ref = {"x": g.normal(0, 1, 3000)}
    values: list[Any] = g.normal(0, 1, 400).tolist()
    values[:100] = ["n.a."] * 100  # 25% words
    got = checked(ref, {"x": values})["x"]
    assert got.drifted is True and got.method == "invalid_share"
    text = got.result("invalid_share")
    assert text is not None and text.value == pytest.approx(0.25) and text.drifted
    assert text.threshold == pytest.approx(SETTINGS.missing_tolerance)
    few: list[Any] = g.normal(0, 1, 400).tolist()
    few[:8] = ["n.a."] * 8  # 2%: within the tolerance, a note
    got = checked(ref, {"x": few})["x"]
    assert got.drifted is False and got.method == "wasserstein"
    assert got.notes == ("2.0% of values are text, not numbers (e.g. 'n.a.', 'n.a.', 'n.a.')",)


def test_integer_codes_with_at_most_ten_values_are_categorical() -> None:
    g = np.random.default_rng(14)
    ref = {"band": g.integers(1, 10, 5000), "score": g.integers(0, 11, 5000)}
    cur = {"band": g.integers(1, 11, 800), "score": g.integers(0, 11, 800)}
    summary = summarise([ref])
    got = {f.name: f for f in compare(summary, cur, SETTINGS)}
    assert got["band"].kind == "categorical" and got["band"].method == "jensenshannon"
    unseen = got["band"].result("unseen_share")
    assert unseen is not None and unseen.details["top"][0]["category"] == "10"
    assert got["score"].kind == "numeric" and got["score"].method == "wasserstein"
    # The same codes as CSV text are integers too; floats or gaps are not.
    as_text = {"band": [str(v) for v in cur["band"].tolist()]}
    assert compare(summary, as_text, SETTINGS)[0].kind == "categorical"
    as_float = {"band": cur["band"].astype(np.float64)}
    assert compare(summary, as_float, SETTINGS)[0].kind == "numeric"
    gaps: dict[str, Any] = {"band": [*cur["band"].tolist()[:-1], None]}
    assert compare(summary, gaps, SETTINGS)[0].kind == "numeric"
    # ``numeric`` overrides it per feature.
    forced = compare(summary, cur, DriftSettings(numeric=("band",)))
    assert forced[0].kind == "numeric" and forced[0].method == "wasserstein"


def test_unseen_categories_are_reported() -> None:
    g = np.random.default_rng(6)
    ref = {"merchant": g.choice(["food", "fuel", "travel"], 5000).tolist()}
    cur = {"merchant": [*g.choice(["food", "fuel", "travel"], 900).tolist(), *["crypto"] * 100]}
    got = checked(ref, cur)["merchant"]
    unseen = got.result("unseen_share")
    assert unseen is not None and unseen.value == pytest.approx(0.1)
    assert unseen.details["top"] == [{"category": "crypto", "rows": 100}]


def test_a_three_row_window_still_computes() -> None:
    # compute_drift refuses windows under min_rows; the arithmetic itself must not crash.
    got = checked(
        {"x": np.arange(5000.0), "c": ["a", "b"] * 2500}, {"x": [1.0, 2.0, 3.0], "c": ["a"] * 3}
    )
    assert all(f.drifted is not None for f in got.values())


def test_a_thousand_features() -> None:
    g = np.random.default_rng(8)
    ref = {f"f{i}": g.normal(0, 1, 2000) for i in range(1000)}
    cur = {f"f{i}": g.normal(0.5 if i < 600 else 0, 1, 2000) for i in range(1000)}
    started = time.perf_counter()
    summary = summarise([ref])
    features = compare(summary, cur, SETTINGS)
    elapsed = time.perf_counter() - started
    verdict = dataset_verdict(features, SETTINGS)
    drifted = {int(f.name[1:]) for f in features if f.drifted}
    assert verdict.checked == 1000
    assert drifted >= set(range(600))
    assert len(drifted) - 600 <= 4  # W/std of 2,000 vs 2,000 rows rarely reaches 0.1
    assert verdict.is_drifted
    assert elapsed < 30, elapsed  # a generous bound: a hang, not a benchmark
    assert len(encode(summary)) < 30_000_000  # knots shrink for wide models


def chunks(rows: int, size: int) -> Iterator[dict[str, Any]]:
    g = np.random.default_rng(9)
    labels = np.array(["a", "b", "c", "d"])
    for start in range(0, rows, size):
        n = min(size, rows - start)
        yield {"x": g.normal(10, 2, n), "c": labels[g.integers(0, 4, n)]}


def peak_memory_of_summarising(rows: int) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        summary = summarise(chunks(rows, 250_000))
        return summary, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_ten_million_rows_are_summarised_in_bounded_memory() -> None:
    _, peak_2m = peak_memory_of_summarising(2_000_000)
    summary, peak_10m = peak_memory_of_summarising(10_000_000)
    x = numeric(summary)
    assert summary.rows == x.present == 10_000_000
    assert x.mean == pytest.approx(10, abs=0.01) and x.std == pytest.approx(2, abs=0.01)
    assert x.sampled == SAMPLE_CELLS // 2  # knots from a bounded sample...
    assert ds.Cdf(x).quantile(np.array([0.5]))[0] == pytest.approx(10, abs=0.02)
    cats = summary.column("c")
    assert cats is not None and sum(cats.counts) == 10_000_000  # ...counts exact
    # Five times the rows, the same memory: the sample (1M rows) and a chunk.
    # The 10M rows themselves would be 80 MB of floats plus 10M labels.
    assert peak_10m < 1.1 * peak_2m, (peak_2m, peak_10m)
    assert peak_10m < 100_000_000, peak_10m


def test_roc_auc_is_scikit_learns_with_ties_and_extremes() -> None:
    from sklearn.metrics import roc_auc_score

    g = np.random.default_rng(3)
    for n, levels in ((7, 3), (200, 5), (5000, 1000), (5000, 10**9)):
        truth = np.repeat([0, 1], n)
        g.shuffle(truth)
        score = np.round(g.random(2 * n) * levels) / levels  # few levels: many ties
        assert roc_auc(truth, score) == pytest.approx(roc_auc_score(truth, score), abs=1e-12)
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.4, 0.3, 0.2, 0.1])) == 0.0
    assert roc_auc(np.array([0, 1, 0, 1]), np.full(4, 0.5)) == 0.5


def test_domain_classifier_does_not_alert_on_small_windows_of_the_same_data() -> None:
    # Before the chance bound, AUC > 0.55 alone alerted: on two samples of the
    # same data that was 4 of 40 windows at 100 rows a side, 11 of 40 at 50.
    rates = {}
    for n in (50, 100, 300):
        aucs, alerts = [], 0
        for seed in range(40):
            g = np.random.default_rng(seed)

            def side() -> Side:
                numeric = {f"x{i}": g.normal(0, 1, n) for i in range(6)}  # noqa: B023
                return Side(numeric, {"c": [str(v) for v in g.integers(0, 5, n)]})  # noqa: B023

            r = domain_classifier(
                side(), side(), categories={"c": list("01234")}, rows=10_000, threshold=0.55
            )
            assert r is not None and r.rows == n
            assert r.chance > 0.55  # at these sizes chance passes the threshold
            aucs.append(r.auc)
            alerts += r.alert
        rates[n] = (alerts, sum(a > 0.55 for a in aucs))
    assert all(alerts == 0 for alerts, _ in rates.values()), rates
    assert rates[50][1] + rates[100][1] > 0, rates  # the old rule would have alerted


def test_domain_classifier_skips_windows_below_its_minimum() -> None:
    g = np.random.default_rng(1)

    def side(n: int) -> Side:
        return Side({"a": g.normal(0, 1, n)}, {})

    small = domain_classifier(side(49), side(5000), categories={}, rows=10_000, threshold=0.55)
    assert small is None
    far = Side({"a": g.normal(5, 1, 50)}, {})
    r = domain_classifier(side(5000), far, categories={}, rows=10_000, threshold=0.55)
    assert r is not None and r.auc > 0.95 and r.alert and r.limit == r.chance > 0.7


@pytest.mark.parametrize("moved", ["a", "c"])
def test_domain_classifier_separates_shifted_data_and_names_the_feature(moved: str) -> None:
    g = np.random.default_rng(12)
    n = 3000
    levels = ["x", "y", "z"]

    def side(shift: float) -> Side:
        a = g.normal(shift if moved == "a" else 0, 1, n)
        weights = np.array([1.0, 1.0, 1.0 + 3 * shift if moved == "c" else 1.0])
        c = [levels[i] for i in g.choice(3, n, p=weights / weights.sum())]
        return Side({"a": a, "b": g.normal(0, 1, n)}, {"c": c})

    categories = {"c": levels}
    same = domain_classifier(side(0), side(0), categories=categories, rows=2000, threshold=0.55)
    shifted = domain_classifier(
        side(0), side(0.8), categories=categories, rows=2000, threshold=0.55
    )
    assert same is not None and shifted is not None
    assert 0.4 < same.auc < 0.55 and not same.alert
    assert shifted.auc > 0.6 and shifted.alert
    assert shifted.top[0][0] == moved
    assert shifted.rows == 2000


@pytest.mark.filterwarnings("error")  # numpy's overflow warnings fail the test
@pytest.mark.parametrize("big", [1e200, -1e300, 1.7e308, -1.7976931348623157e308])
@pytest.mark.parametrize("n", [500, 5000])
def test_values_near_float64s_limit_give_finite_statistics(big: float, n: int) -> None:
    # Before: squared deviations overflowed, the reference's std read NaN and
    # its normalised Wasserstein NaN ("ok" whatever the current data did), and
    # differences of +-1.7e308 made the distances inf.
    g = np.random.default_rng(5)
    ref = np.append(g.normal(0, 1, n - 1), big)
    summary = summarise([{"a": ref.tolist()}])
    column = summary.column("a")
    assert isinstance(column, NumericSummary)
    scale = 2.0**1023
    assert column.std == pytest.approx(float(np.std(ref / scale)) * scale, rel=1e-9)
    assert column.mean == pytest.approx(float(np.mean(ref / scale)) * scale, rel=1e-9)
    for current in (g.normal(0, 1, n), np.append(g.normal(0, 1, n - 1), -big)):
        (f,) = compare(summary, {"a": current.tolist()}, DriftSettings())
        assert f.problem is None and f.verdict is not None
        values = [r.value for r in f.results if isinstance(r.value, float)]
        assert values and all(math.isfinite(v) for v in values), f.results
        assert f.drifted is False  # one outlier, the same data otherwise
