"""Shell completion of the names operators type: pipelines, models, environments, runs.

Typer's completion machinery (``--install-completion``, ``--show-completion``)
installs a shell function that runs ``opstui`` again with ``_OPSTUI_COMPLETE``
set (``complete_bash``, ``complete_zsh``, ``complete_fish``; ``source_SHELL``
prints the script). Click parses the words typed so far without running any
command and asks the parameter under the cursor for its values: the
callbacks here, given to ``typer.Argument`` / ``typer.Option`` as
``autocompletion=``.

On that path, at every Tab: the values come from ``opstui.toml`` (the one
``--config`` typed earlier on the line names, else the usual places) and,
where the config does not have them all, from the run store (``--store``
typed earlier, else ``$OPSTUI_STORE``, the config, the default), opened with a
short busy timeout and never created; a PostgreSQL store is not asked (a
network round trip at each Tab). Nothing here raises or prints: a broken
config, a missing or locked store offer fewer names or none. Only the
standard library, Typer and opstui's store and config are imported, inside
the callbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from opstui.config import Config
    from opstui.store import Store

T = TypeVar("T")
#: One offered value: the value, or (value, help) for shells that show help (zsh, fish).
Item = str | tuple[str, str]

#: How long a completion waits for a store another process is writing.
BUSY_TIMEOUT = 0.2

#: Run states a retry accepts (``runner.planning.RETRYABLE``; the runner is
#: not imported on a Tab).
_RETRYABLE = ("failed", "timed_out", "cancelled", "lost")


def typed(ctx: typer.Context, name: str) -> object:
    """The value of option ``name`` typed earlier on the line, on this command or a parent."""
    here: Any = ctx  # its parents are Click's contexts
    while here is not None:
        value = here.params.get(name)
        if value is not None:
            return value
        here = here.parent
    return None


def _config(ctx: typer.Context) -> Config | None:
    try:
        from opstui.config import load_config

        path = typed(ctx, "config")
        return load_config(path if isinstance(path, str | Path) else None)
    except Exception:
        return None


def _from_store(
    ctx: typer.Context, cfg: Config | None, read: Callable[[Store], list[T]]
) -> list[T]:
    """What ``read`` finds in the store, or nothing (no store, a locked one, any error)."""
    try:
        from opstui.config import Config, resolve_store_path
        from opstui.store.check import open_current
        from opstui.store.fields import collect_skipped
        from opstui.store.location import parse_location

        named = typed(ctx, "store")
        where = resolve_store_path(named if isinstance(named, str) else None, cfg or Config())
        if isinstance(where, str) or not where.is_file():
            return []  # a PostgreSQL URL, or no store yet: never made by a Tab
        # Never migrated by a Tab: an older (or newer) schema offers nothing.
        store = open_current(parse_location(where), busy_timeout=BUSY_TIMEOUT)
        if store is None:
            return []
        # A row the read skips would be logged on stderr, over the prompt.
        with collect_skipped(), store:
            return read(store)
    except Exception:
        return []


def _offer(*sources: Iterable[Item]) -> list[Item]:
    """Each value once, the first source's help kept, sorted by value.

    Names come from data: one with a control character (a line break would
    split it in the protocol's lines, an escape sequence would reach the
    terminal in a shell's menu) is not offered, and such help is dropped.
    """
    seen: dict[str, Item] = {}
    for source in sources:
        for item in source:
            value, help_text = (item, "") if isinstance(item, str) else item
            if not value or not value.isprintable():
                continue
            seen.setdefault(
                value, (value, help_text) if help_text and help_text.isprintable() else value
            )
    return [seen[v] for v in sorted(seen)]


def _guard(fn: Callable[[typer.Context], list[Item]]) -> Callable[[typer.Context, str], list[Item]]:
    def complete(ctx: typer.Context, incomplete: str) -> list[Item]:
        try:
            return [
                i for i in fn(ctx) if (i if isinstance(i, str) else i[0]).startswith(incomplete)
            ]
        except Exception:
            return []

    complete.__name__ = fn.__name__
    complete.__doc__ = fn.__doc__
    return complete


def _described(name: str, description: str | None) -> Item:
    return (name, description) if description else name


def _configured_pipelines(cfg: Config | None) -> Iterator[Item]:
    for p in (cfg.pipelines if cfg else {}).values():
        yield _described(p.name, p.description)


def _stored_pipelines(store: Store) -> list[Item]:
    from opstui.store.dashboard import Dashboard

    return [p.name for p in Dashboard(store).read()]


def _configured_models(cfg: Config | None) -> Iterator[Item]:
    for m in (cfg.models if cfg else {}).values():
        yield _described(m.name, f"trained by {m.pipeline}" if m.pipeline else None)


def _stored_models(store: Store) -> list[Item]:
    from opstui.store.models import model_names

    return list(model_names(store))


@_guard
def pipelines_to_run(ctx: typer.Context) -> list[Item]:
    """Pipelines of opstui.toml (``opstui run`` runs only those)."""
    return _offer(_configured_pipelines(_config(ctx)))


@_guard
def pipelines(ctx: typer.Context) -> list[Item]:
    """Pipelines of opstui.toml and those the store has runs of."""
    cfg = _config(ctx)
    return _offer(_configured_pipelines(cfg), _from_store(ctx, cfg, _stored_pipelines))


@_guard
def models_to_retrain(ctx: typer.Context) -> list[Item]:
    """Models of opstui.toml's [models] (``opstui retrain`` needs their pipeline)."""
    return _offer(_configured_models(_config(ctx)))


@_guard
def models(ctx: typer.Context) -> list[Item]:
    """Models of opstui.toml and those the store has versions of."""
    cfg = _config(ctx)
    return _offer(_configured_models(cfg), _from_store(ctx, cfg, _stored_models))


@_guard
def models_or_pipelines(ctx: typer.Context) -> list[Item]:
    """Models, and the pipelines that train them (``opstui drift MODEL`` takes either)."""
    cfg = _config(ctx)
    trainers: list[Item] = [
        (m.pipeline, f"trains {m.name}") for m in (cfg.models if cfg else {}).values() if m.pipeline
    ]
    return _offer(_configured_models(cfg), _from_store(ctx, cfg, _stored_models), trainers)


def _stored_environments(store: Store) -> list[Item]:
    from opstui.store.deployments import current_deployments

    return [(d.environment, f"{d.target} {d.version}") for d in current_deployments(store)]


@_guard
def environments(ctx: typer.Context) -> list[Item]:
    """Environments of opstui.toml and those the store has deployments in."""
    cfg = _config(ctx)
    configured = [
        _described(e.name, e.description) for e in (cfg.environments if cfg else {}).values()
    ]
    return _offer(configured, _from_store(ctx, cfg, _stored_environments))


def _failed_runs(store: Store) -> list[Item]:
    from opstui.store.dashboard import Dashboard

    out: list[Item] = []
    for p in Dashboard(store).read():
        if p.latest is not None and p.latest.status in _RETRYABLE:
            out.append((str(p.latest.id), f"{p.name} {p.latest.status}"))
    return out


@_guard
def failed_runs(ctx: typer.Context) -> list[Item]:
    """The run ids ``opstui retry`` takes: each pipeline's latest run, where it failed."""
    return _offer(_from_store(ctx, _config(ctx), _failed_runs))


__all__ = [
    "environments",
    "failed_runs",
    "models",
    "models_or_pipelines",
    "models_to_retrain",
    "pipelines",
    "pipelines_to_run",
]
