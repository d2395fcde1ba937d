"""Opening the console: what ``opstui`` alone and ``opstui tui`` both do.

Its own module so that the root command (``cli/root.py``) and ``opstui tui``
(``cli/tui.py``, which registers on the root's app) share it without
importing each other. Textual is imported inside, when the console opens.
"""

from __future__ import annotations

import sys
from pathlib import Path

from opstui.errors import UsageError


def require_terminal(what: str, instead: str) -> None:
    """Refuse to open a full-screen console without a terminal to draw on
    (Textual draws on stderr and reads stdin): piped or from cron it would
    wait for keys that never come."""
    missing = [name for name, stream in (("stdin", sys.stdin), ("stderr", sys.stderr))
               if stream is None or not stream.isatty()]  # fmt: skip
    if missing:
        raise UsageError(
            f"{what} needs a terminal, and {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not one",
            hint=f"run it in a terminal (or over ssh -t); from a script use {instead}",
        )


def launch(
    store: str | None,
    config: Path | None,
    *,
    read_only: bool,
    theme: str | None,
    refresh: float | None,
) -> None:
    """Open the console; a missing store opens it empty, with how to fill it."""
    require_terminal("the console", "`opstui status` (or `--json`), `opstui endpoints`")
    from opstui.config import load_config, resolve_store_path
    from opstui.tui.app import OpstuiApp

    cfg = load_config(config)
    tui = cfg.tui
    app = OpstuiApp(
        resolve_store_path(store, cfg),
        cfg,
        read_only=read_only,
        refresh=refresh or tui.refresh,
        theme=theme or tui.theme,
        keymap=tui.keys,
    )
    try:
        app.run()
    finally:
        app.remember_seen()  # after the event loop: the next console says what changed
