"""What the console shows, read from the store in one call, without Textual.

The TUI's refresh worker calls ``SnapshotReader.snapshot()`` off the event loop and
hands the immutable result to the widgets; a benchmark and the tests call the
same function. Each panel's read is guarded on its own: a locked store or a
broken read makes that panel "stale" with the reason, and the others still
refresh. A row a read cannot show (a time beyond year 9999 in an old store)
is skipped, and named in ``Snapshot.skipped``; the rest of its panel shows.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, TypeVar

from opstui.config import Config
from opstui.errors import OpstuiError
from opstui.store import Store, fields
from opstui.store import drift as store_drift
from opstui.store import status as st
from opstui.store.acks import Ack, active_acks
from opstui.store.dashboard import Dashboard
from opstui.store.location import StoreLocation, parse_location
from opstui.store.rows import PipelineRow
from opstui.views.endpoints import EndpointReport, endpoint_reports
from opstui.views.models import ModelReport, known_models, model_reports

T = TypeVar("T")

PANELS = ("pipelines", "endpoints", "models", "events")


class ModelSummary(NamedTuple):
    name: str
    latest_version: str | None
    latest_status: str | None
    #: environment -> deployed version
    deployed: dict[str, str]
    drift_share: float | None = None
    drifted: tuple[str, ...] = ()
    retrain_suggested: bool = False


class Event(NamedTuple):
    ts: float
    #: run, deploy, alert, drift, action, policy (``store/timeline.KINDS``)
    kind: str
    #: ok, warn, fault
    severity: str
    text: str
    #: What happened, in a word (``TimelineEvent.what``); empty for a
    #: pipeline's latest run shown as it is (running, succeeded).
    what: str = ""
    #: The pipeline, endpoint, model or service it happened to
    #: (``TimelineEvent.subject``): what ``enter`` on it opens.
    subject: str = ""
    #: Where it comes from (``run:12``, ``deployment:3``): ``TimelineEvent.ref``.
    ref: str = ""


#: How the headline counts what changed, most urgent first: (kind, what) ->
#: the words for one and for several.
CHANGES: tuple[tuple[tuple[str, str], str, str], ...] = (
    (("run", "failed"), "failed", "failed"),
    (("run", "timed out"), "timed out", "timed out"),
    (("alert", "firing"), "alert firing", "alerts firing"),
    (("policy", "awaiting approval"), "awaiting approval", "awaiting approval"),
    (("policy", "refused"), "policy refused", "policies refused"),
    (("deploy", "deploy failed"), "deploy failed", "deploys failed"),
    (("deploy", "rollback failed"), "rollback failed", "rollbacks failed"),
    (("deploy", "rolled back"), "rolled back", "rolled back"),
    (("policy", "acted"), "policy acted", "policy acts"),
    (("drift", "started"), "drifting", "drifting"),
    (("run", "recovered"), "recovered", "recovered"),
    (("alert", "resolved"), "resolved", "resolved"),
    (("drift", "cleared"), "drift cleared", "drift cleared"),
    (("deploy", "deployed"), "deployed", "deployed"),
    (("deploy", "alias moved"), "alias moved", "aliases moved"),
)


def changes(events: Sequence[Event], since: float) -> list[str]:
    """What happened after ``since``, counted: ``["2 failed", "1 alert
    firing", "1 rolled back"]``, most urgent first; operator actions last."""
    counts: dict[tuple[str, str], int] = {}
    actions = 0
    for e in events:
        if e.ts <= since:
            continue
        if e.kind == "action":
            actions += 1
        elif e.what:
            counts[(e.kind, e.what)] = counts.get((e.kind, e.what), 0) + 1
    out = []
    for key, one, many in CHANGES:
        n = counts.get(key, 0)
        if n:
            out.append(f"{n} {one if n == 1 else many}")
    if actions:
        out.append(f"{actions} action{'s' if actions > 1 else ''}")
    return out


class Snapshot(NamedTuple):
    at: float
    pipelines: list[PipelineRow]
    endpoints: list[EndpointReport]
    models: list[ModelSummary]
    events: list[Event]
    #: panel -> why its data is not fresh (the store locked, a read failed)
    problems: dict[str, str]
    #: panel -> when its data was last read successfully
    read_at: dict[str, float]
    #: Rows the reads skipped because they cannot be shown, each as
    #: "skipped run 17 of 'web-api': started_at 1e+20 is out of range (...)".
    skipped: tuple[str, ...] = ()
    #: Acknowledgements in force, by fault (``store.acks``): every console's.
    acknowledged: Mapping[str, Ack] = {}


class StoreGone(OpstuiError):
    """The store file disappeared while the console was reading it.

    Not ``store.failures.StoreGone``: that one tells a writer to restart; the
    console keeps its last data and reads the store again if it returns.
    """


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OpstuiError):
        return exc.message
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return "the store is locked by another writer"
    return f"{type(exc).__name__}: {exc}"[:200]


