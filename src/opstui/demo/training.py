"""The demo's MLOps pipeline (fraud-model), one stage per call.

    python -m opstui.demo.training data|validate|train|evaluate|deploy|monitor|rollback

A real retraining on small data, so a retrain takes seconds: ``data``
snapshots 3,000 recent labelled transactions at the fraud ring's current
level (``world/traffic.json``, written by serving), ``validate`` refuses a
broken extract, ``train`` fits a scikit-learn model, ``evaluate`` scores it
and production's model on the same held-out rows and applies the gate,
``deploy`` promotes it only if the gate passed. The new version's training
features become its drift reference, so a promoted retrain clears the drift.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from opstui.analysis.gate import evaluate_gate
from opstui.demo import fraud
from opstui.demo.layout import Layout, read_json, speed, take_flag
from opstui.errors import OpstuiError
from opstui.store import history
from opstui.store import models as store_models
from opstui.store.rows import ModelVersionRow
from opstui.track import AttachedRun, Tracker

PIPELINE = "fraud-model"
TRAIN_ROWS, TEST_ROWS = 2000, 1000


class StageError(Exception):
    """The stage failed for a reason the operator reads: one line, exit 1."""


class Stage:
    def __init__(self, run: AttachedRun) -> None:
        self.run = run
        self.layout = Layout.from_env()
        self.model = os.environ.get("OPSTUI_MODEL") or "fraud"
        self.speed = speed(self.layout)

    def pause(self, seconds: float) -> None:
        time.sleep(seconds / self.speed)

    def lineage(self) -> Iterator[int]:
        """This run, then the runs a retry reused stages from (their files are there)."""
        run_id: int | None = self.run.id
        while run_id is not None:
            yield run_id
            run_id = history.get_run(self.run.store, run_id).parent_run_id

    def load(self, name: str) -> dict[str, Any]:
        for run_id in self.lineage():
            found = read_json(self.layout.work(PIPELINE, run_id) / name)
            if isinstance(found, dict):
                return found
        raise StageError(f"{name} is missing from this run: did the stage before it run?")

    def save(self, name: str, data: dict[str, Any]) -> None:
        path = self.layout.work(PIPELINE, self.run.id) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data), encoding="utf-8")

    def artifact(self, run_id: int) -> Path:
        return self.layout.root / "models" / self.model / f"run-{run_id}.pkl"

    def production(self) -> ModelVersionRow | None:
        versions = store_models.model_versions(self.run.store, self.model)
        return next((v for v in versions if v.status == "production"), None)


def data(s: Stage) -> None:
    level = float(read_json(s.layout.traffic, {}).get("level", 0.0))
    rng = np.random.default_rng(s.run.id)  # seeded by the run: reproducible
    rows = fraud.transactions(rng, TRAIN_ROWS + TEST_ROWS, level)
    labels = fraud.is_fraud(rng, rows).tolist()
    train = {k: v[:TRAIN_ROWS] for k, v in rows.items()}
    test = {k: v[TRAIN_ROWS:] for k, v in rows.items()}
    note = take_flag(s.layout.flag("bad-extract"))
    if note is not None:  # the simulator's broken upstream extract
        for i in range(0, 400, 10):
            train["amount"][i] = None
        for i in range(5, 400, 25):
            train["amount"][i] = -abs(train["amount"][i] or 1.0)
        print(f"extract: {note}")
    snapshot = {"train": train, "y_train": labels[:TRAIN_ROWS],
                "test": test, "y_test": labels[TRAIN_ROWS:], "level": level}  # fmt: skip
    digest = hashlib.sha256(json.dumps(snapshot, sort_keys=True).encode()).hexdigest()
    s.save("snapshot.json", {**snapshot, "data_hash": f"sha256:{digest}"})
    s.pause(1.0)
    fraud_share = sum(labels) / len(labels)
    print(f"snapshot: {TRAIN_ROWS} training + {TEST_ROWS} held-out transactions of the last hour")
    print(f"chargebacks joined: {fraud_share:.1%} fraud; data hash sha256:{digest[:16]}…")


def problems(cols: dict[str, list[Any]], labels: list[int]) -> list[str]:
    found = [f"column {name} is missing" for name in fraud.FEATURES if name not in cols]
    if found:
        return found
    if {len(v) for v in cols.values()} != {len(labels)}:
        return [f"columns and labels differ in length ({len(labels)} labels)"]
    amounts = cols["amount"]
    if missing := sum(a is None for a in amounts):
        found.append(f"amount is missing in {missing} rows")
    if negative := sum(a is not None and a <= 0 for a in amounts):
        found.append(f"amount is zero or negative in {negative} rows")
    if bad := sum(not 0 <= h <= 23 for h in cols["hour_of_day"]):
        found.append(f"hour_of_day is outside 0..23 in {bad} rows")
    if set(labels) != {0, 1}:
        found.append(f"labels are {sorted(set(labels))}, expected both 0 and 1")
    return found


def validate(s: Stage) -> None:
    snap = s.load("snapshot.json")
    found = problems(snap["train"], snap["y_train"]) + problems(snap["test"], snap["y_test"])
    s.pause(0.5)
    if found:
        raise StageError("invalid extract: " + "; ".join(found))
    print(f"extract valid: {len(fraud.FEATURES)} features, amounts positive, both classes")


def fit(cols: dict[str, list[Any]], labels: list[int]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    n = len(fraud.NUMERIC)
    columns = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(), StandardScaler()), list(range(n))),
            ("categories", OneHotEncoder(handle_unknown="ignore"), list(range(n, n + 4))),
        ]
    )
    model = make_pipeline(columns, LogisticRegression(max_iter=1000))
    return model.fit(fraud.design(cols), np.asarray(labels))


def train(s: Stage) -> None:
    snap = s.load("snapshot.json")
    model = fit(snap["train"], snap["y_train"])
    path = s.artifact(s.run.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".partial").write_bytes(pickle.dumps(model))
    path.with_suffix(".partial").replace(path)  # never a half-written artifact
    train_auc = score(model, snap["train"], snap["y_train"])["auc"]
    s.run.log_metrics({"train_auc": train_auc, "train_rows": TRAIN_ROWS})
    print(f"fitted scaler + one-hot + logistic regression on {TRAIN_ROWS} rows")
    print(f"train auc {train_auc:.4f}; artifact {path.relative_to(s.layout.root)}")


def score(model: Any, cols: dict[str, list[Any]], labels: list[int]) -> dict[str, float]:
    from sklearn import metrics

    proba = model.predict_proba(fraud.design(cols))[:, 1]
    predicted = (proba >= 0.5).astype(np.int64)
    return {
        "auc": float(metrics.roc_auc_score(labels, proba)),
        "f1": float(metrics.f1_score(labels, predicted, zero_division=0)),
        "precision": float(metrics.precision_score(labels, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(labels, predicted, zero_division=0)),
        "log_loss": float(metrics.log_loss(labels, proba, labels=[0, 1])),
    }


def production_model(s: Stage, version: ModelVersionRow) -> tuple[Any, str]:
    """Production's model, and how it was obtained."""
    artifact = version.params.get("artifact")
    if artifact and (s.layout.root / artifact).is_file():
        # pickle runs code on load: only ever load artifacts this demo wrote.
        return pickle.loads((s.layout.root / artifact).read_bytes()), artifact
    # A version from the bundled history has no artifact here; its training
    # features are in the store (its drift reference) and the labels follow
    # from the world's rule, so it is refitted as it was trained.
    store = s.run.store
    batches = [b for b in store_models.feature_batches(store, s.model, kind="reference")
               if b[2] == version.version]  # fmt: skip
    if not batches:
        raise StageError(f"production v{version.version} has no artifact and no training features")
    cols = store_models.load_feature_batch(store, batches[0][0])
    labels = fraud.is_fraud(np.random.default_rng(int(version.id)), cols).tolist()
    return fit(cols, labels), "refitted from its recorded training features"


