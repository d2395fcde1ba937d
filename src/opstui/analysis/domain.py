"""The domain classifier: can a model tell current rows from reference rows?

Univariate tests miss drift in how features move together (the same amounts,
but at new hours). A gradient-boosted classifier trained to separate a
reference sample from the current window sees it: its out-of-fold ROC AUC is
0.5 when the two are alike and approaches 1 as they separate.

The features that separate them most are ranked by permutation importance:
how much the held-out AUC drops when a feature's values are shuffled. Split
gain alone is biased towards features with many distinct values (the
scikit-learn documentation's warning on impurity-based importances), so gain
only picks the ``CANDIDATES`` features worth permuting, which bounds the
cost for wide models.

Bounded cost: at most ``rows`` of each side (and at most ``MAX_CELLS`` cells),
three stratified folds, 100 shallow boosting rounds, ``CANDIDATES`` x folds
extra predictions on ``PERMUTED_ROWS`` rows, one OpenMP thread (threadpoolctl
comes with scikit-learn). scikit-learn is imported here only, inside the
function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

FOLDS = 3
CANDIDATES = 8
#: Held-out rows each permutation is scored on: predictions are most of the
#: classifier's time (100 trees walked per row), and the ranking needs few.
PERMUTED_ROWS = 2000
#: Cells (rows x features, both sides) the classifier trains on, at most: its
#: time grows with them (20 features x 20,000 rows: about 1.5 s; a 1,000
#: feature model gets 500 rows a side, about 10 s).
MAX_CELLS = 1_000_000
MAX_SPLIT_FEATURES = 50
#: HistGradientBoosting takes category codes below its ``max_bins`` (255);
#: rarer and unseen categories share the last code.
MAX_CODES = 250
SEED = 7


class ClassifierResult(NamedTuple):
    auc: float
    threshold: float
    #: Rows of each side used.
    rows: int
    #: ``(feature, held-out AUC lost when it is shuffled)``, most separating first.
    top: tuple[tuple[str, float], ...]

    @property
    def alert(self) -> bool:
        return self.auc > self.threshold


class Side(NamedTuple):
    """One side's features: float64 numbers, or category labels as text."""

    numeric: Mapping[str, npt.NDArray[np.float64]]
    categorical: Mapping[str, Sequence[str | None]]


def domain_classifier(
    reference: Side,
    current: Side,
    *,
    categories: Mapping[str, Sequence[str]],
    rows: int,
    threshold: float,
    top: int = 5,
    seed: int = SEED,
) -> ClassifierResult | None:
    """Out-of-fold ROC AUC of reference (0) against current (1).

    ``categories`` lists each categorical feature's reference categories, most
    frequent first. None when either side has fewer rows than folds.
    """
    if _rows(reference, current, rows) < 2 * FOLDS:
        return None  # too small to train on: not worth scikit-learn's 1.5 s import
    import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime the limit applies to)
    from threadpoolctl import threadpool_limits

    # One OpenMP thread: HistGradientBoosting's threads spin while they wait,
    # and on a host whose cores are busy (the console, the poller, a test run)
    # two of them took 4-8 s where one takes 2 s. One thread also leaves the
    # other core to the console that runs this in a worker. threadpoolctl
    # limits the runtimes already loaded, hence the import above.
    with threadpool_limits(limits=1, user_api="openmp"):
        return _classify(
            reference, current, categories=categories, rows=rows, threshold=threshold, top=top,
            seed=seed,
        )  # fmt: skip


