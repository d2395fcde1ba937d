"""Rolling back a model registered in MLflow: move its alias back.

The action takes the same path as every other (plan, guard, confirm, audit,
run, outcome; see ``runner.actions``). Only two things differ:

* the plan reads the registry: what the alias points at now comes from
  MLflow, what it pointed at before from the store's deployment history
  (filled by the poller's sync and by earlier actions);
* the run has one stage, ``move-alias``, whose work is a REST call rather
  than a command (``stage_work``). A model without a training pipeline gets
  a synthetic pipeline, ``registry/<model>``, so the run has somewhere to live.

The deployment the rollback records, and the model version it makes
production, are the executor's usual ``deployment`` effect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opstui.config import Config, ModelDef
from opstui.config.endpoints import EndpointDef
from opstui.errors import UsageError
from opstui.runner.plan import (
    REGISTRY_PREFIX,
    REGISTRY_STAGE,
    REGISTRY_STAGE_SET,
    Plan,
    Step,
    plan_values,
    previous_good_version,
    resolve_pipeline,
    resolve_stages,
)
from opstui.runner.process import StageOutcome
from opstui.store import Store
from opstui.store import models as store_models
from opstui.store import status as st

#: ``stage_set`` of a registry rollback run, and its one stage.
STAGE_SET = REGISTRY_STAGE_SET
STAGE = REGISTRY_STAGE
PIPELINE_PREFIX = REGISTRY_PREFIX


def _endpoint(config: Config, model: ModelDef) -> EndpointDef:
    assert model.registry is not None  # checked by the caller
    ep = config.endpoints.get(model.registry)
    if ep is None or ep.kind != "mlflow":  # validated by the config; kept for old plans
        raise UsageError(f"endpoint {model.registry!r} is not an MLflow endpoint in {config.path}")
    return ep


def alias_for(ep: EndpointDef, model: ModelDef, environment: str) -> str:
    """The alias that serves ``model`` in ``environment``.

    The model's own alias (``models.NAME.alias``) when it serves that
    environment (``endpoints.NAME.aliases``, else the alias name itself),
    else the one alias the endpoint maps to it.
    """
    from opstui.sources.mlflow.sync import environment_of  # start-up cost, not a cycle: see below

    if environment_of(ep, model.alias) == environment:
        return model.alias
    others = sorted(a for a, env in ep.aliases.items() if env == environment)
    if len(others) == 1:
        return others[0]
    served = environment_of(ep, model.alias)
    raise UsageError(
        f"no alias of {model.name} serves {environment}: its alias {model.alias} serves {served}",
        hint=f'map one in [endpoints.{ep.name}] aliases = {{ {model.alias} = "{environment}" }}',
    )


def plan_registry_rollback(
    config: Config, store: Store, environment: str, model: str, *, to: str | None
) -> Plan:
    """Plan moving the alias of ``model`` for ``environment`` back; writes nothing."""
    # Lazy for start-up cost, not a cycle: every runner imports this module,
    # and only a registry rollback needs the MLflow client and its HTTP stack.
    from opstui.sources.mlflow.rest import MlflowRest

    m = config.models[model]
    ep = _endpoint(config, m)
    alias = alias_for(ep, m, environment)
    with MlflowRest(ep) as rest:
        registered = rest.registered_model(model, versions=True)
    existing = [v.version for v in registered.versions]
    current = registered.aliases.get(alias)
    history = [
        d
        for d in store_models.deployment_history(store, model, environment, limit=10_000)
        if d.target_kind == "model"
    ]
    good = [d for d in history if d.status == "succeeded"]
    where = f"MLflow endpoint {ep.name}"
    if to is not None:
        if to == current:
            raise UsageError(f"alias {alias} of {model} already points at version {to}")
        version = to
    else:
        earlier = previous_good_version(history, current)
        if earlier is None:
            raise UsageError(
                f"no earlier good version of {model} in {environment} to roll back to "
                f"(alias {alias} is on {current or 'no version'})",
                hint="name one with --to VERSION; versions in the registry: "
                + (", ".join(existing) or "none"),
            )
        version = earlier
    if version not in existing:
        raise UsageError(
            f"version {version} of {model} no longer exists in {where}",
            hint="name one that does with --to VERSION: " + (", ".join(existing) or "none"),
        )
    # The deployment this replaces: the store's current one, if it is what
    # the registry shows; otherwise the executor first records what it sees.
    store_current = good[0] if good else None
    replaces = store_current.id if store_current and store_current.version == current else None
    pipeline = m.pipeline or f"{PIPELINE_PREFIX}{model}"
    kind = config.pipelines[m.pipeline].kind if m.pipeline else "mlops"
    context = {"environment": environment, "version": version, "model": model}
    digest = config.digest  # of the text the plan is made from, not the file now
    return Plan(
        action="rollback",
        target=model,
        environment=environment,
        pipeline=pipeline,
        kind=kind,
        title=f"Roll back {model} to version {version}",
        steps=(Step(STAGE, f"set alias {alias} of {model} to version {version} in {where}"),),
        changes=(
            f"{environment}: {model} {current or '(alias not set)'} -> {version} (alias {alias})",
        ),
        request=f"rollback:model:{model}:{environment}",
        trigger="rollback",
        params={
            "action": "rollback",
            "stage_set": STAGE_SET,
            "context": context,
            "effects": {
                "deployment": {
                    "environment": environment,
                    "target": model,
                    "target_kind": "model",
                    "version": version,
                    "replaces_id": replaces,
                    "action": "rollback",
                },
                "mlflow_alias": {
                    "registry": ep.name,
                    "model": model,
                    "alias": alias,
                    "environment": environment,
                    "version": version,
                    "expected": current,
                },
            },
        },
        stages=resolve_stages(
            resolve_pipeline(config, pipeline), STAGE_SET, plan_values(config, pipeline, context)
        ),
        config_digest=digest,
    )


def stage_work(
    store: Store, config: Config, params: Mapping[str, Any]
) -> Callable[[], StageOutcome] | None:
    """The work of a ``move-alias`` stage, or None for a stage that runs a command."""
    move = (params.get("effects") or {}).get("mlflow_alias")
    if params.get("stage_set") != STAGE_SET or not move:
        return None
    return lambda: move_alias(store, config, move)


def move_alias(store: Store, config: Config, move: Mapping[str, Any]) -> StageOutcome:
    """Point the alias at the planned version, if it is still where the plan saw it."""
    from opstui.sources.mlflow.rest import MlflowError, MlflowRest  # start-up cost (above)
    from opstui.store.mlflow_sync import AliasState, ExternalVersion, sync_registry

    name, alias, version = move["model"], move["alias"], move["version"]
    ep = config.endpoints.get(move["registry"])
    if ep is None or ep.kind != "mlflow":
        return StageOutcome(
            st.FAILED, None, f"{move['registry']!r} is not an MLflow endpoint in {config.path}"
        )
    try:
        with MlflowRest(ep) as rest:
            before = rest.registered_model(name).aliases.get(alias)
            if before != move["expected"]:
                # Someone moved it since the plan was confirmed: do not undo their move.
                return StageOutcome(
                    st.FAILED,
                    None,
                    f"alias {alias} of {name} moved to {before or 'no version'} since the plan "
                    f"(planned from {move['expected'] or 'no version'}); nothing was changed",
                )
            if before is not None:
                # What the registry serves now, recorded if the poller has not yet,
                # so the rollback's deployment names the right one as replaced.
                sync_registry(
                    store,
                    aliases=[AliasState(name, alias, move["environment"], before, ep.name)],
                    now=store.clock(),
                )
            rest.set_alias(name, alias, version)
            after = rest.registered_model(name).aliases.get(alias)
    except MlflowError as exc:
        return StageOutcome(st.FAILED, None, str(exc))
    if after != version:
        return StageOutcome(
            st.FAILED, None, f"alias {alias} of {name} reads {after} after moving it to {version}"
        )
    # The version becomes production in the store (the deployment effect);
    # it must be known there even if the poller never synced it.
    sync_registry(
        store,
        versions=[ExternalVersion(name, version, None, {}, store.clock())],
        now=store.clock(),
    )
    return StageOutcome(
        st.SUCCEEDED,
        0,
        f"alias {alias} of {name}: {before or 'no version'} -> {version} in MLflow {ep.name}",
    )
