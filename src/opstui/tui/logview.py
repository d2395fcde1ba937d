"""The log viewer: a window onto a stage's whole log, drawn by true line number.

The widget never holds "the log": it holds the log's length (``total``) and
a window of lines read from the store (``first`` .. ``first + len(lines)``)
by its screen on the refresh worker. Keys move ``top`` and ``cursor`` (line
numbers) at once, on the event loop, and nothing else moves them: a window
that lands redraws what is on screen but never scrolls it, unless the view
is following (then the last line is at the bottom). So no key press is lost
to a read or to an animation (Textual's own ``scroll_page_down`` counts
from the animated, not yet reached, offset: fast presses lost a third of
their distance). When the lines under ``top`` are not in the window, the
view posts ``LogView.Wanted`` and draws ``…`` until they land.

Each line has a gutter: the cursor mark, its kind (``E`` error, ``W``
warning, ``T`` a traceback's frame), its true number; colour repeats the
kind, so NO_COLOR loses nothing. Every line is escaped (``render.safe``).
"""

from __future__ import annotations

import re
from typing import ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget

from opstui.store.rows import LogLine
from opstui.tui.render import safe

#: Lines one read brings: a few screens each side of the one shown.
WINDOW = 1000
#: A traceback's frame line (``  File "x.py", line 3, in f``).
FRAME = re.compile(r'^\s+File "[^"]*", line \d+')

KIND_STYLE = {"E": "bold red", "W": "yellow", "T": "red", " ": ""}


def compile_search(text: str) -> tuple[re.Pattern[str], bool]:
    """``text`` as a case-insensitive regex; if it is not one, as literal text
    (the second value False: told on screen)."""
    try:
        return re.compile(text, re.IGNORECASE), True
    except re.error:
        return re.compile(re.escape(text), re.IGNORECASE), False