def _classify(
    reference: Side,
    current: Side,
    *,
    categories: Mapping[str, Sequence[str]],
    rows: int,
    threshold: float,
    top: int,
    seed: int,
) -> ClassifierResult | None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    # Categorical columns first: HistGradientBoosting encodes them with a
    # ColumnTransformer that moves them to the front, and its trees' feature
    # indexes (read by ``_split_gains``) count in that order.
    names = [*reference.categorical, *reference.numeric]
    n_ref = _length(reference)
    n_cur = _length(current)
    m = _rows(reference, current, rows)
    if m < 2 * FOLDS:
        return None
    rng = np.random.default_rng(seed)
    pick_ref = np.sort(rng.choice(n_ref, m, replace=False))
    pick_cur = np.sort(rng.choice(n_cur, m, replace=False))
    columns = []
    for name in reference.categorical:
        codes = {c: i for i, c in enumerate(categories[name][:MAX_CODES])}
        both = [reference.categorical[name][i] for i in pick_ref.tolist()]
        both += [current.categorical[name][i] for i in pick_cur.tolist()]
        columns.append(
            np.array(
                [np.nan if v is None else codes.get(v, MAX_CODES) for v in both], dtype=np.float64
            )
        )
    for name in reference.numeric:
        columns.append(
            np.concatenate([reference.numeric[name][pick_ref], current.numeric[name][pick_cur]])
        )
    x = np.column_stack(columns)
    y = np.repeat([0, 1], m)
    is_categorical = np.arange(len(names)) < len(reference.categorical)
    proba = np.empty(len(y))
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    fitted = []
    for train, test in folds.split(x, y):
        model = HistGradientBoostingClassifier(
            max_iter=100,
            learning_rate=0.1,
            max_leaf_nodes=15,
            # Each split looks at MAX_SPLIT_FEATURES features at most: the
            # split search costs features x bins per node, which made a
            # 1,000-feature model take 20 s.
            max_features=min(1.0, MAX_SPLIT_FEATURES / len(names)),
            early_stopping=False,
            categorical_features=is_categorical,
            random_state=seed,
        )
        model.fit(x[train], y[train])
        proba[test] = model.predict_proba(x[test])[:, 1]
        fitted.append((model, test))
    auc = float(roc_auc_score(y, proba))
    gains = np.sum([_split_gains(model, len(names)) for model, _ in fitted], axis=0)
    candidates = [i for i in np.argsort(-gains)[:CANDIDATES].tolist() if gains[i] > 0]
    drops = np.zeros(len(names))
    for model, test in fitted:
        scored = np.sort(rng.choice(test, min(PERMUTED_ROWS, len(test)), replace=False))
        held, truth = x[scored], y[scored]
        base = roc_auc_score(truth, proba[scored])
        for i in candidates:
            shuffled = held.copy()
            shuffled[:, i] = rng.permutation(shuffled[:, i])
            drops[i] += (base - roc_auc_score(truth, model.predict_proba(shuffled)[:, 1])) / FOLDS
    ranked = sorted(((names[i], float(drops[i])) for i in candidates), key=lambda nd: -nd[1])
    return ClassifierResult(
        auc=auc,
        threshold=threshold,
        rows=m,
        top=tuple((n, round(d, 4)) for n, d in ranked[:top] if d > 0),
    )


def _rows(reference: Side, current: Side, rows: int) -> int:
    """Rows of each side the classifier trains on (0 without features)."""
    features = len(reference.categorical) + len(reference.numeric)
    if not features:
        return 0
    return min(rows, _length(reference), _length(current), MAX_CELLS // (2 * features))


def _length(side: Side) -> int:
    for col in (*side.numeric.values(), *side.categorical.values()):
        return len(col)
    return 0


def _split_gains(model: Any, features: int) -> npt.NDArray[np.float64]:
    """Total split gain per feature over the model's trees.

    HistGradientBoostingClassifier has no ``feature_importances_``; its trees
    (``_predictors``, each a ``TreePredictor`` whose ``nodes`` record the
    feature and gain of every split) have been stable since scikit-learn
    0.21. Without the attribute no feature is ranked; the AUC is unaffected.
    """
    gains = np.zeros(features)
    for trees in getattr(model, "_predictors", []):
        for tree in trees:
            nodes = tree.nodes
            split = nodes["is_leaf"] == 0
            np.add.at(gains, nodes["feature_idx"][split], nodes["gain"][split])
    return gains
