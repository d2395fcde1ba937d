"""The ``opstui`` Typer application, its root options and what every command shares.

Command modules import ``app`` and ``open_store`` from here and register
themselves on it; ``opstui.cli`` imports them all (so that ``opstui.cli``
and the command modules do not import each other).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from opstui import __version__
from opstui.cli.options import ConfigOpt, StoreOpt

if TYPE_CHECKING:
    from opstui.config import Config
    from opstui.store import Store

app = typer.Typer(
    name="opstui",
    help="A terminal console for operators of DevOps and MLOps pipelines.",
    # `opstui` alone opens the console (see _root).
    no_args_is_help=False,
    # --install-completion / --show-completion: Typer's scripts for bash, zsh
    # and fish, which run `opstui` with _OPSTUI_COMPLETE set; the values come
    # from opstui.cli.complete.
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def version_lines() -> list[str]:
    """What ``--version`` prints: opstui, the Textual it runs, Python, and the
    store schema it writes. Read from the installed metadata: Textual is not
    imported (it costs more than the rest of ``--version``)."""
    from importlib import metadata

    from opstui.store.schema import SCHEMA_VERSION

    def installed(dist: str, fallback: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return fallback

    python = ".".join(str(n) for n in sys.version_info[:3])
    return [
        f"opstui {installed('opstui', __version__)}",
        f"textual {installed('textual', 'not installed')}",
        f"python {python}",
        f"store schema {SCHEMA_VERSION}",
    ]


def _version(ctx: typer.Context, value: bool) -> None:
    # Completion parses the line without running it: a --version typed
    # earlier must not print in the middle of the completions.
    if value and not ctx.resilient_parsing:
        from opstui.cli.output import say

        for line in version_lines():
            say(line)
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Console: show actions as unavailable.")
    ] = False,
    theme: Annotated[str | None, typer.Option(help="Console: theme name or file.")] = None,
    refresh: Annotated[
        float | None, typer.Option(help="Console: seconds between store reads.", min=0.1)
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """A terminal console for operators of DevOps and MLOps pipelines.

    Run alone, it opens the console (the same as `opstui tui`).
    """
    _name_skipped_rows(ctx)
    if ctx.invoked_subcommand is None:
        from opstui.cli.launch import launch

        launch(store, config, read_only=read_only, theme=theme, refresh=refresh)


#: Skipped rows named at most, after a command; the rest are counted.
MAX_SKIPPED_SHOWN = 20


def _name_skipped_rows(ctx: typer.Context) -> None:
    """Once the command is done, name on stderr every row its reads skipped.

    A reader skips a row it cannot show (a time beyond year 9999 written by
    an older opstui, JSON that does not parse) and shows the rest; the
    operator learns which rows, and why, whatever the command printed.
    """
    from contextlib import ExitStack

    from opstui.cli.output import say
    from opstui.store.fields import collect_skipped

    stack = ExitStack()
    notes = stack.enter_context(collect_skipped())

    def name_them() -> None:
        stack.close()
        for note in notes[:MAX_SKIPPED_SHOWN]:
            say(f"opstui: {note}", err=True)
        if len(notes) > MAX_SKIPPED_SHOWN:
            say(f"opstui: ... and {len(notes) - MAX_SKIPPED_SHOWN} more skipped rows", err=True)

    ctx.call_on_close(name_them)


def open_store(store: str | None, config: Path | None, *, create: bool) -> tuple[Store, Config]:
    """Resolve the store path from flags, environment and config, and open it."""
    from opstui.config import load_config, resolve_store_path
    from opstui.store import Store

    cfg = load_config(config)
    return Store(resolve_store_path(store, cfg), create=create), cfg
