"""A pipeline: its runs, the stages of the selected run on a timeline, and a stage's log.

The log is a window (``tui/logview.py``): each read brings ``WINDOW`` lines
by line number (the last ones while following) and the log's true length,
from the nearer end of the stage's index, so a stage that logs millions of
lines costs a window per read. Search, save and the pager walk the whole log
in chunks on the refresh worker (``store/history.py``), never on the event loop.

Every size shares the height by what each panel holds (``heights``): the
stages take the rows the run has (all six of a six-stage run at 80x24), the
runs up to a share, the log the rest, never under three lines. Narrow, the
tables drop their secondary columns (the runs' host, the stages' try and
timeline) and the message elides; the title line says the selected run's
trigger, who and where, and the log's title the stage's try.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar, NamedTuple

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.events import Resize
from textual.widgets import DataTable, Footer, Input, Static

from opstui.config.endpoints import EndpointDef
from opstui.errors import OpstuiError
from opstui.policies.flaky import StageFlakes, ledger
from opstui.store import status as st
from opstui.store.history import (
    LogSearch,
    LogWindow,
    get_run,
    log_chunks,
    log_search,
    log_window,
    run_history,
)
from opstui.store.rows import LogLine, PipelineRow, RunRow, StageRow
from opstui.timeutil import human_age, human_duration
from opstui.tui.logview import WINDOW, LogView, compile_search
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

#: The input's words when it asks for a search, and for a line number.
SEARCH_HINT = "search the whole log: a regex (enter: find, esc: close)"
LINE_HINT = "go to line number (enter: go, esc: close)"
#: Cells of a stage's bar on the run's timeline (at 80 columns; wider, up to ``TIMELINE_MAX``).
TIMELINE = 16
TIMELINE_MAX = 40
#: Rows the log keeps however short the terminal: three lines and its border.
LOG_LEAST = 5
#: A table's least height: its header, one row, its border.
TABLE_LEAST = 4


def timeline(run: RunRow, stage: StageRow, now: float, cells: int = TIMELINE) -> Text:
    """Where the stage ran within the run: a bar placed and sized by its times."""
    start = run.started_at
    span = run.duration(now)
    if start is None or not span or stage.started_at is None:
        return Text("·" * cells, style="dim")
    left = int((stage.started_at - start) / span * cells)
    width = max(1, round((stage.duration(now) or 0) / span * cells))
    left = min(max(0, left), cells - 1)
    width = min(width, cells - left)
    out = Text("·" * left, style="dim")
    out.append("█" * width, style=STATUS_STYLE.get(stage.status, ""))
    out.append("·" * (cells - left - width), style="dim")
    return out


def timeline_cells(table_width: int) -> int:
    """The timeline's cells for a stages table this wide: 16 up to 120
    columns, then half of what is past 88, so a wide screen sees the stages'
    overlap (the message keeps the rest)."""
    return max(TIMELINE, min(TIMELINE_MAX, (table_width - 88) // 2 + TIMELINE))


def heights(room: int, runs: int, stages: int) -> tuple[int, int]:
    """The runs' and the stages' panel heights in ``room`` rows (the log takes
    what is left): the stages take every row they have, up to half; the runs
    theirs up to three tenths; the log keeps ``LOG_LEAST``, the runs giving
    first (their table scrolls, and the title says the selected run)."""
    stage_h = min(stages + 3, max(TABLE_LEAST, room // 2))
    runs_h = min(runs + 3, max(TABLE_LEAST, room * 3 // 10))
    over = stage_h + runs_h + LOG_LEAST - room
    if over > 0:
        cut = min(over, runs_h - TABLE_LEAST)
        runs_h -= cut
        stage_h = max(TABLE_LEAST, stage_h - (over - cut))
    return runs_h, stage_h


def run_title(name: str, run: RunRow) -> Text:
    """The title: what failed first (pipeline, run, status and reason), then
    the run's message; the title line elides its end to the room the header
    leaves it (``Detail.set_title``), so who started the run is on the note
    line (``run_origin``), after an acknowledgement and a source's word."""
    title = Text(f"Pipeline {safe(name)} · run #{run.id} ")
    title.append_text(status_text(run.status))
    if run.status_reason:
        title.append(f" ({safe(run.status_reason)})", style=STATUS_STYLE[st.UNKNOWN])
    if run.message:
        title.append(f" · {safe(run.message)}", style="dim")
    return title


