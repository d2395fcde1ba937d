"""Text from data made safe to show on a terminal: the one escaping function.

Names, messages, log lines and a server's words come from outside; printed
as they are, an ESC sequence in them could retitle the window, clear the
screen or write the operator's clipboard (OSC 52). ``visible`` shows every
such character as an escape (``\\x1b``) instead. The console (``safe`` in
tui/render.py) and every line the CLI prints go through it.
"""

from __future__ import annotations

import re

# C0 (tab and newline are handled apart), DEL and C1: the terminal acts on
# them. Surrogates: a str can hold them (argv and file names decoded with
# surrogateescape, JSON's \ud800) but no encoder writes them, so printing one
# would crash. Bidi overrides, isolates and the line/paragraph separators
# reorder or split what is shown, so a name could read as another one.
_UNSAFE = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 but tab and newline, DEL, C1
    r"\ud800-\udfff"  # surrogates
    r"\u2028\u2029\u202a-\u202e\u2066-\u2069]"  # separators, bidi controls
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: str, *, newline: str | None = None, tab: str = "    ") -> str:
    """``text`` with nothing a terminal would act on: every control shown as an escape.

    ``newline`` is what a line break becomes: None shows it as ``\\x0a`` (a
    name or a message is one line; a newline in it would forge the next one),
    ``"\\n"`` keeps it where the caller prints several lines. Tabs become
    ``tab``. Backslashes are kept as they are, so ordinary text (Windows
    paths, regexes) reads unchanged.
    """
    text = _UNSAFE.sub(_escape, text.replace("\t", tab))
    return text.replace("\n", "\\x0a" if newline is None else newline)
