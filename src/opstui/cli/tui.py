"""``opstui`` / ``opstui tui``: the console."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opstui.cli import ConfigOpt, StoreOpt, app

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


def launch(
    store: Path | None,
    config: Path | None,
    *,
    read_only: bool,
    theme: str | None,
    refresh: float | None,
) -> None:
    """Open the console; a missing store opens it empty, with how to fill it."""
    from opstui.config import load_config, resolve_store_path
    from opstui.tui.app import OpstuiApp

    cfg = load_config(config)
    tui = cfg.tui
    OpstuiApp(
        resolve_store_path(store, cfg),
        cfg,
        read_only=read_only,
        refresh=refresh or tui.refresh,
        theme=theme or tui.theme,
        keymap=tui.keys,
    ).run()


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