def evaluate(s: Stage) -> None:
    snap = s.load("snapshot.json")
    metric = os.environ.get("OPSTUI_GATE_METRIC") or "auc"
    min_improvement = float(os.environ.get("OPSTUI_MIN_IMPROVEMENT") or 0)
    trained_by = next(r for r in s.lineage() if s.artifact(r).is_file())
    candidate = score(pickle.loads(s.artifact(trained_by).read_bytes()), snap["test"],
                      snap["y_test"])  # fmt: skip
    production = s.production()
    against = None
    if production is not None:
        model, source = production_model(s, production)
        against = score(model, snap["test"], snap["y_test"])
        print(f"production v{production.version}: {source}")
    lower = os.environ.get("OPSTUI_LOWER_IS_BETTER") == "true"
    result = evaluate_gate(metric, candidate, against, min_improvement=min_improvement,
                           lower_is_better=lower)  # fmt: skip
    version = s.run.log_model_version(
        s.model,
        metrics=candidate,
        params={
            "artifact": str(s.artifact(trained_by).relative_to(s.layout.root)),
            "model": "logistic regression",
            "train_rows": TRAIN_ROWS,
            "fraud_ring_level": round(snap["level"], 3),
        },
        data_hash=snap["data_hash"],
        code_version="opstui-demo",
        gate={**result.as_dict(), "against_version": production.version if production else None},
        reference=snap["train"],  # the training features: drift is measured against them
    )
    s.run.log_metrics(candidate)
    print(f"scored on the same {TEST_ROWS} held-out rows:")
    for name, value in candidate.items():
        old = f"  production {against[name]:.4f}" if against else ""
        print(f"  {name:<10} candidate {value:.4f}{old}")
    print(f"recorded {s.model} v{version} (candidate)")
    print(f"gate {'passed' if result.passed else 'not passed'}: {result.reason}")


