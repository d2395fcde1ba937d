"""Drift in the store: reference summaries, checks and their results.

Writers: ``save_reference`` and ``save_check`` (one check and all its result
rows in the caller's transaction: all or nothing). Readers: the latest check
of a model, a feature's verdicts over time, when each drift began, and
whether drift has persisted long enough to suggest a retrain. Every read is
bounded by an index range on ``(model_id, id)``, whatever the history holds.
References and the batches a check reads are in ``drift_references``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from opstui.store import fields
from opstui.store.db import Store, Transaction
from opstui.store.drift_references import (
    BatchRow,
    ReferenceRow,
    _model_id,
    current_batch_times,
    current_batches,
    models_of_pipeline,
    reference,
    reference_batches,
    referenced_versions,
    save_reference,
)
from opstui.store.models import ensure_model

# References and batches live in ``drift_references``; their names stay
# reachable as ``store.drift.<name>``, where the drift job has always found them.
__all__ = [
    "BatchRow",
    "CheckRow",
    "ReferenceRow",
    "ResultRow",
    "RetrainSuggestion",
    "Verdict",
    "check_by_key",
    "check_results",
    "checks",
    "current_batch_times",
    "current_batches",
    "drift_began",
    "feature_history",
    "latest_check",
    "models_of_pipeline",
    "reference",
    "reference_batches",
    "referenced_versions",
    "retrain_suggestion",
    "save_check",
    "save_reference",
]


class CheckRow(NamedTuple):
    """One drift check: a current window against a reference, and its verdict."""

    id: int
    model: str
    version: str
    reference_digest: str | None
    computed_at: float
    window_start: float | None
    window_end: float | None
    window_rows: int
    window_key: str
    features: int
    drifted_features: int
    drift_share: float
    drifted: bool
    classifier_auc: float | None
    classifier_alert: bool | None
    settings: dict[str, Any]
    details: dict[str, Any]


class ResultRow(NamedTuple):
    check_id: int
    #: None for a dataset-level result (drift share, domain classifier).
    feature: str | None
    method: str
    value: float | None
    threshold: float | None
    drifted: bool | None
    #: This row's method gives the feature's verdict.
    decides: bool
    details: dict[str, Any]


# --- writes ------------------------------------------------------------------


def save_check(tx: Transaction, check: CheckRow, results: Iterable[ResultRow]) -> int:
    """Store a check with all its results (their ``id`` and ``check_id`` are
    given here); the caller's transaction makes it atomic."""
    fields.timestamp(check.computed_at, "drift check time")
    fields.optional_timestamp(check.window_start, "drift window start")
    fields.optional_timestamp(check.window_end, "drift window end")
    model_id = ensure_model(tx, check.model, now=check.computed_at)
    cur = tx.execute(
        """INSERT INTO drift_checks(model_id, version, reference_digest, computed_at,
               window_start, window_end, window_rows, window_key, features, drifted_features,
               drift_share, drifted, classifier_auc, classifier_alert, settings, details)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
        (
            model_id,
            check.version,
            check.reference_digest,
            check.computed_at,
            check.window_start,
            check.window_end,
            check.window_rows,
            check.window_key,
            check.features,
            check.drifted_features,
            check.drift_share,
            check.drifted,
            check.classifier_auc,
            check.classifier_alert,
            json.dumps(check.settings, sort_keys=True),
            json.dumps(check.details, sort_keys=True, default=str),
        ),
    )
    check_id = int(cur.fetchone()[0])
    tx.conn.executemany(
        """INSERT INTO drift_results(model_id, version, computed_at, window_start, window_end,
               feature, method, value, threshold, drifted, details, check_id, decides)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            (
                model_id,
                check.version,
                check.computed_at,
                check.window_start,
                check.window_end,
                r.feature,
                r.method,
                None if r.value is None else float(r.value),
                None if r.threshold is None else float(r.threshold),
                None if r.drifted is None else bool(r.drifted),
                json.dumps(r.details, default=str) if r.details else None,
                check_id,
                r.decides,
            )
            for r in results
        ],
    )
    return check_id


# --- reads -------------------------------------------------------------------


_CHECK_COLUMNS = """c.id, m.name, c.version, c.reference_digest, c.computed_at, c.window_start,
    c.window_end, c.window_rows, c.window_key, c.features, c.drifted_features, c.drift_share,
    c.drifted, c.classifier_auc, c.classifier_alert, c.settings, c.details"""


def _check(r: Sequence[Any]) -> CheckRow:
    fields.check_times((("computed_at", r[4]), ("window_start", r[5]), ("window_end", r[6])))
    return CheckRow(
        id=r[0],
        model=r[1],
        version=r[2],
        reference_digest=r[3],
        computed_at=r[4],
        window_start=r[5],
        window_end=r[6],
        window_rows=r[7],
        window_key=r[8],
        features=r[9],
        drifted_features=r[10],
        drift_share=r[11],
        drifted=bool(r[12]),
        classifier_auc=r[13],
        classifier_alert=None if r[14] is None else bool(r[14]),
        settings=fields.loads_object(r[15], "settings"),
        details=fields.loads_object(r[16], "details"),
    )


