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
from opstui.tui.render import (
    ENDPOINT_STYLE,
    STATUS_STYLE,
    ack_note,
    age,
    burn,
    chart,
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
        history = endpoint_history(console.store, self.target, console.config, console.clock())
        served = console.config.served(ep)
        deployments: list[DeploymentRow] = []
        if served is not None:
            kind, target, environment = served
            deployments = [
                d
                for d in deployment_history(console.store, target, environment, limit=20)
                if d.target_kind == kind
            ][:DEPLOYMENTS_SHOWN]
        return EndpointData(history, served, deployments)

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
        width = max(10, self.size.width - 16)
        text = Text()
        if data is not None and any(v is not None for v in data.error_ratio):
            top = max((v for v in data.error_ratio if v is not None), default=0.0)
            text.append(f"errors   {chart(data.error_ratio, width)} max {pct(top)}\n")
        else:
            # prometheus: requests; prometheus_api: error_ratio, or requests and errors.
            text.append("errors   no error ratio configured (requests, or error_ratio)\n", "dim")
        if data is not None and any(v is not None for v in data.latency):
            top = max((v for v in data.latency if v is not None), default=0.0)
            text.append(
                f"latency  {chart(data.latency, width)} max {top:.3g} {data.latency_unit}\n"
            )
        else:
            text.append("latency  no latency data yet\n", "dim")
        minutes = data.minutes if data is not None else 60
        text.append(
            f"         last {minutes} minutes, a bar a minute, each scaled to its max", "dim"
        )
        self.query_one("#charts", Static).update(text)
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
