"""Drift checks through the store: references, windows, history, bad input."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opstui.analysis.drift_results import DriftSettings
from opstui.config import parse_config
from opstui.config.drift import drift_schema
from opstui.drift import check as drift_check
from opstui.drift import records as drift_records
from opstui.drift import reference as drift_reference
from opstui.errors import ConfigError, UsageError
from opstui.store import Store
from opstui.store import drift as store_drift
from opstui.track import Tracker

from .conftest import Clock

HOUR = 3600.0
QUICK = DriftSettings(classifier=False)


def rows(g: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, Any]:
    return {
        "amount": np.round(g.lognormal(3.6, 0.9, n) * (1 + shift), 2).tolist(),
        "age": (g.normal(40 + 10 * shift, 12, n)).round(1).tolist(),
        "channel": g.choice(["web", "app", "pos"], n, p=[0.5, 0.3, 0.2]).tolist(),
    }


def record(store: Store, clock: Clock, *, batches: list[tuple[int, float]]) -> None:
    """Model "churn" v1 in production with a 3,000-row reference, then current
    batches of ``(rows, shift)`` an hour apart."""
    g = np.random.default_rng(42)
    with Tracker(store).run("churn-model", stages=["train", "serve"]) as run:
        with run.stage("train"):
            run.log_model_version("churn", status="production", reference=rows(g, 3000))
        with run.stage("serve"):
            for n, shift in batches:
                clock.advance(HOUR)
                run.log_features("churn", rows(g, n, shift))


def count(store: Store, table: str) -> int:
    return int(store.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_a_check_is_computed_stored_and_read_back(store: Store, clock: Clock) -> None:
    record(store, clock, batches=[(500, 0.0), (500, 0.6)])
    check = drift_check.compute_drift(store, "churn", settings=QUICK)
    assert check.reference.version == "1" and check.reference.rows == 3000
    assert (check.window.rows, check.window.batches) == (1000, 2)
    by_name = {f.name: f for f in check.features}
    assert by_name["amount"].drifted and by_name["age"].drifted
    assert by_name["channel"].drifted is False
    assert check.dataset.is_drifted  # 2 of 3
    assert check.check_id is not None and not check.reused
    stored = drift_records.latest(store, "churn")
    assert stored is not None and stored.reused and stored.check_id == check.check_id
    assert {f.name: (f.method, f.drifted) for f in stored.features} == {
        f.name: (f.method, f.drifted) for f in check.features
    }
    for f in check.features:
        for r in f.results:
            back = next(x for x in stored.features if x.name == f.name).result(r.method)
            assert back is not None and back.value == pytest.approx(r.value)
            assert (back.threshold, back.drifted) == (r.threshold, r.drifted)
    assert stored.settings == QUICK


def test_the_same_window_is_not_computed_or_stored_twice(store: Store, clock: Clock) -> None:
    record(store, clock, batches=[(400, 0.0)])
    first = drift_check.compute_drift(store, "churn", settings=QUICK)
    results = count(store, "drift_results")
    again = drift_check.compute_drift(store, "churn", settings=QUICK)
    assert again.reused and again.check_id == first.check_id
    assert count(store, "drift_checks") == 1 and count(store, "drift_results") == results
    # Other thresholds are another check of the same window.
    stricter = dataclasses.replace(QUICK, wasserstein=0.01)
    assert drift_check.compute_drift(store, "churn", settings=stricter).check_id != first.check_id


def test_a_window_checked_by_an_older_method_is_checked_again(
    store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(store, clock, batches=[(400, 0.0)])
    first = drift_check.compute_drift(store, "churn", settings=QUICK)
    monkeypatch.setattr(drift_check, "METHOD", drift_check.METHOD + 1)  # a newer opstui
    newer = drift_check.compute_drift(store, "churn", settings=QUICK)
    assert not newer.reused and newer.check_id != first.check_id
    assert drift_check.compute_drift(store, "churn", settings=QUICK).reused


def test_reference_summary_is_computed_once_and_rebuilt_for_new_batches(
    store: Store, clock: Clock
) -> None:
    record(store, clock, batches=[(400, 0.0)])
    drift_check.compute_drift(store, "churn", settings=QUICK)
    ref = store_drift.reference(store, "churn", "1")
    assert ref is not None and ref.n_rows == 3000 and ref.source == "batches"
    drift_check.compute_drift(store, "churn", settings=dataclasses.replace(QUICK, psi_bins=5))
    same = store_drift.reference(store, "churn", "1")
    assert same is not None and same.digest == ref.digest  # not rebuilt
    with Tracker(store).run("churn-model") as run:
        run.log_features(
            "churn", rows(np.random.default_rng(1), 1000), kind="reference", version="1"
        )
    check = drift_check.compute_drift(store, "churn", settings=QUICK)
    assert check.reference.rows == 4000 and check.reference.digest != ref.digest


def test_windows_by_rows_and_by_time(store: Store, clock: Clock) -> None:
    record(store, clock, batches=[(300, 0.0), (300, 0.0), (300, 0.0)])
    last_rows = dataclasses.replace(QUICK, window_rows=450, window_seconds=0)
    check = drift_check.compute_drift(store, "churn", settings=last_rows, save=False)
    assert (check.window.rows, check.window.batches) == (450, 2)
    last_hour = dataclasses.replace(QUICK, window_seconds=HOUR + 1)
    check = drift_check.compute_drift(store, "churn", settings=last_hour, save=False)
    assert (check.window.rows, check.window.batches) == (600, 2)
    earlier = drift_check.compute_drift(
        store, "churn", settings=last_hour, at=clock.now - 2 * HOUR, save=False
    )
    assert (earlier.window.rows, earlier.window.end) == (300, clock.now - 2 * HOUR)


def test_persistent_drift_suggests_a_retrain_and_says_since_when(
    store: Store, clock: Clock
) -> None:
    record(store, clock, batches=[(400, 0.0), (400, 0.7), (400, 0.7), (400, 0.7)])
    settings = dataclasses.replace(QUICK, window_seconds=1, retrain_after=3)
    checks = drift_check.backfill(store, "churn", settings=settings)
    assert [c.dataset.is_drifted for c in checks] == [False, True, True, True]
    latest = checks[-1]
    first_drift = checks[1].window.end
    assert first_drift is not None
    assert latest.retrain == store_drift.RetrainSuggestion(3, first_drift)
    assert checks[2].retrain is None  # two windows are not yet "persistent"
    assert latest.began[None] == first_drift
    assert latest.began["amount"] == first_drift
    history = store_drift.feature_history(store, "churn", "amount")
    assert [h.drifted for h in history] == [True, True, True, False]
    assert drift_check.backfill(store, "churn", settings=settings) == []  # nothing new


def test_checks_are_all_or_nothing(
    store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(store, clock, batches=[(400, 0.0)])
    real = drift_records.result_rows

    def failing(check: drift_records.DriftCheck) -> list[store_drift.ResultRow]:
        bad = store_drift.ResultRow(0, "amount", None, 1.0, None, None, False, {})  # type: ignore[arg-type]
        return [*real(check), bad]  # the last row breaks a NOT NULL constraint

    monkeypatch.setattr(drift_check, "result_rows", failing)
    with pytest.raises(Exception, match=r"NOT NULL|not-null"):
        drift_check.compute_drift(store, "churn", settings=QUICK)
    assert count(store, "drift_checks") == 0 and count(store, "drift_results") == 0


# --- bad input ---------------------------------------------------------------


def test_a_feature_missing_from_the_current_window(store: Store, clock: Clock) -> None:
    record(store, clock, batches=[])
    g = np.random.default_rng(3)
    with Tracker(store).run("serve") as run:
        batch = rows(g, 500)
        del batch["age"]
        run.log_features("churn", {**batch, "new_feature": [1] * 500})
    check = drift_check.compute_drift(store, "churn", settings=QUICK)
    age = next(f for f in check.features if f.name == "age")
    assert (age.drifted, age.problem) == (None, "not in the current window")
    missing = age.result("missing_share")
    assert missing is not None and missing.value == 1.0 and missing.drifted
    assert check.dataset.checked == 2
    assert check.unknown == ("new_feature",)
    stored = drift_records.latest(store, "churn")
    assert stored is not None
    assert (
        next(f for f in stored.features if f.name == "age").problem == "not in the current window"
    )


def test_a_three_row_window_is_refused_and_nothing_is_written(store: Store, clock: Clock) -> None:
    record(store, clock, batches=[(3, 0.0)])
    with pytest.raises(UsageError, match="holds 3 rows; a drift check needs at least 30"):
        drift_check.compute_drift(store, "churn", settings=QUICK)
    assert count(store, "drift_checks") == 0


def test_no_reference_or_no_current_data_is_a_clear_error(store: Store, clock: Clock) -> None:
    with Tracker(store).run("p") as run:
        run.log_features("orphan", {"x": [1.0] * 50})
        run.log_model_version("fresh", reference={"x": [1.0] * 50})
    with pytest.raises(UsageError, match="model 'orphan' has no reference features") as info:
        drift_check.compute_drift(store, "orphan", settings=QUICK)
    assert "set-reference orphan" in str(info.value)
    with pytest.raises(UsageError, match="model 'fresh' has no current feature batches"):
        drift_check.compute_drift(store, "fresh", settings=QUICK)


def test_a_numeric_feature_recorded_as_text(store: Store, clock: Clock) -> None:
    record(store, clock, batches=[])
    g = np.random.default_rng(5)
    batch = rows(g, 400)
    batch["amount"] = [f"{v}" for v in batch["amount"]]
    batch["age"] = ["forty"] * 400
    with Tracker(store).run("serve") as run:
        run.log_features("churn", batch)
    check = drift_check.compute_drift(store, "churn", settings=QUICK)
    by_name = {f.name: f for f in check.features}
    assert by_name["amount"].drifted is False
    assert by_name["amount"].notes == ("values arrived as text and were read as numbers",)
    assert by_name["age"].problem == "holds text, not numbers (e.g. 'forty', 'forty', 'forty')"


def test_text_in_a_numeric_feature_drifts_it_and_is_read_back(store: Store, clock: Clock) -> None:
    record(store, clock, batches=[])
    g = np.random.default_rng(6)
    batch = rows(g, 400)
    batch["age"][:120] = ["unknown"] * 120  # 30% words, none in the reference
    with Tracker(store).run("serve") as run:
        run.log_features("churn", batch)
    check = drift_check.compute_drift(store, "churn", settings=QUICK)
    age = next(f for f in check.features if f.name == "age")
    assert (age.kind, age.method, age.drifted) == ("numeric", "invalid_share", True)
    assert check.began.get("age") is not None  # SINCE: history sees the drift
    stored = store_drift.latest_check(store, "churn")
    assert stored is not None and stored.id == check.check_id
    again = next(f for f in drift_records.from_store(store, stored).features if f.name == "age")
    assert (again.method, again.drifted) == ("invalid_share", True)


def test_the_production_reference_wins_else_the_newest_with_a_note(
    store: Store, clock: Clock
) -> None:
    record(store, clock, batches=[(400, 0.0)])
    with Tracker(store).run("churn-model") as run:
        run.log_model_version("churn", version="2", reference=rows(np.random.default_rng(2), 2000))
    assert drift_reference.reference_version(store, "churn") == ("1", [])
    with Tracker(store).run("churn-model") as run:
        run.log_model_version("churn", version="3", status="production")
    version, notes = drift_reference.reference_version(store, "churn")
    assert version == "2"
    assert notes == ["production version 3 has no reference; using version 2"]


def test_set_reference_summarises_chunks_and_replaces(store: Store, clock: Clock) -> None:
    record(store, clock, batches=[(500, 0.0)])
    g = np.random.default_rng(9)
    chunks = [rows(g, 1000) for _ in range(3)]
    info = drift_reference.set_reference(
        store, "churn", chunks, version="1", source="train.csv", settings=QUICK
    )
    assert (info.version, info.rows, info.source) == ("1", 3000, "file: train.csv")
    check = drift_check.compute_drift(store, "churn", settings=QUICK)
    assert check.reference.digest == info.digest  # a file reference is not rebuilt from batches
    with pytest.raises(UsageError, match="has no versions"):
        drift_reference.set_reference(
            store, "nomodel", chunks, version=None, source="x", settings=QUICK
        )


def test_a_model_can_be_named_by_its_pipeline(store: Store, clock: Clock) -> None:
    record(store, clock, batches=[(400, 0.0)])
    assert drift_reference.resolve_model(store, None, "churn-model") == "churn"
    with pytest.raises(UsageError, match="no model 'nope'") as info:
        drift_reference.resolve_model(store, None, "nope")
    assert "models in the store: churn" in str(info.value)


def test_domain_classifier_result_is_stored(store: Store, clock: Clock) -> None:
    record(store, clock, batches=[(1500, 0.8)])
    check = drift_check.compute_drift(store, "churn", settings=DriftSettings(classifier_rows=1500))
    assert check.classifier is not None and check.classifier.alert
    assert check.classifier.top[0][0] in ("amount", "age")
    stored = drift_records.latest(store, "churn")
    assert stored is not None and stored.classifier == check.classifier
    row = store_drift.latest_check(store, "churn")
    assert row is not None and row.classifier_alert
    assert row.settings["classifier_auc"] == 0.55
    assert 0.5 < check.classifier.chance < 0.55  # 1,500 rows: the threshold decides
    assert row.details["classifier"]["chance"] == check.classifier.chance


def test_a_window_too_small_for_the_classifier_says_so_without_scikit_learn(
    store: Store, clock: Clock, store_path: Path
) -> None:
    record(store, clock, batches=[(40, 0.8)])
    path = store.location.for_child()
    code = (
        "import sys, json\n"
        "from opstui.drift import check as drift_check\n"
        "from opstui.store import Store\n"
        f"check = drift_check.compute_drift(Store({str(path)!r}), 'churn')\n"
        "print(json.dumps([check.classifier is None, list(check.notes), "
        "'sklearn' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    skipped, notes, sklearn = json.loads(out.stdout)
    assert skipped and not sklearn
    assert "domain classifier skipped: 40 rows a side, it needs 50" in notes


# --- config ------------------------------------------------------------------


def test_drift_config_keys_are_the_settings_fields() -> None:
    assert set(drift_schema()) == set(DriftSettings.__dataclass_fields__)


def test_drift_settings_come_from_the_config(tmp_path: Path) -> None:
    cfg = parse_config(
        """
