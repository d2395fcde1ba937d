"""The ``opstui`` command line: thin commands over the layers below.

Heavy modules (Textual, scikit-learn, rich's tables) are imported inside the
commands that need them, so ``opstui --help`` and ``opstui status`` start
fast; a test checks ``sys.modules`` for that.
"""

from __future__ import annotations

import io
import sqlite3
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from opstui import __version__
from opstui.cli.options import ConfigOpt as ConfigOpt
from opstui.cli.options import StoreOpt as StoreOpt
from opstui.errors import OpstuiError

if TYPE_CHECKING:
    from opstui.config import Config
    from opstui.store import Store

app = typer.Typer(
    name="opstui",
    help="A terminal console for operators of DevOps and MLOps pipelines.",
    # `opstui` alone opens the console (see _root).
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"opstui {__version__}")
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
        from opstui.cli.tui import launch

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


def open_store(store: Path | None, config: Path | None, *, create: bool) -> tuple[Store, Config]:
    """Resolve the store path from flags, environment and config, and open it."""
    from opstui.config import load_config, resolve_store_path
    from opstui.store import Store

    cfg = load_config(config)
    return Store(resolve_store_path(store, cfg), create=create), cfg


# Command modules register themselves on ``app`` when imported.
from opstui.cli import actions, commands, demo, drift, endpoints, models, record, tui  # noqa: E402

del actions, commands, demo, drift, endpoints, models, record, tui


def _click_errors() -> tuple[type[Exception], ...]:
    # Typer 0.2x vendors Click (its errors derive from typer.TyperException);
    # older Typer raises Click's own.
    kinds: list[type[Exception]] = []
    vendored = getattr(typer, "TyperException", None)
    if vendored is not None:
        kinds.append(vendored)
    try:
        import click
    except ImportError:
        return tuple(kinds)
    return (*kinds, click.ClickException)


def main() -> None:
    """Console entry point: operator errors become one line and an exit code.

    Every message goes through ``opstui.cli.output``: an error names what the
    operator passed or what the store holds, and Click's own usage errors
    echo the arguments as typed (``Got unexpected extra argument (...)``), so
    Click runs without its standalone handling and its errors are escaped here.
    """
    from opstui.cli.output import error_lines, say, say_block

    try:
        code = app(standalone_mode=False)
    except OpstuiError as exc:
        # One line, whatever it quotes; a list (the importer's bad lines)
        # comes as details, each on its own line, each escaped.
        print("\n".join(error_lines(exc)), file=sys.stderr)
        sys.exit(exc.exit_code)
    except _click_errors() as exc:
        # Click's errors (usage, bad parameter, no such option) print
        # themselves with their usage line; caught here to escape them.
        buffer = io.StringIO()
        show = getattr(exc, "show", None)
        if callable(show):
            show(file=buffer)
        else:
            buffer.write(f"Error: {exc}")
        say_block(buffer.getvalue().removesuffix("\n"), err=True)
        sys.exit(getattr(exc, "exit_code", 1))
    except sqlite3.Error as exc:
        # A read outside Store.write's mapping met a damaged or vanished file
        # (a write names its cause itself): one line, not a traceback.
        say(
            f"opstui: the run store could not be read: {exc}: check it with "
            "`sqlite3 FILE 'PRAGMA integrity_check'`, or restore it from a backup",
            err=True,
        )
        sys.exit(2)
    except typer.Abort:
        say("Aborted!", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        say("opstui: interrupted", err=True)
        sys.exit(130)
    except Exception:
        # A bug: the traceback as Python would print it, its messages escaped.
        say_block(traceback.format_exc().removesuffix("\n"), err=True)
        sys.exit(1)
    # Without standalone mode Click returns typer.Exit's code instead of exiting.
    sys.exit(code if isinstance(code, int) else 0)
