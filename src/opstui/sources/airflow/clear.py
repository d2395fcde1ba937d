"""Retrying a DAG run the way Airflow does it: clearing its failed task instances.

``clearTaskInstances`` with ``only_failed`` and ``include_downstream``: with
``dry_run`` Airflow answers which task instances it would clear and
changes nothing (the plan an operator confirms); without, it clears them,
the run goes back to queued, and the tasks run again as their next try.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import quote

from opstui.config.endpoints import EndpointDef
from opstui.sources import orchestrator
from opstui.sources.airflow import api
from opstui.sources.airflow.rest import AirflowError, AsyncAirflowRest

T = TypeVar("T")


def call_once(ep: EndpointDef, work: Callable[[AsyncAirflowRest], Awaitable[T]]) -> T:
    """``work`` on a client of its own, its version checked first, from synchronous code."""
    return orchestrator.call_once(ep, AsyncAirflowRest, work, check=AsyncAirflowRest.version)


async def run_state(rest: AsyncAirflowRest, dag_id: str, run_id: str) -> str:
    doc = await rest.call(
        "GET", f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}", "DAG run"
    )
    state = doc.get("state") if isinstance(doc, dict) else None
    if not isinstance(state, str):
        raise AirflowError(rest.ep, "DAG run", "the answer names no state")
    return state


async def clear(
    rest: AsyncAirflowRest, dag_id: str, run_id: str, *, dry_run: bool
) -> list[api.TaskInstance]:
    """The task instances Airflow clears (``dry_run``: would clear) in the run."""
    body = {
        "dry_run": dry_run,
        "dag_run_id": run_id,
        "only_failed": True,
        "include_downstream": True,
    }
    what = "clear (dry run)" if dry_run else "clear"
    doc = await rest.call(
        "POST", f"/dags/{quote(dag_id, safe='')}/clearTaskInstances", what, body=body
    )
    try:
        found, _, _ = api.parse_task_instances(doc)
    except ValueError as exc:
        raise AirflowError(rest.ep, what, f"unexpected answer ({exc})") from None
    return found


def listed(instances: list[api.TaskInstance]) -> list[str]:
    """``transform (failed, try 1)``, a mapped one ``score[3] (failed, try 2)``, in order."""
    out = []
    for ti in sorted(instances, key=lambda t: (t.task_id, t.map_index)):
        index = f"[{ti.map_index}]" if ti.map_index >= 0 else ""
        out.append(f"{ti.task_id}{index} ({ti.state or 'no state'}, try {ti.try_number})")
    return out
