"""``opstui.toml``: loading, validation, and where the store lives.

Validation is strict: an unknown key is an error that names it (with the
closest known key), because a typo in an ops config silently ignored is a
3 a.m. surprise. Only the standard library is used here so every layer,
including the tracker inside a user's pipeline, can read the config cheaply.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from opstui.config.drift import drift_schema
from opstui.config.endpoints import EndpointDef, endpoint_schema, parse_endpoints
from opstui.config.keys import KEY_IDS
from opstui.config.schema import Items, Named, Spec
from opstui.errors import ConfigError

CONFIG_NAME = "opstui.toml"
DEFAULT_STORE = "opstui.db"
ENV_STORE = "OPSTUI_STORE"
ENV_CONFIG = "OPSTUI_CONFIG"


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


def _check_keys(value: Any) -> str | None:
    unknown = sorted(set(value) - KEY_IDS)
    if unknown:
        return f"binding ids from: {', '.join(sorted(KEY_IDS))} (not {', '.join(unknown)})"
    if not all(isinstance(v, str) and v for v in value.values()):
        return 'a table of key names (retry = "R")'
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

#: The known keys. A nested dict is a TOML table.
SCHEMA: dict[str, Any] = {
    "store": Spec((str,), "a path to the run store"),
    # The console: `opstui` / `opstui tui`.
    "tui": {
        "theme": Spec((str,), "a theme name or a theme file"),
        "refresh": Spec(_NUMBER, "a number of seconds", minimum=0.1),
        "keys": Spec((dict,), "a table of binding id = key", check=_check_keys),
    },
    "read_only": Spec((bool,), "true or false"),
    "actor": Spec((str,), "a name like ops@example"),
    "record": {
        "heartbeat_timeout": Spec(_NUMBER, "a number of seconds", minimum=1),
    },
    "environments": Named(
        {
            "read_only": Spec((bool,), "true or false"),
            "description": Spec((str,), "text"),
        }
    ),
    "pipelines": Named(
        {
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
    ),
    "endpoints": Named(endpoint_schema()),
    # Drift windows and thresholds: defaults here, per model below.
    "drift": drift_schema(),
    "models": Named(
        {
            "pipeline": Spec((str,), "the name of the pipeline that trains it"),
            # A model registered in MLflow: the [endpoints] entry (kind mlflow)
            # of its registry, and the alias that serves it.
            "registry": Spec((str,), "the name of an [endpoints] entry of kind mlflow"),
            "alias": Spec((str,), "an MLflow alias, e.g. champion"),
            "gate_metric": Spec((str,), "a metric name"),
            "min_improvement": Spec(_NUMBER, "a number"),
            "lower_is_better": Spec((bool,), "true or false"),
            "drift": drift_schema(),
        }
    ),
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


@dataclass(frozen=True)
class EnvironmentDef:
    name: str
    read_only: bool = False
    description: str | None = None


@dataclass(frozen=True)
class ModelDef:
    name: str
    pipeline: str | None
    gate_metric: str = "roc_auc"
    min_improvement: float = 0.0
    lower_is_better: bool = False
    registry: str | None = None
    alias: str = "champion"
    #: ``[models.NAME.drift]`` as validated: overrides of ``Config.drift``.
    drift: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TuiDef:
    """``[tui]``: the console's defaults (its flags override them)."""

    theme: str | None = None
    refresh: float = 1.0
    #: binding id -> key, e.g. {"retry": "R"}
    keys: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    """The validated configuration. ``path`` is None when no file was found."""

    path: Path | None = None
    store: Path | None = None
    read_only: bool = False
    actor: str | None = None
    #: Seconds a run recorded from a shell may stay silent before it reads as
    #: lost. Shell scripts cannot beat in the background, so this is long.
    record_heartbeat_timeout: float = 3600.0
    environments: dict[str, EnvironmentDef] = field(default_factory=dict)
    pipelines: dict[str, PipelineDef] = field(default_factory=dict)
    models: dict[str, ModelDef] = field(default_factory=dict)
    endpoints: dict[str, EndpointDef] = field(default_factory=dict)
    #: ``[drift]`` as validated: drift settings every model starts from.
    drift: dict[str, Any] = field(default_factory=dict)
    tui: TuiDef = field(default_factory=TuiDef)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        """Relative paths in the config are relative to this directory."""
        return self.path.parent.resolve() if self.path else Path.cwd()

    def pipeline(self, name: str) -> PipelineDef:
        if name not in self.pipelines:
            where = self.path or CONFIG_NAME
            known = ", ".join(sorted(self.pipelines)) or "none"
            raise ConfigError(
                f"pipeline {name!r} is not defined in {where}",
                hint=f"defined pipelines: {known}; add a [pipelines.{name}] table to run it",
            )
        return self.pipelines[name]


