"""An Airflow snapshot into the run store (``store.orchestrator_sync``).

A DAG is a pipeline (``airflow/<dag id>``), a DAG run a run (its run type the trigger, its
triggering user the actor, its conf and logical date in its params), a
task a stage in the DAG's order, a task's try number the stage's attempt.
"""

from __future__ import annotations

from opstui.config.endpoints import EndpointDef
from opstui.sources import orchestrator
from opstui.sources.airflow.api import AirflowDag, AirflowRun
from opstui.sources.airflow.poll import KIND, WATERMARK, AirflowSnapshot
from opstui.sources.records import Stage
from opstui.store import Store
from opstui.store import status as st
from opstui.store.orchestrator_sync import (
    Listed,
    Listing,
    OrchestratedRun,
    SyncResult,
    run_key,
)


def pipeline_name(dag_id: str) -> str:
    """A DAG's pipeline: ``airflow/<dag id>``, apart from pipelines opstui runs
    (as an MLflow experiment's is ``mlflow/<name>``)."""
    return f"{KIND}/{dag_id}"


def orchestrated(
    ep: EndpointDef, run: AirflowRun, stages: list[Stage], kind: str | None
) -> OrchestratedRun | None:
    status = run.status
    if status is None:
        return None  # a DAG run state this opstui does not know: left alone
    created = run.queued_at or run.start or run.logical_date or run.end
    if created is None:
        return None
    failed = next((s for s in stages if s.status == st.FAILED), None)
    message = f"task {failed.name} failed" if status == st.FAILED and failed else None
    params = {
        "source": {"kind": KIND, "endpoint": ep.name, "name": run.dag_id, "id": run.run_id},
        "run_type": run.run_type,
        "logical_date": run.logical_date,
        "conf": dict(run.conf),
        "triggered_by": run.triggered_by,
    }
    return OrchestratedRun(
        key=run_key(KIND, ep.name, run.dag_id, run.run_id),
        pipeline=pipeline_name(run.dag_id),
        kind=kind,
        status=status,
        trigger=run.run_type,
        actor=run.user or "airflow",
        created_at=created,
        started_at=run.start,
        finished_at=run.end if status in st.FINISHED else None,
        message=message,
        params=params,
        heartbeat_timeout=orchestrator.heartbeat_timeout(ep),
        stages=orchestrator.stage_rows(stages),
    )


def listing(ep: EndpointDef, dags: list[AirflowDag]) -> Listing:
    """Airflow's DAGs as pipelines: those the endpoint polls are made before
    their first run; a stale one is marked; one no longer listed is marked
    ``deleted in Airflow``."""
    return Listing(
        {
            pipeline_name(d.dag_id): Listed(
                d.kind(ep.pipeline_kind),
                "stale in Airflow (its DAG file is gone)" if d.is_stale else None,
                create=not ep.dags or d.dag_id in ep.dags,
            )
            for d in dags
        },
        gone="deleted in Airflow",
    )


def sync_snapshot(store: Store, ep: EndpointDef, snapshot: AirflowSnapshot) -> SyncResult:
    kinds = {d.dag_id: d.kind(ep.pipeline_kind) for d in snapshot.dags}
    runs = [
        r
        for run, stages in snapshot.runs
        if (r := orchestrated(ep, run, stages, kinds.get(run.dag_id, ep.pipeline_kind)))
    ]
    return orchestrator.sync(
        store,
        ep,
        runs,
        watermark=WATERMARK,
        through=snapshot.through,
        listing=None if snapshot.every_dag is None else listing(ep, snapshot.every_dag),
    )
