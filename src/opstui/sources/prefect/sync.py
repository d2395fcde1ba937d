"""A Prefect snapshot into the run store (``store.orchestrator_sync``).

A deployment is a pipeline (``prefect/<flow>/<deployment>``; a flow run of no
deployment is in ``prefect/<flow>``), a flow run a run (schedule, deployment
or manual the trigger, its creator the actor, its parameters and state in
its params), a task a stage in the order the tasks first started, the flow
run's attempt (plus the task's own retries) the stage's attempt.
"""

from __future__ import annotations

from opstui.config.endpoints import EndpointDef
from opstui.sources import orchestrator
from opstui.sources.prefect.api import FlowRun
from opstui.sources.prefect.poll import KIND, WATERMARK, PrefectSnapshot
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


def pipeline_name(name: str) -> str:
    """A deployment's pipeline, ``prefect/<flow>/<deployment>`` (``prefect/<flow>``
    for runs of no deployment), apart from pipelines opstui runs."""
    return f"{KIND}/{name}"


def _message(run: FlowRun, status: str, stages: list[Stage]) -> str | None:
    failed = next((s for s in stages if s.status == st.FAILED), None)
    if status == st.FAILED and failed is not None and run.state_type == "FAILED":
        return f"task {failed.name} failed"
    said = [run.note] if run.note else []
    if status in (st.FAILED, st.CANCELLED) and run.state_message:
        said.append(run.state_message)
    return ": ".join(said) or None


def orchestrated(
    ep: EndpointDef, run: FlowRun, name: str, stages: list[Stage], kind: str | None
) -> OrchestratedRun | None:
    status = run.status
    if status is None:
        return None  # a state type this opstui does not know: left alone
    created = run.created or run.expected_start or run.start or run.end
    if created is None:
        return None
    params = {
        "source": {"kind": KIND, "endpoint": ep.name, "name": name, "id": run.id},
        "flow_run_name": run.name,
        "deployment_id": run.deployment_id,
        "parameters": dict(run.parameters),
        "state": {"type": run.state_type, "name": run.state_name},
        "run_count": run.run_count,
    }
    return OrchestratedRun(
        key=run_key(KIND, ep.name, name, run.id),
        pipeline=pipeline_name(name),
        kind=kind,
        status=status,
        trigger=run.trigger,
        actor=run.created_by or "prefect",
        created_at=created,
        started_at=run.start,
        finished_at=run.end if status in st.FINISHED else None,
        message=_message(run, status, stages),
        params=params,
        heartbeat_timeout=orchestrator.heartbeat_timeout(ep),
        stages=orchestrator.stage_rows(stages),
    )


def listing(ep: EndpointDef, snapshot: PrefectSnapshot) -> Listing | None:
    """Prefect's deployments as pipelines (those the endpoint polls made
    before their first run) and its flows as names runs of no deployment
    use; a pipeline of one no longer listed is marked ``deleted in Prefect``."""
    deployments, flows = snapshot.every_deployment, snapshot.every_flow
    if deployments is None or flows is None:
        return None  # not all read: nothing is marked on half an answer
    out: dict[str, Listed] = {pipeline_name(f): Listed(None, create=False) for f in flows.values()}
    for d in deployments:
        flow = flows.get(d.flow_id)
        if flow is None:
            return None  # a deployment of a flow not listed: the answer moved under us
        name = f"{flow}/{d.name}"
        wanted = not ep.deployments or name in ep.deployments
        out[pipeline_name(name)] = Listed(d.kind(ep.pipeline_kind), create=wanted)
    return Listing(out, gone="deleted in Prefect")


def sync_snapshot(store: Store, ep: EndpointDef, snapshot: PrefectSnapshot) -> SyncResult:
    runs = [
        r
        for run, name, stages in snapshot.runs
        if (r := orchestrated(ep, run, name, stages, run.kind(ep.pipeline_kind)))
    ]
    return orchestrator.sync(
        store,
        ep,
        runs,
        watermark=WATERMARK,
        through=snapshot.through,
        listing=listing(ep, snapshot),
    )