def _fail(where: str, dotted: str, words: str, value: Any) -> ConfigError:
    return ConfigError(f'{where}: "{dotted}" must be {words}, got {type(value).__name__} {value!r}')


def _validate(data: dict[str, Any], schema: dict[str, Any], where: str, prefix: str) -> None:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema), n=1)
            hint = f' (did you mean "{prefix}{close[0]}"?)' if close else ""
            known = ", ".join(f'"{prefix}{k}"' for k in schema)
            raise ConfigError(
                f'{where}: unknown key "{dotted}"{hint}',
                hint=None if close else f"known keys here: {known}",
            )
        _validate_value(value, schema[key], where, dotted)
    for key, spec in schema.items():
        if isinstance(spec, Spec) and spec.required and key not in data:
            raise ConfigError(f'{where}: "{prefix}{key}" is required ({spec.words})')


#: TOML's integers are 64-bit; tomllib reads any length, and SQLite and
#: float arithmetic fail on what does not fit.
_INT_LIMIT = 2**63


def _unusable_number(value: Any) -> str | None:
    """Why a number anywhere in ``value`` is nonsense (nan, inf, 1e400, an int past 64 bits).

    Checked for every key, whatever its schema says: no setting means
    anything with nan (every comparison with it is false, so a minimum lets
    it through) or inf (a timeout that never fires, a sleep that overflows).
    """
    # A loop, not recursion: arrays nested thousands deep are valid TOML.
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return f"a finite number, got {item}"
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) >= _INT_LIMIT:
            # Not printed: str() of an int refuses past 4,300 digits.
            return f"a number that fits in 64 bits, got one of {item.bit_length()} bits"
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return None


def _validate_value(value: Any, spec: Any, where: str, dotted: str) -> None:
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise ConfigError(f'{where}: "{dotted}" must be a table ([{dotted}])')
        _validate(value, spec, where, f"{dotted}.")
    elif isinstance(spec, Named):
        if not isinstance(value, dict):
            raise ConfigError(f'{where}: "{dotted}" must be a table of named entries')
        for name, entry in value.items():
            if not isinstance(entry, dict):
                raise ConfigError(f'{where}: "{dotted}.{name}" must be a table ([{dotted}.{name}])')
            _validate(entry, spec.schema, where, f"{dotted}.{name}.")
    elif isinstance(spec, Items):
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(f'{where}: "{dotted}" must be an array of tables ([[{dotted}]])')
        for i, item in enumerate(value):
            _validate(item, spec.schema, where, f"{dotted}[{i}].")
    else:
        # bool is an int in Python; never accept it for a number.
        if not isinstance(value, spec.types) or (
            isinstance(value, bool) and bool not in spec.types
        ):
            raise _fail(where, dotted, spec.words, value)
        unusable = _unusable_number(value)
        if unusable:
            raise ConfigError(f'{where}: "{dotted}" must be {unusable}')
        if spec.minimum is not None and value < spec.minimum:
            raise ConfigError(f'{where}: "{dotted}" must be at least {spec.minimum}, got {value}')
        if spec.check is not None:
            problem = spec.check(value)
            if problem:
                raise _fail(where, dotted, problem, value)


def _command(raw: dict[str, Any], base: Path, inherited: CommandDef | None = None) -> CommandDef:
    workdir = base / raw["workdir"] if "workdir" in raw else (inherited or _root(base)).workdir
    env = {**(inherited.env if inherited else {}), **raw.get("env", {})}
    timeout = raw.get("timeout", inherited.timeout if inherited else None)
    secrets = (*(inherited.pass_secrets if inherited else ()), *raw.get("pass_secrets", ()))
    return CommandDef(tuple(raw.get("run", ())), workdir, env, timeout, secrets)


def _root(base: Path) -> CommandDef:
    return CommandDef((), base, {}, None)


def _pipelines(data: dict[str, Any], base: Path, where: str) -> dict[str, PipelineDef]:
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


#: Deeper than any setting nests; deeper input is refused before anything
#: walks it recursively.
MAX_DEPTH = 16


def _too_deep(where: str) -> ConfigError:
    return ConfigError(
        f"{where} nests arrays or tables more than {MAX_DEPTH} deep",
        hint="no opstui setting is nested like that; is this the right file?",
    )


