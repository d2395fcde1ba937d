"""Mirroring a model registry (MLflow) into the store, idempotently.

The poller reads the registry and hands over what it saw as plain records;
one transaction writes them. Running the same sync twice changes nothing:
runs are found by their key (``mlflow:<run id>``), versions by model and
version, and an alias becomes a deployment only when it points somewhere
else than the store's current deployment of that model in that environment.
This module knows nothing of MLflow's API (the store imports nothing above
it); ``opstui.sources.mlflow`` does the translation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from opstui.store import fields
from opstui.store import status as st
from opstui.store.db import Store, Transaction
from opstui.store.deployments import add_deployment
from opstui.store.metrics import advance_watermark
from opstui.store.models import add_model_version, set_production_version
from opstui.store.runs import ensure_pipeline

PRODUCTION = "production"


class ExternalRun(NamedTuple):
    """A run recorded by another system, as the store keeps it."""

    key: str
    pipeline: str
    kind: str
    status: str  # a run store status
    actor: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    message: str | None
    params: Mapping[str, Any]
    #: Seconds without a sync after which a running run reads as lost (or
    #: unknown, when its source is down or not polled).
    heartbeat_timeout: float


class ExternalVersion(NamedTuple):
    model: str
    version: str
    run_key: str | None  # the key of the run that produced it, if any
    metrics: Mapping[str, float]
    created_at: float


class AliasState(NamedTuple):
    """``alias`` of ``model`` points at ``version``; it serves ``environment``."""

    model: str
    alias: str
    environment: str
    version: str
    source: str  # the endpoint it was read from


class RunWatermark(NamedTuple):
    """Every run of an experiment that started at or before ``through`` has been read.

    ``through`` is an MLflow start time in seconds. It is kept in the
    ``watermarks`` table as ``(source, name)``; ``sync_registry`` advances
    it (never back) in the transaction that writes the runs read up to it.
    """

    source: str  # endpoint/<endpoint name>
    name: str  # mlflow-runs:<experiment id>
    through: float
    by: str


class SyncCounts(NamedTuple):
    runs_added: int = 0
    runs_updated: int = 0
    versions_added: int = 0
    deployments_added: int = 0
    #: Records the registry sent that the store cannot hold, with the reason
    #: (a time beyond year 9999, a lone surrogate in a name); the rest is written.
    skipped: tuple[str, ...] = ()


def sync_registry(
    store: Store,
    *,
    runs: Sequence[ExternalRun] = (),
    versions: Sequence[ExternalVersion] = (),
    aliases: Sequence[AliasState] = (),
    watermarks: Sequence[RunWatermark] = (),
    now: float,
) -> SyncCounts:
    """Write one registry observation made at ``now``, in one transaction.

    ``watermarks`` move forward in that same transaction: runs and the point
    up to which they were read are written together or not at all.
    """
    if not (runs or versions or aliases or watermarks):
        return SyncCounts()
    now = fields.timestamp(now, "registry observation time")
    skipped: list[str] = []
    runs = [
        r._replace(message=None if r.message is None else fields.free_text(r.message))
        for r in runs
        if _usable(skipped, f"run {r.key[:80]!r}", _check_run, r)
    ]
    versions = [
        v._replace(metrics={k: x for k, x in v.metrics.items() if _finite(x)})
        for v in versions
        if _usable(skipped, f"version {v.version[:40]!r} of {v.model[:80]!r}", _check_version, v)
    ]
    aliases = [a for a in aliases if _usable(skipped, f"alias {a.alias[:80]!r}", _check_alias, a)]
    # The version a production alias points at is the production version.
    production: dict[str, str] = {}
    for a in aliases:
        if a.environment == PRODUCTION:
            production.setdefault(a.model, a.version)
    with store.write() as tx:
        added = updated = 0
        for run in runs:
            change = _upsert_run(tx, run, now)
            added += change == "added"
            updated += change == "updated"
        new_versions = sum(_add_version(tx, v, production.get(v.model)) for v in versions)
        for model, version in production.items():
            _make_production(tx, model, version)
        deployed = sum(_observe_alias(tx, a, now) for a in aliases)
        for mark in watermarks:
            if fields.TIME_MIN <= mark.through <= fields.TIME_MAX:
                advance_watermark(tx, mark.source, mark.name, mark.through, by=mark.by, now=now)
    return SyncCounts(added, updated, new_versions, deployed, tuple(skipped))


def run_watermark_name(experiment_id: str) -> str:
    return f"mlflow-runs:{experiment_id}"


def read_run_progress(
    store: Store, source: str, endpoint: str, experiment_id: str, pipeline: str, *, limit: int
) -> tuple[float | None, list[str]]:
    """Where the run sync of one experiment stopped, and the runs it must re-read.

    The watermark (``None`` before the first sync) and the MLflow run ids of
    at most ``limit`` runs the store holds as running or queued for that
    endpoint and experiment, stalest heartbeat first: the sync re-reads them
    by id, so a long run keeps its heartbeat however many runs started after it.
    """
    with store.lock:
        row = store.query_one(
            "SELECT through FROM watermarks WHERE source = ? AND name = ?",
            (source, run_watermark_name(experiment_id)),
        )
        # The pipeline's unfinished MLflow runs (few), matched on their params
        # here: SQLite's and PostgreSQL's JSON functions differ.
        rows = store.query(
            """SELECT r.params FROM runs r
               JOIN pipelines p ON p.id = r.pipeline_id
               WHERE p.name = ? AND r.status IN (?, ?) AND r.key LIKE 'mlflow:%'
               ORDER BY r.heartbeat_at, r.id""",
            (pipeline, st.RUNNING, st.QUEUED),
        )
    ids: list[str] = []
    for (params,) in rows:
        try:
            mlflow = fields.loads_object(params, "params").get("mlflow")
        except fields.Unreadable:
            continue
        if (
            isinstance(mlflow, dict)
            and mlflow.get("endpoint") == endpoint
            and mlflow.get("experiment_id") == experiment_id
            and isinstance(mlflow.get("run_id"), str)
            and mlflow["run_id"]
        ):
            ids.append(mlflow["run_id"])
    through = float(row[0]) if row is not None and math.isfinite(row[0]) else None
    return through, ids[:limit]


def _usable(skipped: list[str], what: str, check: Any, record: Any) -> bool:
    try:
        check(record)
    except fields.BadValue as exc:
        skipped.append(f"{what}: {exc}")
        return False
    return True


def _check_run(run: ExternalRun) -> None:
    for value, what in ((run.key, "key"), (run.pipeline, "experiment"), (run.kind, "kind")):
        fields.name(value, what)
    fields.name(run.actor, "user", empty=True)
    fields.timestamp(run.created_at, "start time")
    fields.optional_timestamp(run.started_at, "start time")
    fields.optional_timestamp(run.finished_at, "end time")
    if not 0 < fields.finite(run.heartbeat_timeout, "heartbeat timeout") <= fields.TIME_MAX:
        raise fields.BadValue("the heartbeat timeout is not a positive number of seconds")


def _check_version(v: ExternalVersion) -> None:
    fields.name(v.model, "model name")
    fields.name(v.version, "version")
    fields.optional_name(v.run_key, "run id")
    fields.timestamp(v.created_at, "creation time")


def _check_alias(a: AliasState) -> None:
    for value, what in ((a.model, "model"), (a.environment, "environment"), (a.version, "version")):
        fields.name(value, what)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _upsert_run(tx: Transaction, run: ExternalRun, now: float) -> str | None:
    active = run.status in (st.RUNNING, st.QUEUED)
    # A live run's heartbeat is this sync. If syncing stops, readers show it
    # unknown while its source is down or unpolled (status.source_unknown_reason),
    # lost when the source answers without it.
    heartbeat = now if active else (run.finished_at or now)
    # The registry's params and metrics as it sent them; a NaN metric is null.
    params = fields.json_object(run.params, "run params", lenient=True)
    row = tx.execute(
        "SELECT id, status, finished_at, message, params FROM runs WHERE key = ?", (run.key,)
    ).fetchone()
    if row is None:
        pipeline_id = ensure_pipeline(tx, run.pipeline, kind=run.kind, now=now)
        tx.execute(
            """INSERT INTO runs(pipeline_id, key, status, trigger, actor, attempt, created_at,
                   started_at, finished_at, heartbeat_at, heartbeat_timeout, message, params,
                   rev)
               VALUES (?, ?, ?, 'mlflow', ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                pipeline_id,
                run.key,
                run.status,
                run.actor,
                run.created_at,
                run.started_at,
                run.finished_at,
                heartbeat,
                run.heartbeat_timeout,
                run.message,
                params,
                tx.rev,
            ),
        )
        return "added"
    if not active and (row[1], row[2], row[3], row[4]) == (
        run.status,
        run.finished_at,
        run.message,
        params,
    ):
        return None  # finished and unchanged: no write, no revision
    tx.execute(
        """UPDATE runs SET status = ?, started_at = coalesce(?, started_at), finished_at = ?,
               message = ?, params = ?, heartbeat_at = ?, heartbeat_timeout = ?, rev = ?
           WHERE id = ?""",
        (
            run.status,
            run.started_at,
            run.finished_at,
            run.message,
            params,
            heartbeat,
            run.heartbeat_timeout,
            tx.rev,
            row[0],
        ),
    )
    return "updated" if row[1] != run.status or not active else None