def _checks(rows: Sequence[Sequence[Any]]) -> list[CheckRow]:
    """The checks that can be read; the others are named."""
    out = []
    for r in rows:
        try:
            out.append(_check(r))
        except fields.Unreadable as exc:
            fields.skipped(f"drift check {r[0]} of model {r[1]!r}", str(exc))
    return out


def checks(store: Store, model: str, *, limit: int = 50) -> list[CheckRow]:
    """The model's latest checks, newest first."""
    rows = store.query(
        f"""SELECT {_CHECK_COLUMNS} FROM drift_checks c JOIN models m ON m.id = c.model_id
            WHERE c.model_id = ? ORDER BY c.id DESC LIMIT ?""",
        (_model_id(store, model), limit),
    )
    return _checks(rows)


def latest_check(store: Store, model: str) -> CheckRow | None:
    found = checks(store, model, limit=1)
    return found[0] if found else None


def check_by_key(store: Store, model: str, window_key: str) -> CheckRow | None:
    row = store.query(
        f"""SELECT {_CHECK_COLUMNS} FROM drift_checks c JOIN models m ON m.id = c.model_id
            WHERE c.window_key = ? AND m.name = ? ORDER BY c.id DESC LIMIT 1""",
        (window_key, model),
    )
    found = _checks(row)
    return found[0] if found else None


def check_results(store: Store, check_id: int) -> list[ResultRow]:
    rows = store.query(
        """SELECT check_id, feature, method, value, threshold, drifted, decides, details
           FROM drift_results WHERE check_id = ? ORDER BY id""",
        (check_id,),
    )
    out = []
    for r in rows:
        try:
            details = fields.loads_object(r[7], "details")
        except fields.Unreadable as exc:
            fields.skipped(f"the {r[2]} result of {r[1]!r} in drift check {check_id}", str(exc))
            continue
        out.append(
            ResultRow(
                r[0], r[1], r[2], r[3], r[4], None if r[5] is None else bool(r[5]), bool(r[6]),
                details,
            )
        )  # fmt: skip
    return out


class Verdict(NamedTuple):
    """A feature's verdict in one check (``feature_history``)."""

    check_id: int
    window_end: float | None
    method: str
    value: float | None
    threshold: float | None
    drifted: bool


def feature_history(store: Store, model: str, feature: str, *, limit: int = 50) -> list[Verdict]:
    """A feature's verdicts, newest first."""
    rows = store.query(
        """SELECT check_id, window_end, method, value, threshold, drifted FROM drift_results
           WHERE model_id = ? AND feature = ? AND decides = 1
           ORDER BY check_id DESC LIMIT ?""",
        (_model_id(store, model), feature, limit),
    )
    return [
        Verdict(r[0], r[1], r[2], r[3], r[4], bool(r[5]))
        for r in rows
        if fields.time_problem("window_end", r[1]) is None
    ]


def _same_reference(recent: list[CheckRow]) -> list[CheckRow]:
    """The newest checks against the same reference version as the newest one:
    a run of drifting windows breaks where the reference changed."""
    out = []
    for c in recent:
        if c.version != recent[0].version:
            break
        out.append(c)
    return out


def drift_began(store: Store, model: str, *, limit: int = 500) -> dict[str | None, float]:
    """For each feature drifting in the latest check (None: the dataset), the
    window end of the first check of its unbroken run of drifting checks
    (at most ``limit`` checks back, against the same reference version)."""
    recent = _same_reference(checks(store, model, limit=limit))
    if not recent:
        return {}
    began: dict[str | None, float] = {}
    if recent[0].drifted:
        began[None] = _run_start([(c.window_end, c.drifted) for c in recent])
    rows = store.query(
        """SELECT check_id, feature, drifted FROM drift_results
           WHERE check_id BETWEEN ? AND ? AND decides = 1
             AND model_id = (SELECT model_id FROM drift_checks WHERE id = ?)""",
        (recent[-1].id, recent[0].id, recent[0].id),
    )
    verdicts: dict[int, dict[str, bool]] = {}
    for check_id, feature, drifted in rows:
        verdicts.setdefault(check_id, {})[feature] = bool(drifted)
    for feature, drifted in verdicts.get(recent[0].id, {}).items():
        if drifted:
            history = [(c.window_end, verdicts.get(c.id, {}).get(feature, False)) for c in recent]
            began[feature] = _run_start(history)
    return began


def _run_start(newest_first: Sequence[tuple[float | None, bool]]) -> float:
    start = newest_first[0][0] or 0.0
    for end, drifted in newest_first:
        if not drifted:
            break
        start = end or start
    return start


class RetrainSuggestion(NamedTuple):
    windows: int  # drifting windows in a row, latest included
    since: float  # window end of the first of them


def retrain_suggestion(store: Store, model: str, *, after: int) -> RetrainSuggestion | None:
    """Suggest a retrain when the dataset drifted in each of the last ``after``
    checks (against the same reference version)."""
    recent = _same_reference(checks(store, model, limit=max(after, 1) * 10))
    run = 0
    while run < len(recent) and recent[run].drifted:
        run += 1
    if run == 0 or run < after:
        return None
    first = recent[run - 1]
    return RetrainSuggestion(run, first.window_end or first.computed_at)
