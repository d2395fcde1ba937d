"""Models, their versions and feature batches.

Deployments (what runs where) are in ``deployments``; their writer and
readers are re-exported here, where callers reach them as ``store.models``.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from opstui.errors import UsageError
from opstui.store import fields
from opstui.store.db import Store, Transaction
from opstui.store.deployments import (
    DEPLOY_STATUSES,
    add_deployment,
    current_deployments,
    deployment_history,
)
from opstui.store.query import where
from opstui.store.rows import ModelVersionRow

# The deployment names stay reachable as ``store.models.<name>``, where
# writers and readers have always found them.
__all__ = [
    "DEPLOY_STATUSES",
    "FEATURES_FORMAT",
    "FEATURE_KINDS",
    "MODEL_STATUSES",
    "add_deployment",
    "add_feature_batch",
    "add_model_version",
    "current_deployments",
    "decode_features",
    "deployment_history",
    "encode_features",
    "ensure_model",
    "feature_batches",
    "load_feature_batch",
    "model_names",
    "model_versions",
    "set_production_version",
]

MODEL_STATUSES = frozenset({"candidate", "production", "archived", "rejected"})
FEATURE_KINDS = frozenset({"reference", "current"})
#: Payload encoding of feature batches: zlib-compressed JSON
#: ``{"column": [values...]}``; NaN is stored as null.
FEATURES_FORMAT = "columns-json-zlib/1"


def ensure_model(tx: Transaction, name: str, *, pipeline_id: int | None = None, now: float) -> int:
    fields.name(name, "model name")
    row = tx.execute("SELECT id, pipeline_id FROM models WHERE name = ?", (name,)).fetchone()
    if row:
        if pipeline_id is not None and row[1] is None:
            tx.execute("UPDATE models SET pipeline_id = ? WHERE id = ?", (pipeline_id, row[0]))
        return int(row[0])
    cur = tx.execute(
        "INSERT INTO models(name, pipeline_id, created_at) VALUES (?, ?, ?) RETURNING id",
        (name, pipeline_id, now),
    )
    return int(cur.fetchone()[0])


def _next_version(tx: Transaction, model_id: int) -> str:
    versions = [
        r[0]
        for r in tx.execute("SELECT version FROM model_versions WHERE model_id = ?", (model_id,))
    ]
    numbers = [int(v) for v in versions if re.fullmatch(r"\d+", v)]
    return str(max(numbers, default=0) + 1)


def add_model_version(
    tx: Transaction,
    model: str,
    *,
    version: str | None = None,
    run_id: int | None = None,
    status: str = "candidate",
    data_hash: str | None = None,
    code_version: str | None = None,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    gate: Mapping[str, Any] | None = None,
    created_at: float,
) -> tuple[str, bool]:
    """Record a model version; return ``(version, created)``.

    Without ``version`` the next integer is used. An existing version is left
    as it is (``created=False``): versions are immutable once recorded.
    """
    if status not in MODEL_STATUSES:
        raise UsageError(
            f"model version status must be one of {', '.join(sorted(MODEL_STATUSES))}, "
            f"not {status!r}"
        )
    fields.optional_name(version, "model version")
    fields.optional_name(data_hash, "data hash")
    fields.optional_name(code_version, "code version")
    fields.optional_int64(run_id, "run id")
    created_at = fields.timestamp(created_at, "model version time")
    params_json = fields.json_object(params, "model version params")
    metrics_json = fields.json_object(metrics, "model version metrics")
    # The gate's verdict is computed by opstui: a NaN in it is shown as null.
    gate_json = None if gate is None else fields.json_object(gate, "gate", lenient=True)
    pipeline_id = None
    if run_id is not None:
        row = tx.execute("SELECT pipeline_id FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UsageError(f"run {run_id} does not exist")
        pipeline_id = int(row[0])
    model_id = ensure_model(tx, model, pipeline_id=pipeline_id, now=created_at)
    if version is None:
        version = _next_version(tx, model_id)
    elif tx.execute(
        "SELECT 1 FROM model_versions WHERE model_id = ? AND version = ?", (model_id, version)
    ).fetchone():
        return version, False
    if status == "production":
        # One production version per model: the previous one is archived.
        tx.execute(
            "UPDATE model_versions SET status = 'archived' "
            "WHERE model_id = ? AND status = 'production'",
            (model_id,),
        )
    tx.execute(
        """INSERT INTO model_versions(model_id, version, run_id, status, data_hash,
               code_version, params, metrics, gate, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            model_id,
            version,
            run_id,
            status,
            data_hash,
            code_version,
            params_json,
            metrics_json,
            gate_json,
            created_at,
        ),
    )
    return version, True


def set_production_version(tx: Transaction, model: str, version: str) -> None:
    """Make ``version`` the model's production version; the previous one is archived."""
    row = tx.execute("SELECT id FROM models WHERE name = ?", (model,)).fetchone()
    if row is None:
        raise UsageError(f"model {model!r} has no versions in the store")
    tx.execute(
        "UPDATE model_versions SET status = 'archived' "
        "WHERE model_id = ? AND status = 'production'",
        (row[0],),
    )
    tx.execute(
        "UPDATE model_versions SET status = 'production' WHERE model_id = ? AND version = ?",
        (row[0], version),
    )


