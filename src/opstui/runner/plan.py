"""The plan as data: what planning, executing and the registry's alias moves share.

``actions`` builds a ``Plan`` (what the operator confirms), ``execute`` runs
the stages stored with it, ``registry`` plans and performs MLflow alias
moves; all three import this module and not each other.

A ``Plan`` carries each stage resolved once, at planning: its argument list
with every value known then substituted, its working directory, the names
(never the values) of the variables ``opstui.toml`` sets for it, its timeout.
Only ``{run_id}``, ``{attempt}`` and ``{store}`` are left for the runner:
they exist once the run is queued. So that filling them is one pass, as
``format_argv`` is (a value holding ``{store}`` stays that text), the stored
arguments double every other brace; ``fill_argv`` undoes it.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opstui.config import PLACEHOLDER, CommandDef, Config, PipelineDef, StageDef
from opstui.config.endpoints import EndpointDef
from opstui.errors import UsageError

if TYPE_CHECKING:
    from opstui.store.rows import DeploymentRow, RunRow

#: Placeholders only a queued run has a value for.
RUN_VALUES = ("run_id", "attempt", "store")
_FILL = re.compile(r"\{\{|\}\}|\{(" + "|".join(RUN_VALUES) + r")\}")

#: ``stage_set`` of a registry rollback run, and its one stage.
REGISTRY_STAGE_SET = "mlflow_alias"
REGISTRY_STAGE = "move-alias"
REGISTRY_PREFIX = "registry/"
#: ``stage_set`` of a retry an orchestrator performs (Airflow's clear), its
#: one stage, and the pipeline its action runs are kept in (one per endpoint).
ORCHESTRATOR_STAGE_SET = "airflow_clear"
ORCHESTRATOR_STAGE = "clear-task-instances"
ORCHESTRATOR_PREFIX = "airflow-actions/"
#: The same for Prefect: a flow run set back to Scheduled.
PREFECT_STAGE_SET = "prefect_retry"
PREFECT_STAGE = "reschedule-flow-run"
PREFECT_PREFIX = "prefect-actions/"


def previous_good_version(deployments: Sequence[DeploymentRow], current: str | None) -> str | None:
    """The version a rollback goes back to, or None if there is none.

    ``deployments`` are one target's in one environment, newest first;
    ``current`` is what serves now (None: nothing, as an MLflow alias not
    set). The newest succeeded deployment whose version is neither
    ``current`` nor one a rollback replaced: a failed deployment never
    served, and a rolled-back version is known bad.
    """
    bad = {current} | {d.replaced_version for d in deployments if d.action == "rollback"}
    return next(
        (d.version for d in deployments if d.status == "succeeded" and d.version not in bad), None
    )


@dataclass(frozen=True)
class Step:
    stage: str
    does: str


@dataclass(frozen=True)
class StagePlan:
    """One stage as it will run: what the runner executes and compares."""

    name: str
    argv: tuple[str, ...]  # braces doubled; {run_id} {attempt} {store} filled at run
    workdir: str
    env: tuple[str, ...]  # names opstui.toml sets; values are not stored (secrets)
    env_digest: str  # sha256 of those values, so an edited value is noticed
    timeout: float | None
    pass_secrets: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StagePlan:
        return cls(
            name=str(d["name"]),
            argv=tuple(str(a) for a in d["argv"]),
            workdir=str(d["workdir"]),
            env=tuple(d["env"]),
            env_digest=str(d["env_digest"]),
            timeout=None if d["timeout"] is None else float(d["timeout"]),
            pass_secrets=tuple(d.get("pass_secrets", ())),
        )

    def command(self, env: Mapping[str, str]) -> CommandDef:
        return CommandDef(self.argv, Path(self.workdir), dict(env), self.timeout, self.pass_secrets)


@dataclass(frozen=True)
class Plan:
    """What an action will run or change, shown before anything happens."""

    action: str  # run, retry, rollback, retrain
    target: str  # the pipeline or model acted on
    environment: str | None
    pipeline: str
    kind: str
    title: str
    steps: tuple[Step, ...]
    changes: tuple[str, ...]
    request: str  # identity of "the same request", for joining one in flight
    trigger: str
    parent_run_id: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    #: Every stage as resolved at planning; the runner executes these.
    stages: tuple[StagePlan, ...] = ()
    #: sha256 of the opstui.toml the plan was resolved from ("" without one).
    config_digest: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The plan as an operator reads it before confirming."""
        where = f" in {self.environment}" if self.environment else ""
        out = [f"{self.title}{where}"]
        out += [f"  {s.stage:<10} {s.does}" for s in self.steps]
        out += [f"  change:    {c}" for c in self.changes]
        return out

    @property
    def question(self) -> str:
        where = f" in {self.environment.upper()}" if self.environment else ""
        return f"{self.action.capitalize()} {self.target}{where}?"


