"""How the CLI writes: every line through ``opstui.terminal.visible``.

A command never calls ``print`` on text that can hold data (a pipeline name,
a server's reason, a log line, an error message): it calls ``say`` (a line),
``say_block`` (several, line breaks kept), ``cell`` (a Rich table cell or
line: Rich would also read ``[bold]`` in a name as markup and ``:smile:`` as
an emoji) or ``write_json``. ``print`` stays for fixed text (``--version``).
"""

from __future__ import annotations

import json
import math
import sys
from typing import TYPE_CHECKING, Any

from opstui.terminal import visible

if TYPE_CHECKING:
    from rich.text import Text

    from opstui.errors import OpstuiError


def say(line: object = "", *, err: bool = False, flush: bool = False) -> None:
    """Print one line; a newline inside it is data (it would forge the next line), so escaped."""
    print(visible(str(line)), file=sys.stderr if err else sys.stdout, flush=flush)


def say_block(text: str, *, err: bool = False, flush: bool = False, end: str = "\n") -> None:
    """Print text whose line breaks are meant (a list of errors, a usage message)."""
    stream = sys.stderr if err else sys.stdout
    print(visible(text, newline="\n"), file=stream, flush=flush, end=end)


def error_lines(exc: OpstuiError) -> list[str]:
    """What ``main()`` prints for an operator error: one line, escaped (a line
    break in a name it quotes cannot forge a second one), then its details."""
    return [visible(f"opstui: {exc}"), *(visible(f"  {line}") for line in exc.details)]


def prompt(question: str) -> str:
    """``input`` with the question escaped (it names a target from the store)."""
    return input(visible(question))


def cell(text: object, style: str = "") -> Text:
    """A Rich table cell or line holding data: escaped, never read as markup or emoji."""
    from rich.text import Text

    return Text(visible("" if text is None else str(text)), style=style)


def write_json(doc: Any, *, indent: int | None = 2) -> None:
    """``doc`` as one JSON document on stdout that any parser reads.

    ``ensure_ascii`` writes every non-ASCII character as ``\\uXXXX``: C1
    controls and lone surrogates included, so no control byte reaches the
    terminal and no encoder fails. NaN and infinities (a metric can be one)
    are not JSON, so they are written as null.
    """
    json.dump(_finite(doc), sys.stdout, indent=indent, ensure_ascii=True, allow_nan=False)
    sys.stdout.write("\n")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
