"""Drift references in the store: a model version's reference summary and
the feature batches a check reads.

A reference is saved once per model version (``save_reference``) and read back
by the drift job; when none is stored, or it cannot be read, it is built again
from the version's reference batches. A check's current window is the newest
current batches, bounded by rows (``current_batches``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from opstui.store import fields
from opstui.store.db import Store, Transaction
from opstui.store.models import ensure_model
from opstui.store.query import where


class BatchRow(NamedTuple):
    id: int
    created_at: float
    n_rows: int


class ReferenceRow(NamedTuple):
    id: int
    model: str
    version: str
    created_at: float
    source: str
    fingerprint: str | None
    digest: str
    n_rows: int
    columns: list[str]
    format: str
    payload: bytes


# --- writes ------------------------------------------------------------------


def save_reference(
    tx: Transaction,
    model: str,
    version: str,
    *,
    source: str,
    fingerprint: str | None,
    digest: str,
    n_rows: int,
    columns: Sequence[str],
    fmt: str,
    payload: bytes,
    created_at: float,
) -> int:
    """Store the reference summary of a model version, replacing an older one."""
    fields.name(version, "model version")
    fields.int64(n_rows, "rows", minimum=0)
    created_at = fields.timestamp(created_at, "reference time")
    model_id = ensure_model(tx, model, now=created_at)
    values = (
        created_at,
        source,
        fingerprint,
        digest,
        n_rows,
        json.dumps(list(columns)),
        fmt,
        payload,
    )
    row = tx.execute(
        "SELECT id FROM drift_references WHERE model_id = ? AND version = ?", (model_id, version)
    ).fetchone()
    if row:
        tx.execute(
            """UPDATE drift_references SET created_at = ?, source = ?, fingerprint = ?,
                   digest = ?, n_rows = ?, columns = ?, format = ?, payload = ?
               WHERE id = ?""",
            (*values, row[0]),
        )
        return int(row[0])
    cur = tx.execute(
        """INSERT INTO drift_references(created_at, source, fingerprint, digest, n_rows,
               columns, format, payload, model_id, version)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
        (*values, model_id, version),
    )
    return int(cur.fetchone()[0])


# --- reads -------------------------------------------------------------------


def _model_id(store: Store, model: str) -> int | None:
    row = store.query_one("SELECT id FROM models WHERE name = ?", (model,))
    return int(row[0]) if row else None


def reference(store: Store, model: str, version: str) -> ReferenceRow | None:
    """The stored reference summary of a model version (None: none, or one that
    cannot be read, which is named: it is built again from the batches)."""
    row = store.query_one(
        """SELECT r.id, m.name, r.version, r.created_at, r.source, r.fingerprint, r.digest,
                  r.n_rows, r.columns, r.format, r.payload
           FROM drift_references r JOIN models m ON m.id = r.model_id
           WHERE m.name = ? AND r.version = ?""",
        (model, version),
    )
    if row is None:
        return None
    try:
        fields.check_times((("created_at", row[3]),))
        columns = fields.loads(row[8], "columns", [])
    except fields.Unreadable as exc:
        fields.skipped(f"the reference of {model!r} version {version}", str(exc))
        return None
    return ReferenceRow(
        id=row[0],
        model=row[1],
        version=row[2],
        created_at=row[3],
        source=row[4],
        fingerprint=row[5],
        digest=row[6],
        n_rows=row[7],
        columns=columns,
        format=row[9],
        payload=row[10],
    )


def models_of_pipeline(store: Store, pipeline: str) -> list[str]:
    """Models whose versions the pipeline's runs recorded."""
    rows = store.query(
        """SELECT m.name FROM models m JOIN pipelines p ON p.id = m.pipeline_id
           WHERE p.name = ? ORDER BY m.name""",
        (pipeline,),
    )
    return [str(r[0]) for r in rows]


def referenced_versions(store: Store, model: str) -> set[str]:
    """Versions of ``model`` with a reference: a summary or recorded batches."""
    rows = store.query(
        """SELECT r.version FROM drift_references r JOIN models m ON m.id = r.model_id
           WHERE m.name = ?
           UNION SELECT b.version FROM feature_batches b JOIN models m ON m.id = b.model_id
           WHERE m.name = ? AND b.kind = 'reference' AND b.version IS NOT NULL""",
        (model, model),
    )
    return {str(r[0]) for r in rows}


def reference_batches(store: Store, model: str, version: str) -> list[BatchRow]:
    """The recorded reference batches of a model version, oldest first."""
    rows = store.query(
        """SELECT b.id, b.created_at, b.n_rows FROM feature_batches b
           JOIN models m ON m.id = b.model_id
           WHERE m.name = ? AND b.kind = 'reference' AND b.version = ?
           ORDER BY b.created_at, b.id""",
        (model, version),
    )
    return [BatchRow(*r) for r in rows if _readable_batch(model, r)]


def _readable_batch(model: str, r: Sequence[Any]) -> bool:
    problem = fields.time_problem("created_at", r[1])
    if problem:
        fields.skipped(f"feature batch {r[0]} of model {model!r}", problem)
    return problem is None


def current_batches(
    store: Store, model: str, *, until: float | None, since: float | None, rows: int
) -> list[BatchRow]:
    """The newest current batches recorded in ``(since, until]``, newest first,
    until they hold at least ``rows`` rows."""
    clause, params = where(
        ("m.name = ?", model),
        "b.kind = 'current'",
        ("b.created_at <= ?", until),
        ("b.created_at > ?", since),
    )
    sql = f"""SELECT b.id, b.created_at, b.n_rows FROM feature_batches b
              JOIN models m ON m.id = b.model_id {clause}
              ORDER BY b.created_at DESC, b.id DESC"""
    out: list[BatchRow] = []
    total = 0
    # Not ``store.query``: the read stops at the batch that completes ``rows``.
    with store.lock:
        for r in store.conn.execute(sql, params):
            if not _readable_batch(model, r):
                continue
            out.append(BatchRow(*r))
            total += int(r[2])
            if total >= rows:
                break
    return out


def current_batch_times(store: Store, model: str, *, after: float | None = None) -> list[float]:
    """When each current batch of ``model`` was recorded, oldest first."""
    clause, params = where(("m.name = ?", model), "b.kind = 'current'", ("b.created_at > ?", after))
    sql = f"""SELECT DISTINCT b.created_at FROM feature_batches b JOIN models m ON m.id = b.model_id
              {clause} ORDER BY 1"""
    times = [float(r[0]) for r in store.query(sql, params)]
    for t in times:
        problem = fields.time_problem("created_at", t)
        if problem:
            fields.skipped(f"a current feature batch of model {model!r}", problem)
    return [t for t in times if fields.time_problem("created_at", t) is None]