def run_origin(run: RunRow) -> Text:
    """``schedule by scheduler@demo on vm``: the trigger, who and where (the
    narrow runs table drops its HOST column, and has no column for who)."""
    out = Text(f"{safe(run.trigger)} by {safe(run.actor) or '?'}")
    if run.host and not (run.actor or "").endswith(f"@{run.host}"):
        out.append(f" on {safe(run.host)}")
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


class LogTask(NamedTuple):
    """Asked of the next read for a stage's whole log: a search, a save, the pager."""

    what: str  # "search", "save", "pager"
    stage_id: int
    pattern: re.Pattern[str] | None = None


class TaskDone(NamedTuple):
    task: LogTask
    search: LogSearch | None = None
    path: str | None = None
    lines: int = 0
    error: str | None = None


def flaky_name(name: str, flakes: StageFlakes | None) -> str | Text:
    """A stage's name, marked when the flake ledger calls it flaky (it passed
    on most of its retries in 14 days): its failure is likely not the code's."""
    if flakes is None or not flakes.flaky:
        return safe(name)
    return Text.assemble(safe(name), (f" flaky {flakes.passed}/{flakes.retried}", "yellow"))


class PipelineData(NamedTuple):
    runs: list[RunRow]
    run: RunRow | None
    stage_id: int | None
    window: LogWindow | None
    error: str | None
    done: TaskDone | None = None
    #: ``[tui] log_error``, ``log_warn``, ``osc52``.
    tui: tuple[str, str, bool] | None = None
    #: This pipeline's stages in the flake ledger, by name (14 days).
    flakes: dict[str, StageFlakes] | None = None


def _list_window(lines: list[LogLine], first: int | None, count: int) -> LogWindow:
    """A window of a log held whole (an orchestrator's, fetched)."""
    total = len(lines)
    start = total - count + 1 if first is None else min(first, total - count + 1)
    start = max(1, start)
    return LogWindow(total, start, lines[start - 1 : start - 1 + count])


def _list_search(lines: list[LogLine], pattern: re.Pattern[str]) -> LogSearch:
    hits = [i + 1 for i, line in enumerate(lines) if pattern.search(line.line)]
    return LogSearch(len(hits), hits[:100_000], len(lines))


def _write_log(chunks: Iterator[list[str]], path: Path) -> int:
    """The whole log to ``path``, every line escaped as on screen; how many lines."""
    n = 0
    with path.open("w", encoding="utf-8") as out:
        for chunk in chunks:
            out.writelines(safe(line) + "\n" for line in chunk)
            n += len(chunk)
    return n


def _free_path(base: str) -> Path:
    """``base.log`` in the working directory, or ``base-2.log``... if it exists."""
    path = Path(f"{base}.log")
    k = 2
    while path.exists():
        path = Path(f"{base}-{k}.log")
        k += 1
    return path


