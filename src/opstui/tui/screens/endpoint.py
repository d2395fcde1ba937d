"""An endpoint: its state, error and latency charts, error ratio and burn by window, alerts.

The state and windows come from the dashboard's read (``views/endpoints``
judges them once for both); the charts from this screen's own read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Footer, Static

from opstui.store import status as st
from opstui.store.rows import DeploymentRow
from opstui.timeutil import clock_time
from opstui.tui.render import (
    ENDPOINT_STYLE,
    STATUS_STYLE,
    ack_note,
    age,
    burn,
    chart,
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

#: A deployment's status in the colour of the run status it is like.
_DEPLOY_STATUS = {"succeeded": st.SUCCEEDED, "failed": st.FAILED, "in_progress": st.RUNNING}


#: Deployments of what an endpoint serves listed on its screen, newest first.
DEPLOYMENTS_SHOWN = 6


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


class EndpointScreen(Detail):
    kind = "endpoint"
    DEFAULT_CSS = """
    EndpointScreen #charts { height: 6; border: round $primary-muted; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield Static(f"Endpoint {safe(self.target)}", id="title")
        yield Static("", id="note")
        yield Static("", id="charts")
        self.windows = LiveTable(
            [
                ("window", "WINDOW"),
                ("err", "ERRORS"),
                ("req", "REQUESTS"),
                ("bad", "FAILED"),
                ("burn", "BURN"),
            ]
        )
        self.alerts = LiveTable(
            [("sev", "ALERT"), ("windows", "WINDOWS"), ("over", "OVER"), ("status", "STATUS")]
        )
        with Horizontal():
            yield Panel("windows", self.windows)
            yield Panel("alerts", self.alerts)
        self.deployments = LiveTable(
            [
                ("version", "VERSION"),
                ("what", "DEPLOY"),
                ("status", "STATUS"),
                ("age", "AGE"),
                ("by", "BY"),
            ]
        )
        yield Panel("deployments", self.deployments, id="deployments-panel")
        yield Footer()

    def on_mount(self) -> None:
        self.windows.focus()

    def load(self, console: SnapshotReader) -> Any:
        from opstui.store.deployments import deployment_history
        from opstui.views.endpoints import endpoint_history

        ep = console.config.endpoints.get(self.target)
        if ep is None:
            return None
        now = console.clock()
        history = endpoint_history(console.store, self.target, console.config, now)
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
        note = safe(report.reason) if report.reason else ""
        if report.slo is not None:
            note += f"  SLO {report.slo * 100:g}%"
        acked = acknowledgement(snap, f"endpoint:{self.target}")
        if acked is not None:  # first: who has it matters more than the rest
            self.query_one("#note", Static).update(ack_note(acked, snap.at).append(f" · {note}"))
        else:
            self.query_one("#note", Static).update(note)
        errs = data.error_ratio if data is not None else ()
        lats = data.latency if data is not None else ()
        err_top = max((v for v in errs if v is not None), default=None)
        lat_top = max((v for v in lats if v is not None), default=None)
        err_max = "" if err_top is None else f" max {pct(err_top)}"
        lat_max = (
            "" if lat_top is None or data is None else f" max {lat_top:.3g} {data.latency_unit}"
        )
        minutes = data.minutes if data is not None else 60
        # One bar a minute, as many minutes as fit beside the label and the
        # longer max, the same for both charts and the marks (80 columns: 50).
        room = self.size.width - 4 - 9 - max(len(err_max), len(lat_max))
        width = max(10, min(minutes, room))
        text = Text()
        if err_top is not None:
            text.append(f"errors   {chart(errs, width)}{err_max}\n")
        else:
            # prometheus: requests; prometheus_api: error_ratio, or requests and errors.
            text.append("errors   no error ratio configured (requests, or error_ratio)\n", "dim")
        legend = self._marks(text, loaded, width) if loaded is not None else None
        if lat_top is not None:
            text.append(f"latency  {chart(lats, width)}{lat_max}\n")
        else:
            text.append("latency  no latency data yet\n", "dim")
        if legend is not None:
            text.append_text(legend).append("\n")
        shown = min(minutes, width)
        text.append(f"         last {shown} minutes, a bar a minute, each scaled to its max", "dim")
        charts = self.query_one("#charts", Static)
        charts.styles.height = 7 if legend is not None else 6
        charts.update(text)
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
        self._show_deployments(loaded, snap.at)

    def _marks(self, text: Text, loaded: EndpointData, width: int) -> Text | None:
        """Under the error chart, a mark in the minute of each deployment of what
        the endpoint serves (``▲`` deployed, ``▼`` rolled back, ``✗`` failed);
        returns the legend naming the newest of them, None if none is that recent."""
        if loaded.served is None:
            return None
        minutes = loaded.history.minutes if loaded.history is not None else 60
        columns = min(minutes, width)
        now = loaded.now
        cells: list[tuple[str, str] | None] = [None] * columns
        marked = []
        rank = {"▲": 0, "▼": 1, "✗": 2}
        for d in loaded.recent:  # newest first
            ago = int((now - d.deployed_at) // 60)
            i = columns - 1 - ago
            if ago < 0 or i < 0:
                continue
            mark = deploy_glyph(d)
            marked.append(d)
            old = cells[i]
            if old is None or rank[mark[0]] > rank[old[0]]:
                cells[i] = mark
        if not marked:
            line = Text("deploys  ")
            line.append(f"none in the last {columns}m", "dim")
            if loaded.recent:
                line.append_text(last_deploy(loaded.recent[0], now))
            line.truncate(max(20, self.size.width - 4), overflow="ellipsis")
            text.append_text(line)
            text.append("\n")
            return None
        text.append("deploys  ")
        for cell in cells:
            text.append(" " if cell is None else cell[0], "" if cell is None else cell[1])
        text.append("\n")
        legend = Text("         ")
        room = max(20, self.size.width - 4)
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
        return legend

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