def encode_features(columns: Mapping[str, Sequence[Any]]) -> tuple[list[str], int, bytes]:
    """Validate and encode a column mapping; return ``(names, n_rows, payload)``."""
    # An empty name is allowed: a DataFrame's unnamed index exports as one.
    names = [fields.name(str(c), "feature column name", empty=True) for c in columns]
    if not names:
        raise UsageError("a feature batch needs at least one column")
    lengths = {len(columns[c]) for c in columns}
    if len(lengths) != 1:
        raise UsageError(
            "feature batch columns have different lengths: "
            + ", ".join(f"{c}={len(columns[c])}" for c in columns)
        )
    clean = {str(c): [_cell(v) for v in columns[c]] for c in columns}
    payload = zlib.compress(json.dumps(clean, separators=(",", ":")).encode(), 6)
    return names, lengths.pop(), payload


def decode_features(fmt: str, payload: bytes) -> dict[str, list[Any]]:
    if fmt != FEATURES_FORMAT:
        raise UsageError(f"feature batch format {fmt!r} is not known to this opstui; upgrade it")
    try:
        data = json.loads(zlib.decompress(payload))
    except (zlib.error, ValueError, RecursionError, TypeError) as exc:
        raise fields.Unreadable(f"its payload is not readable ({type(exc).__name__})") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise fields.Unreadable("its payload is not a mapping of columns")
    return data


def _cell(value: Any) -> Any:
    # Readers need JSON they can turn into numbers: NaN and infinities are
    # missing values, an integer beyond int64 a float, text valid UTF-8.
    if value is None or isinstance(value, bool):
        return value
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, str):
        return fields.free_text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if fields.INT64_MIN <= value <= fields.INT64_MAX:
            return value
        try:
            value = float(value)
        except OverflowError:
            return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool):
        return value
    return fields.free_text(str(value))


def add_feature_batch(
    tx: Transaction,
    model: str,
    columns: Mapping[str, Sequence[Any]],
    *,
    kind: str = "current",
    version: str | None = None,
    run_id: int | None = None,
    created_at: float,
    key: str | None = None,
) -> tuple[int, bool]:
    """Store a batch of feature rows (reference or current) for a model."""
    if kind not in FEATURE_KINDS:
        raise UsageError(f"feature batch kind must be reference or current, not {kind!r}")
    fields.optional_name(version, "model version")
    fields.optional_name(key, "feature batch key")
    fields.optional_int64(run_id, "run id")
    created_at = fields.timestamp(created_at, "feature batch time")
    if key is not None:
        found = tx.execute("SELECT id FROM feature_batches WHERE key = ?", (key,)).fetchone()
        if found:
            return int(found[0]), False
    names, n_rows, payload = encode_features(columns)
    model_id = ensure_model(tx, model, now=created_at)
    cur = tx.execute(
        """INSERT INTO feature_batches(key, model_id, version, kind, created_at, n_rows,
               columns, format, payload, run_id)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
        (
            key,
            model_id,
            version,
            kind,
            created_at,
            n_rows,
            json.dumps(names),
            FEATURES_FORMAT,
            payload,
            run_id,
        ),
    )
    return int(cur.fetchone()[0]), True


# --- reads -----------------------------------------------------------------


def model_names(store: Store) -> list[str]:
    return [r[0] for r in store.query("SELECT name FROM models ORDER BY name")]


def model_versions(store: Store, model: str) -> list[ModelVersionRow]:
    """All versions of ``model``, newest first (a version that cannot be read is
    skipped and named)."""
    rows = store.query(
        """SELECT v.id, m.name, v.version, v.status, v.run_id, v.data_hash, v.code_version,
                  v.params, v.metrics, v.gate, v.created_at
           FROM model_versions v JOIN models m ON m.id = v.model_id
           WHERE m.name = ? ORDER BY v.created_at DESC, v.id DESC""",
        (model,),
    )
    out = []
    for r in rows:
        try:
            fields.check_times((("created_at", r[10]),))
            gate = fields.loads_object(r[9], "gate") if r[9] else None
            out.append(
                ModelVersionRow(
                    id=r[0],
                    model=r[1],
                    version=r[2],
                    status=r[3],
                    run_id=r[4],
                    data_hash=r[5],
                    code_version=r[6],
                    params=fields.loads_object(r[7], "params"),
                    metrics=fields.loads_object(r[8], "metrics"),
                    gate=gate,
                    created_at=r[10],
                )
            )
        except fields.Unreadable as exc:
            fields.skipped(f"version {r[2]!r} of model {r[1]!r}", str(exc))
    return out


def feature_batches(
    store: Store, model: str, *, kind: str | None = None, limit: int = 100
) -> list[tuple[int, str, str | None, float, int]]:
    """``(id, kind, version, created_at, n_rows)`` of a model's batches, newest first."""
    clause, params = where(("m.name = ?", model), ("b.kind = ?", kind))
    rows = store.query(
        f"""SELECT b.id, b.kind, b.version, b.created_at, b.n_rows FROM feature_batches b
            JOIN models m ON m.id = b.model_id {clause}
            ORDER BY b.created_at DESC, b.id DESC LIMIT ?""",
        [*params, limit],
    )
    out = []
    for r in rows:
        problem = fields.time_problem("created_at", r[3])
        if problem:
            fields.skipped(f"feature batch {r[0]} of model {model!r}", problem)
        else:
            out.append((int(r[0]), str(r[1]), r[2], float(r[3]), int(r[4])))
    return out


def load_feature_batch(store: Store, batch_id: int) -> dict[str, list[Any]]:
    row = store.query_one("SELECT format, payload FROM feature_batches WHERE id = ?", (batch_id,))
    if row is None:
        raise UsageError(f"feature batch {batch_id} does not exist")
    try:
        return decode_features(row[0], row[1])
    except fields.Unreadable as exc:
        raise UsageError(
            f"feature batch {batch_id} in {store.name} cannot be read: {exc}",
            hint="delete it, or record the batch again",
        ) from None
