"""The checks that need nothing but this machine: Python and its packages,
the config file, the terminal."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import TextIO

from opstui.config import Config, load_config
from opstui.config.load import config_locations
from opstui.doctor.checks import FAIL, OK, SKIP, WARN, Check
from opstui.errors import ConfigError

MIN_PYTHON = (3, 11)
#: Read with importlib.metadata, never imported (Textual and scikit-learn
#: take a second to import; the doctor must stay fast).
PACKAGES = ("opstui", "textual", "rich", "httpx", "typer", "psycopg", "scikit-learn")
#: Installed only for a PostgreSQL store (``pip install 'opstui[postgres]'``).
OPTIONAL = frozenset({"psycopg"})
#: The glyphs of the console's stage bar.
GLYPHS = "✓✗●○⊘?◌"
MIN_COLUMNS, MIN_LINES = 80, 24


def python_check() -> list[Check]:
    version = ".".join(map(str, sys.version_info[:3]))
    found, missing = [], []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            if name in OPTIONAL:
                found.append(f"{name} not installed (only PostgreSQL stores need it)")
            else:
                missing.append(name)
    detail = f"Python {version} ({sys.executable}); " + ", ".join(found)
    if sys.version_info[:2] < MIN_PYTHON:
        return [
            Check(
                "python",
                FAIL,
                f"Python {version}: opstui needs 3.11 or newer; {detail}",
                "install opstui into a Python 3.11+ environment (python3.11 -m venv ...)",
            )
        ]
    if missing:
        return [
            Check(
                "python",
                FAIL,
                f"{', '.join(missing)} not installed; {detail}",
                "reinstall opstui with its dependencies: pip install --force-reinstall opstui",
            )
        ]
    return [Check("python", OK, detail)]


def config_check(path: str | os.PathLike[str] | None) -> tuple[Config | None, list[Check]]:
    """Which config files exist, in precedence order, which one is read, and
    whether it loads; the config (None when it does not load)."""
    places = config_locations(path)
    read = next((c for c in places if c.state == "read"), None)
    shadowed = [c for c in places if c.state == "shadowed"]
    also = (
        "; also there, not read (configs are not merged): "
        + ", ".join(f"{_abs(c.path)} ({c.how})" for c in shadowed)
        if shadowed
        else ""
    )
    if read is None or read.path is None:
        looked = ", ".join(str(_abs(c.path)) for c in places if c.path is not None)
        return Config(), [
            Check("config", OK, f"no config file (looked in {looked}): defaults apply")
        ]
    where = f"{_abs(read.path)} ({read.how})"
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        fix = exc.hint or "fix what the message names; `opstui config show` shows what loads"
        return None, [Check("config", FAIL, f"{where}: {exc.message}", fix)]
    counts = (
        f"{len(cfg.endpoints)} endpoint{'s' * (len(cfg.endpoints) != 1)}, "
        f"{len(cfg.pipelines)} pipeline{'s' * (len(cfg.pipelines) != 1)}"
    )
    return cfg, [Check("config", OK, f"{where} loads: {counts}{also}")]


def _abs(path: Path | None) -> Path | None:
    return path.absolute() if path is not None else None


def terminal_check(
    stream: TextIO | None = None, env: Mapping[str, str] | None = None
) -> list[Check]:
    """Is stdout a terminal the console can draw on: its size, colours,
    the stage bar's glyphs, tmux. Not a terminal (a pipe, ``--json`` into
    ``jq``, CI) is a skip: there is nothing to judge."""
    out = sys.stdout if stream is None else stream
    environ = os.environ if env is None else env
    if not out.isatty():
        return [
            Check(
                "terminal",
                SKIP,
                "stdout is not a terminal (a pipe or a file): run `opstui doctor` "
                "in the terminal the console runs in to check it",
            )
        ]
    try:
        # The size of the terminal the stream writes to (what the console reads).
        size = os.get_terminal_size(out.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        size = os.terminal_size((0, 0))
    term = environ.get("TERM", "")
    colorterm = environ.get("COLORTERM", "")
    no_color = "NO_COLOR" in environ and environ["NO_COLOR"] != ""
    encoding = getattr(out, "encoding", None) or "ascii"
    try:
        GLYPHS.encode(encoding)
        glyphs = True
    except (UnicodeEncodeError, LookupError):
        glyphs = False
    if colorterm.lower() in ("truecolor", "24bit"):
        colours = "truecolor"
    elif "256color" in term:
        colours = "256 colours"
    elif term in ("", "dumb"):
        colours = "no colours"
    else:
        colours = "16 colours"
    parts = [
        "a tty",
        f"{size.columns}x{size.lines}" if size.columns and size.lines else "size unknown",
        f"TERM={term or '(unset)'}",
        colours + (", NO_COLOR set" if no_color else ""),
        f"{encoding} ({GLYPHS} shown)" if glyphs else f"{encoding} (no stage-bar glyphs)",
    ]
    if environ.get("TMUX"):
        parts.append("inside tmux")
    problems, fixes = [], []
    if not (size.columns and size.lines):
        problems.append("the terminal reports no size (0x0)")
        fixes.append("run it in a terminal window (or `stty cols 120 rows 40`)")
    elif size.columns < MIN_COLUMNS or size.lines < MIN_LINES:
        problems.append(f"smaller than {MIN_COLUMNS}x{MIN_LINES}")
        fixes.append(f"make the window at least {MIN_COLUMNS}x{MIN_LINES}")
    if term in ("", "dumb"):
        problems.append("TERM=dumb: no colours or cursor movement" if term else "TERM is unset")
        fixes.append("set TERM to your terminal's type (xterm-256color)")
    if not glyphs:
        problems.append(f"{encoding} cannot encode the stage bar's glyphs")
        fixes.append("use a UTF-8 locale (export LANG=C.UTF-8)")
    if no_color:
        # The operator's own choice: noted, not a problem (every state has a
        # glyph or a word besides its colour).
        parts.append("states shown by glyph and word only")
    detail = ", ".join(parts)
    if problems:
        return [Check("terminal", WARN, f"{detail}: {'; '.join(problems)}", "; ".join(fixes))]
    return [Check("terminal", OK, detail)]
