"""``opstui.toml``: loading, its keys (``SCHEMA``), the validated ``Config``,
and where the store lives. The validation walk is ``validate``; pipelines
and their commands are ``pipelines``.

Validation is strict: an unknown key is an error that names it (with the
closest known key), because a typo in an ops config silently ignored is a
3 a.m. surprise. Only the standard library is used here so every layer,
including the tracker inside a user's pipeline, can read the config cheaply.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from opstui.config.drift import drift_schema
from opstui.config.endpoints import EndpointDef, endpoint_schema, parse_endpoints
from opstui.config.keys import KEY_IDS
from opstui.config.notify import NotifyDef, notify_schema, parse_notify
from opstui.config.pipelines import PipelineDef, parse_pipelines, pipeline_schema
from opstui.config.policies import PolicyDef, parse_policy, policy_problem, policy_schema
from opstui.config.schema import Named, Spec
from opstui.config.validate import MAX_DEPTH, nesting_depth, too_deep, validate
from opstui.errors import ConfigError

CONFIG_NAME = "opstui.toml"
DEFAULT_STORE = "opstui.db"
#: How a new fault may raise a desktop notification through the terminal.
DESKTOP_NOTICES = ("none", "osc9", "osc777")
#: The environment a deployment, rollback or served endpoint is in when
#: nothing names one.
DEFAULT_ENVIRONMENT = "production"
ENV_STORE = "OPSTUI_STORE"
ENV_CONFIG = "OPSTUI_CONFIG"


def _check_keys(value: Any) -> str | None:
    unknown = sorted(set(value) - KEY_IDS)
    if unknown:
        return f"binding ids from: {', '.join(sorted(KEY_IDS))} (not {', '.join(unknown)})"
    if not all(isinstance(v, str) and v for v in value.values()):
        return 'a table of key names (retry = "R")'
    return None


_NUMBER = (int, float)
#: The log viewer's default patterns: an error line, a warning line.
DEFAULT_LOG_ERROR = r"ERROR|FATAL|CRITICAL|Traceback|Exception|panic:"
DEFAULT_LOG_WARN = r"WARN(ING)?"


def _check_regex(value: str) -> str | None:
    """None if ``value`` compiles as a Python regular expression, else why not."""
    try:
        re.compile(value)
    except re.error as exc:
        return f"a regular expression (Python's re): {exc}"
    return None


#: The known keys. A nested dict is a TOML table.
SCHEMA: dict[str, Any] = {
    "store": Spec((str,), "a path to the run store, or a postgresql:// URL"),
    # The console: `opstui` / `opstui tui`.
    "tui": {
        "theme": Spec((str,), "a theme name or a theme file"),
        "refresh": Spec(_NUMBER, "a number of seconds", minimum=0.1),
        "keys": Spec((dict,), "a table of binding id = key", check=_check_keys),
        "bell": Spec((bool,), "true or false"),
        "desktop": Spec(
            (str,),
            '"none", "osc9" or "osc777"',
            check=lambda v: None if v in DESKTOP_NOTICES else '"none", "osc9" or "osc777"',
        ),
        "log_error": Spec((str,), "a regular expression (Python's re)", check=_check_regex),
        "log_warn": Spec((str,), "a regular expression (Python's re)", check=_check_regex),
        "osc52": Spec((bool,), "true or false"),
    },
    # Where opstui's own alerts go (Alertmanager).
    "notify": notify_schema(),
    # Automation: a trigger, guard rails, an action (config/policies.py).
    "policies": Named(policy_schema()),
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
    "pipelines": Named(pipeline_schema()),
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
    #: A new fault rings the terminal's bell.
    bell: bool = True
    #: ... and raises a desktop notification through the terminal: "osc9"
    #: (iTerm2, WezTerm, Windows Terminal, kitty), "osc777" (VTE terminals:
    #: GNOME Terminal, Tilix) or "none".
    desktop: str = "none"
    #: The log viewer marks a line matching this as an error (`E` in its gutter).
    log_error: str = DEFAULT_LOG_ERROR
    #: ... and this as a warning (`W`).
    log_warn: str = DEFAULT_LOG_WARN
    #: `y` in the log viewer copies a line to the terminal's clipboard (OSC 52).
    osc52: bool = False


@dataclass(frozen=True)
class Config:
    """The validated configuration. ``path`` is None when no file was found."""

    path: Path | None = None
    #: A path (relative to the config's directory), or a URL kept as text.
    store: Path | str | None = None
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
    notify: NotifyDef = field(default_factory=NotifyDef)
    policies: dict[str, PolicyDef] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    #: sha256 of the text this config was parsed from ("" without a file): a
    #: plan records what it was resolved from, not what the file says later.
    digest: str = ""

    @property
    def base_dir(self) -> Path:
        """Relative paths in the config are relative to this directory."""
        return self.path.parent.resolve() if self.path else Path.cwd()

    def served(self, ep: EndpointDef) -> tuple[str, str, str] | None:
        """What ``ep`` serves: (``service`` or ``model``, its name, the
        environment: the endpoint's, else its pipeline's, else production);
        None if it names neither."""
        if ep.service is not None:
            kind, name, pipeline = "service", ep.service, self.pipelines.get(ep.service)
        elif ep.model is not None:
            model = self.models.get(ep.model)
            kind, name = "model", ep.model
            pipeline = self.pipelines.get(model.pipeline or "") if model else None
        else:
            return None
        env = ep.environment or (pipeline.environment if pipeline else None)
        return kind, name, env or DEFAULT_ENVIRONMENT

    def pipeline(self, name: str) -> PipelineDef:
        if name not in self.pipelines:
            where = self.path or CONFIG_NAME
            known = ", ".join(sorted(self.pipelines)) or "none"
            raise ConfigError(
                f"pipeline {name!r} is not defined in {where}",
                hint=f"defined pipelines: {known}; add a [pipelines.{name}] table to run it",
            )
        return self.pipelines[name]


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
        raise too_deep(where) from None
    if nesting_depth(data) > MAX_DEPTH:
        raise too_deep(where)
    validate(data, SCHEMA, where, "")
    base = path.parent.resolve() if path else Path.cwd()
    store = data.get("store")
    environments = {
        name: EnvironmentDef(name, bool(e.get("read_only", False)), e.get("description"))
        for name, e in data.get("environments", {}).items()
    }
    pipelines = parse_pipelines(data.get("pipelines", {}), base, where)
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
    _check_served(endpoints, pipelines, models, environments, where)
    policies = {name: parse_policy(name, raw) for name, raw in data.get("policies", {}).items()}
    known = {"endpoints": set(endpoints), "models": set(models), "environments": set(environments)}
    for name, policy in policies.items():
        problem = policy_problem(policy, known)
        if problem is not None:
            key, why = problem
            raise ConfigError(f'{where}: "policies.{name}.{key}" {why}')
    return Config(
        path=path,
        store=_store_setting(store, base),
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
            bell=bool(data.get("tui", {}).get("bell", TuiDef.bell)),
            desktop=str(data.get("tui", {}).get("desktop", TuiDef.desktop)),
            log_error=str(data.get("tui", {}).get("log_error", TuiDef.log_error)),
            log_warn=str(data.get("tui", {}).get("log_warn", TuiDef.log_warn)),
            osc52=bool(data.get("tui", {}).get("osc52", TuiDef.osc52)),
        ),
        notify=parse_notify(data.get("notify", {})),
        policies=policies,
        raw=data,
        digest=hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest() if path else "",
    )


def _check_served(
    endpoints: dict[str, EndpointDef],
    pipelines: dict[str, PipelineDef],
    models: dict[str, ModelDef],
    environments: dict[str, EnvironmentDef],
    where: str,
) -> None:
    """An endpoint's ``service``, ``model`` and ``environment`` name what the
    config defines: a typo found now, not by ``b`` during an incident."""
    for name, ep in endpoints.items():
        key = f'{where}: "endpoints.{name}'
        if ep.service is not None and ep.model is not None:
            raise ConfigError(
                f'{key}" names both a service and a model: which does it serve?',
                hint="keep the one a rollback should move back",
            )
        for field_name, value, known, table in (
            ("service", ep.service, pipelines, "pipelines"),
            ("model", ep.model, models, "models"),
        ):
            if value is not None and value not in known:
                choices = ", ".join(sorted(known)) or "none"
                raise ConfigError(
                    f'{key}.{field_name}" names {value!r}, which is not a [{table}] entry',
                    hint=f"defined: {choices}",
                )
        if ep.environment is not None and environments and ep.environment not in environments:
            raise ConfigError(
                f'{key}.environment" names {ep.environment!r}, which is not in [environments]',
                hint="defined: " + ", ".join(sorted(environments)),
            )


#: The system-wide config, read when no other is found (``config_locations``).
SYSTEM_CONFIG = Path("/etc/opstui") / CONFIG_NAME


def user_config() -> Path:
    """``$XDG_CONFIG_HOME/opstui/opstui.toml`` (``~/.config/opstui/``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    return Path(base) / "opstui" / CONFIG_NAME


class ConfigLocation(NamedTuple):
    """One place a config is looked for, in precedence order."""

    #: How the operator names it: ``--config``, ``$OPSTUI_CONFIG``,
    #: ``./opstui.toml``, ``$XDG_CONFIG_HOME``, ``/etc/opstui``.
    how: str
    path: Path | None
    #: ``read`` (the one loaded), ``shadowed`` (there, but one before it was
    #: read: configs are not merged), ``missing``, ``unreadable`` (this user
    #: may not look there), ``not given``.
    state: str


def config_locations(path: str | os.PathLike[str] | None = None) -> list[ConfigLocation]:
    """Where a config is looked for, first found wins: ``--config``,
    ``$OPSTUI_CONFIG``, ``./opstui.toml``, the user's
    (``$XDG_CONFIG_HOME/opstui/opstui.toml``), the system's
    (``/etc/opstui/opstui.toml``). A named one (the first two) must exist."""
    env = os.environ.get(ENV_CONFIG) or None
    places: list[tuple[str, Path | None, bool]] = [
        ("--config", Path(path) if path is not None else None, True),
        ("$OPSTUI_CONFIG", Path(env) if env is not None else None, True),
        ("./opstui.toml", Path(CONFIG_NAME), False),
        ("$XDG_CONFIG_HOME", user_config(), False),
        ("/etc/opstui", SYSTEM_CONFIG, False),
    ]
    out, found = [], False
    for how, where, named in places:
        if where is None:
            out.append(ConfigLocation(how, None, "not given"))
            continue
        there = _is_file(where)
        if found:
            state = "shadowed" if there else ("unreadable" if there is None else "missing")
            out.append(ConfigLocation(how, where, state))
        elif named or there:
            out.append(ConfigLocation(how, where, "read"))
            found = True
        else:
            # A place this user may not even look into (another user's
            # $HOME after sudo) is passed over, and said by `config path`.
            out.append(ConfigLocation(how, where, "unreadable" if there is None else "missing"))
    return out


def _is_file(path: Path) -> bool | None:
    """Whether ``path`` is a file; None when this user may not look."""
    try:
        return path.is_file()
    except PermissionError:
        return None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """The first config of ``config_locations``; none found is the empty config."""
    chosen = next((c for c in config_locations(path) if c.state == "read"), None)
    if chosen is None:
        return Config()
    p = chosen.path
    assert p is not None
    if chosen.how.startswith(("--", "$OPSTUI")) and not p.is_file():
        raise ConfigError(
            f"config file {p} does not exist",
            hint="create one with `opstui init`, or fix --config / OPSTUI_CONFIG",
        )
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {p}: {exc}") from None
    return parse_config(text, p)


def _store_setting(store: str | None, base: Path) -> Path | str | None:
    if not store:
        return None
    return store if is_url(store) else base / Path(store).expanduser()


def is_url(text: str) -> bool:
    """A ``scheme://`` store (PostgreSQL): kept as text, as a ``Path`` would
    eat a slash of it and name a local file (the store layer reads it)."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text) is not None


def _where(text: str | os.PathLike[str]) -> Path | str:
    if isinstance(text, str) and is_url(text):
        return text
    return Path(text).expanduser()


def default_store() -> Path:
    """The store when none is named: ``./opstui.db`` if there is one (a store
    made there before), else the user's, ``$XDG_STATE_HOME/opstui/opstui.db``:
    never a new file in whatever directory the operator stands in."""
    here = Path(DEFAULT_STORE)
    try:
        if here.exists():
            return here
    except PermissionError:
        pass  # a directory this user may not look into: the user's store
    from opstui.paths import state_dir

    return state_dir() / DEFAULT_STORE


def resolve_store_path(
    store: str | os.PathLike[str] | None = None, config: Config | None = None
) -> Path | str:
    """Where the run store is: ``--store``, ``$OPSTUI_STORE``, config ``store``,
    else ``default_store()``; a file's path, or a URL as text."""
    if store is not None:
        return _where(store)
    env = os.environ.get(ENV_STORE)
    if env:
        return _where(env)
    if config is None:
        config = load_config()
    if config.store is not None:
        return config.store
    return default_store()


def example_config() -> str:
    """The commented example written by ``opstui init``."""
    return resources.files("opstui").joinpath("example.toml").read_text(encoding="utf-8")
