"""One poll of a Prefect endpoint: an ``Observation`` and a ``PrefectSnapshot``.

What changed since the last poll, and only that. Prefect 3.9's flow run
filter has no "updated since" (its fields: start, end, expected start, state
and more, never ``updated``), so one ``POST /flow_runs/filter`` asks, with
``or_``, for the runs that started or were due since the watermark
(``start_time.after_``: Prefect compares the start or, before it, the
expected start), ended since it (``end_time.after_``), or are in a state of
work now (running, pending, cancelling, paused: a run retried by someone
else is caught as soon as it runs). The watermark is the server's own clock
(its ``Date`` header) less an overlap, which also reads again a run that
ended just before the last poll: Prefect records task runs from events, a
moment after the flow run's state. Then the runs the store holds as
queued or running are read again by id (a run that is late or awaiting a
retry matches none of those), and the task runs of all of them in batches.
Runs scheduled for later than now are left for the poll at their time.
The first poll of an endpoint backfills ``backfill`` seconds of history.
Flow and deployment names are read once per id and kept by the client.
``sources.prefect.sync`` writes the snapshot; the watermark advances in the
same transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from opstui.config.endpoints import EndpointDef
from opstui.sources import orchestrator
from opstui.sources.prefect import api
from opstui.sources.prefect.rest import AsyncPrefectRest, PrefectError
from opstui.sources.records import Skipped, Stage
from opstui.store import Store
from opstui.store import status as st
from opstui.store.endpoints import Observation
from opstui.store.metrics import read_watermarks
from opstui.store.orchestrator_sync import active_runs, run_key, settled_runs

T = TypeVar("T")
KIND = "prefect"
#: The watermark's name in the ``watermarks`` table.
WATERMARK = "prefect-runs"
#: Seconds the next poll reads back before the watermark: the server's
#: clock is read to the second, and a state may commit late.
OVERLAP = 60.0
#: Runs whose task runs are read and stored per poll at most: a longer
#: history is caught up over several polls, newest first; the watermark
#: moves once all are stored.
RUNS_PER_POLL = 2000
#: Flow run records (no task runs) read per poll at most.
RECORDS_PER_POLL = 50_000
#: Flow runs whose task runs (or which, by id) are asked for in one request.
BATCH = 50
#: Prefect's largest ``limit`` (``PREFECT_SERVER_API_DEFAULT_LIMIT``, 200 by default).
MAX_LIMIT = 200
#: States of runs doing work now: read at every poll whatever their times.
WORKING = ["RUNNING", "PENDING", "CANCELLING", "PAUSED"]


@dataclass
class PrefectSnapshot:
    endpoint: str
    #: flow run, its pipeline's name (``flow/deployment`` or ``flow``), its stages.
    runs: list[tuple[api.FlowRun, str, list[Stage]]] = field(default_factory=list)
    #: Where the next poll goes on from (the server's time); None: do not move.
    through: float | None = None
    skipped: list[Skipped] = field(default_factory=list)
    #: Every deployment and flow (id -> name) Prefect has now, when read to the end.
    every_deployment: list[api.Deployment] | None = None
    every_flow: dict[str, str] | None = None


@dataclass
class PrefectClient:
    """What an endpoint's polls keep between them: the REST client, the
    version seen, flow and deployment names by id."""

    rest: AsyncPrefectRest
    version: str | None = None
    flows: dict[str, str] = field(default_factory=dict)
    deployments: dict[str, api.Deployment] = field(default_factory=dict)

    def name(self, run: api.FlowRun) -> str | None:
        """``flow/deployment``, or ``flow`` for a run of no deployment; None if unknown."""
        flow = self.flows.get(run.flow_id)
        if flow is None:
            return None
        if run.deployment_id is None:
            return flow
        dep = self.deployments.get(run.deployment_id)
        return f"{flow}/{dep.name}" if dep is not None else None


async def observe_prefect(
    client: PrefectClient, ep: EndpointDef, store: Store | None
) -> tuple[Observation, PrefectSnapshot | None]:
    return await orchestrator.observe(ep, lambda: _snapshot(client, ep, store))


def stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat()


async def _snapshot(client: PrefectClient, ep: EndpointDef, store: Store | None) -> PrefectSnapshot:
    rest = client.rest
    if client.version is None:
        client.version = await rest.version()
    snap = PrefectSnapshot(ep.name)
    await _inventory(client, snap)
    wanted = await _wanted_deployments(client, ep) if ep.deployments else None
    # The store's reads go to a thread: this is the poller's event loop.
    marks = (
        await asyncio.to_thread(read_watermarks, store, ep.source, [WATERMARK])
        if store is not None
        else {}
    )
    held = await asyncio.to_thread(active_runs, store, ep.name, KIND) if store is not None else []
    if wanted == []:  # none of the deployments named exists (yet)
        snap.through = None
        return snap
    since = marks.get(WATERMARK, (rest.server_time or time.time()) - ep.backfill)
    runs, now, complete = await _runs_since(rest, ep, since - OVERLAP, wanted, snap)
    if not complete:
        snap.skipped.append(
            Skipped(
                f"flow runs beyond the first {RECORDS_PER_POLL:,}",
                "too many changed at once; the endpoint's backfill may be too long",
            )
        )
    seen = {r.id for r in runs}
    again = [run_id for _, run_id in held if run_id not in seen]
    for i in range(0, len(again), BATCH):
        body = {"flow_runs": {"id": {"any_": again[i : i + BATCH]}}, "limit": MAX_LIMIT}
        doc = await rest.call("POST", "/flow_runs/filter", "flow runs", body=body)
        read, skipped = _read(rest, "flow runs", api.parse_flow_runs, doc)
        runs += read  # one deleted in Prefect is not answered: the next sync says so
        snap.skipped += skipped
    if wanted is not None:
        runs = [r for r in runs if r.deployment_id in wanted]
    runs = [r for r in runs if not _later(r, now)]
    await _names(client, runs)
    named: list[tuple[api.FlowRun, str]] = []
    for run in runs:
        name = client.name(run)
        if name is None:
            snap.skipped.append(Skipped(f"flow run {run.id}", "its flow is not known"))
            continue
        named.append((run, name))
    if store is not None:
        named = await asyncio.to_thread(_unsettled, store, ep, named)
    # Newest first: a long history is caught up over several polls.
    named.sort(key=lambda pair: _when(pair[0]), reverse=True)
    named, later = named[:RUNS_PER_POLL], named[RUNS_PER_POLL:]
    tasks = await _task_runs(rest, [run for run, _ in named], snap)
    for run, name in named:
        snap.runs.append((run, name, api.stages(run, tasks.get(run.id, []))))
    # Moved on only once everything up to now was read and stored.
    snap.through = now if complete and not later else None
    return snap


def _when(run: api.FlowRun) -> float:
    return run.start or run.expected_start or run.created or 0.0


def _unsettled(
    store: Store, ep: EndpointDef, runs: list[tuple[api.FlowRun, str]]
) -> list[tuple[api.FlowRun, str]]:
    """``runs`` less those the store holds finished as Prefect has them now:
    their task runs are not read again (a retry makes the run scheduled
    again, which is a change)."""
    keys = [run_key(KIND, ep.name, name, run.id) for run, name in runs]
    held = settled_runs(store, keys)
    return [
        (run, name)
        for (run, name), key in zip(runs, keys, strict=True)
        if run.status not in st.FINISHED or held.get(key) != (run.status, run.end)
    ]


def _later(run: api.FlowRun, now: float) -> bool:
    """A run scheduled for later (Prefect makes a deployment's scheduled runs
    ahead of time): not a run yet."""
    return (
        run.state_type == "SCHEDULED"
        and run.start is None
        and run.expected_start is not None
        and run.expected_start > now
    )


async def _inventory(client: PrefectClient, snap: PrefectSnapshot) -> None:
    """Every deployment and flow Prefect has, into ``snap`` if all were read
    (the sync marks the pipelines of those that are gone) and into the
    client's names."""
    deployments: list[api.Deployment] = []
    flows: dict[str, str] = {}
    whole = True
    async for doc in _pages(client.rest, "/deployments/filter", "deployments"):
        read = _read(client.rest, "deployments", api.parse_deployments, doc)
        deployments += read
        whole = whole and len(read) == len(doc)  # a record left out: not all known
    async for doc in _pages(client.rest, "/flows/filter", "flows"):
        names = _read(client.rest, "flows", api.parse_names, doc)
        flows.update(names)
        whole = whole and len(names) == len(doc)
    client.deployments.update((d.id, d) for d in deployments)
    client.flows.update(flows)
    if whole:
        snap.every_deployment, snap.every_flow = deployments, flows