def _depth(data: object) -> int:
    deepest = 0
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def parse_config(text: str, path: Path | None = None) -> Config:
    where = str(path) if path else CONFIG_NAME
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    except ValueError:  # int() of a literal past Python's 4,300-digit limit, inside tomllib
        raise ConfigError(
            f"{where} is not valid TOML: an integer of thousands of digits "
            "(TOML integers are 64-bit)"
        ) from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise _too_deep(where) from None
    if _depth(data) > MAX_DEPTH:
        raise _too_deep(where)
    _validate(data, SCHEMA, where, "")
    base = path.parent.resolve() if path else Path.cwd()
    store = data.get("store")
    environments = {
        name: EnvironmentDef(name, bool(e.get("read_only", False)), e.get("description"))
        for name, e in data.get("environments", {}).items()
    }
    pipelines = _pipelines(data.get("pipelines", {}), base, where)
    for name, p in pipelines.items():
        if p.environment is not None and environments and p.environment not in environments:
            raise ConfigError(
                f'{where}: "pipelines.{name}.environment" names {p.environment!r}, '
                f"which is not in [environments]"
            )
    endpoints = parse_endpoints(data.get("endpoints", {}), where)
    models = {}
    for name, m in data.get("models", {}).items():
        if "pipeline" not in m and "registry" not in m and "drift" not in m:
            raise ConfigError(
                f'{where}: "models.{name}" needs "pipeline" (the pipeline that trains it), '
                '"registry" (its MLflow endpoint) or a "drift" table'
            )
        if "pipeline" in m and m["pipeline"] not in pipelines:
            raise ConfigError(
                f'{where}: "models.{name}.pipeline" names {m["pipeline"]!r}, '
                "which is not a [pipelines] entry"
            )
        registry = m.get("registry")
        if registry is not None and (
            registry not in endpoints or endpoints[registry].kind != "mlflow"
        ):
            raise ConfigError(
                f'{where}: "models.{name}.registry" names {registry!r}, '
                "which is not an [endpoints] entry of kind mlflow"
            )
        models[name] = ModelDef(
            name=name,
            pipeline=m.get("pipeline"),
            gate_metric=m.get("gate_metric", ModelDef.gate_metric),
            min_improvement=float(m.get("min_improvement", ModelDef.min_improvement)),
            lower_is_better=bool(m.get("lower_is_better", False)),
            registry=registry,
            alias=m.get("alias", ModelDef.alias),
            drift=dict(m.get("drift", {})),
        )
    return Config(
        path=path,
        store=(base / Path(store).expanduser()) if store else None,
        read_only=bool(data.get("read_only", False)),
        actor=data.get("actor"),
        record_heartbeat_timeout=float(
            data.get("record", {}).get("heartbeat_timeout", Config.record_heartbeat_timeout)
        ),
        environments=environments,
        pipelines=pipelines,
        models=models,
        endpoints=endpoints,
        drift=dict(data.get("drift", {})),
        tui=TuiDef(
            theme=data.get("tui", {}).get("theme"),
            refresh=float(data.get("tui", {}).get("refresh", TuiDef.refresh)),
            keys=dict(data.get("tui", {}).get("keys", {})),
        ),
        raw=data,
    )


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load ``--config``, else ``$OPSTUI_CONFIG``, else ``./opstui.toml`` if present."""
    explicit = path if path is not None else os.environ.get(ENV_CONFIG) or None
    if explicit is not None:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError(
                f"config file {p} does not exist",
                hint="create one with `opstui init`, or fix --config / OPSTUI_CONFIG",
            )
    else:
        p = Path(CONFIG_NAME)
        if not p.is_file():
            return Config()
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {p}: {exc}") from None
    return parse_config(text, p)


def resolve_store_path(
    store: str | os.PathLike[str] | None = None, config: Config | None = None
) -> Path:
    """Where the run store is: ``--store``, ``$OPSTUI_STORE``, config ``store``, ``./opstui.db``."""
    if store is not None:
        return Path(store).expanduser()
    env = os.environ.get(ENV_STORE)
    if env:
        return Path(env).expanduser()
    if config is None:
        config = load_config()
    if config.store is not None:
        return config.store
    return Path(DEFAULT_STORE)


def example_config() -> str:
    """The commented example written by ``opstui init``."""
    return resources.files("opstui").joinpath("example.toml").read_text(encoding="utf-8")