def registry_stages(pipeline: PipelineDef) -> tuple[StageDef, ...]:
    # No command: the executor does the stage's work itself (registry.stage_work).
    return (StageDef(REGISTRY_STAGE, CommandDef((), pipeline_dir(pipeline), {}, None)),)


def synthetic_pipeline(config: Config, name: str) -> PipelineDef | None:
    """``registry/<model>`` for a model with a registry and no training pipeline;
    ``airflow-actions/<endpoint>`` (``prefect-actions/<endpoint>``) for the
    retries an Airflow (Prefect) endpoint performs."""
    for prefix, kind in ((ORCHESTRATOR_PREFIX, "airflow"), (PREFECT_PREFIX, "prefect")):
        if name.startswith(prefix):
            ep = config.endpoints.get(name.removeprefix(prefix))
            if ep is None or ep.kind != kind:
                return None
            return PipelineDef(name=name, kind="devops", stages=())
    if not name.startswith(REGISTRY_PREFIX):
        return None
    model = config.models.get(name.removeprefix(REGISTRY_PREFIX))
    if model is None or model.registry is None or model.pipeline is not None:
        return None
    return PipelineDef(name=name, kind="mlops", stages=())


def stages_for(pipeline: PipelineDef, stage_set: str) -> tuple[StageDef, ...]:
    """The stages a run of ``pipeline`` executes for an action."""
    if stage_set == "retrain":
        return pipeline.retrain or pipeline.stages
    if stage_set == REGISTRY_STAGE_SET:  # an MLflow alias move: one stage, no command
        return registry_stages(pipeline)
    if stage_set == ORCHESTRATOR_STAGE_SET:  # an Airflow clear: one stage, no command
        return (StageDef(ORCHESTRATOR_STAGE, CommandDef((), pipeline_dir(pipeline), {}, None)),)
    if stage_set == PREFECT_STAGE_SET:  # a Prefect reschedule: one stage, no command
        return (StageDef(PREFECT_STAGE, CommandDef((), pipeline_dir(pipeline), {}, None)),)
    if stage_set == "rollback":
        if pipeline.rollback is None:
            return (StageDef("rollback", CommandDef((), pipeline_dir(pipeline), {}, None)),)
        return (StageDef("rollback", pipeline.rollback),)
    return pipeline.stages


def source_endpoint(config: Config, name: str | None, kind: str, product: str) -> EndpointDef:
    """The ``kind`` endpoint a mirrored run came from, to act on it through."""
    ep = config.endpoints.get(name or "")
    if ep is None or ep.kind != kind:
        raise UsageError(
            f"the run comes from {product} endpoint {name!r}, which "
            f"{config.path or 'the config'} does not define",
            hint="add it back under [endpoints] to act on its runs",
        )
    return ep


def source_retry_plan(
    config: Config,
    run: RunRow,
    ep: EndpointDef,
    *,
    stage_set: str,
    title: str,
    step: Step,
    changes: Sequence[str],
    effect: Mapping[str, Any],
) -> Plan:
    """A retry done by the orchestrator a run is mirrored from (Airflow,
    Prefect): one stage, ``step``, in ``<kind>-actions/<endpoint>``, whose
    work (``planned_effect``) reads ``effect`` from the run's params."""
    prefix = ORCHESTRATOR_PREFIX if stage_set == ORCHESTRATOR_STAGE_SET else PREFECT_PREFIX
    pipeline = f"{prefix}{ep.name}"
    context = {"model": None, "version": None, "environment": None}
    return Plan(
        action="retry",
        target=run.pipeline,
        environment=None,
        pipeline=pipeline,
        kind="devops",
        title=title,
        steps=(step,),
        changes=tuple(changes),
        request=f"retry:{run.id}",
        trigger="retry",
        params={
            "action": "retry",
            "stage_set": stage_set,
            "context": {},
            "effects": {stage_set: {"endpoint": ep.name, **effect, "run": run.id}},
        },
        stages=resolve_stages(resolve_pipeline(config, pipeline), stage_set, context),
        config_digest=config.digest,
    )


def planned_effect(params: Mapping[str, Any], stage_set: str) -> Mapping[str, Any] | None:
    """What a ``source_retry_plan`` stage is to do, from its run's params; None
    for any other stage."""
    effect = (params.get("effects") or {}).get(stage_set)
    if params.get("stage_set") != stage_set or not effect:
        return None
    return dict(effect)


