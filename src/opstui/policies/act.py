"""A policy's action, through the operator's own path: plan -> guard -> audit -> run.

The plan comes from ``runner.planning`` (as ``opstui retry`` and the
console's keys), ``runner.actions.propose`` applies the same refusals
(read-only configuration or environment), and ``perform`` writes the audit
row with the actor ``policy:NAME`` and starts the run detached. A plan the
action path refuses (no earlier good version, a run that is no longer
failed) is a decision not to act, with its reason; nothing half-done.
"""

from __future__ import annotations

from typing import NamedTuple

from opstui.config import Config
from opstui.config.policies import PolicyDef
from opstui.errors import OpstuiError
from opstui.policies.decide import Decision
from opstui.runner.plan import Plan
from opstui.store import Store


class Acted(NamedTuple):
    """What acting did: the run and audit row it started, or why it did not."""

    run_id: int | None = None
    action_id: int | None = None
    refused: str | None = None
    #: False: an identical request was in flight, the policy joined its run.
    created: bool = True


def plan_for(config: Config, store: Store, policy: PolicyDef, d: Decision) -> Plan:
    """The plan ``d`` means (raises ``OpstuiError`` with why it cannot be planned)."""
    from opstui.runner.planning import plan_retrain, plan_retry, plan_rollback

    kind, _, name = d.target.partition(":")
    env = d.environment or "production"
    if policy.action == "retry":
        fault = d.fault or ""
        if fault.startswith("run:"):
            return plan_retry(config, store, int(fault.removeprefix("run:")))
        from opstui.store.history import run_history

        runs = run_history(store, name, limit=1)
        if not runs:
            raise OpstuiError(f"{name} has never run: nothing to retry")
        return plan_retry(config, store, runs[0].id)
    if policy.action == "retrain":
        model = (
            name
            if kind == "model"
            else next((m.name for m in config.models.values() if m.pipeline == name), None)
        )
        if model is None:
            raise OpstuiError(f"no model is trained by {name}")
        return plan_retrain(config, store, model)
    # A rollback: of what the endpoint serves, or of the pipeline's service.
    service = d.service or name
    if service in config.models and kind != "pipeline":
        return plan_rollback(config, store, env, model=service)
    return plan_rollback(config, store, env, pipeline=service)


#: How long a policy's notice stays firing in Alertmanager (it is one event,
#: not a condition that resolves): long enough for every receiver and repeat.
NOTICE_FOR = 3600.0


def notify(config: Config, policy: PolicyDef, d: Decision) -> None:
    """A ``notify`` policy's action: the decision is the notice (the trail, the
    timeline, the console's notice); with ``[notify] alertmanager``, it is sent
    there too, as ``OpstuiPolicy`` with the policy, subject, service and
    environment as labels (raises ``AlertmanagerError`` if it cannot be)."""
    url = config.notify.alertmanager
    if url is None:
        return
    import time

    from opstui.sources.alertmanager import AmAlert, post_alerts
    from opstui.timeutil import iso

    labels = dict(config.notify.labels)
    labels.update(alertname="OpstuiPolicy", severity="ticket", source="opstui",
                  policy=policy.name, subject=d.target.partition(":")[2] or d.target)  # fmt: skip
    if d.service:
        labels["service"] = d.service
    if d.environment:
        labels["environment"] = d.environment
    starts = min(d.at, time.time())  # never later than this machine's now (notify/send.py)
    description = f"opstui policy {policy.name} at {iso(d.at)}"
    alert = AmAlert(labels, {"summary": d.why, "description": description}, starts,
                    starts + NOTICE_FOR)  # fmt: skip
    post_alerts(url, [alert], timeout=config.notify.timeout)


def act(config: Config, store: Store, policy: PolicyDef, d: Decision) -> Acted:
    """Plan, guard, audit and start ``d``'s action as ``policy:NAME``."""
    from opstui.runner.actions import ActionRefused, perform, propose

    if policy.action == "notify":
        notify(config, policy, d)
        return Acted()
    try:
        plan = plan_for(config, store, policy, d)
    except OpstuiError as exc:
        return Acted(refused=f"not planned: {exc.message}")
    proposal = propose(config, plan, read_only=False)
    try:
        started = perform(store, config, proposal, actor=policy.actor, declined=None, detach=True)
    except ActionRefused as exc:
        return Acted(refused=exc.message)
    return Acted(started.run_id, started.action_id, None, started.created)
