"""``opstui drift`` end to end, and drift in the bundled sample history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from opstui.drift import check as drift_check
from opstui.store import Store
from opstui.store.importer import import_files
from opstui.track import Tracker

from .conftest import SAMPLE_RUNS, run_cli


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("drift-sample") / "sample.db"
    with Store(path) as store:
        import_files(store, [SAMPLE_RUNS])
        drift_check.backfill(store, "fraud")
    yield path


def test_the_sample_fraud_model_drifts_and_asks_for_a_retrain(sample_store: Path) -> None:
    with Store(sample_store) as store:
        check = drift_check.compute_drift(store, "fraud")
    assert check.reused  # the backfill checked the newest window already
    assert check.reference.version == "5"  # the production version
    drifted = {f.name for f in check.features if f.drifted}
    assert {"amount", "merchant_category", "n_tx_24h", "account_age_days"} <= drifted
    assert "country" not in drifted
    assert check.dataset.is_drifted
    assert check.classifier is not None and check.classifier.alert
    assert check.retrain is not None and check.retrain.windows >= 3
    merchant = next(f for f in check.features if f.name == "merchant_category")
    unseen = merchant.result("unseen_share")
    assert unseen is not None and unseen.details["top"][0]["category"] == "crypto_exchange"
    missing = merchant.result("missing_share")
    assert missing is not None and missing.drifted  # the batch that failed validation

    result = run_cli("drift", "fraud-model", "--store", sample_store)
    assert result.returncode == 1, result.stderr
    for text in (
        "amount",
        "DATASET DRIFT",
        "RETRAIN SUGGESTED",
        "crypto_exchange",
        "opstui retrain fraud",
    ):
        assert text in result.stdout


def write_csv(path: Path, data: dict[str, list[object]]) -> Path:
    names = list(data)
    lines = [",".join(names)]
    lines += [
        ",".join("" if v is None else str(v) for v in row)
        for row in zip(*data.values(), strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def columns(g: np.random.Generator, n: int, shift: float) -> dict[str, list[object]]:
    return {
        "amount": np.round(g.lognormal(3 + shift, 0.5, n), 2).tolist(),
        "plan": g.choice(["free", "pro"], n, p=[0.7 - shift / 2, 0.3 + shift / 2]).tolist(),
    }


def test_set_reference_record_and_check_from_the_shell(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    g = np.random.default_rng(0)
    reference = write_csv(tmp_path / "train.csv", columns(g, 3000, 0.0))
    result = run_cli(
        "drift", "set-reference", "churn", reference, "--version", "7", "--store", store
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "reference of churn version 7: 3,000 rows summarised"

    calm = write_csv(tmp_path / "calm.csv", columns(g, 500, 0.0))
    assert run_cli("record", "features", "churn", calm, "--store", store).returncode == 0
    result = run_cli("drift", "churn", "--json", "--no-classifier", "--store", store)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["model"] == "churn" and doc["reference"]["version"] == "7"
    assert doc["reference"]["source"] == f"file: {reference}"
    assert doc["dataset"]["drifted"] is False and doc["classifier"] is None
    amount = next(f for f in doc["features"] if f["name"] == "amount")
    assert amount["method"] == "wasserstein" and amount["threshold"] == 0.1
    assert set(amount["statistics"]) == {"wasserstein", "jensenshannon", "psi", "ks"}
    assert set(amount["quality"]) == {"missing_share", "out_of_range_share"}
    assert doc["settings"]["drift_share"] == 0.5

    moved = write_csv(tmp_path / "moved.csv", columns(g, 500, 0.4))
    run_cli("record", "features", "churn", moved, "--store", store)
    result = run_cli("drift", "--json", "--no-classifier", "--store", store)  # every model
    assert result.returncode == 1, result.stderr
    (model,) = json.loads(result.stdout)["models"]
    assert model["dataset"]["drifted"] is True


def test_watch_prints_a_check_per_interval(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    g = np.random.default_rng(1)
    with Tracker(store) as tracker, tracker.run("p") as run:
        run.log_model_version("churn", reference=columns(g, 2000, 0.0))
        run.log_features("churn", columns(g, 300, 0.0))
    result = run_cli(
        "drift", "churn", "--watch", "--interval", "0.1", "--count", "2", "--json",
        "--no-classifier", "--store", store,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert (first["reused"], second["reused"]) == (False, True)
    assert first["check_id"] == second["check_id"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["drift", "nope"], "opstui: no model 'nope' in {store}: models in the store: churn\n"),
        (
            ["drift", "churn", "--version", "9"],
            "opstui: version 9 of 'churn' has no reference features\n",
        ),
        (
            ["drift", "churn", "--interval", "0"],
            "opstui: --interval must be a positive number of seconds\n",
        ),
    ],
)
def test_errors_are_one_line_and_exit_2(tmp_path: Path, argv: list[str], message: str) -> None:
    store = tmp_path / "s.db"
    with Tracker(store) as tracker, tracker.run("p") as run:
        run.log_model_version("churn", reference={"x": [1.0, 2.0] * 100})
    result = run_cli(*argv, "--store", store)
    assert result.returncode == 2
    assert result.stderr == message.format(store=store)


def test_bad_reference_files_leave_no_store(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3\n")
    result = run_cli("drift", "set-reference", "m", ragged, "--version", "1", "--store", store)
    assert (result.returncode, result.stderr) == (
        2,
        f"opstui: {ragged}:3: 1 fields, the header has 2\n",
    )
    missing = run_cli("drift", "set-reference", "m", tmp_path / "no.csv", "--store", store)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert not store.exists()
    result = run_cli("drift", "m", "--store", store)
    assert result.returncode == 2 and "no run store at" in result.stderr


def test_drift_help_names_its_commands() -> None:
    result = run_cli("drift", "--help")
    assert result.returncode == 0
    assert "set-reference" in result.stdout and "check" in result.stdout


def test_a_watch_outlives_a_window_too_thin_to_check(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    with Tracker(store) as tracker, tracker.run("p") as run:
        run.log_model_version("churn", reference={"x": [1.0, 2.0] * 100})
        run.log_features("churn", {"x": [1.0] * 3})
    result = run_cli(
        "drift", "churn", "--watch", "--interval", "0.05", "--count", "2", "--store", store
    )
    assert result.returncode == 2
    assert result.stderr.count("holds 3 rows; a drift check needs at least 30") == 2
