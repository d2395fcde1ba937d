"""Which plan a key press means for the selected row (no Textual here).

The console acts on what the cursor is on: a pipeline row retries that
pipeline's latest run or rolls its service back; a model row retrains the
model or rolls it back. The plan itself always comes from the same action
path as the CLI's (``runner.actions``), so what the confirmation shows is
exactly what will run.
"""

from __future__ import annotations

from opstui.config import DEFAULT_ENVIRONMENT, Config
from opstui.errors import UsageError
from opstui.runner.plan import Plan
from opstui.runner.planning import RETRYABLE, plan_retrain, plan_retry, plan_rollback
from opstui.store import Store
from opstui.store.history import run_history
from opstui.views.snapshot import Snapshot

#: The keys that act (and can be offered or not for the selected row).
ACTIONS = ("retry", "rollback", "retrain")


def model_of_pipeline(config: Config, pipeline: str) -> str | None:
    return next((m.name for m in config.models.values() if m.pipeline == pipeline), None)


def unavailable(config: Config, snap: Snapshot | None, action: str, key: str | None) -> str | None:
    """Why ``action`` cannot run on the row ``key`` (``pipeline:etl``), in the
    operator's words, or None if it can be planned: the footer dims a key
    whose action does not apply, and pressing it says this. Only what the
    console knows without a store read; the plan itself may still refuse
    (no previous good version, read-only), and says why."""
    if key is None:
        return f"select a pipeline or model row to {action}"
    kind, _, name = key.partition(":")
    if action == "retry":
        if kind != "pipeline":
            return f"retry works on a pipeline row; {name} is a {kind}"
        row = next((p for p in snap.pipelines if p.name == name), None) if snap else None
        if row is not None and row.latest is None:
            return f"{name} has never run: nothing to retry"
        if row is not None and row.latest is not None and row.latest.status not in RETRYABLE:
            return f"{name}'s last run {row.latest.status}: nothing to retry"
        return None
    if action == "retrain":
        if kind == "model":
            return (
                None if name in config.models else f"model {name} is not in [models] of the config"
            )
        if kind == "pipeline":
            if model_of_pipeline(config, name) is None:
                return f"pipeline {name} trains no model ([models.NAME] pipeline = ...)"
            return None
        return f"retrain works on a model or its pipeline; {name} is an {kind}"
    if action == "rollback":
        if kind == "endpoint":
            ep = config.endpoints.get(name)
            if ep is None or config.served(ep) is None:
                return (
                    f"endpoint {name} does not say what it serves, so there is nothing to "
                    f'roll back: add service = "PIPELINE" or model = "MODEL" to [endpoints.{name}]'
                )
            return None
        return None if kind in ("pipeline", "model") else f"nothing to roll back on {kind} {name}"
    return None


def make_plan(config: Config, store: Store, action: str, key: str) -> Plan:
    kind, _, name = key.partition(":")
    if kind == "endpoint" and action == "rollback":
        return _endpoint_rollback(config, store, name)
    if kind not in ("pipeline", "model"):
        raise UsageError(f"{action} works on a pipeline or a model row, not on {kind} {name}")
    if action == "retry":
        if kind != "pipeline":
            raise UsageError(f"retry works on a pipeline row; {name} is a model (t retrains it)")
        runs = run_history(store, name, limit=1)
        if not runs:
            raise UsageError(f"{name} has never run; nothing to retry")
        return plan_retry(config, store, runs[0].id)
    if action == "retrain":
        model = name if kind == "model" else model_of_pipeline(config, name)
        if model is None:
            raise UsageError(
                f"no model is trained by pipeline {name}",
                hint="add [models.NAME] pipeline = ... to opstui.toml",
            )
        return plan_retrain(config, store, model)
    if action == "rollback":
        if kind == "model":
            m = config.models.get(name)
            p = config.pipelines.get(m.pipeline) if m and m.pipeline else None
            env = (p.environment if p else None) or DEFAULT_ENVIRONMENT
            return plan_rollback(config, store, env, model=name)
        p = config.pipelines.get(name)
        env = (p.environment if p else None) or DEFAULT_ENVIRONMENT
        return plan_rollback(config, store, env, pipeline=name)
    raise UsageError(f"unknown action {action}")


def _endpoint_rollback(config: Config, store: Store, name: str) -> Plan:
    """``b`` on an endpoint: roll back what it serves, where it serves it."""
    ep = config.endpoints.get(name)
    served = config.served(ep) if ep is not None else None
    if served is None:
        raise UsageError(
            f"endpoint {name} does not say what it serves, so there is nothing to roll back",
            hint=f'add service = "PIPELINE" or model = "MODEL" to [endpoints.{name}]',
        )
    kind, target, environment = served
    if kind == "model":
        return plan_rollback(config, store, environment, model=target)
    return plan_rollback(config, store, environment, pipeline=target)
