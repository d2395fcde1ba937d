"""Detail screens: a pipeline (runs, stages, log), a model, an endpoint, the audit trail.

Each screen's ``load`` runs on the refresh worker's thread (store reads
only) and returns plain rows; ``show_extra`` puts them on screen on the UI
thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Log, Static

from opstui.errors import OpstuiError
from opstui.store import status as st
from opstui.store.history import get_run, run_history, stage_logs
from opstui.store.rows import LogLine, RunRow, StageRow
from opstui.timeutil import human_duration
from opstui.tui.dashboard import Panel
from opstui.tui.render import (
    ENDPOINT_STYLE,
    STATUS_STYLE,
    age,
    burn,
    chart,
    pct,
    safe,
    stage_bar,
    status_text,
)
from opstui.tui.table import LiveTable, Row, SteadyInput, dim
from opstui.views.snapshot import SnapshotReader

if TYPE_CHECKING:
    from opstui.analysis.rates import BurnAlert
    from opstui.tui.app import OpstuiApp

#: Lines a log view keeps; older ones scroll out (a stage can log millions).
LOG_KEEP = 20_000
#: Cells of a stage's bar on the run's timeline.
TIMELINE = 16


def timeline(run: RunRow, stage: StageRow, now: float) -> Text:
    """Where the stage ran within the run: a bar placed and sized by its times."""
    start = run.started_at
    span = run.duration(now)
    if start is None or not span or stage.started_at is None:
        return Text("·" * TIMELINE, style="dim")
    left = int((stage.started_at - start) / span * TIMELINE)
    width = max(1, round((stage.duration(now) or 0) / span * TIMELINE))
    left = min(max(0, left), TIMELINE - 1)
    width = min(width, TIMELINE - left)
    out = Text("·" * left, style="dim")
    out.append("█" * width, style=STATUS_STYLE.get(stage.status, ""))
    out.append("·" * (TIMELINE - left - width), style="dim")
    return out


class Detail(Screen[None]):
    """What every detail screen shares: a title line, esc back, the footer."""

    DEFAULT_CSS = """
    Detail #title { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    Detail #note { height: 1; padding: 0 1; color: $text-muted; }
    """
    kind = ""

    @property
    def opstui(self) -> OpstuiApp:
        from opstui.tui.app import OpstuiApp

        assert isinstance(self.app, OpstuiApp)
        return self.app

    def __init__(self, name: str) -> None:
        super().__init__()
        self.target = name
        self.stale = False

    @property
    def label(self) -> str:
        """What this screen shows, in a failure's words (``pipeline fraud-model``)."""
        return f"{self.kind} {self.target}"

    def selected(self) -> str | None:
        return f"{self.kind}:{self.target}" if self.kind else None

    def set_title(self, text: str | Text) -> None:
        self.query_one("#title", Static).update(text)

    def problem(self, message: str | None) -> None:
        """Say why what is on screen is stale; None: it is fresh again."""
        if message is None:
            if self.stale:
                self.query_one("#note", Static).update("")
                self.stale = False
            return
        self.query_one("#note", Static).update(Text(f"stale: {safe(message)}", style="red"))
        self.stale = True


# --- pipeline -----------------------------------------------------------------


class PipelineData(NamedTuple):
    runs: list[RunRow]
    run: RunRow | None
    stage_id: int | None
    logs: list[LogLine]
    error: str | None


