"""Widgets more than one screen uses: a titled panel that says how fresh it is, a status line.

Their own module so that a detail screen never imports the dashboard's
(the screens import widgets, never each other).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

from opstui.timeutil import clock_time, human_age
from opstui.tui.render import safe
from opstui.views.snapshot import Snapshot


class Panel(Vertical):
    """A titled table whose border says how fresh its data is."""

    DEFAULT_CSS = """
    Panel { border: round $primary-muted; height: 1fr; padding: 0; }
    Panel LiveTable { scrollbar-size-horizontal: 0; scrollbar-size-vertical: 1; }
    Panel:focus-within { border: round $accent; }
    Panel.stale { border: round $error; }
    """

    def __init__(self, name: str, table: Widget, **kwargs: Any) -> None:
        kwargs.setdefault("id", f"panel-{name}")
        super().__init__(table, **kwargs)
        self.panel = name
        self.table = table
        self.border_title = name.capitalize()

    def freshness(self, snap: Snapshot, shown: int, total: int) -> None:
        problem = snap.problems.get(self.panel)
        read = snap.read_at.get(self.panel)
        count = f"{shown}/{total}" if shown != total else f"{total}"
        title = f"{self.panel.capitalize()} ({count})"
        self.border_title = title
        if problem:
            # Read in this very refresh, the rows are current and what failed
            # is a job that feeds them (a drift pass): its reason gets the room.
            if read is None:
                when = ", never read"
            elif read == snap.at:
                when = ""
            else:
                when = f", read {human_age(snap.at - read)}"
            room = max(70, self.size.width - 8)
            self.border_subtitle = f"stale{when}: {safe(problem)}"[:room]
            self.add_class("stale")
        else:
            # When its data was read (UTC, like every time opstui prints).
            self.border_subtitle = f"read {clock_time(read or snap.at)}"
            self.remove_class("stale")


class StatusLine(Static):
    shown: Text | None = None

    DEFAULT_CSS = """
    StatusLine { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """
