"""The timeline: what happened across the store, newest first (``store/timeline.py``).

Failures and recoveries, deploys and rollbacks, alerts, drift starting and
clearing, operator actions. The worker reads one window (24h at first, at
most ``LIMIT`` events) cut by the filters; the keys change the filters and
the rows on screen are cut at once, before the read they ask for returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Input, Static

from opstui.store.timeline import KINDS, TimelineEvent
from opstui.timeutil import clock_time
from opstui.tui.messages import RefreshWanted
from opstui.tui.render import SEVERITY_STYLE, age, safe
from opstui.tui.screens.base import Detail
from opstui.tui.table import ColumnSpec, FilterBar, LiveTable, Row, RowFilter
from opstui.tui.widgets import Panel
from opstui.views.snapshot import Snapshot, SnapshotReader

#: The windows ``w`` cycles through, in seconds; the first read is 24h.
WINDOWS: tuple[tuple[str, float], ...] = (
    ("1h", 3600.0),
    ("6h", 6 * 3600.0),
    ("24h", 24 * 3600.0),
    ("7d", 7 * 86400.0),
    ("30d", 30 * 86400.0),
)
DEFAULT_WINDOW = 2
#: At most this many events are read (the newest).
LIMIT = 500
#: The columns by the table's width: narrow, the summary (which names the
#: subject and where) keeps the room, elided, and the line under the table
#: says the selected event in full; from 100 columns the clock time and who;
#: from 160 every field.
_COLUMNS: list[ColumnSpec] = [
    ("age", "AGE"),
    ("when", "WHEN", 98),
    ("kind", "KIND", 158),
    ("what", "WHAT"),
    ("subject", "SUBJECT", 158),
    ("env", "ENV", 158),
    ("who", "WHO", 98),
    ("summary", "SUMMARY"),
]


class TimelineData(NamedTuple):
    """One read: the events and what they were read for."""

    events: list[TimelineEvent]
    now: float
    window: str
    service: str | None
    environment: str | None
    kind: str | None


class TimelineScreen(Detail):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle('service')", "Service", id="timeline.service"),
        Binding("e", "cycle('environment')", "Env", id="timeline.environment"),
        # K, not k: every table takes k (up a row), as in vim.
        Binding("K", "cycle('kind')", "Kind", id="timeline.kind"),
        Binding("w", "cycle('window')", "Window", id="timeline.window"),
    ]
    DEFAULT_CSS = """
    TimelineScreen #empty { height: 1fr; padding: 1 2; display: none; }
    TimelineScreen #detail { height: 2; padding: 0 1; }
    """

    def __init__(self, *, clock: Callable[[], float]) -> None:
        super().__init__("timeline", clock=clock)
        self.window_index = DEFAULT_WINDOW
        self.only_service: str | None = None
        self.only_env: str | None = None
        self.only_kind: str | None = None
        self.needle = ""
        #: Every service and environment met in a read: what ``s`` and ``e`` offer.
        self.services: set[str] = set()
        self.environments: set[str] = set()
        self.data: TimelineData | None = None
        #: What each row opens (``pipeline:etl``), by the row's key.
        self.opens: dict[str, str] = {}
        self._events: dict[str, TimelineEvent] = {}
        self._names: dict[str, set[str]] = {}

    @property
    def label(self) -> str:
        return "the timeline"

    @property
    def window_name(self) -> str:
        return WINDOWS[self.window_index][0]

    def compose(self) -> ComposeResult:
        yield Static("Timeline: what happened, newest first", id="title")
        yield Static("", id="note")
        self.table = LiveTable(_COLUMNS, flex="summary")
        with Vertical():
            yield Panel("events", self.table)
            yield Static("", id="empty")
            yield Static("", id="detail")
        yield FilterBar(
            placeholder="regex on the text, !inverts (esc clears)", input_id="timeline-filter"
        )
        yield Footer()

    def on_mount(self) -> None:
        self.set_title("Timeline: what happened, newest first")
        self.table.focus()

    # -- reading (the refresh worker's thread) ---------------------------------

    def load(self, console: SnapshotReader) -> TimelineData:
        from opstui.store.timeline import timeline

        config = console.config
        served = {ep.name: s for ep in config.endpoints.values() if (s := config.served(ep))}
        now = console.clock()
        window, seconds = WINDOWS[self.window_index]
        service, environment, kind = self.only_service, self.only_env, self.only_kind
        events = timeline(
            console.store,
            since=now - seconds,
            service=service,
            environment=environment,
            kinds=KINDS if kind is None else (kind,),
            limit=LIMIT,
            served=served,
        )
        return TimelineData(events, now, window, service, environment, kind)

    # -- drawing (the event loop) ----------------------------------------------

    def show_extra(self, data: TimelineData, snap: Snapshot) -> None:
        self.data = data
        for e in data.events:
            self.services.add(e.service or e.subject)
            if e.environment:
                self.environments.add(e.environment)
        self._names = {
            "pipeline": {p.name for p in snap.pipelines},
            "model": {m.name for m in snap.models},
            "endpoint": {e.name for e in snap.endpoints},
        }
        self._draw()

    def _shown(self, *, text: bool = True) -> list[TimelineEvent]:
        """The read's events cut by the filters as they are now (a key pressed
        during the read cuts them at once; the read it asked for follows);
        ``text=False``: all but the text filter (what the ``/`` count counts from)."""
        if self.data is None:
            return []
        since = self.data.now - WINDOWS[self.window_index][1]
        needle = RowFilter.parse(self.needle if text else "")
        out = []
        for e in self.data.events:
            if e.at < since:
                continue
            if self.only_service is not None and not e.about(self.only_service):
                continue
            if self.only_env is not None and e.environment != self.only_env:
                continue
            if self.only_kind is not None and e.kind != self.only_kind:
                continue
            if not needle.matches(_haystack(e)):
                continue
            out.append(e)
        return out

    def _draw(self) -> None:
        data = self.data
        if data is None:
            return
        events = self._shown()
        self.opens = {}
        self._events = {}
        rows: list[Row] = []
        for e in events:
            key = e.ref or f"{e.kind}:{e.at}:{e.subject}"
            target = self._open_key(e)
            if target is not None:
                self.opens[key] = target
            self._events[key] = e
            rows.append((key, self._cells(e, data.now)))
        self.table.show(rows)
        bar = self.query_one(FilterBar)
        if bar.shown:
            every = len(self._shown(text=False))
            bar.count(RowFilter.parse(self.needle).tally(len(events), every, "events"))
        self._detail(self.table.selected_key)
        if not self.stale:
            self.query_one("#note", Static).update(self._note(len(events), len(data.events)))
        empty = self.query_one("#empty", Static)
        panel = self.query_one("#panel-events", Panel)
        self.query_one("#detail", Static).display = bool(events)
        if events:
            empty.display = False
            panel.display = True
            panel.border_title = f"Events ({len(events)})"
        else:
            panel.display = False
            empty.display = True
            empty.update(Text(self._nothing()))

    def _cells(self, e: TimelineEvent, now: float) -> tuple[Any, ...]:
        style = SEVERITY_STYLE.get(e.severity, "")
        cells = {
            "age": age(now - e.at),
            "when": clock_time(e.at),
            "kind": e.kind,
            "what": Text(safe(e.what), style=style),
            "subject": Text(safe(e.subject)),
            "env": Text(safe(e.environment) or "-"),
            "who": Text(safe(e.actor) or "-"),
            "summary": Text(safe(e.summary), style=style.replace("bold ", "")),
        }
        return tuple(cells[key] for key, _, _ in self.table.every)

    def _detail(self, key: str | None) -> None:
        """The selected event in full under the table: a narrow screen cuts its summary."""
        box = self.query_one("#detail", Static)
        e = self._events.get(key) if key is not None else None
        if e is None:
            box.update("")
            return
        text = Text(f"{clock_time(e.at)} {e.kind}", style="dim")
        if e.actor:
            text.append(f" by {safe(e.actor)}", style="dim")
        text.append(": ").append(safe(e.summary), style=SEVERITY_STYLE.get(e.severity, ""))
        if e.environment and e.environment not in e.summary:
            text.append(f" ({safe(e.environment)})", style="dim")
        target = self.opens.get(key or "")
        if target is not None:
            text.append(f"  enter opens {target.replace(':', ' ', 1)}", style="dim")
        box.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None:
            self._detail(event.row_key.value)

    def _filters(self) -> list[str]:
        out = []
        if self.only_service is not None:
            out.append(f"service {safe(self.only_service)}")
        if self.only_env is not None:
            out.append(f"env {safe(self.only_env)}")
        if self.only_kind is not None:
            out.append(f"kind {self.only_kind}")
        if self.needle:
            out.append(f"text {safe(self.needle)!r}")
        return out

    def _note(self, shown: int, read: int) -> Text:
        data = self.data
        assert data is not None
        events = f"{shown} event{'' if shown == 1 else 's'}"
        if read >= LIMIT:
            events += f" (the newest {LIMIT} read)"
        note = Text(f"last {self.window_name} · {events} · ")
        filters = self._filters()
        if filters:
            note.append(" · ".join(filters), style="bold")
        else:
            note.append("all · s e K w cycle service env kind window, / text", style="dim")
        return note

    def _nothing(self) -> str:
        text = f"Nothing happened in the last {self.window_name}"
        filters = self._filters()
        if filters:
            text += f" ({', '.join(filters)})"
        return text + "."

    def _open_key(self, e: TimelineEvent) -> str | None:
        """The screen a row is about: a run's pipeline, a model, an endpoint."""
        order = {
            "run": ("pipeline",),
            "drift": ("model",),
            "alert": ("endpoint",),
        }.get(e.kind, ("model", "pipeline", "endpoint"))
        for name in (e.subject, e.service):
            for kind in (*order, "pipeline", "model", "endpoint"):
                if name and name in self._names.get(kind, set()):
                    return f"{kind}:{name}"
        return None

    # -- keys ------------------------------------------------------------------

    def action_cycle(self, what: str) -> None:
        if what == "window":
            self.window_index = (self.window_index + 1) % len(WINDOWS)
        elif what == "kind":
            self.only_kind = _next(self.only_kind, KINDS)
        elif what == "service":
            self.only_service = _next(self.only_service, sorted(self.services))
        elif what == "environment":
            self.only_env = _next(self.only_env, sorted(self.environments))
        self._draw()
        self.post_message(RefreshWanted())

    def selected(self) -> str | None:
        key = self.table.selected_key
        return self.opens.get(key) if key is not None else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # The table takes enter for itself: it opens what the row is about.
        key = event.row_key.value
        self.open_row(self.opens.get(key) if key is not None else None, "event")

    # -- the text filter (the app's /) -------------------------------------------

    def open_filter(self) -> None:
        self.query_one(FilterBar).open()
        self._draw()  # the count, at once

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "timeline-filter":
            self.needle = event.value
            self._draw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "timeline-filter":
            self.table.focus()

    def clear_filter(self) -> bool:
        if not self.query_one(FilterBar).close():
            return False
        self.needle = ""
        self.table.focus()
        self._draw()
        return True


def _next(current: str | None, choices: Sequence[str]) -> str | None:
    """None (all), then each choice in turn, then None again."""
    if not choices:
        return None
    if current is None or current not in choices:
        return choices[0] if current is None else None
    i = list(choices).index(current)
    return choices[i + 1] if i + 1 < len(choices) else None


def _haystack(e: TimelineEvent) -> str:
    return " ".join(
        x for x in (e.kind, e.what, e.subject, e.summary, e.actor, e.environment) if x
    ).lower()
