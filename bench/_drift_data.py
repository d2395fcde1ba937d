"""Drift data with known shifts, and Evidently's verdicts on it.

Shared by ``bench/drift.py`` and ``tests/test_drift_evidently.py``, so the
benchmark and the agreement test run on the same data. 20 features: 12
numeric (continuous, heavy-tailed, integer, few-valued, with missing values)
and 8 categorical; ``SHIFTED`` of them move in the current data, far enough
from the thresholds that the verdict is not a coin toss.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

Rng = np.random.Generator
Columns = dict[str, Any]


def _choice(g: Rng, n: int, labels: list[str], weights: list[float]) -> list[str]:
    p = np.array(weights, dtype=np.float64)
    return [labels[i] for i in g.choice(len(labels), n, p=p / p.sum()).tolist()]


def _share(weights: list[int]) -> Any:
    return np.array(weights, dtype=np.float64) / sum(weights)


def _holes(g: Rng, values: Any, share: float) -> Any:
    """Make ``share`` of a column missing (NaN for numbers, None for labels)."""
    hit = g.random(len(values)) < share
    if isinstance(values, np.ndarray):
        out = values.astype(np.float64)
        out[hit] = np.nan
        return out
    return [None if h else v for v, h in zip(values, hit.tolist(), strict=True)]


HOURS = [2, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 7, 8, 7, 6, 6, 7, 8, 9, 9, 8, 6, 4, 3]
NIGHT = [6, 6, 5, 5, 4, 3, 3, 4, 5, 6, 6, 7, 8, 7, 6, 6, 7, 8, 9, 9, 8, 6, 6, 6]
REGIONS = [f"region-{i:02d}" for i in range(50)]

# name -> (numeric?, make(g, n, shifted))
FEATURES: dict[str, tuple[bool, Callable[[Rng, int, bool], Any]]] = {
    "amount": (True, lambda g, n, s: np.round(g.lognormal(3.6, 0.9, n) * (1.6 if s else 1), 2)),
    "score": (True, lambda g, n, s: g.normal(0.4 if s else 0.0, 1.0, n)),
    "latency_ms": (True, lambda g, n, s: g.normal(50.0, 10.0, n)),
    "basket": (True, lambda g, n, s: np.round(g.lognormal(2.0, 0.5, n), 2)),
    "hour": (True, lambda g, n, s: g.choice(24, n, p=_share(NIGHT if s else HOURS))),
    "n_tx_24h": (True, lambda g, n, s: g.poisson(1.9 if s else 1.3, n)),
    "is_new": (True, lambda g, n, s: (g.random(n) < (0.48 if s else 0.3)).astype(np.int64)),
    "tier": (True, lambda g, n, s: g.integers(1, 4, n)),
    "ratio": (True, lambda g, n, s: g.uniform(0.0, 1.0, n)),
    "account_age_days": (
        True,
        lambda g, n, s: (g.exponential(500 if s else 700, n)).astype(np.int64) + 1,
    ),
    "distance_km": (True, lambda g, n, s: _holes(g, g.lognormal(1.5, 1.2, n), 0.05)),
    "spend_30d": (
        True,
        lambda g, n, s: np.where(g.random(n) < (0.25 if s else 0.4), 0.0, g.gamma(2, 40, n)),
    ),
    "country": (
        False,
        lambda g, n, s: _choice(
            g,
            n,
            ["US", "GB", "DE", "FR", "BR", "IN", "MX"],
            [40, 14, 12, 10, 9, 9, 6] if s else [62, 10, 8, 6, 5, 5, 4],
        ),
    ),
    "device": (False, lambda g, n, s: _choice(g, n, ["mobile", "desktop", "tablet"], [58, 34, 8])),
    "merchant": (
        False,
        lambda g, n, s: _choice(
            g,
            n,
            ["grocery", "food", "fuel", "online", "travel", "crypto"],
            [20, 18, 8, 30, 7, 17] if s else [28, 18, 12, 22, 7, 0],
        ),
    ),
    "plan": (
        False,
        lambda g, n, s: _choice(g, n, ["free", "basic", "pro", "team"], [50, 30, 15, 5]),
    ),
    "opted_in": (False, lambda g, n, s: _choice(g, n, ["yes", "no"], [50, 50])),
    "region": (False, lambda g, n, s: _choice(g, n, REGIONS, [1.0] * 50)),
    "channel": (
        False,
        lambda g, n, s: _choice(
            g,
            n,
            ["web", "app", "pos", "phone", "partner"],
            [20, 45, 20, 5, 10] if s else [40, 25, 25, 5, 5],
        ),
    ),
    "segment": (
        False,
        lambda g, n, s: _holes(g, _choice(g, n, list("ABCDEF"), [30, 25, 20, 12, 8, 5]), 0.1),
    ),
}
SHIFTED = ("amount", "score", "hour", "n_tx_24h", "is_new", "account_age_days", "spend_30d",
           "country", "merchant", "channel")  # fmt: skip
NUMERIC = [name for name, (numeric, _) in FEATURES.items() if numeric]
CATEGORICAL = [name for name, (numeric, _) in FEATURES.items() if not numeric]


def make(rows: int, *, shifted: bool, seed: int) -> Columns:
    g = np.random.default_rng(seed)
    return {name: make_one(g, rows, shifted and name in SHIFTED) for name, make_one in _makers()}


def _makers() -> list[tuple[str, Callable[[Rng, int, bool], Any]]]:
    return [(name, fn) for name, (_, fn) in FEATURES.items()]


class EvidentlyColumn(NamedTuple):
    method: str
    value: float
    drifted: bool


class EvidentlyResult(NamedTuple):
    columns: dict[str, EvidentlyColumn]
    share: float
    dataset_drifted: bool


# Survey-style integer codes: Evidently's defaults make an integer column with
# at most 10 distinct values categorical (``INTEGER_CARDINALITY_LIMIT``), so
# which of these are categories depends on their values, not on a list.
SURVEY: dict[str, Callable[[Rng, int, bool], Any]] = {
    "likert_q1": lambda g, n, s: g.choice(5, n, p=_share([5, 10, 30, 35, 20] if s else
                                                          [10, 15, 30, 30, 15])) + 1,
    "likert_q2": lambda g, n, s: g.choice(5, n, p=_share([10, 20, 40, 20, 10])) + 1,
    "household": lambda g, n, s: np.minimum(g.poisson(2.9 if s else 2.2, n) + 1, 10),
    "education": lambda g, n, s: g.choice(8, n, p=_share([5, 10, 25, 20, 15, 12, 8, 5])) + 1,
    "income_band": lambda g, n, s: g.choice(9, n, p=_share(
        [4, 6, 10, 14, 18, 16, 14, 10, 8] if s else [8, 10, 14, 18, 16, 12, 10, 7, 5])) + 1,
    "region_code": lambda g, n, s: g.choice(7, n, p=_share([20, 18, 16, 14, 12, 10, 10])) + 1,
    "employed": lambda g, n, s: (g.random(n) < (0.55 if s else 0.7)).astype(np.int64),
    "satisfaction": lambda g, n, s: g.binomial(10, 0.62 if s else 0.6, n),  # 0..10: 11 values
    "age": lambda g, n, s: g.integers(18, 90, n),
    "hours_week": lambda g, n, s: np.clip(g.normal(41 if s else 38, 9, n), 0, 80).astype(np.int64),
    "rating_float": lambda g, n, s: g.choice(5, n, p=_share([10, 20, 40, 20, 10])) + 1.0,
    "children": lambda g, n, s: _holes(g, g.poisson(1.0 if s else 1.1, n), 0.03),
}  # fmt: skip


def make_survey(rows: int, *, shifted: bool, seed: int) -> Columns:
    g = np.random.default_rng(seed)
    return {name: make_one(g, rows, shifted) for name, make_one in SURVEY.items()}


def evidently_drift(
    reference: Columns,
    current: Columns,
    method: str | None = None,
    *,
    infer: bool = False,
    per_column: bool = False,
) -> EvidentlyResult:
    """Evidently's DataDriftPreset (``method`` forces one test for every column);
    ``infer``: column types as Evidently infers them, not ``NUMERIC``/``CATEGORICAL``;
    ``per_column``: a report of one ``ValueDrift`` per column instead of the
    preset, which in 0.7.23 computes drift twice (its legacy dataset metric and
    the same ValueDrift metrics): same verdicts and values, less than half the time."""
    os.environ.setdefault("DO_NOT_TRACK", "1")  # no telemetry, ever
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = (
        None
        if infer
        else DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    )
    datasets = [
        Dataset.from_pandas(pd.DataFrame(data), data_definition=definition)
        for data in (current, reference)
    ]
    if per_column:
        from evidently.metrics import ValueDrift

        names = list(reference)
        metrics: list[Any] = [ValueDrift(column=c, method=method) for c in names]
    else:
        metrics = [DataDriftPreset(method=method)]
    report = Report(metrics, include_tests=True)
    snapshot = report.run(*datasets).dict()
    values = {
        m["config"]["column"]: (m["config"]["method"], float(m["value"]))
        for m in snapshot["metrics"]
        if m["config"]["type"].endswith("ValueDrift")
    }
    failed = {
        t["metric_config"]["params"]["column"]: t["status"] == "FAIL"
        for t in snapshot["tests"]
        if t["metric_config"]["params"]["type"].endswith("ValueDrift")
    }
    columns = {c: EvidentlyColumn(m, v, failed[c]) for c, (m, v) in values.items()}
    if per_column:  # the share as DriftedColumnsCount counts it
        share = sum(c.drifted for c in columns.values()) / len(columns)
    else:
        count = next(
            m for m in snapshot["metrics"] if m["config"]["type"].endswith("DriftedColumnsCount")
        )
        share = float(count["value"]["share"])
    return EvidentlyResult(columns, share, share >= 0.5)
