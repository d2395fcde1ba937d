"""Planning an operator action: ``plan_run``, ``plan_retry``,
``plan_rollback``, ``plan_retrain`` (the first step of ``actions``' path).

Each resolves the pipeline once (``runner.plan``): the plan holds every
stage's argument list, working directory, environment names and timeout,
and the digest of the config, and refuses what cannot work (a run that did
not fail, no earlier good version) before anything is written.
"""

from __future__ import annotations

from typing import Any

from opstui.config import Config, PipelineDef
from opstui.errors import UsageError
from opstui.runner import airflow, prefect, registry
from opstui.runner.plan import (
    Plan,
    Step,
    display,
    placeholders,
    plan_values,
    previous_good_version,
    resolve_pipeline,
    resolve_stages,
    stages_for,
)
from opstui.store import Store, history
from opstui.store import models as store_models
from opstui.store import status as st

RETRYABLE = frozenset({st.FAILED, st.TIMED_OUT, st.CANCELLED, st.LOST})
#: Placeholders an action must supply a value for (the others come from the run).
_ACTION_VALUES = ("environment", "version", "model", "gate_metric", "min_improvement")


def _steps(
    pipeline: PipelineDef,
    stage_set: str,
    context: dict[str, Any],
    reuse: dict[str, int] | None = None,
    parent: int | None = None,
) -> tuple[Step, ...]:
    reuse = reuse or {}
    return tuple(
        Step(s.name, f"reuse (succeeded in run {parent})")
        if s.name in reuse
        else Step(s.name, f"run: {display(s.command.argv, {**context, 'stage': s.name})}")
        for s in stages_for(pipeline, stage_set)
    )


def _resolved(
    config: Config, p: PipelineDef, stage_set: str, context: dict[str, Any], parent: int | None
) -> dict[str, Any]:
    """The plan's stages resolved once, and the digest of the config they came from."""
    values = plan_values(config, p.name, context, parent)
    stages = resolve_stages(p, stage_set, values)
    # The digest of the text the config was loaded from (a console loads it at
    # start), not of the file as it reads now.
    return {"stages": stages, "config_digest": config.digest}


def _require_values(pipeline: PipelineDef, stage_set: str, context: dict[str, Any]) -> None:
    missing = [
        name
        for name in sorted(placeholders(stages_for(pipeline, stage_set)))
        if name in _ACTION_VALUES and context.get(name) in (None, "")
    ]
    if missing:
        flags = ", ".join(f"--{m.replace('_', '-')}" for m in missing)
        raise UsageError(
            f"pipeline {pipeline.name}'s commands use {{{missing[0]}}}",
            hint=f"pass {flags}, or set it in opstui.toml",
        )


def plan_run(
    config: Config, pipeline: str, *, environment: str | None = None, version: str | None = None
) -> Plan:
    p = config.pipeline(pipeline)
    if not p.stages:
        raise UsageError(f"pipeline {pipeline} has no stages in {config.path}")
    env = environment or p.environment
    _check_environment(config, env)
    context = {"environment": env, "version": version}
    _require_values(p, "stages", context)
    return Plan(
        action="run",
        target=pipeline,
        environment=env,
        pipeline=pipeline,
        kind=p.kind,
        title=f"Run {pipeline}" + (f" {version}" if version else ""),
        steps=_steps(p, "stages", context),
        changes=(),
        request=f"run:{pipeline}:{env or ''}:{version or ''}",
        trigger="manual",
        params={"action": "run", "stage_set": "stages", "context": context},
        **_resolved(config, p, "stages", context, None),
    )


