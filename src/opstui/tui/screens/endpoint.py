"""An endpoint: its state, error and latency charts, error ratio and burn by window, alerts.

The state and windows come from the dashboard's read (``views/endpoints``
judges them once for both); the charts from this screen's own read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Footer, Static

from opstui.tui.render import ENDPOINT_STYLE, burn, chart, pct, safe
from opstui.tui.screens.base import Detail
from opstui.tui.table import LiveTable, dim
from opstui.tui.widgets import Panel
from opstui.views.snapshot import Snapshot, SnapshotReader

if TYPE_CHECKING:
    from opstui.analysis.rates import BurnAlert


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
        yield Footer()

    def on_mount(self) -> None:
        self.windows.focus()

    def load(self, console: SnapshotReader) -> Any:
        from opstui.views.endpoints import endpoint_history

        if self.target not in console.config.endpoints:
            return None
        return endpoint_history(console.store, self.target, console.config, console.clock())

    def show_extra(self, data: Any, snap: Snapshot) -> None:
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
