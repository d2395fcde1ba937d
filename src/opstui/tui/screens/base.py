"""What every detail screen shares: a title line, a note that says stale, esc back.

The title line begins with where the operator came from (the screens
under this one, ``board > timeline >`` drawn with single angle quotes) and
ends as the dashboard's does: the sources' health, the host, the store
(``tui/header.py``), READ-ONLY first when it is.

A detail screen is built with its target and the app's clock; the refresh
worker calls its ``load`` on a thread and the app hands the result to
``show_extra`` on the UI thread. It asks for a read by posting
``RefreshWanted``; it never reaches the app itself.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any

from rich.text import Text
from textual.css.query import NoMatches
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Static

from opstui.tui.header import DETAIL_SHARE, Where, fit, right_end
from opstui.tui.messages import OpenRow
from opstui.tui.render import safe
from opstui.views.endpoints import EndpointReport
from opstui.views.snapshot import Snapshot, SnapshotReader


class Detail(Screen[None]):
    """What every detail screen shares: a title line, esc back, the footer."""

    DEFAULT_CSS = """
    Detail #title { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    Detail #note { height: 1; padding: 0 1; color: $text-muted; }
    """
    kind = ""
    #: The store, host and read-only flag the title line ends with (set by the app).
    where: Where | None = None

    def __init__(self, name: str, *, clock: Callable[[], float]) -> None:
        super().__init__()
        self.target = name
        #: The app's clock (frozen in tests): ages on screen are counted from it.
        self.clock = clock
        self.stale = False
        self._title: Text = Text()
        self._endpoints: list[EndpointReport] = []

    @property
    def label(self) -> str:
        """What this screen shows, in a failure's words (``pipeline fraud-model``)."""
        return f"{self.kind} {self.target}"

    def selected(self) -> str | None:
        return f"{self.kind}:{self.target}" if self.kind else None

    def open_row(self, target: str | None, what: str) -> None:
        """Open what a selected row names (``pipeline:etl``), or say there is nothing."""
        if target is not None:
            self.post_message(OpenRow(target))
        else:
            self.notify(f"nothing to open for this {what}", severity="warning")

    @property
    def crumb(self) -> str:
        """This screen in the breadcrumbs of a screen opened from it."""
        return self.label.removeprefix("the ")

    def set_title(self, text: str | Text) -> None:
        self._title = Text(text) if isinstance(text, str) else text
        self._draw_title()

    def heading(self, snap: Snapshot) -> None:
        """The sources' health as of ``snap`` at the title line's end (UI thread)."""
        if [(e.name, e.state) for e in snap.endpoints] != [
            (e.name, e.state) for e in self._endpoints
        ]:
            self._endpoints = list(snap.endpoints)
            self._draw_title()

    def on_resize(self, event: Resize) -> None:
        # Textual calls each class's handler: a screen's own on_resize does not hide this one.
        self._draw_title()

    def _draw_title(self) -> None:
        width = self.size.width or self.app.size.width
        badge = Text()
        if self.where is not None and self.where.read_only:
            badge.append("READ-ONLY", style="bold reverse").append(" ")
        crumbs = Text()
        for screen in self.app.screen_stack:
            if screen is self:
                break
            crumb = getattr(screen, "crumb", None)
            if isinstance(crumb, str) and crumb:
                crumbs.append(f"{safe(crumb)} › ", style="dim")
        right = Text()
        if self.where is not None:
            right = right_end(self.where, self._endpoints, width, DETAIL_SHARE)
        # The breadcrumbs give way before the title is cut: "run #166 failed"
        # matters more than where the operator came from.
        left = Text.assemble(badge, crumbs, self._title)
        if left.cell_len + right.cell_len + 3 > width:
            left = Text.assemble(badge, self._title)
        with suppress(NoMatches):  # not composed yet: drawn on mount
            self.query_one("#title", Static).update(fit(left, right, width))

    def load(self, reader: SnapshotReader) -> Any:
        """This screen's own rows, read on the refresh worker's thread (store reads only)."""
        raise NotImplementedError

    def show_extra(self, data: Any, snap: Snapshot) -> None:
        """Put what ``load`` returned on screen (UI thread); ``snap`` is the dashboard's read."""
        raise NotImplementedError

    def problem(self, message: str | None) -> None:
        """Say why what is on screen is stale; None: it is fresh again."""
        if message is None:
            if self.stale:
                self.query_one("#note", Static).update("")
                self.stale = False
            return
        self.query_one("#note", Static).update(Text(f"stale: {safe(message)}", style="red"))
        self.stale = True
