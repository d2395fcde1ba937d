"""A pipeline: its runs, the stages of the selected run on a timeline, and a stage's log.

The log is read incrementally (lines past the last id shown), so a stage
that logs millions of lines costs what it added since the last read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, NamedTuple

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Input, Log, Static

from opstui.config.endpoints import EndpointDef
from opstui.errors import OpstuiError
from opstui.store import status as st
from opstui.store.history import get_run, run_history, stage_logs
from opstui.store.rows import LogLine, PipelineRow, RunRow, StageRow
from opstui.timeutil import human_age, human_duration
from opstui.tui.messages import RefreshWanted
from opstui.tui.render import (
    STATUS_STYLE,
    ack_note,
    age,
    endpoints_health,
    safe,
    stage_bar,
    status_text,
)
from opstui.tui.screens.base import Detail
from opstui.tui.table import LiveTable, SteadyInput, dim
from opstui.tui.widgets import Panel
from opstui.views.snapshot import Snapshot, SnapshotReader
from opstui.views.urgency import acknowledgement

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


#: Orchestrators whose logs the console fetches when a stage is opened.
SOURCE_LOGS = ("airflow", "prefect")
#: The stream of the one line saying a source's log could not be fetched.
NO_LOG = "opstui"


def _fetch_source_log(
    ep: EndpointDef, run: RunRow, stage: StageRow | None
) -> list[tuple[float | None, str, str]]:
    """The stage's (or, with none, a Prefect flow run's own) log: (time, level, text)."""
    assert run.source_name and run.source_id  # checked by the caller
    if run.source_kind == "airflow":
        from opstui.sources.airflow.logs import fetch_task_log

        assert stage is not None
        return fetch_task_log(ep, run.source_name, run.source_id, stage.name, stage.attempt)
    from opstui.sources.prefect.logs import fetch_log

    if stage is None:
        return fetch_log(ep, run.source_id)
    return fetch_log(ep, run.source_id, stage.name, stage.attempt)


#: How each source calls a run, and itself.
_SOURCE_WORDS = {
    "airflow": ("Airflow", "DAG run"),
    "prefect": ("Prefect", "flow run"),
    "mlflow": ("MLflow", "run"),
}


def source_note(run: RunRow, pipeline: PipelineRow | None, now: float) -> Text:
    """When its source no longer has the pipeline, since when (first: it is
    what matters at 80 columns), then where a mirrored run comes from
    (``Airflow endpoint orch · DAG run manual__...``); empty for a run opstui
    recorded."""
    note = Text()
    if pipeline is not None and pipeline.removed_note is not None:
        ago = human_age(now - pipeline.removed_at) if pipeline.removed_at else ""
        since = " just now" if ago == "now" else f" {ago}" if ago else ""
        note.append(f"{safe(pipeline.removed_note)}{since}, its runs kept", "yellow")
    if run.source is not None:
        product, noun = _SOURCE_WORDS.get(run.source_kind or "", (run.source_kind or "", "run"))
        note.append(" · " if note else "")
        note.append(f"{product} endpoint {safe(run.source)} · {noun} {safe(run.source_id)}")
    return note


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

    def __init__(self, name: str, *, clock: Callable[[], float]) -> None:
        super().__init__(name, clock=clock)
        self.run_id: int | None = None
        self.stage_id: int | None = None
        self.after_id = 0
        self.log_lines: list[str] = []
        self.follow = True
        self.needle = ""
        self.match = -1
        #: Logs fetched from an orchestrator, by (run, stage, attempt).
        self._fetched: dict[tuple[int, str, int], list[LogLine]] = {}
        #: The viewer shows only the line saying a source's log could not be fetched.
        self._no_log = False
        self.runs = LiveTable(
            [
                ("id", "RUN"),
                ("status", "STATUS"),
                ("bar", "STAGES"),
                ("trigger", "TRIGGER"),
                ("age", "AGE"),
                ("took", "TOOK"),
                ("host", "HOST"),
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
            if run is not None and run.source_kind in SOURCE_LOGS:
                logs = self._source_log(console, run, stage_id)
            else:
                logs = stage_logs(store, stage_id, after_id=self.after_id) if stage_id else []
        except OpstuiError as exc:
            return PipelineData([], None, None, [], exc.message)
        return PipelineData(runs, run, stage_id, logs, None)

    def _source_log(
        self, console: SnapshotReader, run: RunRow, stage_id: int | None
    ) -> list[LogLine]:
        """A stage's log from the orchestrator its run is mirrored from, fetched
        now (this is the refresh worker's thread): Airflow's task try, Prefect's
        task runs of the stage's attempt, or, for a Prefect run with no stage to
        show, the flow run's own lines. A finished one is kept and not fetched
        again (Prefect's once its last lines have landed: ``logs.SETTLE``)."""
        from opstui.sources.orchestrator import SourceError

        stage = next((s for s in run.stages if s.id == stage_id), None)
        ep = console.config.endpoints.get(run.source or "")
        if ep is None or not run.source_name or not run.source_id:
            return []
        prefect = run.source_kind == "prefect"
        if stage is None and (not prefect or stage_id is not None):
            return []
        key = (run.id, stage.name, stage.attempt) if stage else (run.id, "", run.attempt)
        lines = self._fetched.get(key)
        if lines is None:
            if stage is not None and stage.status == st.PENDING:
                return []  # no try yet: nothing to ask for
            try:
                got = _fetch_source_log(ep, run, stage)
            except SourceError as exc:
                # One line in the viewer, marked as opstui's, not the task's.
                return [LogLine(1, self.clock(), NO_LOG, f"[opstui] no log: {exc.problem}")]
            lines = [
                LogLine(i + 1, when or 0.0, stream, text)
                for i, (when, stream, text) in enumerate(got)
            ]
            if stage is None:
                done = run.status in st.FINISHED and self._settled(run.finished_at)
            else:
                done = stage.status not in st.ACTIVE
                done = done and (not prefect or self._settled(stage.finished_at))
            if done:
                self._fetched[key] = lines
        # All of it: if the viewer shows a "no log" line, this replaces it
        # (show_extra), from the first line.
        return lines

    def _settled(self, ended: float | None) -> bool:
        """Prefect has a task's last log lines (they land in batches after it ends)."""
        from opstui.sources.prefect.logs import SETTLE

        return ended is None or self.clock() - ended >= SETTLE

    def show_extra(self, data: PipelineData, snap: Snapshot) -> None:
        if data.error:
            self.problem(data.error)
            return
        now = self.clock()
        self.runs.show(
            [
                (
                    str(r.id),
                    (
                        f"#{r.id}",
                        status_text(r.status),
                        stage_bar(r, width=14),
                        safe(r.trigger),
                        age(now - (r.finished_at or r.started_at or r.created_at)),
                        human_duration(r.duration(now)),
                        safe(r.host),
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
        title.append(f" · {safe(run.trigger)} by {safe(run.actor) or '?'}")
        if run.host and not (run.actor or "").endswith(f"@{run.host}"):
            title.append(f" on {safe(run.host)}")
        if run.message:
            title.append(f" · {safe(run.message)}", style="dim")
        self.set_title(title)
        if not self.stale:
            row = next((p for p in snap.pipelines if p.name == self.target), None)
            note = source_note(run, row, now)
            serving = [e for e in snap.endpoints if e.serves("service", self.target)]
            if serving:
                note.append(" · " if note else "")
                note.append_text(endpoints_health(serving))
            acked = acknowledgement(snap, f"pipeline:{self.target}")
            if acked is not None:  # first: who has it matters more than the rest
                note = ack_note(acked, now).append(" · " if note else "").append_text(note)
            self.query_one("#note", Static).update(note)
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
        if data.logs and data.stage_id == self.stage_id:
            failed = data.logs[0].stream == NO_LOG
            if self._no_log and not failed:
                # The source answers again: its log replaces the line that
                # said it did not, from its first line.
                self.after_id = 0
                self.log_lines = []
                self.query_one(Log).clear()
            self._no_log = failed
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
        self._no_log = False
        self.match = -1
        self.query_one(Log).clear()
        self.post_message(RefreshWanted())

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