class PipelineScreen(Detail):
    kind = "pipeline"
    DEFAULT_CSS = """
    PipelineScreen #runs-panel { height: 6; }
    PipelineScreen #stages-panel { height: 9; }
    PipelineScreen #log-panel { height: 1fr; }
    PipelineScreen #search { height: 1; border: none; display: none; }
    PipelineScreen #search.shown { display: block; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "follow", "Follow log"),
        Binding("slash", "search", "Search log", priority=True),
        Binding("n", "next_match", "Next match", show=False),
        Binding("N", "previous_match", "Previous match", show=False),
        Binding("w", "wrap", "Wrap", show=False),
        Binding("o", "pager", "Pager", show=False),
        Binding("s", "save", "Save log", show=False),
        Binding("y", "copy", "Copy line", show=False),
    ]

    def __init__(self, name: str, *, clock: Callable[[], float]) -> None:
        super().__init__(name, clock=clock)
        self.run_id: int | None = None
        self.stage_id: int | None = None
        #: The first line the next read brings (None: the last lines, following).
        self.want_first: int | None = None
        #: Asked of the next read (a search, a save, the pager), done once.
        self.log_task: LogTask | None = None
        self.needle = ""
        self.literal = False
        self.hits: LogSearch | None = None
        self.match = -1
        #: What the input above the footer asks for: "search" or "line".
        self.asking = "search"
        self.osc52 = False
        self._patterns: tuple[str, str] | None = None
        #: Logs fetched from an orchestrator, by (run, stage, attempt).
        self._fetched: dict[tuple[int, str, int], list[LogLine]] = {}
        #: The viewer shows only the line saying a source's log could not be fetched.
        self._no_log = False
        # Narrow (60 columns), the host goes: the title line says the
        # selected run's. Every number keeps its column.
        self.runs = LiveTable(
            [
                ("id", "RUN"),
                ("status", "STATUS"),
                ("bar", "STAGES"),
                ("trigger", "TRIGGER"),
                ("age", "AGE"),
                ("took", "TOOK"),
                ("host", "HOST", 66),
            ],
            flex="host",
            id="runs",
        )
        # Narrow, the try (the log's title says it) and the timeline go
        # before the message shrinks to nothing; the message elides.
        self.stages = LiveTable(
            [
                ("name", "STAGE"),
                ("status", "STATUS"),
                ("try", "TRY", 70),
                ("took", "TOOK"),
                ("when", "TIMELINE", 70),
                ("exit", "EXIT"),
                ("message", "MESSAGE"),
            ],
            flex="message",
            id="stages",
        )
        #: The last read drawn (a resize draws it again at the new width).
        self._last: tuple[PipelineData, Snapshot] | None = None

    def compose(self) -> ComposeResult:
        yield Static(f"Pipeline {safe(self.target)}", id="title")
        yield Static("", id="note")
        yield Panel("runs", self.runs, id="runs-panel")
        yield Panel("stages", self.stages, id="stages-panel")
        yield Panel("log", LogView(id="log"), id="log-panel")
        yield SteadyInput(placeholder=SEARCH_HINT, id="search")
        yield Footer()

    def on_mount(self) -> None:
        self.runs.focus()
        self._fit()

    def on_resize(self, event: Resize) -> None:
        self._fit()
        if self._last is not None:
            # The tables and the title again; not the log's window or a task's
            # result (a search's notice, the pager), which were handled.
            data, snap = self._last
            self.show_extra(data._replace(window=None, done=None), snap)

    def _fit(self) -> None:
        """The panels' heights for the screen's height and what they hold."""
        note = self.query_one("#note", Static)
        search = self.query_one("#search", Input)
        # Title and footer, the note and the search box when shown.
        room = self.size.height - 2 - note.display - search.has_class("shown")
        runs_h, stage_h = heights(room, len(self.runs.keys) or 1, len(self.stages.keys) or 1)
        for panel_id, h in (("#runs-panel", runs_h), ("#stages-panel", stage_h)):
            panel = self.query_one(panel_id, Panel)
            if panel.styles.height is None or panel.styles.height.value != h:
                panel.styles.height = h

    def problem(self, message: str | None) -> None:
        super().problem(message)
        if message is not None:
            self._note(None)

    def _note(self, text: Text | None) -> None:
        """The note line, shown only when it says something (a row more for the log)."""
        note = self.query_one("#note", Static)
        if text is not None:
            note.update(text)
        shown = self.stale or bool(text)
        if note.display != shown:
            note.display = shown
            self._fit()

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
            task, self.log_task = self.log_task, None
            window: LogWindow | None = None
            done: TaskDone | None = None
            first = self.want_first
            if run is not None and run.source_kind in SOURCE_LOGS:
                held = self._source_log(console, run, stage_id)
                window = _list_window(held, first, WINDOW)
                if task is not None and task.stage_id == stage_id:
                    done = self._do_task(
                        task,
                        run,
                        lambda: iter([[x.line for x in held]]),
                        lambda p: _list_search(held, p),
                    )
            elif stage_id is not None:
                window = log_window(store, stage_id, first, WINDOW)
                if task is not None and task.stage_id == stage_id:
                    sid = stage_id
                    done = self._do_task(
                        task,
                        run,
                        lambda: log_chunks(store, sid),
                        lambda p: log_search(store, sid, p),
                    )
            flakes = {f.stage: f for f in ledger(store, now=self.clock(), pipeline=self.target)}
        except OpstuiError as exc:
            return PipelineData([], None, None, None, exc.message)
        tui = console.config.tui
        return PipelineData(
            runs,
            run,
            stage_id,
            window,
            None,
            done,
            (tui.log_error, tui.log_warn, tui.osc52),
            flakes,
        )

    def _do_task(
        self,
        task: LogTask,
        run: RunRow | None,
        chunks: Callable[[], Iterator[list[str]]],
        search: Callable[[re.Pattern[str]], LogSearch],
    ) -> TaskDone:
        """A search, a save or the pager's file, over the whole log (the worker's thread)."""
        if task.what == "search":
            assert task.pattern is not None
            return TaskDone(task, search=search(task.pattern))
        try:
            if task.what == "save":
                names = [s.name for s in run.stages if s.id == task.stage_id] if run else []
                stage = names[0] if names else "log"
                base = re.sub(r"[^\w.-]", "_", f"{self.target}-{run.id if run else 0}-{stage}")
                path = _free_path(base)
            else:
                fd, name = tempfile.mkstemp(prefix="opstui-", suffix=".log")
                os.close(fd)
                path = Path(name)
            n = _write_log(chunks(), path)
        except OSError as exc:
            return TaskDone(task, error=f"{exc.strerror or exc}")
        return TaskDone(task, path=str(path), lines=n)

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
        self._last = (data, snap)
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
        self.set_title(run_title(self.target, run))
        if not self.stale:
            row = next((p for p in snap.pipelines if p.name == self.target), None)
            # A source's word on the pipeline first (deleted upstream), then
            # who started the run (a mirrored run's source says it too).
            note = source_note(run, row, now)
            note.append(" · " if note else "").append_text(run_origin(run))
            serving = [e for e in snap.endpoints if e.serves("service", self.target)]
            if serving:
                note.append(" · " if note else "")
                note.append_text(endpoints_health(serving))
            acked = acknowledgement(snap, f"pipeline:{self.target}")
            if acked is not None:  # first: who has it matters more than the rest
                note = ack_note(acked, now).append(" · ").append_text(note)
            note.no_wrap = True
            note.truncate(max(10, self.size.width - 2), overflow="ellipsis")
            self._note(note)
        cells = timeline_cells(self.stages.size.width)
        self.stages.show(
            [
                (
                    str(s.id),
                    (
                        flaky_name(s.name, (data.flakes or {}).get(s.name)),
                        status_text(s.status),
                        str(s.attempt),
                        human_duration(s.duration(now)),
                        timeline(run, s, now, cells),
                        "" if s.exit_code is None else str(s.exit_code),
                        dim("reused") if s.reused_from_id else safe(s.message),
                    ),
                )
                for s in run.stages
            ]
        )
        self._fit()
        if data.stage_id != self.stage_id:
            self.stage_id = data.stage_id
            if data.stage_id is not None:
                self.stages.select_key(str(data.stage_id))
        view = self.query_one(LogView)
        if data.tui is not None:
            self._configure(view, data.tui)
        if data.window is not None and data.stage_id == self.stage_id:
            w = data.window
            failed = bool(w.lines) and w.lines[0].stream == NO_LOG
            self._no_log = failed
            view.show_window(w.total, w.first, w.lines)
        if data.done is not None and data.done.task.stage_id == self.stage_id:
            self._task_done(data.done)
        self._log_title(run)

    def _configure(self, view: LogView, tui: tuple[str, str, bool]) -> None:
        error, warn, self.osc52 = tui
        if self._patterns != (error, warn):
            self._patterns = (error, warn)
            # Checked when the config was loaded (config/load.py): they compile.
            view.error_re = re.compile(error)
            view.warn_re = re.compile(warn)
            view.refresh()

    def _log_title(self, run: RunRow | None = None) -> None:
        view = self.query_one(LogView)
        panel = self.query_one("#log-panel", Panel)
        name = "log"
        if run is not None:
            stage = next((s for s in run.stages if s.id == self.stage_id), None)
            name = safe(stage.name) if stage is not None else name
            if stage is not None and stage.attempt > 1:
                # The stages table drops its TRY column when narrow.
                name += f" (try {stage.attempt})"
            self._stage_name = name
        else:
            name = getattr(self, "_stage_name", name)
        mode = "following" if view.follow else f"line {view.cursor:,} · paused (G, f follow)"
        panel.border_title = f"Log of {name} · {view.total:,} lines · {mode}"
        hits = self.hits
        if not self.needle:
            panel.border_subtitle = "/ search · : line · w wrap · o pager · s save"
        elif hits is None:
            panel.border_subtitle = safe(f"/{self.needle}/ searching…")
        else:
            kind = " (not a regex: literal)" if self.literal else ""
            where = f"{self.match + 1}/{hits.matches:,}" if hits.matches else "no match"
            panel.border_subtitle = safe(f"/{self.needle}/{kind} {where}")

    def _task_done(self, done: TaskDone) -> None:
        task = done.task
        if task.what == "search":
            self.hits = done.search
            self.match = -1
            if done.search is not None and done.search.matches:
                self._find(+1, from_cursor=True)
            else:
                self.notify(
                    safe(f"{self.needle!r} is not in the log"), severity="warning", markup=False
                )
            self._log_title()
            return
        if done.error is not None or done.path is None:
            self.notify(
                safe(f"could not write the log: {done.error}"), severity="error", markup=False
            )
            return
        if task.what == "save":
            self.notify(safe(f"saved {done.lines:,} lines to {done.path}"), markup=False)
            return
        self._page(done.path)

    def _page(self, path: str) -> None:
        """The whole log in ``$PAGER`` (``less``), the console suspended meanwhile."""
        import shlex
        import subprocess

        from textual.app import SuspendNotSupported

        command = [*shlex.split(os.environ.get("PAGER") or "less"), path]
        try:
            with self.app.suspend():
                subprocess.run(command, check=False)
        except SuspendNotSupported:
            self.notify(f"this terminal cannot hand over to a pager; the log is in {path}")
            return
        except OSError as exc:
            self.notify(safe(f"{command[0]} did not run: {exc}"), severity="error", markup=False)
        Path(path).unlink(missing_ok=True)

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
        self.want_first = None
        self.log_task = None
        self._no_log = False
        self.needle = ""
        self.hits = None
        self.match = -1
        self.query_one(LogView).clear()
        self.post_message(RefreshWanted())

    def on_log_view_wanted(self, event: LogView.Wanted) -> None:
        self.want_first = event.first or None
        self.post_message(RefreshWanted())

    def on_log_view_moved(self, event: LogView.Moved) -> None:
        self.want_first = self.query_one(LogView).window_wanted()
        self._log_title()

    def on_log_view_goto_asked(self, event: LogView.GotoAsked) -> None:
        self._ask("line")

    @property
    def follow(self) -> bool:
        return self.query_one(LogView).follow

    @property
    def log_lines(self) -> list[str]:
        """The lines of the window read (escaped, as drawn): all of a short log."""
        return [safe(line.line) for line in self.query_one(LogView).lines]

    def action_follow(self) -> None:
        view = self.query_one(LogView)
        if view.follow:
            view.go(view.cursor or view.total)
            self.notify("log paused: new lines kept below (G or f follows)")
        else:
            view.action_bottom()
            self.notify("following the log")

    def action_wrap(self) -> None:
        view = self.query_one(LogView)
        view.wrap = not view.wrap
        view.refresh()
        self.notify("long lines wrap" if view.wrap else "long lines cut (w wraps)")

    def _whole(self, what: str) -> None:
        if self.stage_id is None:
            self.notify("no stage selected", severity="warning")
            return
        self.log_task = LogTask(what, self.stage_id)
        self.post_message(RefreshWanted())

    def action_pager(self) -> None:
        self._whole("pager")

    def action_save(self) -> None:
        self._whole("save")

    def action_copy(self) -> None:
        view = self.query_one(LogView)
        line = view.line(view.cursor)
        if not self.osc52:
            self.notify(
                "copying is off: set osc52 = true under [tui] in opstui.toml "
                "(the terminal's clipboard through OSC 52)",
                severity="warning",
            )
            return
        if line is None:
            self.notify("no line selected", severity="warning")
            return
        self.app.copy_to_clipboard(safe(line.line))
        self.notify(f"line {view.cursor:,} copied (OSC 52)")

    def _ask(self, what: str) -> None:
        box = self.query_one("#search", Input)
        self.asking = what
        box.placeholder = SEARCH_HINT if what == "search" else LINE_HINT
        box.value = ""
        box.add_class("shown")
        self._fit()
        box.focus()

    def action_search(self) -> None:
        self._ask("search")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        # As in less: the box closes, n / N walk the matches.
        event.input.remove_class("shown")
        self._fit()
        view = self.query_one(LogView)
        view.focus()
        text = event.value
        if self.asking == "line":
            try:
                view.go(int(text.strip().replace(",", "")), center=True)
            except ValueError:
                self.notify(
                    safe(f"{text!r} is not a line number"), severity="warning", markup=False
                )
            return
        if not text or self.stage_id is None:
            return
        pattern, regex = compile_search(text)
        self.needle, self.literal = text, not regex
        view.pattern = pattern
        view.refresh()
        self.hits = None
        self.match = -1
        if not regex:
            self.notify(safe(f"{text!r} is not a regex: searched as literal text"), markup=False)
        self.log_task = LogTask("search", self.stage_id, pattern)
        self._log_title()
        self.post_message(RefreshWanted())

    def clear_filter(self) -> bool:
        box = self.query_one("#search", Input)
        if not box.has_class("shown"):
            return False
        box.remove_class("shown")
        self._fit()
        self.query_one(LogView).focus()
        return True

    def _find(self, step: int, *, from_cursor: bool = False) -> None:
        hits = self.hits
        if hits is None or not hits.lines:
            if self.needle and hits is not None:
                self.notify(
                    safe(f"{self.needle!r} is not in the log"), severity="warning", markup=False
                )
            return
        view = self.query_one(LogView)
        if from_cursor:
            # The first match at or after the line selected (the last, following).
            at = view.cursor if not view.follow else 1
            self.match = next((i for i, n in enumerate(hits.lines) if n >= at), 0)
        else:
            self.match = (self.match + step) % len(hits.lines)
        number = hits.lines[self.match]
        view.go(number, center=True)
        more = f" (the first {len(hits.lines):,} kept)" if hits.matches > len(hits.lines) else ""
        self.notify(f"line {number:,}: match {self.match + 1}/{hits.matches:,}{more}", timeout=3)
        self._log_title()

    def action_next_match(self) -> None:
        self._find(+1)

    def action_previous_match(self) -> None:
        self._find(-1)