def deploy(s: Stage) -> None:
    environment = os.environ.get("OPSTUI_ENVIRONMENT") or "production"
    ids = list(s.lineage())
    versions = store_models.model_versions(s.run.store, s.model)
    mine = next((v for v in versions if v.run_id in ids), None)
    if mine is None:
        raise StageError("this run recorded no model version: did the evaluate stage run?")
    gate = mine.gate or {}
    if not gate.get("passed"):
        print(f"gate not passed: {gate.get('reason')}; v{mine.version} stays a candidate")
        return
    current = s.production()
    if (current.version if current else None) != gate.get("against_version"):
        raise StageError(f"production changed since the gate compared v{mine.version}: retrain")
    swap_served(s, mine.params["artifact"])
    store = s.run.store
    with store.write() as tx:  # status and deployment together: the next gate must agree
        store_models.set_production_version(tx, s.model, mine.version)
        store_models.add_deployment(tx, environment=environment, target=s.model,
                                    target_kind="model", version=mine.version, run_id=s.run.id,
                                    deployed_at=store.clock())  # fmt: skip
    s.pause(0.5)
    print(f"deployed {s.model} v{mine.version} to {environment}")


def swap_served(s: Stage, artifact: str) -> None:
    served = s.layout.serving(f"{s.model}.pkl")
    served.parent.mkdir(parents=True, exist_ok=True)
    partial = served.with_suffix(".partial")
    partial.write_bytes((s.layout.root / artifact).read_bytes())
    partial.replace(served)


def monitor(s: Stage) -> None:
    current = s.production()
    shown = f"v{current.version}" if current else "no version"
    print(f"production serves {s.model} {shown}; the demo checks its drift as batches arrive")
    s.pause(1.0)


def rollback(s: Stage) -> None:
    """Serve an earlier version again; opstui records the deployment afterwards."""
    wanted = os.environ.get("OPSTUI_VERSION")
    target = next(
        (v for v in store_models.model_versions(s.run.store, s.model) if v.version == wanted), None
    )
    if target is None:
        raise StageError(f"{s.model} v{wanted} is not a recorded version")
    if "artifact" in target.params:
        swap_served(s, target.params["artifact"])
    else:
        print(f"v{wanted} is from the bundled history: refitting it from its training features")
        model, _ = production_model(s, target)
        served = s.layout.serving(f"{s.model}.pkl")
        served.parent.mkdir(parents=True, exist_ok=True)
        served.write_bytes(pickle.dumps(model))
    print(f"production now serves {s.model} v{wanted}")


STAGES: dict[str, Callable[[Stage], None]] = {
    f.__name__: f for f in (data, validate, train, evaluate, deploy, monitor, rollback)
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STAGES:
        print(f"usage: python -m opstui.demo.training {'|'.join(STAGES)}", file=sys.stderr)
        return 2
    try:
        with Tracker() as tracker, tracker.attach() as run:
            STAGES[argv[0]](Stage(run))
    except (StageError, OpstuiError) as exc:
        print(f"{argv[0]}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
