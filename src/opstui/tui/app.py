"""The console: a Textual app over the store, the poller and the action path.

Nothing here touches SQLite, HTTP or scikit-learn on the event loop: the
active screen's data is read by a thread worker on the refresh interval
(one at a time: a slow read skips ticks rather than piling up), the poller
runs on a thread of its own, and actions plan and start in workers too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.worker import Worker

from opstui.config import Config
from opstui.console import Console, Snapshot
from opstui.errors import OpstuiError
from opstui.keymap import KEYS, shown
from opstui.store import Store, local_actor

#: Seconds before the first background drift check, and between checks.
DRIFT_FIRST = 5.0
DRIFT_EVERY = 60.0


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
        self.reader = Console(store_path, config, clock=clock)
        self.clock = clock
        self.snapshot: Snapshot | None = None
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

    @work(thread=True, group="poller")
    def start_poller(self) -> None:
        from opstui.sources.background import PollerThread

        poller = PollerThread(self.store_path, list(self.config.endpoints.values()))
        poller.start()
        self._poller = poller

    def recompute_drift(self) -> Worker[None] | None:
        """Start a drift pass unless one is still running (a slow pass is never doubled)."""
        if self._drifting:
            return None
        self._drifting = True
        return self._drift_pass()

    @work(thread=True, group="drift")
    def _drift_pass(self) -> None:
        """Check every model with serving features against its reference; store the checks."""
        try:
            self._check_drift()
        finally:
            self._drifting = False

    def _check_drift(self) -> None:
        from opstui.drift_job import compute_drift

        snap = self.snapshot
        if snap is None or self.paused or not snap.models:
            return  # (before importing numpy and scikit-learn for nothing)
        try:
            with Store(self.store_path, create=False) as store:
                for m in snap.models:
                    try:
                        compute_drift(store, m.name, config=self.config)
                    except OpstuiError:
                        continue  # no reference or no serving data yet: nothing to check
        except OpstuiError:
            return  # no store (yet): the dashboard already says so
        self.call_from_thread(self.refresh_now)

    def on_unmount(self) -> None:
        if self._poller is not None:
            self._poller.stop()
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
        self.read_screen(self.screen)

    @work(thread=True, group="refresh")
    def read_screen(self, screen: Screen[Any]) -> None:
        try:
            snap = self.reader.snapshot()
            load = getattr(screen, "load", None)
            extra = load(self.reader) if load is not None else None
        except Exception as exc:  # a bug in a read must not end the session
            self.call_from_thread(self.notify, f"refresh failed: {exc}", severity="error")
            self._reading = False
            self._again = False
            return
        self.call_from_thread(self._show, screen, snap, extra)

    def _show(self, screen: Screen[Any], snap: Snapshot, extra: Any) -> None:
        from opstui.tui.dashboard import DashboardScreen

        self._reading = False
        self.snapshot = snap
        try:
            for s in self.screen_stack:
                if isinstance(s, DashboardScreen):
                    s.show(snap)
            if screen is self.screen and extra is not None:
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
        self.notify(f"nothing called {key.partition(':')[2]!r}", severity="warning")

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
        self.plan_action(action, key)

    @work(thread=True, group="action")
    def plan_action(self, action: str, key: str) -> None:
        from opstui.runner.actions import refusal
        from opstui.tui.plans import make_plan

        try:
            with Store(self.store_path, create=False) as store:
                plan = make_plan(self.config, store, action, key)
        except OpstuiError as exc:
            self.call_from_thread(self.notify, exc.message, severity="error", timeout=8)
            return
        reason = refusal(self.config, plan, read_only=self.read_only)
        self.call_from_thread(self._confirm, plan, reason)

    def _confirm(self, plan: Any, reason: str | None) -> None:
        from opstui.tui.modals import ConfirmScreen

        def decided(yes: bool | None) -> None:
            if reason is None:
                self.perform_action(plan, bool(yes))

        self.push_screen(ConfirmScreen(plan, reason), decided)

    @work(thread=True, group="action")
    def perform_action(self, plan: Any, confirmed: bool) -> None:
        from opstui.runner.actions import ActionRefused, perform

        declined = None if confirmed else "declined in the console"
        try:
            with Store(self.store_path, create=False) as store:
                started = perform(
                    store,
                    self.config,
                    plan,
                    actor=self.actor,
                    read_only=self.read_only,
                    confirm=lambda _plan: declined,
                    detach=True,
                )
        except ActionRefused as exc:
            self.call_from_thread(self.notify, exc.message, severity="warning")
            return
        except OpstuiError as exc:
            self.call_from_thread(self.notify, exc.message, severity="error", timeout=8)
            return
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


def jump_targets(snap: Snapshot) -> list[tuple[str, str]]:
    """(key, label) of everything the console can open by name."""
    out = [(f"pipeline:{p.name}", f"pipeline {p.name}") for p in snap.pipelines]
    out += [(f"model:{m.name}", f"model {m.name}") for m in snap.models]
    out += [(f"endpoint:{e.name}", f"endpoint {e.name}") for e in snap.endpoints]
    return out
