"""``opstui config path`` and ``opstui config show``: which config is read,
from where, and what it amounts to.

The config is the first one found (``config.load.config_locations``), never
a merge; the store is ``--store``, ``$OPSTUI_STORE``, the config's
``store``, then the default (``config.load.default_store``). ``show`` prints
the effective config, defaults filled in, with secrets only as the
environment variables they come from: opstui.toml holds none (secret
headers and passwords are variable names), and a header whose name says it
carries a credential is masked all the same.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from opstui.cli.options import ConfigOpt, StoreOpt
from opstui.cli.output import say, write_json
from opstui.cli.root import app

config_app = typer.Typer(
    help="Which config opstui reads, and what it amounts to.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(config_app, name="config")

#: Header names whose values are credentials whatever table they are in.
SENSITIVE = re.compile(r"authorization|cookie|token|secret|password|api[-_]?key", re.I)
STATES = {
    "read": "read",
    "shadowed": "there, not read (the one above is; configs are not merged)",
    "missing": "not found",
    "unreadable": "not readable by this user (passed over)",
    "not given": "not given",
}


def _store_origin(store: str | None, config: Any) -> tuple[str, str]:
    import os

    from opstui.config import resolve_store_path
    from opstui.config.load import DEFAULT_STORE, ENV_STORE
    from opstui.store.location import parse_location

    shown = str(parse_location(resolve_store_path(store, config)))
    if store is not None:
        return shown, "--store"
    if os.environ.get(ENV_STORE):
        return shown, "$OPSTUI_STORE"
    if config.store is not None:
        return shown, "store = in the config"
    if Path(DEFAULT_STORE).exists():
        return shown, "./opstui.db, found here"
    return shown, "the default: $XDG_STATE_HOME/opstui (no store named)"


@config_app.command("path")
def path_(store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Where a config is looked for, in order; which one is read; the store."""
    from opstui.config import load_config
    from opstui.config.load import config_locations

    places = config_locations(config)
    say("config (the first found is read):")
    for c in places:
        where = str(c.path.absolute()) if c.path is not None else "-"
        say(f"  {c.how:<17} {where}  {STATES[c.state]}")
    if not any(c.state == "read" for c in places):
        say("  none found: defaults apply (`opstui init` writes one)")
    shown, origin = _store_origin(store, load_config(config))
    say(f"store: {shown}  ({origin})")


@config_app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The effective config (defaults filled in); secrets only as the variables they come from."""
    from opstui.config import load_config

    cfg = load_config(config)
    shown, origin = _store_origin(store, cfg)
    doc = {
        "schema": 1,
        "file": str(cfg.path) if cfg.path else None,
        "store": shown,
        "store_from": origin,
        **_effective(cfg),
    }
    if as_json:
        write_json(doc)
        return
    for line in _toml_lines(doc):
        say(line)


def _effective(cfg: Any) -> dict[str, Any]:
    """The config's settings as data, secrets named, not shown."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        if f.name in ("path", "raw", "digest", "store"):
            continue
        out[f.name] = _plain(getattr(cfg, f.name), f.name)
    return out


def _plain(value: Any, key: str = "") -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name), f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        if key == "secret_headers":
            return {k: f"${v}" for k, v in value.items()}
        if key == "headers":
            return {k: ("***" if SENSITIVE.search(k) else v) for k, v in value.items()}
        return {str(k): _plain(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if key.endswith("_env") and isinstance(value, str):
        return f"${value}"
    return value


def _toml_lines(doc: dict[str, Any], prefix: str = "") -> list[str]:
    """A TOML-looking view (not for parsing: ``--json`` is): scalars first,
    then each table under its dotted name."""
    import json

    lines, tables = [], []
    for k, v in doc.items():
        if isinstance(v, dict) and any(isinstance(x, dict) for x in v.values()):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {json.dumps(v, ensure_ascii=True)}")
    for k, v in tables:
        lines += ["", f"[{prefix}{k}]", *_toml_lines(v, f"{prefix}{k}.")]
    return lines
