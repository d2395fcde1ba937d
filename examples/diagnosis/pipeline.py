"""Retraining pipeline of the ``diagnosis`` model; one stage per call.

    python pipeline.py data|validate|train|evaluate|deploy

opstui runs every stage as its own process (see opstui.toml), so stages hand
state on through files in ``work/run-<run id>/`` and model artifacts in
``artifacts/``. What an operator reads (metrics, the model version and its
gate, the deployment) goes to the run store through ``Tracker().attach()``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import numpy as np
    import numpy.typing as npt

    from opstui.analysis.gate import evaluate_gate
    from opstui.errors import OpstuiError
    from opstui.store import history
    from opstui.store import models as store_models
    from opstui.store.rows import ModelVersionRow
    from opstui.track import AttachedRun, Tracker
except ModuleNotFoundError as exc:  # the usual cause: `python` on PATH is not opstui's venv
    sys.exit(f"pipeline.py: {exc}: put the python of opstui's virtualenv first on PATH")

HERE = Path(__file__).resolve().parent
WORK, ARTIFACTS = HERE / "work", HERE / "artifacts"
MODEL = os.environ.get("OPSTUI_MODEL") or "diagnosis"
N_FEATURES = 30
#: The held-out split is fixed, so every version is scored on the same rows.
TEST_SEED, TEST_SIZE = 20240601, 0.25
TRAIN_FRACTION = 0.8
REFERENCE_COLUMNS, REFERENCE_ROWS = 8, 1000
DEFAULT_PARAMS: dict[str, Any] = {"C": 1.0, "max_iter": 1000}

Array = npt.NDArray[Any]


class StageError(Exception):
    """A problem for the operator to fix: one line on stderr, exit code 1."""


def lineage(run: AttachedRun) -> list[int]:
    """This run, then the runs ``opstui retry`` reused stages from."""
    ids = [run.id]
    while (parent := history.get_run(run.store, ids[-1]).parent_run_id) is not None:
        ids.append(parent)
    return ids


def find(run: AttachedRun, name: str) -> Path:
    # A retry reuses the stages that succeeded in the failed run without
    # rerunning them: their files are in that run's work dir.
    for run_id in lineage(run):
        if (path := WORK / f"run-{run_id}" / name).exists():
            return path
    raise StageError(f"{name} is missing from {WORK / f'run-{run.id}'}: did the data stage run?")


def save(run: AttachedRun, name: str) -> Path:
    (WORK / f"run-{run.id}").mkdir(parents=True, exist_ok=True)
    return WORK / f"run-{run.id}" / name


def load_json(run: AttachedRun, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(find(run, name).read_text(encoding="utf-8"))
    return data


def load_snapshot(run: AttachedRun) -> dict[str, Array]:
    with np.load(find(run, "snapshot.npz")) as npz:
        return {key: npz[key] for key in npz.files}


def production_version(run: AttachedRun) -> ModelVersionRow | None:
    versions = store_models.model_versions(run.store, MODEL)
    return next((v for v in versions if v.status == "production"), None)


def data(run: AttachedRun) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    bunch = load_breast_cancer()
    x = np.ascontiguousarray(bunch.data, dtype=np.float64)
    # sklearn's target is 1 = benign; flip it so recall is the share of cancers caught.
    y = (bunch.target == 0).astype(np.int64)
    rows = np.arange(len(y))
    pool, test = train_test_split(rows, test_size=TEST_SIZE, random_state=TEST_SEED, stratify=y)
    # Fresh data each run: another sample of the pool, seeded by the run id so
    # that a run can be reproduced.
    size = round(len(pool) * TRAIN_FRACTION)
    train = np.sort(np.random.default_rng(run.id).choice(pool, size=size, replace=False))
    x_train, y_train = x[train], y[train]
    if os.environ.get("DIAGNOSIS_INJECT_BAD_DATA") == "1":
        x_train[:5, 0] = np.nan  # a broken upstream extract, for the demo and the tests
    data_hash = "sha256:" + hashlib.sha256(x_train.tobytes() + y_train.tobytes()).hexdigest()
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x[test], "y_test": y[test]}
    np.savez(save(run, "snapshot.npz"), **arrays)
    names = [str(n) for n in bunch.feature_names]
    save(run, "data.json").write_text(json.dumps({"data_hash": data_hash, "feature_names": names}))
    print(f"snapshot: {len(train)} training rows (sampled from {len(pool)}), {len(test)} held out")
    print(f"data hash: {data_hash}")


def problems(x: Array, y: Array, names: list[str], what: str) -> list[str]:
    if x.ndim != 2 or x.shape[1] != N_FEATURES or len(x) != len(y):
        return [f"{what} data has shape {x.shape} and {len(y)} labels, not (rows, {N_FEATURES})"]
    found = []
    for label, bad in (("NaN/inf", ~np.isfinite(x)), ("negative", x < 0)):
        if bad.any():
            cols = [names[i] for i in np.flatnonzero(bad.any(axis=0))]
            found.append(f"{what} data has {int(bad.sum())} {label} values in {', '.join(cols)}")
    if set(np.unique(y).tolist()) != {0, 1}:
        found.append(f"{what} labels are {sorted(set(y.tolist()))}, expected both 0 and 1")
    return found


def validate(run: AttachedRun) -> None:
    snapshot, names = load_snapshot(run), load_json(run, "data.json")["feature_names"]
    found = problems(snapshot["x_train"], snapshot["y_train"], names, "training")
    found += problems(snapshot["x_test"], snapshot["y_test"], names, "held-out")
    if found:
        raise StageError("invalid data: " + "; ".join(found))
    print(f"data valid: {N_FEATURES} features, no NaN, no negative values, both classes present")


def train(run: AttachedRun) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    snapshot = load_snapshot(run)
    x_train, y_train = snapshot["x_train"], snapshot["y_train"]
    try:
        params = {**DEFAULT_PARAMS, **json.loads(os.environ.get("DIAGNOSIS_PARAMS") or "{}")}
        model = make_pipeline(StandardScaler(), LogisticRegression(**params))
        model.fit(x_train, y_train)
    except (TypeError, ValueError) as exc:  # bad DIAGNOSIS_PARAMS: JSON or model arguments
        raise StageError(f"cannot train with DIAGNOSIS_PARAMS: {exc}") from None
    ARTIFACTS.mkdir(exist_ok=True)
    artifact = ARTIFACTS / f"run-{run.id}.pkl"
    # Write aside, then rename: a crash never leaves a half-written artifact.
    artifact.with_suffix(".partial").write_bytes(pickle.dumps(model))
    artifact.with_suffix(".partial").replace(artifact)
    train_auc = float(roc_auc_score(y_train, model.predict_proba(x_train)[:, 1]))
    run.log_metrics({"train_roc_auc": train_auc, "train_rows": len(y_train)})
    # Relative to this directory, so the example still works when moved.
    relative = str(artifact.relative_to(HERE))
    save(run, "train.json").write_text(json.dumps({"artifact": relative, "params": params}))
    print(f"trained on {len(y_train)} rows with {params}: train roc_auc {train_auc:.4f}")
    print(f"artifact: {relative}")


def score(artifact: str, x: Array, y: Array) -> dict[str, float]:
    from sklearn import metrics

    # pickle runs code on load: only ever load artifacts this pipeline wrote.
    proba = pickle.loads((HERE / artifact).read_bytes()).predict_proba(x)[:, 1]
    predicted = (proba >= 0.5).astype(np.int64)
    return {
        "roc_auc": float(metrics.roc_auc_score(y, proba)),
        "f1": float(metrics.f1_score(y, predicted, zero_division=0)),
        "precision": float(metrics.precision_score(y, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(y, predicted, zero_division=0)),
        "log_loss": float(metrics.log_loss(y, proba, labels=[0, 1])),
    }


def code_version() -> str:
    def git(*args: str) -> str:
        argv = ["git", "-C", str(HERE), *args]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()

    try:
        if not git("status", "--porcelain", "."):
            return "git:" + git("rev-parse", "--short", "HEAD")
    except (OSError, subprocess.SubprocessError):
        pass
    # Outside git, or with uncommitted changes, no commit identifies the code.
    return "sha256:" + hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def lower_is_better() -> bool:
    # The runner passes the gate's metric and threshold but not its direction:
    # read that from the config the run was started with.
    from opstui.config import load_config

    path = os.environ.get("OPSTUI_CONFIG")
    model = load_config(path).models.get(MODEL) if path else None
    return model.lower_is_better if model else False


def evaluate(run: AttachedRun) -> None:
    metric = os.environ.get("OPSTUI_GATE_METRIC") or "roc_auc"
    min_improvement = float(os.environ.get("OPSTUI_MIN_IMPROVEMENT") or 0)
    snapshot = load_snapshot(run)
    info, trained = load_json(run, "data.json"), load_json(run, "train.json")
    x_train, x_test, y_test = snapshot["x_train"], snapshot["x_test"], snapshot["y_test"]
    candidate = score(trained["artifact"], x_test, y_test)
    production = production_version(run)
    against = None
    if production is not None:
        artifact = production.params.get("artifact", "")
        if not (HERE / artifact).is_file():
            raise StageError(f"production v{production.version}'s artifact {artifact!r} is missing")
        # Rescored rather than read from the store: compared on the same rows.
        against = score(artifact, x_test, y_test)
    direction = lower_is_better()
    result = evaluate_gate(
        metric, candidate, against, min_improvement=min_improvement, lower_is_better=direction
    )
    version = run.log_model_version(
        MODEL,
        metrics=candidate,
        params={**trained["params"], "artifact": trained["artifact"], "train_rows": len(x_train)},
        data_hash=info["data_hash"],
        code_version=code_version(),
        status="candidate",
        gate={**result.as_dict(), "against_version": production.version if production else None},
    )
    names = info["feature_names"][:REFERENCE_COLUMNS]
    reference = {n: x_train[:REFERENCE_ROWS, i].tolist() for i, n in enumerate(names)}
    run.log_features(MODEL, reference, kind="reference", version=version)
    run.log_metrics(candidate)
    print(f"scored on the held-out split ({len(y_test)} rows, the same for every version):")
    vs = f"production v{production.version}" if production else ""
    print(f"  {'metric':<10} {'candidate':>9}  {vs}".rstrip())
    for name, value in candidate.items():
        old = f"{against[name]:>{len(vs)}.4f}" if against else ""
        print(f"  {name:<10} {value:>9.4f}  {old}".rstrip())
    print(f"recorded {MODEL} v{version} (candidate)")
    print(f"gate {'passed' if result.passed else 'not passed'}: {result.reason}")


def deploy(run: AttachedRun) -> None:
    environment = os.environ.get("OPSTUI_ENVIRONMENT") or "production"
    ids, versions = lineage(run), store_models.model_versions(run.store, MODEL)
    mine = next((v for v in versions if v.run_id in ids), None)
    if mine is None:
        raise StageError("this run recorded no model version: did the evaluate stage run?")
    gate = mine.gate or {}
    if not gate.get("passed"):
        print(f"gate not passed: {gate.get('reason')}; version {mine.version} stays a candidate")
        return
    current = production_version(run)
    if (current.version if current else None) != gate.get("against_version"):
        raise StageError(f"production changed since the gate compared v{mine.version}: retrain")
    # Serving loads artifacts/<environment>.pkl; a rename swaps it atomically.
    target = ARTIFACTS / f"{environment}.pkl"
    shutil.copyfile(HERE / mine.params["artifact"], target.with_suffix(".partial"))
    target.with_suffix(".partial").replace(target)
    # Status and deployment in one transaction: the next gate must never
    # compare against a version that is not the one serving.
    with run.store.write() as tx:
        if environment == "production":
            store_models.set_production_version(tx, MODEL, mine.version)
        store_models.add_deployment(
            tx,
            environment=environment,
            target=MODEL,
            target_kind="model",
            version=mine.version,
            run_id=run.id,
            deployed_at=run.store.clock(),
        )
    print(f"deployed {MODEL} v{mine.version} to {environment} ({target.relative_to(HERE)})")


def rollback(run: AttachedRun) -> None:
    """Serve an earlier version again (``opstui rollback ENV --model diagnosis``).

    opstui records the deployment and the production status once this stage
    succeeds; this stage only swaps the served file.
    """
    environment = os.environ.get("OPSTUI_ENVIRONMENT") or "production"
    wanted = os.environ.get("OPSTUI_VERSION")
    versions = store_models.model_versions(run.store, MODEL)
    target = next((v for v in versions if v.version == wanted), None)
    if target is None or "artifact" not in target.params:
        raise StageError(f"{MODEL} v{wanted} has no recorded artifact to roll back to")
    served = ARTIFACTS / f"{environment}.pkl"
    shutil.copyfile(HERE / target.params["artifact"], served.with_suffix(".partial"))
    served.with_suffix(".partial").replace(served)
    print(f"{environment} now serves {MODEL} v{wanted} ({served.relative_to(HERE)})")


STAGES: dict[str, Callable[[AttachedRun], None]] = {
    f.__name__: f for f in (data, validate, train, evaluate, deploy, rollback)
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STAGES:
        print(f"usage: python pipeline.py {'|'.join(STAGES)}", file=sys.stderr)
        return 2
    try:
        with Tracker() as tracker, tracker.attach() as run:
            STAGES[argv[0]](run)
    except (StageError, OpstuiError) as exc:
        print(f"{argv[0]}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
