"""An endpoint: its state, error and latency charts, error ratio and burn by window, alerts.

The state and windows come from the dashboard's read (``views/endpoints``
judges them once for both); the charts from this screen's own read.

The charts fill their box at every size: as many minutes as the width holds
(a bar a minute; a history shorter than the width is spread across it), and
taller bars with the rows the tables leave (``heights``): the windows and
alerts take the rows they hold, the deployments theirs (at least the current
one and the one before, what ``b`` moves between). Narrow, the windows
table drops REQUESTS and FAILED (its subtitle says them for the selected
window) before BURN could be cut; the alerts' status elides.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.events import Resize
from textual.widgets import DataTable, Footer, Static

from opstui.store import status as st
from opstui.store.rows import DeploymentRow
from opstui.timeutil import clock_time
from opstui.tui.messages import RefreshWanted
from opstui.tui.render import (
    ENDPOINT_STYLE,
    STATUS_STYLE,
    ack_note,
    age,
    burn,
    deploy_glyph,
    last_deploy,
    pct,
    safe,
)
from opstui.tui.screens.base import Detail
from opstui.tui.table import LiveTable, dim
from opstui.tui.widgets import Panel
from opstui.views.snapshot import Snapshot, SnapshotReader
from opstui.views.urgency import acknowledgement

if TYPE_CHECKING:
    from opstui.analysis.rates import BurnAlert
    from opstui.views.endpoints import EndpointHistory

#: A deployment's status in the colour of the run status it is like.
_DEPLOY_STATUS = {"succeeded": st.SUCCEEDED, "failed": st.FAILED, "in_progress": st.RUNNING}


#: Deployments of what an endpoint serves listed on its screen, newest first
#: (as many as were read for the charts' marks; the panel shows what its
#: rows hold and scrolls).
DEPLOYMENTS_SHOWN = 20


class EndpointData(NamedTuple):
    history: Any
    #: (service or model, its name, the environment): what the endpoint serves.
    served: tuple[str, str, str] | None
    deployments: list[DeploymentRow]
    #: When ``history`` was read: the charts' last minute ends here.
    now: float = 0.0
    #: The served thing's deployments read (newest first), for the charts' marks.
    recent: tuple[DeploymentRow, ...] = ()


#: A deployment as a mark under the charts: failed, rolled back, or deployed.
#: Marks listed by the legend line under the charts.
MARKS_LISTED = 3
#: The least history the charts show (the error ratio's hour), in minutes.
CHART_MINUTES = 60
#: The charts' label column ("latency  ") and the box's border and padding.
LABEL = 9
BOX = 4
#: How tall a chart grows with the rows the tables leave.
CHART_ROWS_MAX = 8
#: A table's least height: its header, a row, its border.
TABLE_LEAST = 4
_BARS = "▁▂▃▄▅▆▇█"


def tall_chart(values: list[float | None], rows: int) -> list[str]:
    """``values`` as bars ``rows`` high, top row first, each scaled to the
    largest; a gap where there was no data, the lowest eighth for a zero (so
    "no errors" reads differently from "no data")."""
    present = [v for v in values if v is not None and not math.isnan(v)]
    top = max(present, default=0.0)
    levels = rows * 8
    heights = []
    for v in values:
        if v is None or math.isnan(v):
            heights.append(0)
        elif top <= 0:
            heights.append(1)
        else:
            heights.append(1 + min(levels - 1, int(v / top * (levels - 0.001))))
    out = []
    for row in range(rows - 1, -1, -1):
        line = []
        for h in heights:
            fill = h - row * 8
            line.append(" " if fill <= 0 else "█" if fill >= 8 else _BARS[fill - 1])
        out.append("".join(line))
    return out


def spread(values: tuple[float | None, ...], width: int) -> list[float | None]:
    """``values`` (minutes, fewer than ``width``) across ``width`` columns, each
    minute on one to a few columns; the last ``width`` of them if more."""
    if len(values) >= width:
        return list(values[len(values) - width :])
    return [values[c * len(values) // width] for c in range(width)]


def chart_span(history: EndpointHistory, width: int) -> int:
    """The minutes the charts show: what was read, less the minutes before the
    first with any data (a new endpoint's chart is spread, not mostly blank),
    at least ``CHART_MINUTES``, at most ``width``."""
    read = history.minutes
    first = next(
        (
            i
            for i in range(read)
            if _at(history.error_ratio, i) is not None or _at(history.latency, i) is not None
        ),
        read,
    )
    return max(1, min(width, read, max(CHART_MINUTES, read - first)))


def _at(values: tuple[float | None, ...], i: int) -> float | None:
    return values[i] if i < len(values) else None


def heights(
    room: int, tables: int, deployments: int | None, fixed: int, charts: int
) -> tuple[int, int, int]:
    """The charts' box, the windows and alerts, and the deployments in ``room``
    rows: (chart rows each, tables height, deployments height). The tables take
    the rows they hold, leaving the deployments two of theirs (the current one
    and the one before); the deployments theirs up to three tenths of the room;
    the charts grow with the rest (what they do not take goes to the
    deployments). ``fixed``: the box's lines besides the charts' (its border
    included); ``deployments`` None: not shown."""
    rest = room - fixed - charts
    keep = 0 if deployments is None else min(deployments, 5)
    tables_h = min(tables, max(TABLE_LEAST, rest - keep))
    share = max(keep, room * 3 // 10)
    dep_h = 0 if deployments is None else max(0, min(deployments, share, rest - tables_h))
    spare = max(0, rest - tables_h - dep_h)
    rows = 1 + min(CHART_ROWS_MAX - 1, spare // charts) if charts else 1
    return rows, tables_h, dep_h


class EndpointScreen(Detail):
    kind = "endpoint"
    DEFAULT_CSS = """
    EndpointScreen #charts { height: 6; border: round $primary-muted; padding: 0 1; }
    EndpointScreen #tables { height: 1fr; }
    EndpointScreen #deployments-panel { height: 1fr; }
    """

    #: Minutes the next read brings for the charts: as many as the width holds.
    minutes = CHART_MINUTES

    def compose(self) -> ComposeResult:
        yield Static(f"Endpoint {safe(self.target)}", id="title")
        yield Static("", id="note")
        yield Static("", id="charts")
        # Narrow, the counts go (the subtitle says the selected window's):
        # the burn, the number that pages, keeps its column. The alerts'
        # windows go before their status is cut (the subtitle lists them).
        self.windows = LiveTable(
            [
                ("window", "WINDOW"),
                ("err", "ERRORS"),
                ("req", "REQUESTS", 54),
                ("bad", "FAILED", 44),
                ("burn", "BURN"),
            ],
            flex="window",
        )
        self.alerts = LiveTable(
            [
                ("sev", "ALERT"),
                ("windows", "WINDOWS", 46),
                ("over", "OVER"),
                ("status", "STATUS"),
            ],
            flex="status",
        )
        #: The selected window's counts, said when the table has no room for them.
        self._counts: dict[str, str] = {}
        #: The last read drawn (a resize draws it again).
        self._drawn: tuple[Any, Snapshot] | None = None
        with Horizontal(id="tables"):
            yield Panel("windows", self.windows)
            yield Panel("alerts", self.alerts)
        # Narrow (60 columns), who goes and what was deployed from elides:
        # the version, its status and age are what b acts on.
        self.deployments = LiveTable(
            [
                ("version", "VERSION"),
                ("what", "DEPLOY"),
                ("status", "STATUS"),
                ("age", "AGE"),
                ("by", "BY", 70),
            ],
            flex="what",
        )
        yield Panel("deployments", self.deployments, id="deployments-panel")
        yield Footer()

    def on_mount(self) -> None:
        self.windows.focus()
        self._want_minutes(self.app.size.width)

    def on_resize(self, event: Resize) -> None:
        wider = self._want_minutes(event.size.width)
        if self._drawn is not None:
            self.show_extra(*self._drawn)
        if wider:
            self.post_message(RefreshWanted())

    def _want_minutes(self, width: int) -> bool:
        """As many minutes as the charts' columns (the label and the longest
        "max" beside them left out); True if that is more than was read."""
        minutes = max(CHART_MINUTES, width - BOX - LABEL - 12)
        more = minutes > self.minutes
        self.minutes = minutes
        return more

    def load(self, console: SnapshotReader) -> Any:
        from opstui.store.deployments import deployment_history
        from opstui.views.endpoints import endpoint_history

        ep = console.config.endpoints.get(self.target)
        if ep is None:
            return None
        now = console.clock()
        minutes = self.minutes
        history = endpoint_history(console.store, self.target, console.config, now, minutes=minutes)
        served = console.config.served(ep)
        recent: list[DeploymentRow] = []
        if served is not None:
            kind, target, environment = served
            recent = [
                d
                for d in deployment_history(console.store, target, environment, limit=20)
                if d.target_kind == kind
            ]
        return EndpointData(history, served, recent[:DEPLOYMENTS_SHOWN], now, tuple(recent))

    def show_extra(self, data: Any, snap: Snapshot) -> None:
        loaded: EndpointData | None = data
        data = loaded.history if loaded is not None else None
        report = next((e for e in snap.endpoints if e.name == self.target), None)
        if report is None:
            self.problem(f"{self.target} is not a configured endpoint")
            return
        title = Text(f"Endpoint {safe(report.name)} ")
        title.append(report.state, style=ENDPOINT_STYLE.get(report.state, ""))
        title.append(f" · {report.kind} {safe(report.url)}", style="dim")
        self.set_title(title)
        # The SLO first: short, and what the reason's numbers are against.
        note = Text(no_wrap=True, overflow="ellipsis")
        if report.slo is not None:
            note.append(f"SLO {report.slo * 100:g}%")
        if report.reason:
            note.append(" · " if note else "").append(safe(report.reason))
        acked = acknowledgement(snap, f"endpoint:{self.target}")
        if acked is not None:  # first: who has it matters more than the rest
            note = ack_note(acked, snap.at).append(" · " if note else "").append_text(note)
        note.truncate(max(10, self.size.width - 2), overflow="ellipsis")
        self.query_one("#note", Static).update(note)
        self._drawn = (loaded, snap)
        requests = data.requests if data is not None else {}
        errors = data.errors if data is not None else {}

        def count(v: float | None) -> str:
            return "-" if v is None else f"{v:,.0f}"

        self.windows.show(
            [
                (
                    w,
                    (
                        _window_label(w, report.coverage.get(w)),
                        pct(report.ratios.get(w)),
                        count(requests.get(w)),
                        count(errors.get(w)),
                        burn(report.burn.get(w)),
                    ),
                )
                for w in report.ratios
            ]
        )
        self.alerts.show(
            [
                (
                    f"{a.severity}:{a.long_window}:{a.short_window}",
                    (
                        a.severity,
                        f"{a.long_window} & {a.short_window}",
                        f"{a.threshold:g}x",
                        _alert_status(a),
                    ),
                )
                for a in report.alerts
            ]
        )
        alerts = self.query_one("#panel-alerts", Panel)
        listed = " ".join(f"{a.long_window}&{a.short_window}" for a in report.alerts)
        narrow = "windows" not in dict(self.alerts.spec)
        alerts.border_subtitle = f"windows {listed}" if narrow and listed else ""
        self._counts = {
            w: f"{w}: {count(requests.get(w))} req, {count(errors.get(w))} failed"
            for w in report.ratios
        }
        self._say_counts(self.windows.selected_key)
        self._show_deployments(loaded, snap.at)
        # Last: the charts take the rows the tables and deployments leave.
        self._draw_charts(loaded)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table is self.windows and event.row_key is not None:
            self._say_counts(event.row_key.value)

    def _say_counts(self, window: str | None) -> None:
        """The selected window's counts under the windows table, when it has no
        room for their columns."""
        panel = self.query_one("#panel-windows", Panel)
        hidden = "req" not in dict(self.windows.spec)
        panel.border_subtitle = self._counts.get(window or "", "") if hidden else ""

    def _draw_charts(self, loaded: EndpointData | None) -> None:
        """The error and latency charts over the box's width, as tall as the
        rows the tables leave, the deployments marked under the errors."""
        data = loaded.history if loaded is not None else None
        errs = data.error_ratio if data is not None else ()
        lats = data.latency if data is not None else ()
        err_top = max((v for v in errs if v is not None), default=None)
        lat_top = max((v for v in lats if v is not None), default=None)
        err_max = "" if err_top is None else f" max {pct(err_top)}"
        lat_max = (
            "" if lat_top is None or data is None else f" max {lat_top:.3g} {data.latency_unit}"
        )
        # The same columns for both charts and the marks, beside the label
        # and the longer max.
        width = max(10, self.size.width - BOX - LABEL - max(len(err_max), len(lat_max)))
        span = chart_span(data, width) if data is not None else CHART_MINUTES
        marks = self._marks(loaded, span, width) if loaded is not None else None
        charts = (err_top is not None) + (lat_top is not None)
        # The box's lines besides the charts: its border, a line for a chart
        # with no data, the marks and their legend, the line that says the span.
        fixed = 2 + (2 - charts) + 1 + (0 if marks is None else 1 + (marks[1] is not None))
        rows = self._fit_charts(fixed, charts)
        text = Text()
        if err_top is not None:
            text.append_text(
                _labelled("errors", tall_chart(spread(errs[-span:], width), rows), err_max)
            )
        else:
            # prometheus: requests; prometheus_api: error_ratio, or requests and errors.
            text.append("errors   no error ratio configured (requests, or error_ratio)\n", "dim")
        if marks is not None:
            text.append_text(marks[0]).append("\n")
        if lat_top is not None:
            text.append_text(
                _labelled("latency", tall_chart(spread(lats[-span:], width), rows), lat_max)
            )
        else:
            text.append("latency  no latency data yet\n", "dim")
        if marks is not None and marks[1] is not None:
            text.append_text(marks[1]).append("\n")
        how = "a bar a minute" if span == width else f"across {width} columns"
        said = Text(f"{'':<{LABEL}}last {span}m, {how}, each chart scaled to its max", "dim")
        said.truncate(max(10, self.size.width - BOX), overflow="ellipsis")
        text.append_text(said)
        self.query_one("#charts", Static).update(text)

    def _fit_charts(self, fixed: int, charts: int) -> int:
        """The charts' box, the tables' and the deployments' heights for the
        screen's height and what they hold; the rows each chart is drawn in."""
        deployments = self.query_one("#deployments-panel", Panel)
        holder = self.query_one("#tables", Horizontal)
        # A health check has no error ratio: no windows, no alerts, no panels.
        held = max(len(self.windows.keys), len(self.alerts.keys))
        holder.display = held > 0
        tables = held + 3 if held else 0
        shown = len(self.deployments.keys) + 3 if deployments.display else None
        # The title, the note and the footer.
        rows, tables_h, _ = heights(self.size.height - 3, tables, shown, fixed, charts)
        box = self.query_one("#charts", Static)
        box_h = fixed + charts * rows
        if box.styles.height is None or box.styles.height.value != box_h:
            box.styles.height = box_h
        # What is left goes to the deployments when shown (their rows
        # scroll), else to the windows and alerts.
        want = tables_h if deployments.display else None
        if want is None:
            holder.styles.height = "1fr"
        elif holder.styles.height is None or holder.styles.height.value != want:
            holder.styles.height = want
        return rows

    def _marks(
        self, loaded: EndpointData, span: int, width: int
    ) -> tuple[Text, Text | None] | None:
        """Under the error chart, a mark in the minute of each deployment of what
        the endpoint serves (``▲`` deployed, ``▼`` rolled back, ``✗`` failed),
        and the legend naming the newest of them (None if none is that recent);
        None for an endpoint that serves nothing named."""
        if loaded.served is None:
            return None
        now = loaded.now
        cells: list[tuple[str, str] | None] = [None] * width
        marked = []
        rank = {"▲": 0, "▼": 1, "✗": 2}
        for d in loaded.recent:  # newest first
            ago = int((now - d.deployed_at) // 60)
            minute = span - 1 - ago
            if ago < 0 or minute < 0:
                continue
            # The first column of the minute (a minute spans columns when
            # the history is shorter than the width).
            i = minute * width // span
            mark = deploy_glyph(d)
            marked.append(d)
            old = cells[i]
            if old is None or rank[mark[0]] > rank[old[0]]:
                cells[i] = mark
        room = max(20, self.size.width - BOX)
        if not marked:
            line = Text("deploys  ")
            line.append(f"none in the last {span}m", "dim")
            if loaded.recent:
                line.append_text(last_deploy(loaded.recent[0], now))
            line.truncate(room, overflow="ellipsis")
            return line, None
        row = Text("deploys  ")
        for cell in cells:
            row.append(" " if cell is None else cell[0], "" if cell is None else cell[1])
        legend = Text("         ")
        for listed, d in enumerate(marked[:MARKS_LISTED]):
            glyph, style = deploy_glyph(d)
            item = safe(f" {clock_time(d.deployed_at)[:5]}Z {d.version} {d.actor or '?'}")
            if listed and len(legend) + len(item) + 3 > room:
                break
            legend.append(" · " if listed else "").append(glyph, style).append(item)
        key = "  ▲ deploy ▼ rollback ✗ failed"
        if len(legend) + len(key) <= room:
            legend.append(key, "dim")
        legend.truncate(room, overflow="ellipsis")
        return row, legend

    def _show_deployments(self, loaded: EndpointData | None, now: float) -> None:
        """What the endpoint serves, deployed where, newest first: what ``b``
        would move back from (the current one) and to (the one before)."""
        panel = self.query_one("#deployments-panel", Panel)
        served = loaded.served if loaded is not None else None
        # Shown only for an endpoint that names what it serves: the windows
        # and alerts keep the room otherwise (80x24).
        panel.display = served is not None
        if loaded is None or served is None:
            return
        kind, target, environment = served
        panel.border_title = f"deployments of {kind} {safe(target)} in {safe(environment)}"
        rows = []
        current = next((d for d in loaded.deployments if d.status == "succeeded"), None)
        for d in loaded.deployments:
            mark = " ← now" if d is current else ""
            what = (
                d.action if d.replaced_version is None else f"{d.action} from {d.replaced_version}"
            )
            rows.append(
                (
                    str(d.id),
                    (
                        Text(safe(d.version)).append(mark, style="bold"),
                        safe(what),
                        Text(
                            d.status, style=STATUS_STYLE.get(_DEPLOY_STATUS.get(d.status, ""), "")
                        ),
                        age(now - d.deployed_at),
                        safe(d.actor) or "?",
                    ),
                )
            )
        self.deployments.show(rows)


def _window_label(window: str, history: float | None) -> Text:
    """``1h``, or ``1h (5m seen)`` when the history is shorter than the window."""
    from opstui.analysis.rates import WINDOWS, duration_words

    if history is None or history >= WINDOWS[window]:
        return Text(window)
    return Text(window).append(f" ({duration_words(history)} seen)", style="dim")


def _alert_status(alert: BurnAlert) -> Text:
    """FIRING, "partial: 5m of 1h" (not enough history to judge), ok or no data."""
    if alert.firing:
        return Text("FIRING", style="bold red")
    if alert.partial:
        return Text(f"partial: {alert.partial}", style="yellow" if alert.would_fire else "dim")
    return dim(alert.status)


def _labelled(label: str, rows: list[str], top: str) -> Text:
    """A chart's rows under its label, the largest value beside the top row."""
    out = Text()
    for i, line in enumerate(rows):
        out.append(f"{label if i == 0 else '':<{LABEL}}{line}{top if i == 0 else ''}\n")
    return out
