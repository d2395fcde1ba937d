"""``[pipelines.NAME]``: a pipeline's stages, rollback and retrain commands
as argument lists (never shell lines), the ``{placeholder}`` values an
argument may name, and the inheritance of ``workdir``, ``env``, ``timeout``
and ``pass_secrets`` from the pipeline to its commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opstui.config.schema import Items, Spec
from opstui.errors import ConfigError

#: Values a command argument may name as ``{placeholder}``; each argument is
#: formatted on its own, so a value never becomes shell syntax or a second
#: argument, whatever characters it holds.
PLACEHOLDERS = frozenset(
    {
        "run_id",
        "pipeline",
        "stage",
        "attempt",
        "parent_run_id",
        "environment",
        "version",
        "model",
        "gate_metric",
        "min_improvement",
        "lower_is_better",
        "config_dir",
        "store",
        "python",  # the interpreter running opstui: no dependence on PATH
    }
)


#: ``{name}`` in an argument, lowercase only: shell braces (``{ a; }``,
#: ``${HOME}``) and JSON in arguments are left alone.
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def _check_argv(value: Any) -> str | None:
    if not value or not all(isinstance(a, str) for a in value):
        return "a non-empty list of strings (the program, then its arguments)"
    for arg in value:
        unknown = [f for f in PLACEHOLDER.findall(arg) if f not in PLACEHOLDERS]
        if unknown:
            return (
                f"arguments using only known placeholders; {{{unknown[0]}}} is not one of "
                + ", ".join(sorted(PLACEHOLDERS))
            )
    return None


def _check_env(value: Any) -> str | None:
    if not all(isinstance(v, str) for v in value.values()):
        return 'a table of strings (NAME = "value")'
    return None


_NUMBER = (int, float)
_ARGV = Spec((list,), "a list of strings", required=True, check=_check_argv)
_ENV = Spec((dict,), "a table of strings", check=_check_env)
_SECONDS = Spec(_NUMBER, "a number of seconds", minimum=0.001)
_PASS_SECRETS = Spec(
    (list,),
    'a list of environment variable names (["WEB_API_TOKEN"])',
    check=lambda v: (
        None
        if all(isinstance(x, str) and re.fullmatch(r"\w+", x) for x in v)
        else 'a list of environment variable names (["WEB_API_TOKEN"])'
    ),
)
_COMMAND = {
    "run": _ARGV,
    "workdir": Spec((str,), "a directory"),
    "env": _ENV,
    "timeout": _SECONDS,
    "pass_secrets": _PASS_SECRETS,
}
_STAGE = {"name": Spec((str,), "a stage name", required=True), **_COMMAND}


def pipeline_schema() -> dict[str, Any]:
    """``[pipelines.NAME]``'s keys."""
    return {
        "kind": Spec(
            (str,),
            '"devops" or "mlops"',
            required=True,
            check=lambda v: None if v in ("devops", "mlops") else '"devops" or "mlops"',
        ),
        "description": Spec((str,), "text"),
        "workdir": Spec((str,), "a directory"),
        "env": _ENV,
        "timeout": _SECONDS,
        "pass_secrets": _PASS_SECRETS,
        "environment": Spec((str,), "an environment name"),
        "stages": Items(_STAGE),
        "rollback": dict(_COMMAND),
        "retrain": {**_COMMAND, "run": Spec((list,), "a list of strings", check=_check_argv)},
    }


@dataclass(frozen=True)
class CommandDef:
    """A command to run: an argument list, never a shell line."""

    argv: tuple[str, ...]
    workdir: Path
    env: dict[str, str]
    timeout: float | None
    #: Variables named by an endpoint's ``secret_headers`` that this command
    #: may see; every other such variable is withheld from it.
    pass_secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageDef:
    name: str
    command: CommandDef


@dataclass(frozen=True)
class PipelineDef:
    name: str
    kind: str
    stages: tuple[StageDef, ...]
    environment: str | None = None
    rollback: CommandDef | None = None
    #: Stages a retrain runs; the pipeline's own stages when not configured.
    retrain: tuple[StageDef, ...] | None = None
    description: str | None = None

    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]


def _command(raw: dict[str, Any], base: Path, inherited: CommandDef | None = None) -> CommandDef:
    workdir = base / raw["workdir"] if "workdir" in raw else (inherited or _root(base)).workdir
    env = {**(inherited.env if inherited else {}), **raw.get("env", {})}
    timeout = raw.get("timeout", inherited.timeout if inherited else None)
    secrets = (*(inherited.pass_secrets if inherited else ()), *raw.get("pass_secrets", ()))
    return CommandDef(tuple(raw.get("run", ())), workdir, env, timeout, secrets)


def _root(base: Path) -> CommandDef:
    return CommandDef((), base, {}, None)


def parse_pipelines(data: dict[str, Any], base: Path, where: str) -> dict[str, PipelineDef]:
    out: dict[str, PipelineDef] = {}
    for name, raw in data.items():
        defaults = _command(raw, base)  # pipeline-level workdir, env, timeout
        stages = tuple(
            StageDef(s["name"], _command(s, base, defaults)) for s in raw.get("stages", [])
        )
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ConfigError(f'{where}: pipeline "{name}" has two stages named "{dup}"')
        rollback = _command(raw["rollback"], base, defaults) if "rollback" in raw else None
        if rollback is not None and not rollback.argv:
            raise ConfigError(f'{where}: "pipelines.{name}.rollback.run" is required')
        retrain = None
        if "retrain" in raw:
            command = _command(raw["retrain"], base, defaults)
            # A retrain with its own command is one stage; without, the pipeline's stages.
            retrain = (StageDef("retrain", command),) if command.argv else stages
        out[name] = PipelineDef(
            name=name,
            kind=raw["kind"],
            stages=stages,
            environment=raw.get("environment"),
            rollback=rollback,
            retrain=retrain,
            description=raw.get("description"),
        )
    return out
