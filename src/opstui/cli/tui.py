"""``opstui`` / ``opstui tui``: the console."""

from __future__ import annotations

from typing import Annotated

import typer

from opstui.cli.launch import launch
from opstui.cli.options import ConfigOpt, StoreOpt
from opstui.cli.root import app

ReadOnlyOpt = Annotated[
    bool, typer.Option("--read-only", help="Show actions as unavailable; write nothing.")
]
ThemeOpt = Annotated[
    str | None,
    typer.Option(
        help="dark, light, high-contrast, ansi-dark (the terminal's own 16 colours), "
        "any Textual theme, or a theme file [default: dark]."
    ),
]
RefreshOpt = Annotated[
    float | None,
    typer.Option(help="Seconds between store reads [default: [tui] refresh, then 1].", min=0.1),
]


@app.command()
def tui(
    read_only: ReadOnlyOpt = False,
    theme: ThemeOpt = None,
    refresh: RefreshOpt = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The console (also what `opstui` alone opens)."""
    launch(store, config, read_only=read_only, theme=theme, refresh=refresh)
