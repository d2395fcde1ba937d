"""Retrying an Airflow DAG run through Airflow: plan, confirm, audit, clear.

The action takes the path every action takes (``runner.actions``); what
differs is where the work is done:

* the plan is Airflow's own answer to ``clearTaskInstances`` with
  ``dry_run``: exactly the task instances it would clear (the failed ones
  and their downstream). A run Airflow still has queued or running, or one
  with nothing failed left (cleared by someone else), is refused with why;
* the action's run has one stage, ``clear-task-instances``, whose work is
  the same call without ``dry_run``, made only if Airflow still answers the
  dry run the plan showed: what someone else changed since is not undone.
  That run is kept in ``airflow-actions/<endpoint>``; the DAG run itself
  goes back to queued in Airflow and the next poll shows its tasks running
  again, each with its next try as the attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opstui.config import Config
from opstui.config.endpoints import EndpointDef
from opstui.errors import UsageError
from opstui.runner.plan import (
    ORCHESTRATOR_STAGE,
    ORCHESTRATOR_STAGE_SET,
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

#: Airflow DAG run states that clearing would disturb.
_IN_FLIGHT = ("queued", "running")


def _endpoint(config: Config, name: str | None) -> EndpointDef:
    return source_endpoint(config, name, "airflow", "Airflow")


def plan_airflow_retry(config: Config, store: Store, run: RunRow) -> Plan:
    """Plan clearing the failed task instances of an Airflow DAG run; writes nothing."""
    from opstui.sources.airflow.clear import call_once, clear, listed, run_state
    from opstui.sources.airflow.rest import AirflowError

    ep = _endpoint(config, run.source)
    dag_id, run_id = run.source_name, run.source_id
    if not dag_id or not run_id:
        raise UsageError(f"run {run.id} names no Airflow DAG run to retry")

    async def look(rest: Any) -> tuple[str, list[Any]]:
        state = await run_state(rest, dag_id, run_id)
        if state in _IN_FLIGHT:
            return state, []
        return state, await clear(rest, dag_id, run_id, dry_run=True)

    try:
        state, would = call_once(ep, look)
    except AirflowError as exc:
        raise UsageError(str(exc), hint="nothing was changed") from None
    where = f"Airflow endpoint {ep.name}"
    if state in _IN_FLIGHT:
        raise UsageError(
            f"DAG run {run_id} of {dag_id} is {state} in {where}: clearing it now would cut "
            "tasks that are running",
            hint="wait for it to end (the next poll shows it), then retry",
        )
    if not would:
        raise UsageError(
            f"DAG run {run_id} of {dag_id} has no failed task to clear in {where} (it is {state}; "
            "someone may have cleared it already)",
            hint="the next poll shows what Airflow did",
        )
    shown = listed(would)
    return source_retry_plan(
        config,
        run,
        ep,
        stage_set=ORCHESTRATOR_STAGE_SET,
        title=f"Retry DAG run {run_id} of {dag_id} in {where}: clear {len(would)} task "
        f"instance{'s' if len(would) > 1 else ''}",
        step=Step(
            ORCHESTRATOR_STAGE,
            f"clearTaskInstances (only_failed, include_downstream) on {dag_id} {run_id}",
        ),
        changes=[f"{line} -> cleared, runs again" for line in shown],
        effect={"dag_id": dag_id, "dag_run_id": run_id, "expected": shown},
    )


def stage_work(config: Config, params: Mapping[str, Any]) -> Callable[[], StageOutcome] | None:
    """The work of a ``clear-task-instances`` stage, or None for another stage."""
    effect = planned_effect(params, ORCHESTRATOR_STAGE_SET)
    return None if effect is None else lambda: clear_planned(config, effect)


def clear_planned(config: Config, effect: Mapping[str, Any]) -> StageOutcome:
    """Clear what the plan showed, if Airflow still answers the same dry run."""
    from opstui.sources.airflow.clear import call_once, clear, listed
    from opstui.sources.airflow.rest import AirflowError

    try:
        ep = _endpoint(config, effect.get("endpoint"))
    except UsageError as exc:
        return StageOutcome(st.FAILED, None, str(exc))
    dag_id, run_id = str(effect["dag_id"]), str(effect["dag_run_id"])

    async def work(rest: Any) -> tuple[list[str], list[str]]:
        now = listed(await clear(rest, dag_id, run_id, dry_run=True))
        if now != list(effect["expected"]):
            return now, []
        return now, listed(await clear(rest, dag_id, run_id, dry_run=False))

    try:
        now, cleared = call_once(ep, work)
    except AirflowError as exc:
        return StageOutcome(st.FAILED, None, f"{exc}; nothing was changed")
    if not cleared:
        said = ", ".join(now) or "nothing"
        return StageOutcome(
            st.FAILED,
            None,
            f"Airflow would now clear {said}, not what the plan showed: someone acted on "
            f"DAG run {run_id} since; nothing was changed",
        )
    return StageOutcome(st.SUCCEEDED, 0, f"cleared {', '.join(cleared)} in {dag_id} {run_id}")
