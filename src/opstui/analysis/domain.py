"""The domain classifier: can a model tell current rows from reference rows?

Univariate tests miss drift in how features move together (the same amounts,
but at new hours). A gradient-boosted classifier trained to separate a
reference sample from the current window sees it: its out-of-fold ROC AUC is
0.5 when the two are alike and approaches 1 as they separate.

The AUC is the mean of the folds' held-out AUCs, and it alerts only above
both the configured threshold and ``chance``: what a classifier that learned
nothing reaches with probability ``CHANCE_P`` on folds of this size. On small
windows chance alone goes far past 0.55 (two samples of the same data, 100
rows a side: AUC up to 0.61, 10% of checks over 0.55; 50 rows: half of
them), so a fixed threshold there shows a healthy window as drifting. The
same guard as Evidently's text domain classifier, which compares the AUC
with a random classifier's 95th percentile; here computed, not simulated.

The features that separate them most are ranked by permutation importance:
how much the held-out AUC drops when a feature's values are shuffled. Split
gain alone is biased towards features with many distinct values (the
scikit-learn documentation's warning on impurity-based importances), so gain
only picks the ``CANDIDATES`` features worth permuting, which bounds the
cost for wide models.

Bounded cost: at most ``rows`` of each side (and at most ``MAX_CELLS`` cells),
three stratified folds, ``ROUNDS`` shallow boosting rounds, ``CANDIDATES`` x folds
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
#: 50 rounds at a rate of 0.2 separate as well as 100 at 0.1 (ROC AUC 0.846
#: against 0.850 on the benchmark's shifted data, 0.499 against 0.496 on
#: unshifted) in half the time: the command's budget is 3 s with imports.
ROUNDS = 50
LEARNING_RATE = 0.2
CANDIDATES = 8
#: Held-out rows each permutation is scored on: predictions are most of the
#: classifier's time (``ROUNDS`` trees walked per row), and the ranking needs few.
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
#: Fewer rows a side are not classified: the trees (20 rows a leaf at least)
#: would have two or three leaves, and chance alone reaches an AUC of 0.73.
MIN_ROWS = 50
#: One-sided: a classifier that learned nothing exceeds ``chance`` on 1% of
#: checks (fewer: the bound below is conservative).
CHANCE_P = 0.01
_CHANCE_Z = 2.326  # the standard normal's 99th percentile


class ClassifierResult(NamedTuple):
    auc: float
    threshold: float
    #: Rows of each side used.
    rows: int
    #: ``(feature, held-out AUC lost when it is shuffled)``, most separating first.
    top: tuple[tuple[str, float], ...]
    #: The AUC chance alone stays under (see the module's docstring); 0.5 on
    #: checks stored before it was computed, which alerted on the threshold.
    chance: float = 0.5

    @property
    def limit(self) -> float:
        return max(self.threshold, self.chance)

    @property
    def alert(self) -> bool:
        return self.auc > self.limit


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
    """The folds' mean held-out ROC AUC of reference (0) against current (1).

    ``categories`` lists each categorical feature's reference categories, most
    frequent first. None when either side has fewer than ``MIN_ROWS`` rows.
    """
    if _rows(reference, current, rows) < MIN_ROWS:
        return None  # too small to learn from: not worth scikit-learn's 1.3 s import
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
    from sklearn.model_selection import StratifiedKFold

    # Categorical columns first: HistGradientBoosting encodes them with a
    # ColumnTransformer that moves them to the front, and its trees' feature
    # indexes (read by ``_split_gains``) count in that order.
    names = [*reference.categorical, *reference.numeric]
    n_ref = _length(reference)
    n_cur = _length(current)
    m = _rows(reference, current, rows)
    if m < MIN_ROWS:
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
            max_iter=ROUNDS,
            learning_rate=LEARNING_RATE,
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
    # Each fold's AUC is a held-out test of a model that never saw its rows,
    # so under no drift it follows the Mann-Whitney null; the mean's spread
    # is at most the mean of the folds' (they are correlated: their training
    # rows overlap), which makes ``chance`` conservative.
    auc = float(np.mean([roc_auc(y[test], proba[test]) for _, test in fitted]))
    spread = np.mean([_null_sd(y[test]) for _, test in fitted])
    chance = 0.5 + _CHANCE_Z * float(spread)
    gains = np.sum([_split_gains(model, len(names)) for model, _ in fitted], axis=0)
    candidates = [i for i in np.argsort(-gains)[:CANDIDATES].tolist() if gains[i] > 0]
    drops = np.zeros(len(names))
    for model, test in fitted:
        scored = np.sort(rng.choice(test, min(PERMUTED_ROWS, len(test)), replace=False))
        if not candidates:
            break
        held, truth = x[scored], y[scored]
        base = roc_auc(truth, proba[scored])
        # One prediction for every candidate's shuffled copy: each call costs
        # about 6 ms beyond its rows (input checks, the categorical encoder).
        shuffled = np.tile(held, (len(candidates), 1))
        for k, i in enumerate(candidates):
            rows_k = slice(k * len(held), (k + 1) * len(held))
            shuffled[rows_k, i] = rng.permutation(held[:, i])
        scores = model.predict_proba(shuffled)[:, 1].reshape(len(candidates), len(held))
        for k, i in enumerate(candidates):
            drops[i] += (base - roc_auc(truth, scores[k])) / FOLDS
    ranked = sorted(((names[i], float(drops[i])) for i in candidates), key=lambda nd: -nd[1])
    return ClassifierResult(
        auc=auc,
        threshold=threshold,
        rows=m,
        top=tuple((n, round(d, 4)) for n, d in ranked[:top] if d > 0),
        chance=round(chance, 4),
    )


def _null_sd(truth: npt.NDArray[Any]) -> float:
    """The standard deviation of the AUC of scores unrelated to ``truth``."""
    n1 = int(np.count_nonzero(truth == 1))
    n0 = len(truth) - n1
    return float(np.sqrt((n0 + n1 + 1) / (12 * n0 * n1)))


def roc_auc(truth: npt.NDArray[Any], score: npt.NDArray[np.float64]) -> float:
    """ROC AUC as the Mann-Whitney statistic, ties counted half: the value of
    scikit-learn's ``roc_auc_score`` for two classes, without its argument
    validation (4 ms a call; the permutation ranking makes 30 calls)."""
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]  # average 1-based ranks
    positive = truth == 1
    n1 = int(np.count_nonzero(positive))
    n0 = len(truth) - n1
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


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
