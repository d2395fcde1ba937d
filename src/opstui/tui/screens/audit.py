"""The audit trail: every operator action, who, what, where and how it ended, newest first.

``enter`` on a row opens what the action was on (its pipeline or model, the
endpoint an acknowledgement named), as the timeline does. Narrow, who and
when give their room to the outcome (elided); the line under the table says
the selected action in full.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Static

from opstui.timeutil import clock_time
from opstui.tui.render import age, safe
from opstui.tui.screens.base import Detail
from opstui.tui.table import LiveTable, row_target
from opstui.tui.widgets import Panel
from opstui.views.snapshot import Snapshot, SnapshotReader

#: What an empty trail says: what would fill it, not a bare table.
EMPTY = (
    "No operator actions yet. Each retry (r), rollback (b) and retrain (t) started here "
    "or with opstui retry/rollback/retrain, confirmed, declined or refused, and each "
    "acknowledgement (A) is recorded here, with who and how it ended."
)


class AuditScreen(Detail):
    DEFAULT_CSS = """
    AuditScreen #empty { height: 1fr; padding: 1 2; display: none; }
    AuditScreen #detail { height: 2; padding: 0 1; }
    """

    def __init__(self, *, clock: Callable[[], float]) -> None:
        super().__init__("audit", clock=clock)
        #: What each row opens (``pipeline:etl``), by the row's key.
        self.opens: dict[str, str] = {}
        #: Each row's action, by the row's key (the line under the table).
        self.actions: dict[str, Any] = {}

    @property
    def label(self) -> str:
        return "the audit trail"

    def compose(self) -> ComposeResult:
        yield Static("Audit trail: every operator action, newest first", id="title")
        yield Static("", id="note")
        self.table = LiveTable(
            [
                ("age", "AGE"),
                ("when", "WHEN", 118),
                ("actor", "WHO", 98),
                ("action", "ACTION"),
                ("target", "TARGET"),
                ("env", "ENV"),
                ("status", "STATUS"),
                ("outcome", "OUTCOME"),
            ],
            flex="outcome",
        )
        with Vertical():
            yield Panel("actions", self.table)
            yield Static(Text(EMPTY), id="empty")
            yield Static("", id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.set_title("Audit trail: every operator action, newest first")
        self.table.focus()

    def load(self, console: SnapshotReader) -> Any:
        from opstui.store.actions import list_actions

        return list_actions(console.store, limit=500)

    def show_extra(self, data: Any, snap: Snapshot) -> None:
        now = self.clock()
        self.opens = {}
        self.actions = {str(a.id): a for a in data}
        for a in data:
            target = row_target(snap, a.action, a.target, a.plan.get("pipeline"))
            if target is not None:
                self.opens[str(a.id)] = target
        self.table.show(
            [
                (
                    str(a.id),
                    (
                        age(now - a.ts),
                        clock_time(a.ts),
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
        self.query_one("#panel-actions", Panel).display = bool(data)
        self.query_one("#empty", Static).display = not data
        self.query_one("#detail", Static).display = bool(data)
        self._detail(self.table.selected_key)

    def _detail(self, key: str | None) -> None:
        """The selected action in full: a narrow screen elides its outcome and hides who."""
        a = self.actions.get(key) if key is not None else None
        box = self.query_one("#detail", Static)
        if a is None:
            box.update("")
            return
        text = Text(f"{clock_time(a.ts)} {safe(a.actor)}", style="dim")
        where = f" in {safe(a.environment)}" if a.environment else ""
        text.append(f": {a.action} {safe(a.target)}{where}: ")
        text.append(a.status, style="red" if a.status in ("failed", "refused") else "bold")
        if a.outcome:
            text.append(f": {safe(a.outcome)}")
        box.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail(event.row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # The table takes enter for itself: it opens what the action was on.
        key = event.row_key.value
        self.open_row(self.opens.get(key) if key is not None else None, "action")