async def _pages(rest: AsyncPrefectRest, path: str, what: str) -> AsyncIterator[list[Any]]:
    """Every page of a ``/filter`` listing, by name."""
    offset = 0
    while True:
        body = {"limit": MAX_LIMIT, "offset": offset, "sort": "NAME_ASC"}
        doc = await rest.call("POST", path, what, body=body)
        if not isinstance(doc, list):
            raise PrefectError(rest.ep, what, "unexpected answer (the answer is not a list)")
        yield doc
        if len(doc) < MAX_LIMIT:
            return
        offset += MAX_LIMIT


async def _wanted_deployments(client: PrefectClient, ep: EndpointDef) -> list[str]:
    """The ids of the deployments ``ep.deployments`` names ("flow/deployment")."""
    pairs = [tuple(d.split("/", 1)) for d in ep.deployments]
    body = {
        "flows": {"name": {"any_": sorted({f for f, _ in pairs})}},
        "deployments": {"name": {"any_": sorted({d for _, d in pairs})}},
        "limit": MAX_LIMIT,
    }
    doc = await client.rest.call("POST", "/deployments/filter", "deployments", body=body)
    found = _read(client.rest, "deployments", api.parse_deployments, doc)
    for dep in found:
        client.deployments[dep.id] = dep
    await _flow_names(client, [d.flow_id for d in found])
    return [d.id for d in found if (client.flows.get(d.flow_id), d.name) in set(pairs)]


