"""The console: a Textual app over the store, the poller and the action path.

Nothing here touches SQLite, HTTP or scikit-learn on the event loop: the
active screen's data is read by a thread worker on the refresh interval
(one at a time: a slow read skips ticks rather than piling up), the poller
runs on a thread of its own, and actions plan and start in workers too.

No worker's exception ends the session (an operator mid-incident keeps the
console): every worker starts through ``start_job``, and one handler turns
a failure into a notification and marks the panels the job feeds stale
(see ``tui/jobs.py``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from opstui.config import Config
from opstui.config.keys import KEYS, shown
from opstui.errors import OpstuiError
from opstui.store import Store, local_actor
from opstui.tui.jobs import ACTION, DRIFT, FEEDS, POLLER, REFRESH, Failure, JobFailed, failure_line
from opstui.tui.render import safe
from opstui.views.snapshot import Snapshot, SnapshotReader

#: Seconds before the first background drift check, and between checks.
DRIFT_FIRST = 5.0
DRIFT_EVERY = 60.0
#: Seconds before a stopped endpoint poller is started again, and how long a
#: restarted one must live before its panel is trusted again.
POLLER_RETRY = 30.0
#: Seconds a failure's notification stays up (longer than Textual's 5: it is
#: read mid-incident, and the panel keeps saying it anyway).
FAILURE_TIMEOUT = 10.0


def _bindings() -> list[BindingType]:
    return [
        Binding(key, ident, label, show=ident != "open", id=f"opstui.{ident}")
        for ident, key, label, _ in KEYS
    ]


class OpstuiApp(App[None]):
    TITLE = "opstui"
    BINDINGS: ClassVar[list[BindingType]] = [
        *_bindings(),
        Binding("escape", "back", "Back", id="opstui.back", show=False),
        # Operators press ctrl+c to leave a terminal program; Textual's default
        # only tells them to press ctrl+q.
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="opstui.interrupt"),
    ]
    CSS = """
    Screen { layers: base overlay; }
    Footer { height: 1; }
    """

    class PollerStopped(Message):
        """The endpoint poller's thread ended (posted from that thread: it is not a worker)."""

        def __init__(self, poller: Any, error: BaseException | None) -> None:
            super().__init__()
            self.poller = poller
            self.error = error

    def __init__(
        self,
        store_path: Path,
        config: Config,
        *,
        read_only: bool = False,
        refresh: float = 1.0,
        theme: str | None = None,
        keymap: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        poll: bool = True,
    ) -> None:
        super().__init__()
        self.store_path = store_path
        self.config = config
        self.read_only = read_only or config.read_only
        self.refresh_every = refresh
        self.reader = SnapshotReader(store_path, config, clock=clock)
        self.clock = clock
        self._raw: Snapshot | None = None
        #: Skipped-row notes already told (a notice per new set, not per read).
        self._skipped_told: tuple[str, ...] = ()
        #: job -> its last failure, until it succeeds again (see tui/jobs.py)
        self.failures: dict[str, Failure] = {}
        self._read_target: Screen[Any] | None = None
        self.paused = False
        self._reading = False
        self._again = False
        self._drifting = False
        self._poll = poll
        self._poller: Any = None
        self._theme_name = theme
        self._keymap = {f"opstui.{k}": v for k, v in (keymap or {}).items()}
        self.store_label = _short(store_path)
        self.actor = config.actor or local_actor()

    # -- life ----------------------------------------------------------------

    def on_mount(self) -> None:
        from opstui.tui.dashboard import DashboardScreen
        from opstui.tui.themes import apply_theme

        apply_theme(self, self._theme_name)
        if self._keymap:
            self.set_keymap(self._keymap)
        self.push_screen(DashboardScreen())
        self.tick()
        self.set_interval(self.refresh_every, self.tick)
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
        elif event.state == WorkerState.SUCCESS and worker.group == POLLER:
            # Alive is not yet working: the panel is trusted again once the
            # restarted poller has outlived the retry delay.
            self.set_timer(POLLER_RETRY, partial(self._poller_lived, self._poller))
        # (A refresh recovers in _show: the next read may already have started.)

    def _failed(self, job: str, what: str, error: BaseException | None) -> None:
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
            self._reading = False
            self._again = False
            problem = getattr(self._read_target, "problem", None)
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

    def start_poller(self, *, restart: bool = False) -> None:
        self.start_job(POLLER, "endpoint poller", partial(self._start_poller, restart=restart))

    def restart_poller(self) -> None:
        self.start_poller(restart=True)

    def _start_poller(self, *, restart: bool) -> None:
        from opstui.sources.background import PollerThread

        if restart and not self.store_path.exists():
            # The poller creates a missing store; a store deleted under the
            # console is not brought back empty by it.
            raise OpstuiError(f"endpoint poller stopped: no store at {self.store_path}")
        poller = PollerThread(
            self.store_path,
            list(self.config.endpoints.values()),
            # Posted, not called: quitting joins this thread on the event loop.
            on_exit=lambda error: self.post_message(self.PollerStopped(poller, error)),
        )
        self._poller = poller
        poller.start()

    @on(PollerStopped)
    def poller_stopped(self, event: PollerStopped) -> None:
        if event.poller is not self._poller:
            return  # stopped on purpose (quitting), or an older one
        self._poller = None
        self._failed(POLLER, "endpoint poller", event.error)

    def _poller_lived(self, poller: Any) -> None:
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
        self.call_from_thread(self.refresh_now)
        if failed:
            name, first = failed[0]
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            raise JobFailed(f"drift check of {name}{more}", first) from first
        return True

    def on_unmount(self) -> None:
        poller, self._poller = self._poller, None  # its exit is not a failure
        if poller is not None:
            poller.stop()
        self.reader.close()

    def empty_hint(self, snap: Snapshot) -> str:
        if snap.problems:
            problem = next(iter(snap.problems.values()))
            return f"No data: {problem}"
        return "The store is empty. Try: opstui import sample_runs/ · opstui run NAME"

    # -- refresh ---------------------------------------------------------------

    def tick(self) -> None:
        if self.paused or self._reading:
            return
        self._reading = True
        screen = self._read_target = self.screen
        label = getattr(screen, "label", None)
        what = f"refresh of {label}" if label else "refresh"
        self.start_job(REFRESH, what, partial(self.read_screen, screen))

    def read_screen(self, screen: Screen[Any]) -> None:
        snap = self.reader.snapshot()
        load = getattr(screen, "load", None)
        extra = load(self.reader) if load is not None else None
        self.call_from_thread(self._show, screen, snap, extra)

    def _show(self, screen: Screen[Any], snap: Snapshot, extra: Any) -> None:
        from opstui.tui.dashboard import DashboardScreen

        self._reading = False
        self._raw = snap
        self.failures.pop(REFRESH, None)  # this read worked
        self._tell_skipped(snap.skipped)
        shown = self.snapshot
        assert shown is not None
        try:
            for s in self.screen_stack:
                if isinstance(s, DashboardScreen):
                    s.show(shown)
            if screen is self.screen and extra is not None:
                problem = getattr(screen, "problem", None)
                if problem is not None:
                    problem(None)  # a failed read's note goes; the data may set its own
                screen.show_extra(extra)  # type: ignore[attr-defined]
        except NoMatches:
            # A read finished as its screen was being closed (or the app
            # quitting): nothing left to draw it on.
            pass
        if self._again:
            # Asked for while this read was in flight: the next one starts
            # now, after this one's state (a log's last line id) is applied.
            self._again = False
            self.tick()

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

    def refresh_now(self) -> None:
        """Read again as soon as possible: now, or right after the read in flight.

        Never a second read beside one in flight: reads share one connection
        and a screen's incremental state (a log's last line id).
        """
        if self._reading:
            self._again = True
        else:
            self.tick()

    # -- navigation ----------------------------------------------------------

    def dashboard(self) -> Any:
        from opstui.tui.dashboard import DashboardScreen

        for s in self.screen_stack:
            if isinstance(s, DashboardScreen):
                return s
        return None

    def selected(self) -> str | None:
        select = getattr(self.screen, "selected", None)
        result = select() if select is not None else None
        return result if isinstance(result, str) else None

    def action_open(self) -> None:
        key = self.selected()
        if key is None:
            return
        self.open_key(key)

    def open_key(self, key: str) -> None:
        from opstui.tui.detail import EndpointScreen, ModelScreen, PipelineScreen

        kind, _, name = key.partition(":")
        screens = {"pipeline": PipelineScreen, "model": ModelScreen, "endpoint": EndpointScreen}
        make = screens.get(kind)
        if make is not None:
            self.push_screen(make(name))
            self.refresh_now()

    async def action_back(self) -> None:
        clear = getattr(self.screen, "clear_filter", None)
        if clear is not None and clear():
            return
        if len(self.screen_stack) > 2:
            await self.pop_screen()

    def action_audit(self) -> None:
        from opstui.tui.detail import AuditScreen

        self.push_screen(AuditScreen())
        self.refresh_now()

    def action_filter(self) -> None:
        open_filter = getattr(self.screen, "open_filter", None)
        if open_filter is not None:
            open_filter()

    def action_jump(self) -> None:
        from opstui.tui.modals import JumpScreen

        if self.snapshot is None:
            return
        self.push_screen(JumpScreen(jump_targets(self.snapshot)), self._jumped)

    def _jumped(self, key: str | None) -> None:
        if not key:
            return
        while len(self.screen_stack) > 2:
            self.pop_screen()
        board = self.dashboard()
        if board is not None and board.jump(key):
            return
        self.notify(
            safe(f"nothing called {key.partition(':')[2]!r}"), severity="warning", markup=False
        )

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.notify("refresh paused (p resumes)" if self.paused else "refresh resumed")
        board = self.dashboard()
        if board is not None and self.snapshot is not None:
            board.show(self.snapshot)
        if not self.paused:
            self.refresh_now()

    def action_help(self) -> None:
        from opstui.tui.modals import HelpScreen

        self.push_screen(HelpScreen(self.help_rows()))

    def help_rows(self) -> list[tuple[str, str, str]]:
        """(key, id, description) of every binding, as remapped."""
        keymap = self._keymap
        rows = [(shown(keymap.get(f"opstui.{i}", key)), i, desc) for i, key, _, desc in KEYS]
        rows += [
            ("escape", "back", "Back / close / clear the filter"),
            ("tab", "-", "Next panel"),
            ("ctrl+p", "-", "Command palette: every action by name"),
            ("f", "-", "Log: follow new lines (pipeline screen)"),
            ("n / N", "-", "Log: next / previous search match"),
        ]
        return rows

    # -- actions ---------------------------------------------------------------

    def action_retry(self) -> None:
        self.start_action("retry", self.selected())

    def action_rollback(self) -> None:
        self.start_action("rollback", self.selected())

    def action_retrain(self) -> None:
        self.start_action("retrain", self.selected())

    def start_action(self, action: str, key: str | None) -> None:
        if key is None:
            self.notify(f"select a row to {action}", severity="warning")
            return
        what = f"{action} of {key.partition(':')[2]}"
        self.start_job(ACTION, what, partial(self.plan_action, action, key))

    def plan_action(self, action: str, key: str) -> None:
        from opstui.runner.actions import ActionRefused, perform, propose
        from opstui.tui.plans import make_plan

        with Store(self.store_path, create=False) as store:
            plan = make_plan(self.config, store, action, key)
            proposal = propose(self.config, plan, read_only=self.read_only)
            self.call_from_thread(self._confirm, proposal)
            if proposal.refused is None:
                return
            # Refused here (read-only): the same path as the CLI's writes the
            # same audit row, after the plan is on screen (if the write fails,
            # the operator still sees why nothing ran).
            try:
                perform(store, self.config, proposal, actor=self.actor, declined=None, detach=True)
            except ActionRefused:
                return  # audited
            except Exception as exc:
                raise JobFailed(f"audit row of the refused {what_of(plan)}", exc) from exc

    def _confirm(self, proposal: Any) -> None:
        from opstui.tui.modals import ConfirmScreen

        def decided(yes: bool | None) -> None:
            if proposal.refused is None:
                job = partial(self.perform_action, proposal, bool(yes))
                self.start_job(ACTION, what_of(proposal.plan), job)

        self.push_screen(ConfirmScreen(proposal.plan, proposal.refused), decided)

    def perform_action(self, proposal: Any, confirmed: bool) -> None:
        """Audit and start the shown ``proposal`` (or audit its decline); a refusal raises."""
        from opstui.runner.actions import perform

        plan = proposal.plan
        declined = None if confirmed else "declined in the console"
        with Store(self.store_path, create=False) as store:
            started = perform(
                store, self.config, proposal, actor=self.actor, declined=declined, detach=True
            )
        if started.created:
            text = f"{plan.action} {plan.target}: run {started.run_id} started"
        else:
            text = f"{plan.action} {plan.target}: joined run {started.run_id}, already doing this"
        self.call_from_thread(self.notify, text)
        self.call_from_thread(self.refresh_now)

    # -- command palette ---------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        snap = self.snapshot
        if snap is None:
            return
        for key, label in jump_targets(snap):
            yield SystemCommand(f"Open {label}", f"Open the {key.partition(':')[0]} screen",
                                lambda key=key: self.open_key(key))  # fmt: skip
        for p in snap.pipelines:
            key = f"pipeline:{p.name}"
            yield SystemCommand(f"Retry {p.name}", "Retry its failed run",
                                lambda key=key: self.start_action("retry", key))  # fmt: skip
            yield SystemCommand(f"Roll back {p.name}", "Previous good version",
                                lambda key=key: self.start_action("rollback", key))  # fmt: skip
        for m in snap.models:
            key = f"model:{m.name}"
            yield SystemCommand(f"Retrain {m.name}", "Train, gate, promote if better",
                                lambda key=key: self.start_action("retrain", key))  # fmt: skip
            yield SystemCommand(f"Roll back model {m.name}", "Previous good version",
                                lambda key=key: self.start_action("rollback", key))  # fmt: skip
        yield SystemCommand("Audit trail", "Every operator action", self.action_audit)
        yield SystemCommand("Filter rows", "Show rows whose name matches", self.action_filter)
        yield SystemCommand("Jump to…", "A pipeline, model or endpoint by name", self.action_jump)
        yield SystemCommand("Key bindings", "Every key and its id", self.action_help)
        yield SystemCommand("Pause / resume refresh", "Freeze the screen", self.action_pause)


def _short(path: Path) -> str:
    """The store's path as short as it reads unambiguously: relative to here if below it."""
    try:
        label = str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        parts = path.resolve().parts
        label = str(path) if len(parts) <= 3 else f"…/{parts[-2]}/{parts[-1]}"
    return label if len(label) <= 32 else f"…{label[-31:]}"


def what_of(plan: Any) -> str:
    """An action in a failure's words: ``retry of fraud-model``."""
    return f"{plan.action} of {plan.target}"


def jump_targets(snap: Snapshot) -> list[tuple[str, str]]:
    """(key, label) of everything the console can open by name."""
    out = [(f"pipeline:{p.name}", f"pipeline {p.name}") for p in snap.pipelines]
    out += [(f"model:{m.name}", f"model {m.name}") for m in snap.models]
    out += [(f"endpoint:{e.name}", f"endpoint {e.name}") for e in snap.endpoints]
    return out
