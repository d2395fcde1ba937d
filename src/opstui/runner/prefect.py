"""Retrying a Prefect flow run through Prefect: plan, confirm, audit, reschedule.

The action takes the path every action takes (``runner.actions``); what
differs is where the work is done:

* the plan reads the flow run from Prefect and says exactly what will be
  sent (``set_state`` Scheduled, forced, as ``prefect flow-run retry``
  does). A run Prefect does not have in a terminal state (it is scheduled,
  running, or already retried by someone) is refused with its state; so is
  a completed one (nothing to retry), and a run of no deployment: set to
  Scheduled, no worker would run it;
* the action's run has one stage, ``reschedule-flow-run``, whose work reads
  the flow run again and sends ``set_state`` only if Prefect still has it in
  the state and attempt the plan showed: what someone else did since is not
  undone. That run is kept in ``prefect-actions/<endpoint>``; the flow run
  itself runs again in Prefect as its next attempt, and the next poll shows
  its new task runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opstui.config import Config
from opstui.config.endpoints import EndpointDef
from opstui.errors import UsageError
from opstui.runner.plan import (
    PREFECT_STAGE,
    PREFECT_STAGE_SET,
    Plan,
    Step,
    planned_effect,
    source_endpoint,
    source_retry_plan,
)
from opstui.runner.process import StageOutcome
from opstui.store import Store
from opstui.store import status as st
from opstui.store.rows import RunRow

#: Terminal flow run states a retry starts from (COMPLETED is terminal too,
#: but a completed run has nothing to retry).
_RETRYABLE = ("FAILED", "CRASHED", "CANCELLED")


def _endpoint(config: Config, name: str | None) -> EndpointDef:
    return source_endpoint(config, name, "prefect", "Prefect")


def plan_prefect_retry(config: Config, store: Store, run: RunRow) -> Plan:
    """Plan rescheduling a finished Prefect flow run; writes nothing."""
    from opstui.sources.http import shown_url
    from opstui.sources.prefect.rest import PrefectError
    from opstui.sources.prefect.retry import RESCHEDULE, call_once, described, flow_run

    ep = _endpoint(config, run.source)
    name, run_id = run.source_name, run.source_id
    if not name or not run_id:
        raise UsageError(f"run {run.id} names no Prefect flow run to retry")
    try:
        now = call_once(ep, lambda rest: flow_run(rest, run_id))
    except PrefectError as exc:
        raise UsageError(str(exc), hint="nothing was changed") from None
    where = f"Prefect endpoint {ep.name}"
    state = described(now)
    if now.state_type not in _RETRYABLE:
        busy = now.state_type not in ("COMPLETED",)
        raise UsageError(
            f"flow run {now.name} ({run_id}) of {name} is {state} in {where}"
            + (": it is not finished" if busy else ": there is nothing to retry"),
            hint="wait for it to end (the next poll shows it), then retry"
            if busy
            else "the next poll shows what Prefect did",
        )
    if now.deployment_id is None:
        raise UsageError(
            f"flow run {now.name} ({run_id}) of {name} has no deployment in {where}: set to "
            "Scheduled, no worker would run it",
            hint=f"run it again where it ran: prefect flow-run retry {run_id} "
            "--entrypoint FILE:FLOW",
        )
    attempt = max(1, now.run_count)
    return source_retry_plan(
        config,
        run,
        ep,
        stage_set=PREFECT_STAGE_SET,
        title=f"Retry flow run {now.name} ({run_id}) of {name} in {where}: reschedule it",
        step=Step(
            PREFECT_STAGE,
            f"POST {shown_url(ep.url).rstrip('/')}/flow_runs/{run_id}/set_state "
            f"{_json(RESCHEDULE)}",
        ),
        changes=[
            f"flow run {now.name}: {state} -> Scheduled, runs again as attempt {attempt + 1} "
            f"(whatever serves deployment {name} picks it up)",
        ],
        effect={"name": name, "flow_run_id": run_id, "expected": state},
    )


def _json(doc: Mapping[str, Any]) -> str:
    import json

    return json.dumps(doc, separators=(", ", ": "))


def stage_work(config: Config, params: Mapping[str, Any]) -> Callable[[], StageOutcome] | None:
    """The work of a ``reschedule-flow-run`` stage, or None for another stage."""
    effect = planned_effect(params, PREFECT_STAGE_SET)
    return None if effect is None else lambda: reschedule_planned(config, effect)


def reschedule_planned(config: Config, effect: Mapping[str, Any]) -> StageOutcome:
    """Reschedule the flow run, if Prefect still has it as the plan showed."""
    from opstui.sources.prefect.rest import PrefectError
    from opstui.sources.prefect.retry import call_once, described, flow_run, reschedule

    try:
        ep = _endpoint(config, effect.get("endpoint"))
    except UsageError as exc:
        return StageOutcome(st.FAILED, None, str(exc))
    run_id = str(effect["flow_run_id"])

    async def work(rest: Any) -> tuple[str, tuple[str, str | None] | None]:
        now = described(await flow_run(rest, run_id))
        if now != effect.get("expected"):
            return now, None
        return now, await reschedule(rest, run_id)

    try:
        now, answer = call_once(ep, work)
    except PrefectError as exc:
        return StageOutcome(st.FAILED, None, f"{exc}; nothing was changed")
    if answer is None:
        return StageOutcome(
            st.FAILED,
            None,
            f"Prefect now has flow run {run_id} {now}, not {effect.get('expected')} as the plan "
            "showed: someone acted on it since; nothing was changed",
        )
    verdict, reason = answer
    if verdict != "ACCEPT":
        why = f": {reason}" if reason else ""
        return StageOutcome(
            st.FAILED, None, f"Prefect answered {verdict} to rescheduling {run_id}{why}"
        )
    return StageOutcome(
        st.SUCCEEDED, 0, f"rescheduled flow run {run_id} of {effect.get('name')} (was {now})"
    )
