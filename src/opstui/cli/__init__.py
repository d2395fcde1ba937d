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

import typer

from opstui.cli.options import ConfigOpt as ConfigOpt
from opstui.cli.options import StoreOpt as StoreOpt
from opstui.cli.root import app as app
from opstui.cli.root import open_store as open_store
from opstui.errors import OpstuiError

# isort: split
# Command modules register themselves on ``app`` (opstui.cli.root) when
# imported; cli/tui.py still takes app and the options from this package.
from opstui.cli import (
    actions,
    commands,
    config_cmd,
    demo,
    doctor,
    drift,
    endpoints,
    incident,
    models,
    policies,
    record,
    store,
    tui,
)

del (
    actions,
    commands,
    config_cmd,
    demo,
    doctor,
    drift,
    endpoints,
    incident,
    models,
    policies,
    record,
    store,
    tui,
)


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


def _lean_completion() -> None:
    """While a shell completes a line, let parsed values through as typed.

    Typer (0.2x) coerces each option a line holds through a pydantic
    TypeAdapter built on first use: ~0.09 s, most of a Tab's time. Completion
    only reads ``--store`` and ``--config`` as text (``cli/complete.py``) and
    runs no command, so nothing needs the coercion. Only with
    ``_OPSTUI_COMPLETE`` set; a Typer without that class is left alone.
    """
    import os

    if "_OPSTUI_COMPLETE" not in os.environ:
        return
    try:
        from typer.core import _TyperParameter
    except ImportError:
        return

    def as_typed(self: object, ctx: object, value: object) -> object:
        return value

    _TyperParameter.process_value = as_typed  # type: ignore[method-assign]


def main() -> None:
    """Console entry point: operator errors become one line and an exit code.

    Every message goes through ``opstui.cli.output``: an error names what the
    operator passed or what the store holds, and Click's own usage errors
    echo the arguments as typed (``Got unexpected extra argument (...)``), so
    Click runs without its standalone handling and its errors are escaped here.
    """
    from opstui.cli.output import error_lines, say, say_block

    _lean_completion()
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