class PipelineScreen(Detail):
    kind = "pipeline"
    DEFAULT_CSS = """
    PipelineScreen #runs-panel { height: 1fr; }
    PipelineScreen #stages-panel { height: 1fr; }
    PipelineScreen #log-panel { height: 2fr; }
    PipelineScreen #search { dock: bottom; height: 1; border: none; display: none; }
    PipelineScreen #search.shown { display: block; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "follow", "Follow log"),
        Binding("slash", "search", "Search log", priority=True),
        Binding("n", "next_match", "Next match", show=False),
        Binding("N", "previous_match", "Previous match", show=False),
    ]

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.run_id: int | None = None
        self.stage_id: int | None = None
        self.after_id = 0
        self.log_lines: list[str] = []
        self.follow = True
        self.needle = ""
        self.match = -1
        self.runs = LiveTable(
            [
                ("id", "RUN"),
                ("status", "STATUS"),
                ("bar", "STAGES"),
                ("trigger", "TRIGGER"),
                ("age", "AGE"),
                ("took", "TOOK"),
            ],
            id="runs",
        )
        self.stages = LiveTable(
            [
                ("name", "STAGE"),
                ("status", "STATUS"),
                ("try", "TRY"),
                ("took", "TOOK"),
                ("when", "TIMELINE"),
                ("exit", "EXIT"),
                ("message", "MESSAGE"),
            ],
            id="stages",
        )

    def compose(self) -> ComposeResult:
        yield Static(f"Pipeline {safe(self.target)}", id="title")
        yield Static("", id="note")
        yield Panel("runs", self.runs, id="runs-panel")
        yield Panel("stages", self.stages, id="stages-panel")
        log = Log(max_lines=LOG_KEEP, auto_scroll=True, id="log")
        yield Panel("log", log, id="log-panel")
        yield SteadyInput(placeholder="search the log (enter: next match, esc: close)", id="search")
        yield Footer()

    def on_mount(self) -> None:
        self.runs.focus()

    def load(self, console: SnapshotReader) -> PipelineData:
        store = console.store
        try:
            runs = run_history(store, self.target, limit=50)
            run_id = self.run_id or (runs[0].id if runs else None)
            run = get_run(store, run_id) if run_id is not None else None
            stage_id = self.stage_id
            if run is not None and stage_id is None:
                # The stage an operator wants first: the failed one, the
                # running one, or the last that ran.
                pick = run.failed_stage or run.running_stage
                ran = [s for s in run.stages if s.started_at is not None]
                pick = pick or (ran[-1] if ran else None)
                stage_id = pick.id if pick else None
            logs = stage_logs(store, stage_id, after_id=self.after_id) if stage_id else []
        except OpstuiError as exc:
            return PipelineData([], None, None, [], exc.message)
        return PipelineData(runs, run, stage_id, logs, None)

    def show_extra(self, data: PipelineData) -> None:
        if data.error:
            self.problem(data.error)
            return
        now = self.opstui.clock()
        self.runs.show(
            [
                (
                    str(r.id),
                    (
                        f"#{r.id}",
                        status_text(r.status),
                        stage_bar(r, width=14),
                        r.trigger,
                        age(now - (r.finished_at or r.started_at or r.created_at)),
                        human_duration(r.duration(now)),
                    ),
                )
                for r in data.runs
            ]
        )
        run = data.run
        if run is None:
            self.set_title(f"Pipeline {safe(self.target)}: never run")
            return
        if self.run_id is None:
            self.run_id = run.id
            self.runs.select_key(str(run.id))
        title = Text(f"Pipeline {safe(self.target)} · run #{run.id} ")
        title.append_text(status_text(run.status))
        if run.status_reason:
            title.append(f" ({safe(run.status_reason)})", style=STATUS_STYLE[st.UNKNOWN])
        title.append(f" · {run.trigger} by {safe(run.actor) or '?'}")
        if run.message:
            title.append(f" · {safe(run.message)}", style="dim")
        self.set_title(title)
        self.stages.show(
            [
                (
                    str(s.id),
                    (
                        safe(s.name),
                        status_text(s.status),
                        str(s.attempt),
                        human_duration(s.duration(now)),
                        timeline(run, s, now),
                        "" if s.exit_code is None else str(s.exit_code),
                        dim("reused") if s.reused_from_id else safe(s.message),
                    ),
                )
                for s in run.stages
            ]
        )
        if data.stage_id != self.stage_id:
            self.stage_id = data.stage_id
            if data.stage_id is not None:
                self.stages.select_key(str(data.stage_id))
        # Only lines past the last one shown: a read that started before the
        # previous one landed must not append them twice.
        fresh = [line for line in data.logs if line.id > self.after_id]
        if fresh and data.stage_id == self.stage_id:
            lines = [safe(line.line) for line in fresh]
            self.after_id = fresh[-1].id
            self.log_lines.extend(lines)
            del self.log_lines[:-LOG_KEEP]
            self.query_one(Log).write_lines(lines)
        stage = next((s for s in run.stages if s.id == self.stage_id), None)
        if stage is not None:
            panel = self.query_one("#log-panel", Panel)
            mode = "following" if self.follow else "paused (f follows)"
            panel.border_title = f"Log of {safe(stage.name)} · {len(self.log_lines)} lines · {mode}"

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key else None
        if key is None:
            return
        if event.data_table is self.runs and int(key) != self.run_id:
            self.run_id = int(key)
            self._reset_log(None)
        elif event.data_table is self.stages and int(key) != self.stage_id:
            self._reset_log(int(key))

    def _reset_log(self, stage_id: int | None) -> None:
        self.stage_id = stage_id
        self.after_id = 0
        self.log_lines = []
        self.match = -1
        self.query_one(Log).clear()
        self.opstui.refresh_now()

    def action_follow(self) -> None:
        self.follow = not self.follow
        log = self.query_one(Log)
        log.auto_scroll = self.follow
        if self.follow:
            log.scroll_end(animate=False)
        self.notify("following the log" if self.follow else "log paused: new lines kept below")

    def action_search(self) -> None:
        box = self.query_one("#search", Input)
        box.add_class("shown")
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        # As in less: the box closes, n / N walk the matches.
        self.needle = event.value
        event.input.remove_class("shown")
        self.query_one(Log).focus()
        self.action_next_match()

    def clear_filter(self) -> bool:
        box = self.query_one("#search", Input)
        if not box.has_class("shown"):
            return False
        box.remove_class("shown")
        self.runs.focus()
        return True

    def _find(self, step: int) -> None:
        if not self.needle or not self.log_lines:
            return
        needle = self.needle.lower()
        n = len(self.log_lines)
        for k in range(1, n + 1):
            i = (self.match + step * k) % n
            if needle in self.log_lines[i].lower():
                self.match = i
                log = self.query_one(Log)
                self.follow = False
                log.auto_scroll = False
                log.scroll_to(y=max(0, i - 2), animate=False)
                # A log line is data: escaped, and never read as markup.
                self.notify(
                    safe(f"line {i + 1}: {self.log_lines[i][:60]}"), timeout=3, markup=False
                )
                return
        self.notify(safe(f"{self.needle!r} is not in the log"), severity="warning", markup=False)

    def action_next_match(self) -> None:
        self._find(+1)

    def action_previous_match(self) -> None:
        self._find(-1)


# --- model ----------------------------------------------------------------------


class ModelData(NamedTuple):
    versions: list[Any]
    deployments: list[Any]
    drift: Any  # drift.records.DriftCheck | None


class ModelScreen(Detail):
    kind = "model"
    DEFAULT_CSS = """
    ModelScreen #top { height: 1fr; }
    ModelScreen #panel-drift { height: 1fr; }
    ModelScreen #dist { height: 5; border: round $primary-muted; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield Static(f"Model {safe(self.target)}", id="title")
        yield Static("", id="note")
        self.versions = LiveTable(
            [("version", "VER"), ("status", "STATUS"), ("metrics", "METRICS"), ("gate", "GATE")]
        )
        self.deployed = LiveTable(
            [("env", "ENV"), ("version", "VER"), ("action", "BY"), ("age", "AGE")]
        )
        self.features = LiveTable(
            [
                ("feature", "FEATURE"),
                ("method", "TEST"),
                ("value", "VALUE"),
                ("limit", "LIMIT"),
                ("drift", "DRIFT"),
                ("since", "SINCE"),
                ("note", "NOTE"),
            ]
        )
        with Horizontal(id="top"):
            yield Panel("versions", self.versions)
            yield Panel("deployments", self.deployed)
        yield Panel("drift", self.features, id="panel-drift")
        yield Static("", id="dist")
        yield Footer()

    def on_mount(self) -> None:
        self.features.focus()
        self._check: Any = None

    def load(self, console: SnapshotReader) -> ModelData:
        from opstui.store.models import deployment_history, model_versions

        store = console.store
        check = None
        from opstui.store.drift import latest_check

        if latest_check(store, self.target) is not None:
            from opstui.drift.records import latest

            check = latest(store, self.target)
        return ModelData(
            model_versions(store, self.target), deployment_history(store, self.target), check
        )

    def show_extra(self, data: ModelData) -> None:
        from opstui.analysis.drift import METHOD_LABELS

        now = self.opstui.clock()
        rows: list[Row] = []
        for v in reversed(data.versions):
            metrics = ", ".join(
                f"{k}={val:.3g}" if isinstance(val, float) else f"{k}={val}"
                for k, val in list(v.metrics.items())[:2]
            )
            gate = v.gate or {}
            verdict = gate.get("verdict", gate.get("passed"))
            gate_text = (
                Text("pass", style="green")
                if verdict in (True, "pass", "passed")
                else Text("fail", style="red")
                if verdict in (False, "fail", "failed")
                else dim("-")
            )
            rows.append((v.version, (v.version, status_text(v.status), safe(metrics), gate_text)))
        self.versions.show(rows)
        self.deployed.show(
            [
                (
                    str(d.id),
                    (
                        d.environment[:4],
                        d.version,
                        f"{d.action} {safe(d.actor) or ''}".strip(),
                        age(now - d.deployed_at),
                    ),
                )
                for d in data.deployments
            ]
        )
        check = data.drift
        self._check = check
        if check is None:
            blank = ("",) * 6
            self.features.show([("none", (dim("no drift checks yet: opstui drift MODEL"), *blank))])
            return
        ds = check.dataset
        note = Text(
            f"drift {ds.drifted}/{ds.checked} features (share {ds.share:.2f}, "
            f"dataset drifts at {ds.threshold:.2f})"
        )
        c = check.classifier
        if c is not None:
            note.append(
                f" · classifier AUC {c.auc:.2f} {'>' if c.alert else '<='} {c.limit:.2f}",
                style="bold yellow" if c.alert else "",
            )
        if check.retrain is not None:
            note.append(" · RETRAIN SUGGESTED (t)", style="bold yellow")
        self.query_one("#note", Static).update(note)
        rows = []
        for f in sorted(check.features, key=lambda f: (not f.drifted, f.name)):
            v = f.verdict
            since = check.began.get(f.name)
            rows.append(
                (
                    f.name,
                    (
                        safe(f.name),
                        METHOD_LABELS.get(f.method or "", f.method or "-"),
                        "-" if v is None or v.value is None else f"{v.value:.3f}",
                        "-" if v is None or v.threshold is None else f"{v.threshold:g}",
                        Text("DRIFT", style="bold red") if f.drifted else dim("ok"),
                        age(now - since) if since else "",
                        safe(f.problem or "; ".join(f.notes))[:40],
                    ),
                )
            )
        self.features.show(rows)
        self._draw_distribution(self.features.selected_key)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table is self.features and event.row_key is not None:
            self._draw_distribution(event.row_key.value)

    def _draw_distribution(self, feature: str | None) -> None:
        """Reference and current shares of the feature's bins, as two rows of bars."""
        check = getattr(self, "_check", None)
        box = self.query_one("#dist", Static)
        found = next((f for f in check.features if f.name == feature), None) if check else None
        js = found.result("jensenshannon") if found else None
        shares = dict(js.details) if js is not None else {}
        if not shares.get("reference"):
            box.update(dim("select a feature to see its reference and current distributions"))
            return
        ref, cur = shares["reference"], shares["current"]
        top = max([*ref, *cur, 1e-12])
        width = max(1, min(len(ref), 60))
        title = f"{safe(feature)}: bins of the reference (top) and now (bottom)\n"
        text = Text(title, style="dim")
        text.append("ref " + _bars(ref[:width], top) + "\n", style="green")
        text.append(
            "now " + _bars(cur[:width], top), style="bold red" if found and found.drifted else ""
        )
        box.update(text)


def _bars(shares: list[float], top: float) -> str:
    """Bars on one shared scale, so the two rows compare."""
    blocks = " ▁▂▃▄▅▆▇█"
    return "".join(blocks[min(8, round(s / top * 8))] * 2 for s in shares)


# --- endpoint -------------------------------------------------------------------


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

    def show_extra(self, data: Any) -> None:
        snap = self.opstui.snapshot
        report = next((e for e in snap.endpoints if e.name == self.target), None) if snap else None
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


# --- audit ---------------------------------------------------------------------


class AuditScreen(Detail):
    def __init__(self) -> None:
        super().__init__("audit")

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

    def show_extra(self, data: Any) -> None:
        now = self.opstui.clock()
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