[drift]
wasserstein = 0.2
window_rows = 5000

[models.fraud.drift]
wasserstein = 0.15
categorical = ["merchant_id"]
classifier = false
""",
        tmp_path / "opstui.toml",
    )
    fraud = drift_check.settings_for(cfg, "fraud")
    assert (fraud.wasserstein, fraud.window_rows, fraud.classifier) == (0.15, 5000, False)
    assert fraud.categorical == ("merchant_id",)
    assert drift_check.settings_for(cfg, "churn").wasserstein == 0.2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[drift]\nwasserstien = 0.1", '"drift.wasserstien" (did you mean "drift.wasserstein"?)'),
        ("[drift]\nks_pvalue = 5", '"drift.ks_pvalue" must be a p-value between 0 and 1'),
        ("[drift]\nclassifier_auc = 0.3", "an ROC AUC between 0.5 and 1"),
        ("[models.x.drift]\ncategorical = [1]", '"models.x.drift.categorical" must be a list'),
        ("[models.x.drift]\nwindow_rows = 0", "must be at least 1"),
    ],
)
def test_bad_drift_config_names_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert message in str(info.value)


def test_reference_batches_that_disagree_are_a_clear_error(store: Store, clock: Clock) -> None:
    record(store, clock, batches=[(400, 0.0)])
    with Tracker(store).run("churn-model") as run:
        run.log_features("churn", {"other": [1.0] * 100}, kind="reference", version="1")
    with pytest.raises(UsageError, match="reference batches of 'churn' version 1 do not fit"):
        drift_check.compute_drift(store, "churn", settings=QUICK)