def _number(version: str) -> int | None:
    return int(version) if version.isdigit() else None


def _add_version(tx: Transaction, v: ExternalVersion, production: str | None) -> bool:
    run_id = None
    metrics = dict(v.metrics)
    if v.run_key is not None:
        row = tx.execute("SELECT id, params FROM runs WHERE key = ?", (v.run_key,)).fetchone()
        if row is not None:
            run_id = int(row[0])
            if not metrics:  # the run was synced on an earlier poll
                metrics = dict(json.loads(row[1] or "{}").get("mlflow", {}).get("metrics", {}))
    # Newer than what serves production: a candidate; older: it had its turn.
    mine, prod = _number(v.version), _number(production or "")
    if production is None or v.version == production:
        status = PRODUCTION if v.version == production else "candidate"
    elif mine is not None and prod is not None and mine < prod:
        status = "archived"
    else:
        status = "candidate"
    _, created = add_model_version(
        tx,
        v.model,
        version=v.version,
        run_id=run_id,
        status=status,
        metrics=metrics,
        created_at=v.created_at,
    )
    return created


def _make_production(tx: Transaction, model: str, version: str) -> None:
    row = tx.execute(
        """SELECT v.status FROM model_versions v JOIN models m ON m.id = v.model_id
           WHERE m.name = ? AND v.version = ?""",
        (model, version),
    ).fetchone()
    if row is not None and row[0] != PRODUCTION:
        set_production_version(tx, model, version)


def _observe_alias(tx: Transaction, a: AliasState, now: float) -> bool:
    current = tx.execute(
        """SELECT version FROM deployments
           WHERE target_kind = 'model' AND target = ? AND environment = ?
             AND status = 'succeeded' AND deployed_at <= ?
           ORDER BY deployed_at DESC, id DESC LIMIT 1""",
        (a.model, a.environment, now),
    ).fetchone()
    if current is not None and current[0] == a.version:
        return False
    # The observation time is part of the key: an alias that goes 3 -> 2 -> 3
    # records three moves, while one observation synced twice records one.
    _, created = add_deployment(
        tx,
        environment=a.environment,
        target=a.model,
        target_kind="model",
        version=a.version,
        actor=f"mlflow/{a.source}",
        deployed_at=now,
        key=f"mlflow:{a.model}:{a.alias}:{a.version}:{round(now * 1000)}",
        message=f"alias {a.alias} seen on version {a.version} in MLflow endpoint {a.source}",
    )
    return created
