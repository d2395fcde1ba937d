"""The options several commands share, declared once (``Annotated`` aliases).

A command names them as ``store: StoreOpt = None``; the flag and its help
text live here, so every ``--help`` says the same thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Run store: a file path, or postgresql://USER@HOST:PORT/DB "
        "[default: $OPSTUI_STORE, then store= in opstui.toml, then ./opstui.db].",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Config file [default: $OPSTUI_CONFIG, then ./opstui.toml].",
        show_default=False,
    ),
]
#: ``--json`` of the read commands whose shape the README documents.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the documented JSON shape.")]