def plan_retry(config: Config, store: Store, run_id: int, *, from_stage: str | None = None) -> Plan:
    run = history.get_run(store, run_id)
    if run.status not in RETRYABLE:
        raise UsageError(
            f"run {run_id} of {run.pipeline} is {run.status}",
            hint="only a failed, timed-out, cancelled or lost run can be retried",
        )
    if run.source_kind == "airflow":  # Airflow retries it: clearing its failed tasks
        if from_stage is not None:
            raise UsageError("a DAG run is retried from its failed tasks: --from does not apply")
        return airflow.plan_airflow_retry(config, store, run)
    if run.source_kind == "prefect":  # Prefect retries it: the same flow run, rescheduled
        if from_stage is not None:
            raise UsageError("a flow run is retried whole by Prefect: --from does not apply")
        return prefect.plan_prefect_retry(config, store, run)
    p = resolve_pipeline(config, run.pipeline)
    parent_params = history.run_params(store, run_id)
    stage_set = str(parent_params.get("stage_set", "stages"))
    stages = stages_for(p, stage_set)
    names = [s.name for s in stages]
    recorded = {s.name: s for s in run.stages}
    if from_stage is not None and from_stage not in names:
        raise UsageError(
            f"pipeline {run.pipeline} has no stage {from_stage!r}",
            hint=f"its stages: {', '.join(names)}",
        )
    resume = from_stage or next(
        (n for n in names if n not in recorded or recorded[n].status != st.SUCCEEDED), names[-1]
    )
    reuse: dict[str, int] = {}
    for name in names[: names.index(resume)]:
        stage = recorded.get(name)
        if stage is None or stage.status != st.SUCCEEDED:
            raise UsageError(
                f"cannot retry run {run_id} from {resume}: stage {name} did not succeed in it",
                hint=f"use --from {name} or an earlier stage",
            )
        # Point at the run that really did the work, not at another reuse.
        reuse[name] = stage.reused_from_id or stage.id
    context = dict(parent_params.get("context") or {})  # type: ignore[call-overload]
    return Plan(
        action="retry",
        target=run.pipeline,
        environment=context.get("environment"),
        pipeline=run.pipeline,
        kind=p.kind,
        title=f"Retry run {run_id} of {run.pipeline} from stage {resume} "
        f"(attempt {run.attempt + 1})",
        steps=_steps(p, stage_set, context, reuse, run_id),
        changes=(),
        request=f"retry:{run_id}",
        trigger="retry",
        parent_run_id=run_id,
        params={
            "action": "retry",
            "stage_set": stage_set,
            "context": context,
            "reuse": reuse,
            "effects": parent_params.get("effects", {}),
        },
        **_resolved(config, p, stage_set, context, run_id),
    )


def _check_environment(config: Config, environment: str | None) -> None:
    if environment and config.environments and environment not in config.environments:
        raise UsageError(
            f"environment {environment!r} is not defined",
            hint=f"defined environments: {', '.join(sorted(config.environments))}",
        )