class LogView(Widget, can_focus=True):
    """A stage's log by line number: follow, page, jump, wrap, highlight, search marks."""

    DEFAULT_CSS = """
    LogView { height: 1fr; }
    LogView:focus .logview--cursor { background: $accent 40%; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"logview--cursor"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "move(1)", "Down", show=False),
        Binding("k,up", "move(-1)", "Up", show=False),
        Binding("pagedown,space", "page(1)", "Page down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("ctrl+d", "half(1)", "Half page down", show=False),
        Binding("ctrl+u", "half(-1)", "Half page up", show=False),
        Binding("g,home", "top", "Top", show=False),
        Binding("G,end", "bottom", "Bottom (follow)"),
        Binding("colon", "goto", "Go to line"),
    ]

    class Wanted(Message):
        """Lines from ``first`` are not in the window: read ``WINDOW`` from there."""

        def __init__(self, first: int) -> None:
            super().__init__()
            self.first = first

    class GotoAsked(Message):
        """``:``: the screen asks for a line number (its input, above the footer)."""

    class Moved(Message):
        """The operator moved the view (the screen's title says where)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.total = 0
        self.first = 1
        self.lines: list[LogLine] = []
        #: The line number at the top of the view, and the selected line.
        self.top = 1
        self.cursor = 0
        self.follow = True
        self.wrap = False
        self.asked: int | None = None
        self.error_re = re.compile(r"ERROR|FATAL|CRITICAL|Traceback|Exception|panic:")
        self.warn_re = re.compile(r"WARN(ING)?")
        self.pattern: re.Pattern[str] | None = None
        #: What the view shows instead of lines (no stage, a source's failure).
        self.empty = ""

    # -- data ------------------------------------------------------------------

    def clear(self) -> None:
        self.total, self.first, self.lines = 0, 1, []
        self.top, self.cursor, self.asked = 1, 0, None
        self.follow = True
        self.refresh()

    def show_window(self, total: int, first: int, lines: list[LogLine]) -> None:
        """A window read for this view: kept, drawn; the view moves only if following."""
        self.total, self.first, self.lines = total, first, lines
        self.asked = None
        if self.follow:
            self._to_end()
        else:
            self.cursor = min(self.cursor, total)
            self._ensure()
        self.refresh()

    def line(self, number: int) -> LogLine | None:
        i = number - self.first
        return self.lines[i] if 0 <= i < len(self.lines) else None

    def window_wanted(self) -> int | None:
        """The first line to read from, or None when following (the last lines)."""
        if self.follow:
            return None
        return max(1, self.top - (WINDOW - self.page) // 2)

    # -- geometry --------------------------------------------------------------

    def on_resize(self) -> None:
        # The screen gives the log the rows its tables leave, and those change
        # with the run shown: following, the last line stays at the bottom of
        # the new height; paused, the view's top stays within the log.
        if self.follow:
            self._to_end()
        else:
            self.top = min(self.top, self._last_top())
            self._ensure()

    @property
    def page(self) -> int:
        return max(1, self.size.height)

    def _last_top(self) -> int:
        return max(1, self.total - self.page + 1)

    def _to_end(self) -> None:
        self.top = self._last_top()
        self.cursor = self.total

    def _ensure(self) -> None:
        """Ask for the lines under the view if the window lacks them."""
        if self.total == 0:
            return
        need_to = min(self.total, self.top + self.page - 1)
        have = self.first <= self.top and need_to < self.first + len(self.lines)
        if have or self.follow:
            return
        want = self.window_wanted()
        if want is not None and self.asked != want:
            self.asked = want
            self.post_message(self.Wanted(want))

    def go(self, cursor: int, *, center: bool = False) -> None:
        """Select line ``cursor`` (clamped) and scroll it into view; stops following."""
        self.follow = False
        self.cursor = min(max(1, cursor), max(1, self.total))
        if center:
            self.top = self.cursor - self.page // 3
        elif self.cursor < self.top:
            self.top = self.cursor
        elif self.cursor >= self.top + self.page:
            self.top = self.cursor - self.page + 1
        self.top = min(max(1, self.top), self._last_top())
        self._ensure()
        self.refresh()
        self.post_message(self.Moved())

    # -- keys ------------------------------------------------------------------

    def action_move(self, step: int) -> None:
        self.go((self.cursor or self.total) + step)

    def _scroll(self, rows: int) -> None:
        self.follow = False
        self.top = min(max(1, self.top + rows), self._last_top())
        self.cursor = min(max(1, (self.cursor or self.total) + rows), max(1, self.total))
        self.cursor = min(max(self.cursor, self.top), self.top + self.page - 1)
        self._ensure()
        self.refresh()
        self.post_message(self.Moved())

    def action_page(self, step: int) -> None:
        self._scroll(step * self.page)

    def action_half(self, step: int) -> None:
        self._scroll(step * max(1, self.page // 2))

    def action_top(self) -> None:
        self.go(1)

    def action_bottom(self) -> None:
        """The last line, and following again."""
        self.follow = True
        self._to_end()
        self.refresh()
        self.post_message(self.Moved())
        self.post_message(self.Wanted(0))

    def action_goto(self) -> None:
        self.post_message(self.GotoAsked())

    # -- drawing ---------------------------------------------------------------

    def _frame(self, number: int) -> bool:
        """Line ``number`` is a traceback's frame or the source line it quotes."""
        line = self.line(number)
        if line is None:
            return False
        if FRAME.match(line.line):
            return True
        before = self.line(number - 1)
        return (
            line.line[:1] in (" ", "\t") and before is not None and bool(FRAME.match(before.line))
        )

    def kind(self, number: int) -> str:
        """``E`` error, ``W`` warning, ``T`` a traceback's frame, else a space."""
        line = self.line(number)
        if line is None:
            return " "
        text = line.line
        if self.error_re.search(text):
            return "E"
        if self._frame(number):
            return "T"
        if text[:1] not in (" ", "\t") and self._frame(number - 1):
            return "E"  # the exception that ends a traceback (``ValueError: bad``)
        if self.warn_re.search(text):
            return "W"
        return " "

    def _rows(self, number: int, width: int, digits: int) -> list[Text]:
        """Line ``number`` as screen rows: gutter and text, wrapped or cut."""
        line = self.line(number)
        kind = self.kind(number)
        mark = "›" if number == self.cursor else " "
        gutter = Text(f"{mark}{kind} {number:>{digits}} ", style=KIND_STYLE[kind] or "dim")
        room = max(1, width - len(gutter))
        if line is None:
            return [gutter + Text("…", style="dim")]
        body = Text(safe(line.line), style=KIND_STYLE[kind] if kind in "EW" else "")
        if self.pattern is not None:
            body.highlight_regex(self.pattern, style="reverse")
        if not self.wrap:
            if body.cell_len > room:
                body.truncate(room - 1)
                body.append("…", style="dim")
            row = gutter + body
            return [row]
        rows: list[Text] = []
        indent = 2
        first = True
        rest = body
        while True:
            w = room if first else max(1, room - indent)
            head, _, tail = _split(rest, w)
            lead = gutter if first else Text(" " * (len(gutter) + indent))
            rows.append(lead + head)
            first = False
            if tail is None:
                return rows
            rest = tail

    def render(self) -> RenderableType:
        height, width = self.page, max(10, self.size.width)
        if self.total == 0:
            return Text(self.empty or "(no log lines yet)", style="dim")
        digits = len(str(self.total))
        rows: list[Text] = []
        if self.follow and self.wrap:
            # From the last line up, so the last line is on screen wrapped or not.
            n = self.total
            while n >= 1 and len(rows) < height:
                rows[:0] = self._rows(n, width, digits)
                n -= 1
            rows = rows[-height:]
        else:
            n = self.top
            while n <= self.total and len(rows) < height:
                rows.extend(self._rows(n, width, digits))
                n += 1
            rows = rows[:height]
        out = Text("\n").join(rows)
        out.no_wrap = True
        out.overflow = "crop"
        return out


def _split(text: Text, width: int) -> tuple[Text, None, Text | None]:
    """``text`` cut at ``width`` cells: the head and what is left (None: nothing)."""
    if text.cell_len <= width:
        return text, None, None
    cut = width
    # Cells, not characters: back off until the head fits (wide characters).
    while cut > 1 and Text(text.plain[:cut]).cell_len > width:
        cut -= 1
    space = text.plain.rfind(" ", cut // 2, cut)
    if space > 0:
        cut = space + 1  # at a word's end when one is near
    head, tail = text.divide([cut])
    return head, None, tail
