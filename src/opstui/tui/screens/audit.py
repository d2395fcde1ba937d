"""The audit trail: every operator action, who, what, where and how it ended, newest first.

With them, what the automation policies decided without acting (held by a
guard rail, waiting for approval, shadow mode's would-act, inconclusive),
the answers to their requests and the pauses, each with who and why: a
policy's act is an action row of its own, by ``policy:NAME``.

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

from opstui.store.actions import ActionRow
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
    "acknowledgement (A) is recorded here, with who and how it ended; so is what each "
    "automation policy decides, acting or not, and why (P)."
)


#: At most this many rows of each kind are read.
LIMIT = 500
#: How far back the policies' decisions are read (the actions: the newest LIMIT).
DECISIONS_FOR = 30 * 86400.0
STATUS_STYLE = {"failed": "red", "refused": "red", "awaiting approval": "bold cyan",
                "would act": "cyan", "held": "yellow", "rejected": "yellow"}  # fmt: skip


def as_action(d: Any) -> ActionRow:
    """A policy's decision as a row of the trail: who (the policy, or the operator
    who paused or answered), what it would do, the verdict, why."""
    human = d.verdict in ("paused", "resumed", "approved", "rejected")
    actor = (d.decided_by or "?") if human else f"policy:{d.policy}"
    action = d.action or ("policies" if d.policy == "*" else "policy")
    target = d.target.partition(":")[2] or d.target
    if d.policy == "*":
        target = "every policy"
    return ActionRow(d.id, d.decided_at, actor, action, target, d.environment, {},
                     d.verdict.replace("_", " "), d.why, d.run_id, d.decided_at)  # fmt: skip


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
        yield Static("", id="title")
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
        self.set_title("Audit trail: every action and policy decision, newest first")
        self.table.focus()

    def load(self, console: SnapshotReader) -> Any:
        """Actions and the policies' decisions not to act (or to ask), newest first:
        an act of a policy is an action row already, with the actor ``policy:NAME``."""
        from opstui.store.actions import list_actions
        from opstui.store.policies import decisions

        rows = [(f"a:{a.id}", a) for a in list_actions(console.store, limit=LIMIT)]
        since = self.clock() - DECISIONS_FOR
        rows += [(f"p:{d.id}", as_action(d)) for d in decisions(console.store, since=since,
                 limit=LIMIT) if d.verdict != "acted"]  # fmt: skip
        rows.sort(key=lambda r: r[1].ts, reverse=True)
        return rows[:LIMIT]

    def show_extra(self, data: Any, snap: Snapshot) -> None:
        now = self.clock()
        self.opens = {}
        self.actions = dict(data)
        for key, a in data:
            target = row_target(snap, a.action, a.target, a.plan.get("pipeline"))
            if target is not None:
                self.opens[key] = target
        self.table.show(
            [
                (
                    key,
                    (
                        age(now - a.ts),
                        clock_time(a.ts),
                        safe(a.actor),
                        a.action,
                        safe(a.target),
                        a.environment or "",
                        Text(a.status, style=STATUS_STYLE.get(a.status, "")),
                        safe(a.outcome),
                    ),
                )
                for key, a in data
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
        text.append(a.status, style=STATUS_STYLE.get(a.status, "bold"))
        if a.outcome:
            text.append(f": {safe(a.outcome)}")
        box.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail(event.row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # The table takes enter for itself: it opens what the action was on.
        key = event.row_key.value
        self.open_row(self.opens.get(key) if key is not None else None, "action")