def plan_rollback(
    config: Config,
    store: Store,
    environment: str,
    *,
    pipeline: str | None = None,
    model: str | None = None,
    to: str | None = None,
) -> Plan:
    _check_environment(config, environment)
    if pipeline and model:
        raise UsageError("roll back either a --pipeline or a --model, not both")
    if model is not None:
        if model not in config.models:
            raise UsageError(
                f"model {model!r} is not in [models] of {config.path}",
                hint="add [models.NAME] with the pipeline that trains it",
            )
        if config.models[model].registry is not None:  # in MLflow: move its alias back
            return registry.plan_registry_rollback(config, store, environment, model, to=to)
        kind, target, p = "model", model, _model_pipeline(config, model)
    else:
        if pipeline is None:
            candidates = sorted(n for n, d in config.pipelines.items() if d.rollback)
            if len(candidates) != 1:
                raise UsageError(
                    "which pipeline? pass --pipeline NAME or --model NAME",
                    hint=f"pipelines with a rollback command: {', '.join(candidates) or 'none'}",
                )
            pipeline = candidates[0]
        kind, target, p = "service", pipeline, config.pipeline(pipeline)
        if p.rollback is None:
            raise UsageError(
                f"pipeline {pipeline} has no rollback command",
                hint=f"add [pipelines.{pipeline}.rollback] run = [...] to {config.path}",
            )
    deployments = [
        d
        for d in store_models.deployment_history(store, target, environment, limit=10_000)
        if d.target_kind == kind
    ]
    good = [d for d in deployments if d.status == "succeeded"]
    if not good:
        raise UsageError(f"nothing of {target} is deployed to {environment}; nothing to roll back")
    current = good[0]
    if to is not None:
        if to == current.version:
            raise UsageError(f"{target} {to} is already what {environment} runs")
        if to not in {d.version for d in good}:
            raise UsageError(
                f"{target} {to} was never deployed to {environment}",
                hint="deployed versions: " + ", ".join(dict.fromkeys(d.version for d in good)),
            )
        version = to
    else:
        earlier = previous_good_version(deployments, current.version)
        if earlier is None:
            raise UsageError(
                f"no earlier good version of {target} in {environment} to roll back to",
                hint="name one with --to VERSION",
            )
        version = earlier
    context = {"environment": environment, "version": version, "model": model}
    effect = {
        "environment": environment,
        "target": target,
        "target_kind": kind,
        "version": version,
        "replaces_id": current.id,
        "action": "rollback",
    }
    return Plan(
        action="rollback",
        target=target,
        environment=environment,
        pipeline=p.name,
        kind=p.kind,
        title=f"Roll back {target} to {version}",
        steps=_steps(p, "rollback", context),
        changes=(f"{environment}: {target} {current.version} -> {version}",),
        request=f"rollback:{kind}:{target}:{environment}",
        trigger="rollback",
        params={
            "action": "rollback",
            "stage_set": "rollback",
            "context": context,
            "effects": {"deployment": effect},
        },
        **_resolved(config, p, "rollback", context, None),
    )


def _model_pipeline(config: Config, model: str) -> PipelineDef:
    m = config.models[model]
    if m.pipeline is None:
        raise UsageError(
            f"model {model} has no training pipeline in {config.path}",
            hint=f'set "models.{model}.pipeline" to the pipeline that trains it',
        )
    return config.pipeline(m.pipeline)


def plan_retrain(config: Config, store: Store, model: str) -> Plan:
    if model not in config.models:
        raise UsageError(
            f"model {model!r} is not in [models] of {config.path}",
            hint=f"configured models: {', '.join(sorted(config.models)) or 'none'}",
        )
    m = config.models[model]
    p = _model_pipeline(config, model)
    production = next(
        (v for v in store_models.model_versions(store, model) if v.status == "production"), None
    )
    better = "lower" if m.lower_is_better else "higher"
    if production is None:
        gate = "gate: no production version yet, so the new version is promoted if the run passes"
    else:
        value = production.metrics.get(m.gate_metric)
        shown = f"{value:.4f}" if isinstance(value, int | float) else "not recorded"
        gate = (
            f"gate: {m.gate_metric} ({better} is better) must beat production "
            f"v{production.version} ({shown}) by >= {m.min_improvement:g}; "
            "otherwise the new version stays a candidate"
        )
    environment = p.environment or "production"
    context: dict[str, Any] = {
        "model": model,
        "environment": environment,
        "gate_metric": m.gate_metric,
        "min_improvement": m.min_improvement,
        "lower_is_better": str(m.lower_is_better).lower(),
    }
    _require_values(p, "retrain", context)
    return Plan(
        action="retrain",
        target=model,
        environment=environment,
        pipeline=p.name,
        kind=p.kind,
        title=f"Retrain {model} with {p.name}",
        steps=_steps(p, "retrain", context),
        changes=(gate,),
        request=f"retrain:{model}",
        trigger="retrain",
        params={"action": "retrain", "stage_set": "retrain", "context": context},
        **_resolved(config, p, "retrain", context, None),
    )