class SnapshotReader:
    """The console's reads over one store. Not thread-safe: one reader thread at a time."""

    def __init__(
        self,
        store_path: str | Path | StoreLocation,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        events: int = 30,
    ) -> None:
        self.store_path = parse_location(store_path)
        self.config = config
        self.clock = clock
        self.events_limit = events
        self._store: Store | None = None
        self._dashboard: Dashboard | None = None
        self._last: Snapshot | None = None

    def _open(self) -> Store:
        if self._store is not None and self._store.gone() is not None:
            # The file was deleted, moved or replaced under us: an open
            # connection would go on reading the old inode as if all were well.
            self.close()
            if self.store_path.missing_file():
                raise StoreGone(
                    f"the store file is gone: {self.store_path} (deleted or moved?)",
                    hint="the panels keep the last data; the store is read again if it returns",
                )
        if self._store is None:
            # A short busy timeout: a refresh that waits behind a long write
            # shows the panel as stale and tries again next time.
            self._store = Store(self.store_path, create=False, busy_timeout=0.5, clock=self.clock)
            self._dashboard = Dashboard(self._store)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        self._store = None
        self._dashboard = None

    @property
    def store(self) -> Store:
        return self._open()

    def snapshot(self) -> Snapshot:
        """Every panel's data; a panel whose read fails keeps its last data, marked stale."""
        with fields.collect_skipped() as skipped:
            snap = self._snapshot()
        if skipped:
            snap = snap._replace(skipped=tuple(skipped))
            self._last = snap
        return snap

    def _snapshot(self) -> Snapshot:
        now = self.clock()
        last = self._last
        problems: dict[str, str] = {}
        read_at = dict(last.read_at) if last else {}

        def guarded(panel: str, read: Callable[[], T], fallback: T) -> T:
            try:
                value = read()
            except (OpstuiError, sqlite3.Error, OSError) as exc:
                problems[panel] = _reason(exc)
                if isinstance(exc, sqlite3.DatabaseError | OSError) and not isinstance(
                    exc, sqlite3.OperationalError
                ):
                    # The file went away or was replaced: open it afresh next time.
                    self.close()
                return fallback
            read_at[panel] = now
            return value

        try:
            self._open()
        except (OpstuiError, sqlite3.Error, OSError) as exc:
            self.close()
            reason = _reason(exc)
            problems = dict.fromkeys(PANELS, reason)
            empty = Snapshot(now, [], [], [], [], problems, read_at)
            snap = last._replace(at=now, problems=problems) if last else empty
            self._last = snap
            return snap
        pipelines = guarded("pipelines", self._pipelines, last.pipelines if last else [])
        endpoints = guarded("endpoints", self._endpoints, last.endpoints if last else [])
        models = guarded("models", self._models, last.models if last else [])
        events = guarded("events", lambda: self._events(pipelines), last.events if last else [])
        acks = guarded(
            "events", lambda: active_acks(self.store, now), last.acknowledged if last else {}
        )
        snap = Snapshot(
            now, pipelines, endpoints, models, events, problems, read_at, acknowledged=acks
        )
        self._last = snap
        return snap

    def _pipelines(self) -> list[PipelineRow]:
        assert self._dashboard is not None
        return self._dashboard.read(self.clock())

    def _endpoints(self) -> list[EndpointReport]:
        if not self.config.endpoints:
            return []
        return endpoint_reports(self.store, self.config, self.clock())

    def _models(self) -> list[ModelSummary]:
        store = self.store
        out = []
        # The same read as `opstui models` (views/models.py).
        for m in model_reports(store, known_models(store, self.config.models)):
            latest = m.latest
            summary = ModelSummary(
                m.name,
                latest.version if latest else None,
                latest.status if latest else None,
                {d.environment: d.version for d in m.deployed},
            )
            if m.drift is not None:
                summary = self._with_drift(summary, m)
            out.append(summary)
        return out

    def _with_drift(self, summary: ModelSummary, m: ModelReport) -> ModelSummary:
        """The model's latest stored drift check (computed elsewhere: ``drift.check``)."""
        assert m.drift is not None
        # Only a model with checks pays for importing the drift settings (numpy).
        from opstui.drift.check import settings_for

        after = settings_for(self.config, m.name).retrain_after
        suggestion = store_drift.retrain_suggestion(self.store, m.name, after=after)
        return summary._replace(
            drift_share=m.drift.drift_share,
            drifted=m.drifted,
            retrain_suggested=suggestion is not None,
        )

    def _events(self, pipelines: list[PipelineRow]) -> list[Event]:
        """The store-wide timeline's latest events (``store/timeline.py``:
        failures, recoveries, deploys, rollbacks, alerts, drift, actions;
        never only each pipeline's latest run), and each pipeline's latest
        run besides (what is running now, the last success). Each source is
        read newest first on an index, ``events_limit`` rows at most."""
        from opstui.store.timeline import timeline

        served = {n: s for n, ep in self.config.endpoints.items() if (s := self.config.served(ep))}
        now = self.clock()
        happened = timeline(self.store, since=0.0, until=now + 60,
                            limit=self.events_limit, served=served)  # fmt: skip
        told = {e.ref for e in happened}
        events = [Event(e.at, e.kind, e.severity, e.summary, e.what, e.subject, e.ref)
                  for e in happened]  # fmt: skip
        events += [
            run_event(p)
            for p in pipelines
            if p.latest is not None and f"run:{p.latest.id}" not in told
        ]
        events.sort(key=lambda e: e.ts, reverse=True)
        return events[: self.events_limit]


def run_event(p: PipelineRow) -> Event:
    run = p.latest
    assert run is not None
    failed = run.failed_stage
    ts = run.finished_at or run.started_at or run.created_at
    severity = "fault" if run.status in st.FAULTS else "ok"
    if run.status == st.UNKNOWN:
        text = f"{p.name} #{run.id} unknown ({run.status_reason})"
        severity = "warn"
    elif run.status in st.ACTIVE:
        stage = run.running_stage
        text = f"{p.name} #{run.id} running" + (f" {stage.name}" if stage else "")
        severity = "warn"
    elif failed is not None:
        text = f"{p.name} #{run.id} {run.status.replace('_', ' ')} at {failed.name}"
    else:
        text = f"{p.name} #{run.id} {run.status.replace('_', ' ')}"
    if run.trigger != "manual":
        text += f" ({run.trigger})"
    return Event(ts, "run", severity, text, subject=p.name, ref=f"run:{run.id}")
