"""The audit trail: every operator action, who, what, where and how it ended, newest first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Footer, Static

from opstui.tui.render import age, safe
from opstui.tui.screens.base import Detail
from opstui.tui.table import LiveTable
from opstui.tui.widgets import Panel
from opstui.views.snapshot import Snapshot, SnapshotReader


class AuditScreen(Detail):
    def __init__(self, *, clock: Callable[[], float]) -> None:
        super().__init__("audit", clock=clock)

    @property
    def label(self) -> str:
        return "the audit trail"

    def compose(self) -> ComposeResult:
        yield Static("Audit trail: every operator action, newest first", id="title")
        yield Static("", id="note")
        self.table = LiveTable(
            [
                ("age", "AGE"),
                ("actor", "WHO"),
                ("action", "ACTION"),
                ("target", "TARGET"),
                ("env", "ENV"),
                ("status", "STATUS"),
                ("outcome", "OUTCOME"),
            ]
        )
        with Vertical():
            yield Panel("actions", self.table)
        yield Footer()

    def on_mount(self) -> None:
        self.table.focus()

    def load(self, console: SnapshotReader) -> Any:
        from opstui.store.actions import list_actions

        return list_actions(console.store, limit=500)

    def show_extra(self, data: Any, snap: Snapshot) -> None:
        now = self.clock()
        self.table.show(
            [
                (
                    str(a.id),
                    (
                        age(now - a.ts),
                        safe(a.actor),
                        a.action,
                        safe(a.target),
                        a.environment or "",
                        Text(a.status, style="red" if a.status in ("failed", "refused") else ""),
                        safe(a.outcome),
                    ),
                )
                for a in data
            ]
        )