async def _runs_since(
    rest: AsyncPrefectRest,
    ep: EndpointDef,
    since: float,
    deployments: list[str] | None,
    snap: PrefectSnapshot,
) -> tuple[list[api.FlowRun], float, bool]:
    """Flow runs started, due or ended at or after ``since``, or working now; the
    server's time of the first answer; whether the read reached the end."""
    limit = min(ep.page_size, MAX_LIMIT)
    after = {"after_": stamp(since)}
    query: dict[str, Any] = {
        "flow_runs": {
            "operator": "or_",
            "start_time": after,
            "end_time": after,
            "state": {"type": {"any_": WORKING}},
        },
        # By id: a stable order while the runs' times move.
        "sort": "ID_DESC",
        "limit": limit,
    }
    if deployments is not None:
        query["deployments"] = {"id": {"any_": deployments}}
    out: list[api.FlowRun] = []
    now: float | None = None
    offset = 0
    while len(out) < RECORDS_PER_POLL:
        doc = await rest.call(
            "POST", "/flow_runs/filter", "flow runs", body={**query, "offset": offset}
        )
        if now is None:
            now = rest.server_time or time.time()
        runs, skipped = _read(rest, "flow runs", api.parse_flow_runs, doc)
        out += runs
        snap.skipped += skipped
        offset += limit
        if len(runs) + len(skipped) < limit:
            return out, now, True
    return out, now or time.time(), False


async def _names(client: PrefectClient, runs: Sequence[api.FlowRun]) -> None:
    """Learn the flow and deployment names of ``runs`` not known yet."""
    deps = sorted({r.deployment_id for r in runs if r.deployment_id} - set(client.deployments))
    for i in range(0, len(deps), BATCH):
        body = {"deployments": {"id": {"any_": deps[i : i + BATCH]}}, "limit": MAX_LIMIT}
        doc = await client.rest.call("POST", "/deployments/filter", "deployments", body=body)
        for dep in _read(client.rest, "deployments", api.parse_deployments, doc):
            client.deployments[dep.id] = dep
    await _flow_names(client, [r.flow_id for r in runs])


async def _flow_names(client: PrefectClient, ids: Sequence[str]) -> None:
    missing = sorted(set(ids) - set(client.flows))
    for i in range(0, len(missing), BATCH):
        body = {"flows": {"id": {"any_": missing[i : i + BATCH]}}, "limit": MAX_LIMIT}
        doc = await client.rest.call("POST", "/flows/filter", "flows", body=body)
        client.flows.update(_read(client.rest, "flows", api.parse_names, doc))


async def _task_runs(
    rest: AsyncPrefectRest, runs: Sequence[api.FlowRun], snap: PrefectSnapshot
) -> dict[str, list[api.TaskRun]]:
    out: dict[str, list[api.TaskRun]] = {}
    ids = [r.id for r in runs]
    for i in range(0, len(ids), BATCH):
        offset = 0
        while True:
            body = {
                "flow_runs": {"id": {"any_": ids[i : i + BATCH]}},
                "sort": "EXPECTED_START_TIME_ASC",
                "limit": MAX_LIMIT,
                "offset": offset,
            }
            doc = await rest.call("POST", "/task_runs/filter", "task runs", body=body)
            trs, skipped = _read(rest, "task runs", api.parse_task_runs, doc)
            snap.skipped += skipped
            for tr in trs:
                out.setdefault(tr.flow_run_id, []).append(tr)
            offset += MAX_LIMIT
            if len(trs) + len(skipped) < MAX_LIMIT:
                break
    return out


def _read(rest: AsyncPrefectRest, what: str, parse: Callable[[Any], T], doc: Any) -> T:
    try:
        return parse(doc)
    except ValueError as exc:
        raise PrefectError(rest.ep, what, f"unexpected answer ({exc})") from None
