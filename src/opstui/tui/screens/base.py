"""What every detail screen shares: a title line, a note that says stale, esc back.

A detail screen is built with its target and the app's clock; the refresh
worker calls its ``load`` on a thread and the app hands the result to
``show_extra`` on the UI thread. It asks for a read by posting
``RefreshWanted``; it never reaches the app itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.screen import Screen
from textual.widgets import Static

from opstui.tui.messages import OpenRow
from opstui.tui.render import safe
from opstui.views.snapshot import Snapshot, SnapshotReader


class Detail(Screen[None]):
    """What every detail screen shares: a title line, esc back, the footer."""

    DEFAULT_CSS = """
    Detail #title { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    Detail #note { height: 1; padding: 0 1; color: $text-muted; }
    """
    kind = ""

    def __init__(self, name: str, *, clock: Callable[[], float]) -> None:
        super().__init__()
        self.target = name
        #: The app's clock (frozen in tests): ages on screen are counted from it.
        self.clock = clock
        self.stale = False

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

    def set_title(self, text: str | Text) -> None:
        self.query_one("#title", Static).update(text)

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
