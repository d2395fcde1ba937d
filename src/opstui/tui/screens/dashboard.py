"""The first screen: pipelines, endpoints, models and events, faults first.

It is built with what it cannot learn from a snapshot (read-only, the
store's label) and draws the snapshots the app hands it; opening a row is a
message to the app (``OpenRow``), so the screen never reaches into the app.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input

from opstui.store import status as st
from opstui.timeutil import human_duration, to_datetime
from opstui.tui.header import Where, fit, right_end
from opstui.tui.messages import OpenRow
from opstui.tui.render import (
    ENDPOINT_STYLE,
    SEVERITY_STYLE,
    age,
    burn,
    pct,
    safe,
    sparkline,
    stage_bar,
    status_text,
)
from opstui.tui.table import FilterBar, LiveTable, Row, RowFilter, dim, row_target
from opstui.tui.widgets import Panel, StatusLine
from opstui.views.snapshot import Snapshot, changes
from opstui.views.urgency import acknowledged_rows, faults

#: What an empty panel says, so a blank is never mistaken for "all fine".
EMPTY = {
    "pipelines": "no runs recorded yet (record, run or import: see opstui --help)",
    "endpoints": "none configured: [endpoints.NAME]",
    "models": "no models yet",
}
TRIGGER_SHOWN = {"retry", "rollback", "retrain", "schedule"}
#: Keys that move a cursor or the focus on the board (``DashboardScreen.by_hand``).
MOVING_KEYS = frozenset(
    {"up", "down", "j", "k", "g", "G", "ctrl+d", "ctrl+u", "pageup", "pagedown", "home", "end",
     "tab", "shift+tab"}
)  # fmt: skip
#: From this many columns the events feed stands beside the other panels.
WIDE = 160
#: What the ``/`` filter may name besides a row's name: ``host:ci-runner``.
FILTER_FIELDS = ("host",)


def empty_hint(snap: Snapshot) -> str:
    """What the status line says when there is nothing to show: why, or how to get data."""
    if snap.problems:
        problem = next(iter(snap.problems.values()))
        return f"No data: {problem}"
    return "Empty store. Try: opstui import sample_runs/ · opstui run NAME"


def pipeline_rows(snap: Snapshot, needle: RowFilter) -> list[Row]:
    now = snap.at
    rows: list[Row] = []
    acked = acknowledged_rows(snap)
    for p in snap.pipelines:
        if needle.field == "host":
            host = (p.latest.host or "") if p.latest is not None else None
            # A pipeline never run has no host: a host filter leaves it out either way.
            if host is None or not needle.matches(host):
                continue
        elif not needle.matches(p.name):
            continue
        run = p.latest
        name: str | Text = safe(p.name)
        if p.removed_label:  # its source no longer has it: marked, in words
            name = Text.assemble(name, (f" ({p.removed_label})", "dim"))
        if f"pipeline:{p.name}" in acked:
            name = Text.assemble(name, (" (ack)", "dim"))
        if run is None:
            never = (name, Text(), status_text("never_run"), "", "", "", "")
            rows.append((f"pipeline:{p.name}", never))
            continue
        failed = run.failed_stage
        ended = run.finished_at or run.started_at or run.created_at
        rows.append(
            (
                f"pipeline:{p.name}",
                (
                    name,
                    stage_bar(run, width=12),
                    status_text(run.status),
                    safe(failed.name) if failed else "",
                    age(now - ended),
                    human_duration(run.duration(now)),
                    run.trigger if run.trigger in TRIGGER_SHOWN else dim(run.trigger),
                ),
            )
        )
    return rows


def endpoint_rows(snap: Snapshot, needle: RowFilter) -> list[Row]:
    rows: list[Row] = []
    acked = acknowledged_rows(snap)
    for e in snap.endpoints:
        if not needle.matches(e.name):
            continue
        ratio = e.ratios.get("5m")
        data_age = age(snap.at - e.last_success_at) if e.last_success_at is not None else "never"
        rows.append(
            (
                f"endpoint:{e.name}",
                (
                    Text.assemble(safe(e.name), (" (ack)", "dim"))
                    if f"endpoint:{e.name}" in acked
                    else safe(e.name),
                    Text(e.state, style=ENDPOINT_STYLE.get(e.state, "")),
                    pct(ratio),
                    sparkline(e.history, 8),
                    burn(e.burn.get("1h")),
                    data_age,
                ),
            )
        )
    return rows


def model_rows(snap: Snapshot, needle: RowFilter) -> list[Row]:
    rows: list[Row] = []
    acked = acknowledged_rows(snap)
    for m in snap.models:
        if not needle.matches(m.name):
            continue
        deployed = " ".join(f"{env[:4]}:{v}" for env, v in sorted(m.deployed.items()))
        drift = "-" if m.drift_share is None else f"{m.drift_share * 100:.0f}%"
        flag = Text("retrain", style="bold yellow") if m.retrain_suggested else Text("")
        rows.append(
            (
                f"model:{m.name}",
                (
                    Text.assemble(safe(m.name), (" (ack)", "dim"))
                    if f"model:{m.name}" in acked
                    else safe(m.name),
                    deployed or dim("not deployed"),
                    Text(drift, style="bold red" if m.retrain_suggested else ""),
                    safe(", ".join(m.drifted[:3])),
                    flag,
                ),
            )
        )
    return rows


def event_key(i: int, ref: str, taken: set[str]) -> str:
    """An event row's key: where it comes from (``event:run:12``), so the
    cursor stays on it as newer events arrive; its place if that is taken."""
    key = f"event:{ref}" if ref else f"event:{i}"
    if key in taken:
        key = f"event:{i}"
    taken.add(key)
    return key


def event_rows(snap: Snapshot) -> list[Row]:
    taken: set[str] = set()
    return [
        (
            event_key(i, e.ref, taken),
            (
                age(snap.at - e.ts),
                Text(safe(e.text), style=SEVERITY_STYLE.get(e.severity, "")),
            ),
        )
        for i, e in enumerate(snap.events)
    ]


def event_opens(snap: Snapshot) -> dict[str, str]:
    """What ``enter`` on each event row opens (``pipeline:etl``), by the row's key:
    a run's pipeline, a drifting model, an alert's endpoint."""
    taken: set[str] = set()
    out = {}
    for i, e in enumerate(snap.events):
        key = event_key(i, e.ref, taken)
        target = row_target(snap, e.kind, e.subject)
        if target is not None:
            out[key] = target
    return out


def _moment(at: float, now: float) -> str:
    """``06:41`` today (UTC), ``Dec 04 18:04`` another day."""
    then, today = to_datetime(at), to_datetime(now)
    if then is None or today is None:
        return "?"
    return f"{then:%H:%M}" if then.date() == today.date() else f"{then:%b %d %H:%M}"


class DashboardScreen(Screen[None]):
    DEFAULT_CSS = """
    #board { layout: vertical; height: 1fr; }
    #boards { height: auto; }
    #panel-pipelines { height: 8; }
    #panel-endpoints { height: 4; }
    #panel-models { height: 4; }
    #panel-events { height: 1fr; min-height: 4; }
    DashboardScreen.wide #board { layout: horizontal; }
    DashboardScreen.wide #boards { width: 1fr; height: 1fr; }
    DashboardScreen.wide #panel-events { width: 1fr; height: 1fr; }
    """

    def __init__(self, *, where: Where, seen_at: float | None = None) -> None:
        super().__init__()
        #: When this board was last on screen before now (the previous
        #: console's last look, then when a detail screen covered it): the
        #: headline says what changed since.
        self.seen_at = seen_at
        self._left_at: float | None = None
        #: Fixed for the session: keys that write are refused, and the headline
        #: says so first; the store and the host end the line.
        self.here = where
        self.read_only = where.read_only
        #: Set by the app's pause key: the headline says so.
        self.paused = False
        #: The last snapshot shown, drawn again when the filter changes.
        self.snap: Snapshot | None = None
        self.needle = ""
        #: What ``enter`` on an event row opens, by the row's key (``event_opens``).
        self.opens: dict[str, str] = {}
        #: The operator moved the cursor (keys, a jump, a filter): from then on
        #: the refresh leaves it where it is; until then it follows the most
        #: urgent fault (``views.urgency``).
        self.by_hand = False
        self.pipelines = LiveTable(
            [
                ("name", "PIPELINE"),
                ("bar", "STAGES"),
                ("status", "STATUS"),
                ("failed", "FAILED AT"),
                ("age", "AGE"),
                # Narrow, the trigger and the duration go first (the
                # pipeline screen says both).
                ("took", "TOOK", 64),
                ("trigger", "TRIGGER", 74),
            ],
            id="pipelines",
        )
        self.endpoints = LiveTable(
            [
                ("name", "ENDPOINT"),
                ("state", "STATE"),
                ("err", "ERR 5m"),
                ("spark", "TREND", 62),
                ("burn", "BURN"),
                ("age", "DATA"),
            ],
            id="endpoints",
        )
        self.models = LiveTable(
            [
                ("name", "MODEL"),
                ("deployed", "DEPLOYED"),
                ("drift", "DRIFT"),
                ("features", "FEATURES"),
                ("flag", ""),
            ],
            flex="features",
            id="models",
        )
        self.events = LiveTable([("age", "AGE"), ("text", "EVENT")], flex="text", id="events")

    def compose(self) -> ComposeResult:
        yield StatusLine("opstui: reading the store…", id="status")
        # Full-width panels, stacked: at 80 columns two side by side cut
        # their columns (an endpoint's burn, a model's drifted features).
        # From WIDE columns the events feed stands beside the rest, full height.
        with Horizontal(id="board"):
            with Vertical(id="boards"):
                yield Panel("pipelines", self.pipelines)
                yield Panel("endpoints", self.endpoints)
                yield Panel("models", self.models)
            yield Panel("events", self.events)
        yield FilterBar(
            placeholder="regex on names, !inverts, host:NAME (esc clears)",
            input_id="filter",
            id="filter-bar",
        )
        yield Footer()

    def on_mount(self) -> None:
        self.pipelines.focus()
        if self.snap is not None:
            self.show(self.snap)  # shown before the screen was up

    def pause(self, paused: bool) -> None:
        """Say (or stop saying) that the refresh is paused."""
        self.paused = paused
        if self.snap is not None:
            self.show(self.snap)

    def show(self, snap: Snapshot) -> None:
        self.snap = snap
        needle = RowFilter.parse(self.needle, FILTER_FIELDS)
        other = RowFilter() if needle.field is not None else needle
        matched = every = 0
        for panel, table, rows, total in (
            ("pipelines", self.pipelines, pipeline_rows(snap, needle), len(snap.pipelines)),
            # A host filter is the pipelines' (endpoints and models have none).
            ("endpoints", self.endpoints, endpoint_rows(snap, other), len(snap.endpoints)),
            ("models", self.models, model_rows(snap, other), len(snap.models)),
            ("events", self.events, event_rows(snap), len(snap.events)),
        ):
            shown = len(rows)
            if panel != "events" and (needle.field is None or panel == "pipelines"):
                matched, every = matched + shown, every + total
            if not total and panel in EMPTY:
                blank = ("",) * (len(table.every) - 1)
                table.show([(f"hint:{panel}", (dim(EMPTY[panel]), *blank))])
            else:
                table.show(rows)
            self.query_one(f"#panel-{panel}", Panel).freshness(snap, shown, total)
        self.opens = event_opens(snap)
        bar = self.query_one(FilterBar)
        if bar.shown:
            bar.count(needle.tally(matched, every))
        self._layout()
        if not self.by_hand:
            self._follow_worst(snap)
        width = self.size.width or self.app.size.width
        line = fit(self.headline(snap), right_end(self.here, snap.endpoints, width), width)
        status = self.query_one("#status", StatusLine)
        if line != getattr(status, "shown", None):
            # One line of fixed height: no re-layout of the screen for it.
            status.update(line, layout=False)
            status.shown = line

    @property
    def crumb(self) -> str:
        """What a screen opened from the board shows first in its breadcrumbs."""
        return "board"

    def on_resize(self, event: events.Resize) -> None:
        if self.snap is not None:
            self.show(self.snap)  # the layout, and the top line for the new width
        else:
            self._layout()

    def on_screen_suspend(self) -> None:
        # Covered by a detail screen: what happens from now is news on return.
        # (A dialog over the board, a plan to confirm, leaves it in view.)
        if isinstance(self.app.screen, ModalScreen):
            return
        self._left_at = self.snap.at if self.snap is not None else None

    def on_screen_resume(self) -> None:
        if self._left_at is not None:
            self.seen_at, self._left_at = self._left_at, None

    def _follow_worst(self, snap: Snapshot) -> None:
        """The cursor on the most urgent fault, its panel focused."""
        worst = next(iter(faults(snap)), None)
        if worst is None:
            return
        table = self._table(worst.key)
        if table is None:
            return
        if table.selected_key != worst.key and not table.select_key(worst.key):
            return  # filtered out
        if self.focused is not table and not isinstance(self.focused, Input):
            table.focus()

    def _table(self, key: str) -> LiveTable | None:
        kind = key.split(":", 1)[0]
        return {"pipeline": self.pipelines, "endpoint": self.endpoints, "model": self.models}.get(
            kind
        )

    def on_key(self, event: events.Key) -> None:
        # A key that moves a cursor or the focus: the operator chose where to look.
        if event.key in MOVING_KEYS:
            self.by_hand = True

    def _layout(self) -> None:
        """Each panel takes what its rows need (header and borders: 3 more), up to
        a share of the screen; the events feed gets the rest, at least 4 lines.
        From ``WIDE`` columns the feed stands on the right, full height, and
        the pipelines take what endpoints and models leave on the left."""
        wide = self.size.width >= WIDE
        self.set_class(wide, "wide")
        bar = 1 if self.query_one(FilterBar).shown else 0
        room = max(12, self.size.height - 2 - bar)  # the status line, the footer, the filter
        shares = (0.6, 0.3, 0.3) if wide else (0.4, 0.25, 0.25)
        for table, share in zip((self.pipelines, self.endpoints, self.models), shares, strict=True):
            want = max(1, table.row_count) + 3
            panel = table.parent
            assert isinstance(panel, Panel)
            height = max(4, min(want, int(room * share)))
            if wide and table is self.pipelines:
                # The rest of the left column: no blank band under the tables.
                others = sum(
                    max(4, min(max(1, t.row_count) + 3, int(room * 0.3)))
                    for t in (self.endpoints, self.models)
                )
                height = max(height, room - others)
            if panel.styles.height is None or panel.styles.height.value != height:
                panel.styles.height = height  # (a style set, even the same, lays out again)

    def headline(self, snap: Snapshot) -> Text:
        failing = sum(1 for p in snap.pipelines if p.failing)
        running = sum(1 for p in snap.pipelines if p.status in st.ACTIVE)
        states = [e.state for e in snap.endpoints]
        out = Text(no_wrap=True, overflow="ellipsis")
        # What changes how keys behave comes first, so a narrow terminal keeps it.
        if self.read_only:
            out.append("READ-ONLY ", style="bold reverse")
        if self.paused:
            out.append("PAUSED (p resumes) ", style="bold yellow reverse")
        if not snap.pipelines and not snap.endpoints:
            out.append(empty_hint(snap), style="bold")
            return out
        if failing:
            out.append(f"{failing} failing ", style="bold red")
        bad_eps = 0
        for state in ("down", "burning", "stale"):
            n = states.count(state)
            bad_eps += n
            if n:
                out.append(f"{n} endpoint{'s' if n > 1 else ''} {state} ", style="bold red")
        # Still over budget by its long windows, clean lately: said apart.
        recovering = states.count(st.RECOVERING)
        if recovering:
            out.append(f"{recovering} recovering ", style="yellow")
            bad_eps += recovering
        if running:
            out.append(f"{running} running ", style="yellow")
        if not failing and not bad_eps:
            out.append("all healthy ", style="green")
        if self.seen_at is not None:
            news = changes(snap.events, self.seen_at)
            if news:
                out.append(f"since {_moment(self.seen_at, snap.at)}: {', '.join(news)} ",
                           style="cyan")  # fmt: skip
        if snap.skipped:
            # Rows the store holds that no panel can show: never silent.
            n = len(snap.skipped)
            out.append(f"{n} row{'s' if n > 1 else ''} skipped ", style="bold yellow")
        return out

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # The table takes enter for itself; opening the row is what it means here.
        # An event opens what it names: a run's pipeline, an endpoint, a model.
        key = event.row_key.value
        if key and key.partition(":")[0] in ("pipeline", "model", "endpoint"):
            self.post_message(OpenRow(key))
        elif key and key.startswith("event:"):
            target = self.opens.get(key)
            if target is not None:
                self.post_message(OpenRow(target))
            else:
                self.notify("nothing to open for this event", severity="warning")

    # -- filter ----------------------------------------------------------------

    def open_filter(self) -> None:
        self.by_hand = True
        self.query_one(FilterBar).open()
        if self.snap is not None:
            self.show(self.snap)  # the count, at once

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.needle = event.value
            if self.snap is not None:
                self.show(self.snap)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.pipelines.focus()

    def clear_filter(self) -> bool:
        if not self.query_one(FilterBar).close():
            return False
        self.needle = ""
        self.pipelines.focus()
        if self.snap is not None:
            self.show(self.snap)
        return True

    def selected(self) -> str | None:
        """The key of the row under the cursor in the focused panel (``pipeline:web``)."""
        focused = self.focused
        if isinstance(focused, LiveTable) and focused is not self.events:
            return focused.selected_key
        return self.pipelines.selected_key

    def jump(self, key: str) -> bool:
        table = self._table(key)
        if table is None or not table.select_key(key):
            return False
        self.by_hand = True
        table.focus()
        return True
