"""One poll of an Airflow endpoint: an ``Observation`` and an ``AirflowSnapshot``.

What changed since the last poll, and only that: DAG runs updated since
the watermark (the server's own clock, from its ``Date`` header, less an
overlap), the runs the store holds as queued or running (re-read by id:
their tasks move without the run's ``updated_at`` always moving), and the
task instances of those runs in batches. The first poll of an endpoint
backfills ``backfill`` seconds of history. A DAG's task order is read once
per DAG and kept by the client. ``sources.airflow.sync`` writes the
snapshot; the watermark advances in the same transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from opstui.config.endpoints import EndpointDef
from opstui.sources import orchestrator
from opstui.sources.airflow import api
from opstui.sources.airflow.rest import AirflowError, AsyncAirflowRest
from opstui.sources.records import Skipped, Stage
from opstui.store import Store
from opstui.store import status as st
from opstui.store.endpoints import Observation
from opstui.store.metrics import read_watermarks
from opstui.store.orchestrator_sync import active_runs, run_key, settled_runs

T = TypeVar("T")
KIND = "airflow"
#: The watermark's name in the ``watermarks`` table.
WATERMARK = "airflow-runs"
#: Seconds the next poll reads back before the watermark: the server's
#: clock is read to the second, and a run may commit its update late.
OVERLAP = 60.0
#: Runs whose task instances are read and stored per poll at most: a longer
#: history (a first backfill, a long outage) is caught up over several polls,
#: newest first; the watermark moves once all are stored.
RUNS_PER_POLL = 2000
#: DAG run records (no task instances: ~1 KB each) read per poll at most.
RECORDS_PER_POLL = 50_000
#: Runs whose task instances are asked for in one request.
BATCH = 50


@dataclass
class AirflowSnapshot:
    endpoint: str
    dags: list[api.AirflowDag] = field(default_factory=list)
    runs: list[tuple[api.AirflowRun, list[Stage]]] = field(default_factory=list)
    #: Where the next poll goes on from (the server's time); None: do not move.
    through: float | None = None
    skipped: list[Skipped] = field(default_factory=list)
    #: Every DAG Airflow has now, stale ones too, when read to the end (else None).
    every_dag: list[api.AirflowDag] | None = None


@dataclass
class AirflowClient:
    """What an endpoint's polls keep between them: the REST client, the
    version seen, the DAGs' task orders."""

    rest: AsyncAirflowRest
    version: str | None = None
    orders: dict[str, tuple[str, ...]] = field(default_factory=dict)


async def observe_airflow(
    client: AirflowClient, ep: EndpointDef, store: Store | None
) -> tuple[Observation, AirflowSnapshot | None]:
    return await orchestrator.observe(ep, lambda: _snapshot(client, ep, store))


async def _snapshot(client: AirflowClient, ep: EndpointDef, store: Store | None) -> AirflowSnapshot:
    rest = client.rest
    if client.version is None:
        client.version = await rest.version()
    snap = AirflowSnapshot(ep.name)
    every = await _dags(rest, ep, snap)
    snap.dags = [d for d in every if not ep.dags or d.dag_id in ep.dags]
    now = rest.server_time or time.time()
    # The store's reads go to a thread: this is the poller's event loop.
    marks = (
        await asyncio.to_thread(read_watermarks, store, ep.source, [WATERMARK])
        if store is not None
        else {}
    )
    since = marks.get(WATERMARK, now - ep.backfill)
    runs, complete = await _runs_since(rest, ep, since - OVERLAP, snap)
    if not complete:
        snap.skipped.append(
            Skipped(
                f"DAG runs updated before the newest {RECORDS_PER_POLL:,}",
                "too many changed at once; the endpoint's backfill may be too long",
            )
        )
    seen = {(r.dag_id, r.run_id) for r in runs}
    held = await asyncio.to_thread(active_runs, store, ep.name) if store is not None else []
    for dag_id, run_id in held:
        if (dag_id, run_id) in seen:
            continue
        try:
            doc = await rest.call("GET", f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}", "DAG run")
        except AirflowError as exc:
            if exc.status == 404:  # deleted in Airflow: the next sync says so
                continue
            raise
        read, skipped, _ = api.parse_runs({"dag_runs": [doc]})
        runs += read
        snap.skipped += skipped
    wanted = {d.dag_id for d in snap.dags}
    runs = [r for r in runs if not ep.dags or r.dag_id in wanted]
    if store is not None:
        runs = await asyncio.to_thread(_unsettled, store, ep, runs)
    runs, later = runs[:RUNS_PER_POLL], runs[RUNS_PER_POLL:]
    instances = await _instances(rest, runs, snap)
    for run in runs:
        order = await _order(client, run.dag_id)
        snap.runs.append((run, api.stages(order, instances.get((run.dag_id, run.run_id), []))))
    # Moved on only once everything up to now was read and stored.
    snap.through = now if complete and not later else None
    return snap