def resolve_pipeline(config: Config, name: str) -> PipelineDef:
    """A configured pipeline, else the synthetic ``registry/<model>`` of a registry model."""
    found = config.pipelines.get(name) or synthetic_pipeline(config, name)
    return found or config.pipeline(name)  # the latter raises, naming what is defined


def pipeline_dir(pipeline: PipelineDef) -> Path:
    return pipeline.stages[0].command.workdir if pipeline.stages else Path.cwd()


def placeholders(stages: tuple[StageDef, ...]) -> set[str]:
    """Placeholder names the stages' arguments use."""
    used: set[str] = set()
    for stage in stages:
        for arg in stage.command.argv:
            used.update(PLACEHOLDER.findall(arg))
    return used


def format_argv(argv: tuple[str, ...], context: Mapping[str, object]) -> list[str]:
    # Each argument is formatted on its own: a value full of shell syntax
    # stays one literal argument of the program, never a command.
    values = {k: "" if v is None else str(v) for k, v in context.items()}
    return [PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), arg) for arg in argv]


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _resolve_arg(arg: str, values: Mapping[str, str]) -> str:
    out, pos = [], 0
    for m in PLACEHOLDER.finditer(arg):
        name = m.group(1)
        out += [_escape(arg[pos : m.start()])]
        out += [m.group(0) if name in RUN_VALUES else _escape(values.get(name, ""))]
        pos = m.end()
    return "".join([*out, _escape(arg[pos:])])


def fill_argv(argv: tuple[str, ...], run: Mapping[str, object]) -> list[str]:
    """A stored argument list as it runs: run values in, doubled braces halved, one pass."""
    values = {k: "" if v is None else str(v) for k, v in run.items()}
    return [_FILL.sub(lambda m: values.get(m.group(1), "") if m.group(1) else m.group(0)[0], a)
            for a in argv]  # fmt: skip


def _digest_env(env: Mapping[str, str]) -> str:
    return hashlib.sha256(repr(sorted(env.items())).encode()).hexdigest()


def plan_values(
    config: Config, pipeline: str, context: Mapping[str, Any], parent_run_id: int | None = None
) -> dict[str, Any]:
    """What a plan substitutes: the action's values and what the config and host fix."""
    return {
        **context,
        "pipeline": pipeline,
        "parent_run_id": parent_run_id,
        "config": str(config.path.resolve()) if config.path else None,
        "config_dir": str(config.base_dir),
        "python": sys.executable,
    }


def resolve_stages(
    pipeline: PipelineDef, stage_set: str, values: Mapping[str, Any]
) -> tuple[StagePlan, ...]:
    """Each stage of ``stage_set`` as it will run, given the plan's ``values``."""
    text = {k: "" if v is None else str(v) for k, v in values.items()}
    return tuple(
        StagePlan(
            name=s.name,
            argv=tuple(_resolve_arg(a, {**text, "stage": s.name}) for a in s.command.argv),
            workdir=str(s.command.workdir),
            env=tuple(sorted(s.command.env)),
            env_digest=_digest_env(s.command.env),
            timeout=s.command.timeout,
            pass_secrets=tuple(s.command.pass_secrets),
        )
        for s in stages_for(pipeline, stage_set)
    )


def display(argv: tuple[str, ...], context: Mapping[str, Any]) -> str:
    """A command line as the confirmation shows it; what only the run knows stays {name}."""
    if not argv:
        return "(no command: recorded in the store)"
    known = {"python": sys.executable, **{k: v for k, v in context.items() if v is not None}}
    return shlex.join(
        PLACEHOLDER.sub(lambda m: str(known.get(m.group(1), m.group(0))), a) for a in argv
    )


def difference(confirmed: tuple[StagePlan, ...], now: tuple[StagePlan, ...]) -> str | None:
    """What differs between the confirmed stages and those resolved now, or None."""
    before, after = {s.name: s for s in confirmed}, {s.name: s for s in now}
    if list(before) != list(after):
        gone = [n for n in before if n not in after]
        new = [n for n in after if n not in before]
        if gone:
            return f"stage {gone[0]} is no longer configured"
        if new:
            return f"stage {new[0]} was added"
        return "its stages are in another order"
    labels = {
        "argv": "command",
        "workdir": "working directory",
        "env": "environment variables",
        "env_digest": "environment values",
        "timeout": "timeout",
        "pass_secrets": "pass_secrets",
    }
    for name, old in before.items():
        new_stage = after[name]
        for attr, label in labels.items():
            if getattr(old, attr) != getattr(new_stage, attr):
                return f"stage {name}'s {label} differs"
    return None
