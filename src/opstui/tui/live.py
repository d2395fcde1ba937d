"""The console's live side: reading the store, the endpoint poller, the drift pass,
and what happens when any of them fails.

Nothing here touches SQLite, HTTP or scikit-learn on the event loop: the
active screen's data is read by a thread worker on the refresh interval
(one at a time, ``tui/refresh.py``: a slow read skips ticks rather than
piling up), the poller runs on a thread of its own, and the drift pass is a
worker too. Workers hand their results to the event loop as messages
(``tui/messages.py``), handled here with ``@on``.

The worker-error policy: no worker's exception ends the session (an
operator mid-incident keeps the console). Every worker starts through
``start_job``; one handler (``job_changed``) turns a failure into a
notification and marks the panels the job feeds stale (``tui/jobs.py``)
until it succeeds again. The poller's thread, which is not a worker, and a
read the screen fails to draw go through the same ``_failed``.

``OpstuiApp`` (``tui/app.py``) adds the operator's side: keys, screens and
actions. The split is by concern, not by size alone: this class knows no key.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import App
from textual.css.query import NoMatches
from textual.driver import Driver
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from opstui.config import Config
from opstui.errors import OpstuiError
from opstui.store import Store
from opstui.store.location import parse_location
from opstui.terminal import visible
from opstui.tui.jobs import (
    ACTION,
    DRIFT,
    FEEDS,
    NOTIFY,
    POLLER,
    REFRESH,
    Failure,
    JobFailed,
    failure_line,
)
from opstui.tui.messages import DriftChecked, PollerStopped, RefreshWanted, SnapshotRead
from opstui.tui.refresh import RefreshGate
from opstui.tui.render import safe
from opstui.views.snapshot import Snapshot, SnapshotReader

if TYPE_CHECKING:
    from opstui.notify.send import Notifier
    from opstui.sources.background import PollerThread
    from opstui.store.postgres import ChangeListener
    from opstui.tui.screens.dashboard import DashboardScreen

#: Seconds before the first background drift check, and between checks.
DRIFT_FIRST = 5.0
DRIFT_EVERY = 60.0
#: Seconds before a stopped endpoint poller is started again, and how long a
#: restarted one must live before its panel is trusted again.
POLLER_RETRY = 30.0
#: Seconds between two alert judgements (each one a short write, and a post
#: to Alertmanager when something changed or a resend is due).
NOTIFY_EVERY = 5.0
#: Seconds a failure's notification stays up (longer than Textual's 5: it is
#: read mid-incident, and the panel keeps saying it anyway).
FAILURE_TIMEOUT = 10.0
#: Seconds after the first snapshot is shown before ``LiveApp.settle_gc``.
GC_SETTLE_AFTER = 1.0


def desktop_notice(kind: str, text: str) -> str | None:
    """The terminal sequence raising a desktop notification (``osc9``:
    iTerm2, WezTerm, Windows Terminal, kitty; ``osc777``: VTE terminals), or
    None. ``text`` is data: every control character made visible, so it
    cannot end the sequence early or start another."""
    shown = visible(text, newline=" ")[:200]
    if kind == "osc9":
        return f"\x1b]9;opstui: {shown}\x07"
    if kind == "osc777":
        return f"\x1b]777;notify;opstui;{shown}\x07"
    return None


class LiveApp(App[None]):
    """The store, read on workers; the poller and drift pass; the one worker-error policy."""

    #: Whether ``settle_gc`` runs once the first snapshot is shown; None: in a
    #: terminal only (a test process runs many apps and keeps Python's defaults).
    gc_settle: bool | None = None

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver for this terminal, with a writer that survives the
        terminal going away (``tui/driver.py``)."""
        from textual.drivers.linux_driver import LinuxDriver

        from opstui.tui.driver import SteadyDriver

        chosen = super().get_driver_class()
        return SteadyDriver if chosen is LinuxDriver else chosen

    def __init__(
        self,
        store_path: str | Path,
        config: Config,
        *,
        read_only: bool = False,
        refresh: float = 1.0,
        clock: Callable[[], float] = time.time,
        poll: bool = True,
    ) -> None:
        super().__init__()
        self.store_path = parse_location(store_path)
        self.config = config
        self.read_only = read_only or config.read_only
        self.refresh_every = refresh
        self.reader = SnapshotReader(store_path, config, clock=clock)
        self.clock = clock
        self._raw: Snapshot | None = None
        #: Skipped-row notes already told (a notice per new set, not per read).
        self._skipped_told: tuple[str, ...] = ()
        #: The faults of the last snapshot (``Fault.ident``); None before the first.
        self._faults_seen: set[str] | None = None
        #: Bells rung (tests and benches read it: a Pilot has no terminal).
        self.rings = 0
        #: job -> its last failure, until it succeeds again (see tui/jobs.py)
        self.failures: dict[str, Failure] = {}
        #: When to read: one read at a time, ticks skipped, requests owed (tui/refresh.py).
        self._refresh = RefreshGate()
        self.paused = False
        self._drifting = False
        self._poll = poll
        self._poller: PollerThread | None = None
        self._notifier: Notifier | None = None
        self._notifying = False
        self._notified_at: float | None = None
        self._listener: ChangeListener | None = None
        #: ``settle_gc`` is still to be considered (the first snapshot not shown yet).
        self._gc_due = True
        #: ``settle_gc`` froze the heap (unfrozen when the app ends).
        self._gc_frozen = False

    def start_live(self) -> None:
        """The first read, the refresh interval, the poller and the drift pass (once mounted)."""
        self.tick()
        self.set_interval(self.refresh_every, self.tick)
        if self.store_path.is_postgres:
            # A team store tells its readers of every commit: refresh at
            # once rather than at the next tick (posted: thread-safe).
            from opstui.store.postgres import ChangeListener

            self._listener = ChangeListener(
                self.store_path, lambda: self.post_message(RefreshWanted())
            ).start()
        if self._poll and self.config.endpoints and not self.read_only:
            self.start_poller()
        if self._poll and not self.read_only:
            # Drift is recomputed in the background; the first pass waits a
            # little so start-up (and its first frame) does not pay for numpy,
            # scipy and scikit-learn.
            self.set_timer(DRIFT_FIRST, self.recompute_drift)
            self.set_interval(DRIFT_EVERY, self.recompute_drift)

    # -- jobs ----------------------------------------------------------------

    def start_job(self, job: str, what: str, work: Callable[[], object]) -> Worker[object]:
        """Run ``work`` on a thread; if it raises, ``job_changed`` says so and the app stays up.

        Textual's default (``exit_on_error``) ends the app on a worker's first
        exception: a numpy error in a drift pass, or ENOMEM spawning a runner,
        would close the console mid-incident.
        """
        return self.run_worker(work, name=what, group=job, thread=True, exit_on_error=False)

    @on(Worker.StateChanged)
    def job_changed(self, event: Worker.StateChanged) -> None:
        """The one place a worker's failure (or its recovery) reaches the operator."""
        worker = event.worker
        if event.state == WorkerState.ERROR:
            self._failed(worker.group, worker.name, worker.error)
        elif event.state == WorkerState.SUCCESS and worker.group == DRIFT and worker.result:
            self._recovered(DRIFT)  # (a pass skipped while paused proves nothing)
        elif event.state == WorkerState.SUCCESS and worker.group == NOTIFY:
            self._recovered(NOTIFY)
        elif event.state == WorkerState.SUCCESS and worker.group == POLLER:
            # Alive is not yet working: the panel is trusted again once the
            # restarted poller has outlived the retry delay.
            self.set_timer(POLLER_RETRY, partial(self._poller_lived, self._poller))
        # (A refresh recovers in _show: the next read may already have started.)

    def _failed(self, job: str, what: str, error: BaseException | None) -> None:
        """The worker-error policy: a notification, the job's panels marked stale, never an exit."""
        line = failure_line(what, error)
        if job == ACTION:
            from opstui.runner.actions import ActionRefused

            refused = isinstance(error, ActionRefused)
            self.notify(line, severity="warning" if refused else "error",
                        timeout=FAILURE_TIMEOUT, markup=False)  # fmt: skip
            self.refresh_now()  # what the action wrote before it failed (a queued run)
            return
        panels = FEEDS.get(job, ())
        if job == REFRESH:
            target = self._refresh.target
            self._refresh.failed()
            problem = getattr(target, "problem", None)
            if problem is not None:
                # A detail screen's read: its own note says stale, not the dashboard.
                panels = ()
                with contextlib.suppress(NoMatches):  # closed while it was read
                    problem(line)
            if self._raw is None:
                # The first read failed: an empty board marked stale beats
                # "reading the store…" for ever.
                self._raw = Snapshot(self.clock(), [], [], [], [], {}, {})
            else:
                # The last data, as of now: the panels say how old their read is.
                self._raw = self._raw._replace(at=self.clock())
        elif job == POLLER:
            line += f" (retried every {POLLER_RETRY:g}s)"
            self.set_timer(POLLER_RETRY, self.restart_poller)
        told = self.failures.get(job)
        self.failures[job] = Failure(line, panels)
        if told is None or told.line != line:
            # Once per failure, not once per tick: a refresh fails every second.
            self.notify(line, severity="error", timeout=FAILURE_TIMEOUT, markup=False)
        self._redraw()

    def _recovered(self, job: str) -> None:
        if self.failures.pop(job, None) is not None:
            self._redraw()

    def _redraw(self) -> None:
        """The dashboard again from the last read, with what failed since marked stale."""
        board = self.dashboard()
        snap = self.snapshot
        if board is not None and snap is not None:
            try:
                board.show(snap)
            except NoMatches:
                pass  # not mounted yet, or closing
            except Exception:
                # Drawing is what failed (a row the board cannot draw): it is
                # told already, and reporting a failure must not end the app.
                pass

    @property
    def snapshot(self) -> Snapshot | None:
        """The last read, with every panel a failing job feeds marked stale (why: its line)."""
        raw = self._raw
        if raw is None or not self.failures:
            return raw
        problems = dict(raw.problems)
        for failure in self.failures.values():
            problems.update(dict.fromkeys(failure.panels, failure.line))
        return raw._replace(problems=problems)

    # -- the poller and the drift pass -------------------------------------------

    def start_poller(self, *, restart: bool = False) -> None:
        self.start_job(POLLER, "endpoint poller", partial(self._start_poller, restart=restart))

    def restart_poller(self) -> None:
        self.start_poller(restart=True)

    def _start_poller(self, *, restart: bool) -> None:
        from opstui.sources.background import PollerThread

        if restart and self.store_path.missing_file():
            # The poller creates a missing store; a store deleted under the
            # console is not brought back empty by it.
            raise OpstuiError(f"endpoint poller stopped: no store at {self.store_path}")
        poller = PollerThread(
            self.store_path,
            list(self.config.endpoints.values()),
            # Posted, not called: quitting joins this thread on the event loop.
            on_exit=lambda error: self.post_message(PollerStopped(poller, error)),
        )
        self._poller = poller
        poller.start()

    @on(PollerStopped)
    def poller_stopped(self, event: PollerStopped) -> None:
        if event.poller is not self._poller:
            return  # stopped on purpose (quitting), or an older one
        self._poller = None
        self._failed(POLLER, "endpoint poller", event.error)

    def _poller_lived(self, poller: PollerThread | None) -> None:
        if poller is not None and poller is self._poller and poller.alive:
            self._recovered(POLLER)

    def recompute_drift(self) -> Worker[object] | None:
        """Start a drift pass unless one is still running (a slow pass is never doubled)."""
        if self._drifting:
            return None
        self._drifting = True
        return self.start_job(DRIFT, "drift check", self._drift_pass)

    def _drift_pass(self) -> bool:
        """Check every model with serving features against its reference; store the checks.

        True if the models were checked (not skipped).
        """
        try:
            return self._check_drift()
        finally:
            self._drifting = False

    def _check_drift(self) -> bool:
        from opstui.drift.check import compute_drift

        snap = self._raw  # (not the property: this is not the UI thread)
        if snap is None or self.paused or not snap.models:
            return False  # (before importing numpy and scikit-learn for nothing)
        failed: list[tuple[str, Exception]] = []
        try:
            with Store(self.store_path, create=False) as store:
                for m in snap.models:
                    try:
                        compute_drift(store, m.name, config=self.config)
                    except OpstuiError:
                        continue  # no reference or no serving data yet: nothing to check
                    except Exception as error:  # one model's numpy error must not skip the rest
                        failed.append((m.name, error))
        except OpstuiError:
            return False  # no store (yet): the dashboard already says so
        self.post_message(DriftChecked())
        if failed:
            name, first = failed[0]
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            raise JobFailed(f"drift check of {name}{more}", first) from first
        return True

    def judge_alerts(self, snap: Snapshot) -> Worker[object] | None:
        """Judge opstui's alerts from a read and send them (``notify/``), at
        most every ``NOTIFY_EVERY`` seconds and one step at a time; a console
        that polls nothing (read-only, ``poll=False``) judges nothing."""
        if not self._poll or self.read_only or self._notifying:
            return None
        now = time.monotonic()
        if self._notified_at is not None and now - self._notified_at < NOTIFY_EVERY:
            return None
        self._notified_at = now
        self._notifying = True
        return self.start_job(NOTIFY, "alerts", partial(self._judge, snap))

    def _judge(self, snap: Snapshot) -> None:
        from opstui.notify.send import Notifier
        from opstui.store.db import local_actor

        try:
            if self._notifier is None:
                self._notifier = Notifier(self.config, by=self.config.actor or local_actor())
            try:
                store = Store(self.store_path, create=False, clock=self.clock)
            except OpstuiError:
                return  # no store (yet): the dashboard already says so
            with store:
                step = self._notifier.step(store, snap)
            if step.error is not None:
                raise step.error  # told once by the worker-error policy
        finally:
            self._notifying = False

    @on(DriftChecked)
    def drift_checked(self) -> None:
        self.refresh_now()  # the models panel shows the new checks

    def on_unmount(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        poller, self._poller = self._poller, None  # its exit is not a failure
        if poller is not None:
            poller.stop()
        self.reader.close()
        if self._gc_frozen:
            gc.unfreeze()

    def settle_gc(self) -> None:
        """Once the first snapshot is on screen: what start-up left alive
        (Textual, every module, the widgets) kept out of the garbage
        collector's passes (``gc.freeze()`` after one last collection).

        Every refresh allocates (rows, cells, the repaint's segments), so at 4
        refreshes a second a full collection comes every 1-3 seconds, and each
        walked all that start-up left. bench/tui.py part 3 on 1M runs, the
        same run: a full pass's CPU, median / max, 116 / 189 ms at 80x24, 18 /
        50 ms frozen; at 200x50 256 / 301 ms, 166 / 241 ms frozen: what
        refreshes keep alive (Textual's render caches: segments, strips) is
        still walked, and the lag's max still misses 60 ms there. A raised
        gen-2 threshold was measured too and left out: it only postpones the
        pass (one at 127 s cost 363 ms of CPU at 200x50)."""
        self._gc_frozen = True
        gc.collect()
        gc.freeze()

    # -- refresh ---------------------------------------------------------------

    @property
    def reading(self) -> bool:
        """A read is in flight (or its result not yet on screen)."""
        return self._refresh.busy

    def tick(self) -> None:
        """The refresh interval: read unless paused or a read is in flight (then skipped)."""
        if not self.paused and self._refresh.tick():
            self._start_read()

    def refresh_now(self) -> None:
        """Read again as soon as possible: now, or once right after the read in flight.

        Never a second read beside one in flight: reads share one connection
        and a screen's incremental state (a log's last line id).
        """
        if not self.paused and self._refresh.request():
            self._start_read()

    @on(RefreshWanted)
    def refresh_wanted(self) -> None:
        self.refresh_now()

    def _start_read(self) -> None:
        screen = self._refresh.target = self.screen
        label = getattr(screen, "label", None)
        what = f"refresh of {label}" if label else "refresh"
        self.start_job(REFRESH, what, partial(self.read_screen, screen, what))

    def read_screen(self, screen: Screen[Any], what: str = "refresh") -> None:
        """The refresh worker: every panel, plus the screen's own rows; posted, not drawn."""
        snap = self.reader.snapshot()
        load = getattr(screen, "load", None)
        extra = load(self.reader) if load is not None else None
        self.post_message(SnapshotRead(screen, snap, extra, what))

    @on(SnapshotRead)
    def snapshot_read(self, event: SnapshotRead) -> None:
        try:
            self._show(event.screen, event.snapshot, event.extra)
        except Exception as error:
            # A row the screen cannot draw: a failed refresh, told like one.
            self._failed(REFRESH, event.what, error)
            return
        if self._refresh.done():
            # Asked for while this read was in flight: the next one starts
            # now, after this one's state (a log's last line id) is applied.
            self.refresh_now()

    def _show(self, screen: Screen[Any], snap: Snapshot, extra: Any) -> None:
        from opstui.tui.screens.base import Detail
        from opstui.tui.screens.dashboard import DashboardScreen

        self._raw = snap
        self.failures.pop(REFRESH, None)  # this read worked
        self._tell_skipped(snap.skipped)
        shown = self.snapshot
        assert shown is not None
        self._ring(shown)
        # As shown: a panel a failed job left stale is not judged (notify/judge.py).
        self.judge_alerts(shown)
        try:
            for s in self.screen_stack:
                if isinstance(s, DashboardScreen):
                    s.show(shown)
            if isinstance(self.screen, Detail):
                self.screen.heading(shown)
            if screen is self.screen and isinstance(screen, Detail) and extra is not None:
                screen.problem(None)  # a failed read's note goes; the data may set its own
                screen.show_extra(extra, shown)
        except NoMatches:
            # A read finished as its screen was being closed (or the app
            # quitting): nothing left to draw it on.
            pass
        if self._gc_due:
            self._gc_due = False
            if self.gc_settle if self.gc_settle is not None else not self.is_headless:
                # Not at once: the collection holds the GIL, and the first
                # frame with data is still being written by the driver's thread.
                self.set_timer(GC_SETTLE_AFTER, self.settle_gc)

    def _ring(self, snap: Snapshot) -> None:
        """A new fault rings the terminal's bell (``[tui] bell``) and may raise
        a desktop notification through it (``[tui] desktop``: OSC 9 or 777)."""
        from opstui.views.urgency import faults, new_faults

        now = faults(snap)
        fresh = new_faults(self._faults_seen, now, snap.acknowledged.keys())
        self._faults_seen = {f.ident for f in now}
        if not fresh:
            return
        tui = self.config.tui
        if tui.bell:
            self.rings += 1
            self.bell()
        more = f" (+{len(fresh) - 1} more)" if len(fresh) > 1 else ""
        sequence = desktop_notice(tui.desktop, f"{fresh[0].what}{more}")
        if sequence and not self.is_headless and self._driver is not None:
            self._driver.write(sequence)

    def _tell_skipped(self, notes: tuple[str, ...]) -> None:
        """Rows the store holds but the reads skipped: told once per new set, counted in the
        status line while they remain (they are state, repeated by every read)."""
        if notes and notes != self._skipped_told:
            more = ""
            if len(notes) > 1:
                more = f" (and {len(notes) - 1} more: opstui status names them)"
            self.notify(
                safe(f"{notes[0]}{more}"), severity="warning", timeout=FAILURE_TIMEOUT, markup=False
            )
        self._skipped_told = notes

    def dashboard(self) -> DashboardScreen | None:
        from opstui.tui.screens.dashboard import DashboardScreen

        for s in self.screen_stack:
            if isinstance(s, DashboardScreen):
                return s
        return None