def _unsettled(store: Store, ep: EndpointDef, runs: list[api.AirflowRun]) -> list[api.AirflowRun]:
    """``runs`` less those the store holds finished as Airflow has them now:
    their task instances are not read again (a cleared task puts its DAG
    run back to queued, which is a change)."""
    keys = [run_key(KIND, ep.name, r.dag_id, r.run_id) for r in runs]
    held = settled_runs(store, keys)
    return [
        r
        for r, key in zip(runs, keys, strict=True)
        if r.status not in st.FINISHED or held.get(key) != (r.status, r.end)
    ]


async def _dags(
    rest: AsyncAirflowRest, ep: EndpointDef, snap: AirflowSnapshot
) -> list[api.AirflowDag]:
    """Every DAG Airflow has, stale ones too (their file is gone, their runs
    are not); kept in ``snap.every_dag`` if all were read."""
    out: list[api.AirflowDag] = []
    whole = True
    params = {"exclude_stale": "false"}
    async for dags, skipped in _pages(
        rest, ep, "/dags", "DAGs", params=params, parse=api.parse_dags
    ):
        snap.skipped += skipped
        whole = whole and not skipped
        out += dags
    if whole:
        snap.every_dag = out
    return out


async def _runs_since(
    rest: AsyncAirflowRest, ep: EndpointDef, since: float, snap: AirflowSnapshot
) -> tuple[list[api.AirflowRun], bool]:
    """DAG runs updated at or after ``since``, newest update first (a run
    updated while the pages are read moves to the front: read twice, never
    skipped); and whether the read reached the end."""
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(since, UTC).isoformat()
    out: list[api.AirflowRun] = []
    seen: set[tuple[str, str]] = set()
    params = {"updated_at_gte": stamp, "order_by": "-updated_at"}
    pages = _pages(rest, ep, "/dags/~/dagRuns", "DAG runs", params=params, parse=api.parse_runs)
    async for runs, skipped in pages:
        snap.skipped += skipped
        for run in runs:
            if (run.dag_id, run.run_id) not in seen:
                seen.add((run.dag_id, run.run_id))
                out.append(run)
        if len(out) >= RECORDS_PER_POLL:
            return out, False
    return out, True


async def _pages(
    rest: AsyncAirflowRest,
    ep: EndpointDef,
    path: str,
    what: str,
    *,
    params: dict[str, Any],
    parse: Callable[[Any], tuple[list[T], list[Skipped], int | None]],
) -> AsyncIterator[tuple[list[T], list[Skipped]]]:
    """Every page of a listing (``GET``). Airflow answers at most its own
    ``[api] maximum_page_limit`` rows a page (100 by default), whatever the
    endpoint's ``page_size``: the next page starts after what came, and the
    end is ``total_entries``, not a short page."""
    offset = 0
    while True:
        doc = await rest.call(
            "GET", path, what, params={**params, "limit": ep.page_size, "offset": offset}
        )
        runs, skipped, total = _read(rest, what, parse, doc)
        yield runs, skipped
        offset += len(runs) + len(skipped)
        if not runs and not skipped:
            return
        if total is not None and offset >= total:
            return
        if total is None and len(runs) + len(skipped) < ep.page_size:
            return


async def _instances(
    rest: AsyncAirflowRest, runs: Sequence[api.AirflowRun], snap: AirflowSnapshot
) -> dict[tuple[str, str], list[api.TaskInstance]]:
    out: dict[tuple[str, str], list[api.TaskInstance]] = {}
    for i in range(0, len(runs), BATCH):
        batch = runs[i : i + BATCH]
        offset = 0
        while True:
            body = {
                "dag_ids": sorted({r.dag_id for r in batch}),
                "dag_run_ids": sorted({r.run_id for r in batch}),
                "page_offset": offset,
                "page_limit": 1000,
            }
            doc = await rest.call(
                "POST", "/dags/~/dagRuns/~/taskInstances/list", "task instances", body=body
            )
            tis, skipped, total = _read(rest, "task instances", api.parse_task_instances, doc)
            snap.skipped += skipped
            for ti in tis:
                out.setdefault((ti.dag_id, ti.run_id), []).append(ti)
            # As in _pages: a server may answer fewer than asked before the end.
            offset += len(tis) + len(skipped)
            if not tis and not skipped:
                break
            if (total is not None and offset >= total) or (
                total is None and len(tis) + len(skipped) < 1000
            ):
                break
    return out


async def _order(client: AirflowClient, dag_id: str) -> tuple[str, ...]:
    order = client.orders.get(dag_id)
    if order is None:
        try:
            doc = await client.rest.call("GET", f"/dags/{_q(dag_id)}/tasks", "tasks")
            order = tuple(api.parse_tasks(doc))
        except (AirflowError, ValueError):
            order = ()  # its tasks then come in the order their instances do
        client.orders[dag_id] = order
    return order


def _read(rest: AsyncAirflowRest, what: str, parse: Callable[[Any], T], doc: Any) -> T:
    try:
        return parse(doc)
    except ValueError as exc:
        raise AirflowError(rest.ep, what, f"unexpected answer ({exc})") from None


def _q(part: str) -> str:
    from urllib.parse import quote

    return quote(part, safe="")
