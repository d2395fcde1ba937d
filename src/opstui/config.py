"""``opstui.toml``: loading, validation, and where the store lives.

Validation is strict: an unknown key is an error that names it (with the
closest known key), because a typo in an ops config silently ignored is a
3 a.m. surprise. Only the standard library is used here so every layer,
including the tracker inside a user's pipeline, can read the config cheaply.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from opstui.errors import ConfigError

CONFIG_NAME = "opstui.toml"
DEFAULT_STORE = "opstui.db"
ENV_STORE = "OPSTUI_STORE"
ENV_CONFIG = "OPSTUI_CONFIG"


@dataclass(frozen=True)
class Spec:
    """One key's expected type, in words an operator reads in an error."""

    types: tuple[type, ...]
    words: str
    minimum: float | None = None


_NUMBER = (int, float)
#: The known keys. A nested dict is a TOML table.
SCHEMA: dict[str, Any] = {
    "store": Spec((str,), "a path to the run store"),
    "read_only": Spec((bool,), "true or false"),
    "actor": Spec((str,), "a name like ops@example"),
    "record": {
        "heartbeat_timeout": Spec(_NUMBER, "a number of seconds", minimum=1),
    },
}


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
    raw: dict[str, Any] = field(default_factory=dict)


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
        spec = schema[key]
        if isinstance(spec, dict):
            if not isinstance(value, dict):
                raise ConfigError(f'{where}: "{dotted}" must be a table ([{dotted}])')
            _validate(value, spec, where, f"{dotted}.")
            continue
        # bool is an int in Python; never accept it for a number.
        if not isinstance(value, spec.types) or (
            isinstance(value, bool) and bool not in spec.types
        ):
            raise ConfigError(
                f'{where}: "{dotted}" must be {spec.words}, got {type(value).__name__} {value!r}'
            )
        if spec.minimum is not None and value < spec.minimum:
            raise ConfigError(f'{where}: "{dotted}" must be at least {spec.minimum}, got {value}')


def parse_config(text: str, path: Path | None = None) -> Config:
    where = str(path) if path else CONFIG_NAME
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    _validate(data, SCHEMA, where, "")
    base = path.parent if path else Path.cwd()
    store = data.get("store")
    return Config(
        path=path,
        store=(base / Path(store).expanduser()) if store else None,
        read_only=bool(data.get("read_only", False)),
        actor=data.get("actor"),
        record_heartbeat_timeout=float(
            data.get("record", {}).get("heartbeat_timeout", Config.record_heartbeat_timeout)
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
