"""An MLflow snapshot into the run store.

``sync_snapshot`` writes what one poll saw into the run store (runs, model
versions, alias moves as deployments) through ``opstui.store.mlflow_sync``.
"""

from __future__ import annotations

import os
from typing import Any

from opstui.config.endpoints import EndpointDef
from opstui.sources.mlflow.api import MlflowRun, MlflowSnapshot
from opstui.store import Store
from opstui.store import status as st
from opstui.store.db import local_actor
from opstui.store.mlflow_sync import (
    AliasState,
    ExternalRun,
    ExternalVersion,
    RunWatermark,
    run_watermark_name,
    sync_registry,
)

#: Metrics and params kept per finished run: enough to read a run, not a dump.
KEEP_PER_RUN = 20
#: MLflow run status -> run store status.
RUN_STATUS = {
    "RUNNING": st.RUNNING,
    "SCHEDULED": st.QUEUED,
    "FINISHED": st.SUCCEEDED,
    "FAILED": st.FAILED,
    "KILLED": st.CANCELLED,
}


def _source(ep: EndpointDef) -> str:
    return f"endpoint/{ep.name}"


def run_key(run_id: str) -> str:
    return f"mlflow:{run_id}"


def environment_of(ep: EndpointDef, alias: str) -> str:
    """The environment an alias serves: ``aliases`` of the endpoint, else the alias itself."""
    return ep.aliases.get(alias, alias)


def _external_run(ep: EndpointDef, run: MlflowRun, at: float) -> ExternalRun | None:
    status = RUN_STATUS.get(run.status)
    if status is None:
        return None  # a status this opstui does not know: leave the run alone
    info: dict[str, Any] = {
        "endpoint": ep.name,
        "run_id": run.run_id,
        "run_name": run.name,
        "experiment": run.experiment,
        "experiment_id": run.experiment_id,
    }
    finished = status not in (st.RUNNING, st.QUEUED)
    if finished:
        # Metrics of a running run change every poll; stored once it ends.
        info["metrics"] = dict(sorted(run.metrics.items())[:KEEP_PER_RUN])
        info["params"] = dict(sorted(run.params.items())[:KEEP_PER_RUN])
    message = None
    if run.status in ("FAILED", "KILLED"):
        message = f"MLflow run {run.name or run.run_id} ended {run.status}"
    return ExternalRun(
        key=run_key(run.run_id),
        pipeline=f"mlflow/{run.experiment}",
        kind="mlops",
        status=status,
        actor=run.user or f"mlflow/{ep.name}",
        created_at=run.start_time or at,
        started_at=run.start_time if status != st.QUEUED else None,
        finished_at=(run.end_time or at) if finished else None,
        message=message,
        params={"mlflow": info},
        # Without a sync the heartbeat goes stale: the run reads unknown while
        # this endpoint is down or unpolled, lost if MLflow answers without it
        # (store/status.py), instead of running forever.
        heartbeat_timeout=3 * ep.interval,
    )


def sync_snapshot(store: Store, ep: EndpointDef, snap: MlflowSnapshot) -> None:
    """Write what ``snap`` saw into the store; running it twice adds nothing.

    MLflow runs become runs of pipeline ``mlflow/<experiment>``; registered
    versions become model versions; each alias's version becomes the
    deployment of that model in ``environment_of(alias)`` when it differs
    from what the store last recorded there.
    """
    runs = [r for r in (_external_run(ep, run, snap.at) for run in snap.runs) if r is not None]
    metrics = {r.run_id: r.metrics for r in snap.runs if r.status == "FINISHED"}
    versions = [
        ExternalVersion(
            model=v.model,
            version=v.version,
            run_key=run_key(v.run_id) if v.run_id else None,
            metrics=metrics.get(v.run_id or "", {}),
            created_at=v.created_at or snap.at,
        )
        for m in snap.models
        for v in m.versions
    ]
    aliases = [
        AliasState(m.name, alias, environment_of(ep, alias), version, ep.name)
        for m in snap.models
        for alias, version in sorted(m.aliases.items())
        # An alias on a version that is not there is reported, not deployed.
        if version in {v.version for v in m.versions}
    ]
    by = f"{local_actor()}:{os.getpid()}"
    marks = [
        RunWatermark(_source(ep), run_watermark_name(experiment_id), through, by)
        for experiment_id, through in snap.watermarks
    ]
    sync_registry(
        store, runs=runs, versions=versions, aliases=aliases, watermarks=marks, now=snap.at
    )
