"""Retrying a flow run the way Prefect does it (``prefect flow-run retry``).

A finished flow run is set back to Scheduled with ``force`` (Prefect's
orchestration rules refuse to leave a terminal state otherwise):
``POST /flow_runs/ID/set_state {"state": {"type": "SCHEDULED", "name":
"Scheduled"}, "force": true}``. The same flow run then runs again as its next
attempt (``run_count`` goes up) with new task runs, picked up by whatever
serves its deployment (a worker, or a ``serve`` process). A run of no
deployment has nobody to pick it up: the CLI reruns those itself, from
their source file, which opstui does not have.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar
from urllib.parse import quote

from opstui.config.endpoints import EndpointDef
from opstui.sources import orchestrator
from opstui.sources.prefect import api
from opstui.sources.prefect.rest import AsyncPrefectRest, PrefectError

T = TypeVar("T")
#: What is sent to reschedule a flow run (``prefect flow-run retry``'s body).
RESCHEDULE = {"state": {"type": "SCHEDULED", "name": "Scheduled"}, "force": True}


def call_once(ep: EndpointDef, work: Callable[[AsyncPrefectRest], Awaitable[T]]) -> T:
    """``work`` on a client of its own, its version checked first, from synchronous code."""
    return orchestrator.call_once(ep, AsyncPrefectRest, work, check=AsyncPrefectRest.version)


async def flow_run(rest: AsyncPrefectRest, run_id: str) -> api.FlowRun:
    """The flow run as Prefect has it now."""
    doc = await rest.call("GET", f"/flow_runs/{quote(run_id, safe='')}", "flow run")
    try:
        runs, skipped = api.parse_flow_runs([doc])
    except ValueError as exc:
        raise PrefectError(rest.ep, "flow run", f"unexpected answer ({exc})") from None
    if not runs:
        why = skipped[0].why if skipped else "nothing"
        raise PrefectError(rest.ep, "flow run", f"unexpected answer ({why})")
    return runs[0]


async def reschedule(rest: AsyncPrefectRest, run_id: str) -> tuple[str, str | None]:
    """Set the flow run to Scheduled: Prefect's verdict (ACCEPT, REJECT, ABORT,
    WAIT) and its reason, if it gave one."""
    doc = await rest.call(
        "POST", f"/flow_runs/{quote(run_id, safe='')}/set_state", "set_state", body=RESCHEDULE
    )
    verdict = doc.get("status") if isinstance(doc, Mapping) else None
    if not isinstance(verdict, str):
        raise PrefectError(rest.ep, "set_state", "the answer names no status")
    details = doc.get("details") if isinstance(doc, Mapping) else None
    reason = details.get("reason") if isinstance(details, Mapping) else None
    return verdict, reason if isinstance(reason, str) and reason else None


def described(run: api.FlowRun) -> str:
    """``FAILED (Failed), attempt 1``: what a plan shows and compares."""
    return f"{run.state_type} ({run.state_name}), attempt {max(1, run.run_count)}"
