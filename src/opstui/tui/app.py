"""The console's operator side: keys, screens, the command palette and actions.

``LiveApp`` (``tui/live.py``) reads the store, runs the poller and the drift
pass and owns the worker-error policy; this class adds what an operator
does: the key bindings (``config/keys.py``, remapped by ``[tui.keys]``),
opening screens (each built with what it needs: the clock, read-only), and
the action flow (``tui/actions.py``: plan on a worker, confirm here, perform
on a worker), whose results arrive as messages handled with ``@on``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import SystemCommand
from textual.binding import Binding, BindingType
from textual.events import DescendantFocus
from textual.notifications import Notification, Notify
from textual.screen import Screen
from textual.widgets import DataTable
from textual.worker import Worker, WorkerState

from opstui.config import Config
from opstui.config.keys import KEYS
from opstui.store import local_actor
from opstui.store.location import StoreLocation
from opstui.tui import actions
from opstui.tui.commands import help_rows, jump_targets, palette
from opstui.tui.header import Where
from opstui.tui.jobs import ACTION, POLICY
from opstui.tui.live import FAILURE_TIMEOUT, LiveApp
from opstui.tui.messages import (
    Acknowledged,
    ActionStarted,
    AnswerRequest,
    OpenRow,
    PausePolicies,
    PlanReady,
    PoliciesDecided,
)
from opstui.tui.notices import HOLD, ending, reading_low
from opstui.tui.plans import ACTIONS, unavailable
from opstui.tui.render import safe

if TYPE_CHECKING:
    from textual.actions import ActionParseResult
    from textual.dom import DOMNode

    from opstui.policies.evaluate import Evaluator
    from opstui.tui.screens.base import Detail
    from opstui.views.snapshot import Snapshot
    from opstui.views.urgency import Fault


FOOTER_HIDDEN = frozenset({"open", "acknowledge", "timeline", "policies"})
#: Seconds between two evaluations of the policies (a read and, rarely, an action).
POLICY_EVERY = 15.0
#: The decisions the console tells as they are made (the rest: the Policies screen).
TOLD = frozenset({"acted", "awaiting_approval", "refused", "would_act"})


def _bindings() -> list[BindingType]:
    return [
        # The footer keeps to what fits 80 columns; ? lists every binding.
        Binding(key, ident, label, show=ident not in FOOTER_HIDDEN, id=f"opstui.{ident}")
        for ident, key, label, _ in KEYS
    ]


class OpstuiApp(LiveApp):
    """opstui's console: the live side (``LiveApp``) with the operator's keys, screens, actions."""

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
    /* Notices take two rows, not four, and half the width at most. */
    Toast { padding: 0 1; margin-top: 0; max-width: 50%; }
    Screen.notices-top ToastRack { dock: top; align: right top; margin-bottom: 0; margin-top: 1; }
    """

    def __init__(
        self,
        store_path: str | Path,
        config: Config,
        *,
        read_only: bool = False,
        refresh: float = 1.0,
        theme: str | None = None,
        keymap: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        poll: bool = True,
    ) -> None:
        super().__init__(
            store_path, config, read_only=read_only, refresh=refresh, clock=clock, poll=poll
        )
        self._theme_name = theme
        self._keymap = {f"opstui.{k}": v for k, v in (keymap or {}).items()}
        self.store_label = _short(self.store_path)
        #: What every screen's top line ends with: the store, this host, read-only.
        self.where = Where.here(self.store_label, read_only)
        self.actor = config.actor or local_actor()
        #: Notices of runs started here, by run id, until the run ends: (notice, what).
        self._announced: dict[int, tuple[Notification, str]] = {}
        #: Which of ACTIONS applied to the selected row at the last refresh.
        self._offered: tuple[bool, ...] = ()
        #: The policies' evaluator (its M-of-N windows live here), when it last ran.
        self._evaluator: Evaluator | None = None
        self._evaluated_at: float | None = None
        self._evaluating = False
        # Read here, before the event loop runs (a file read is IO).
        from opstui.tui.seen import last_seen

        where = self.store_path
        self._seen_key = str(where.path.absolute()) if where.path is not None else str(where)
        self._seen_at = last_seen(self._seen_key)

    # -- life ----------------------------------------------------------------

    def remember_seen(self) -> None:
        """Keep when this console last showed the store (call after ``run``,
        off the event loop): the next one's headline says what changed since."""
        from opstui.tui.seen import remember

        snap = self._raw
        if snap is not None:
            remember(self._seen_key, snap.at)

    def on_mount(self) -> None:
        # Imported here, not at the top: ``import opstui.tui.app`` stays cheap
        # for the CLI, which imports it to build the app.
        from opstui.tui.screens.dashboard import DashboardScreen
        from opstui.tui.themes import apply_theme

        apply_theme(self, self._theme_name)
        if self._keymap:
            self.set_keymap(self._keymap)
        self.push_screen(DashboardScreen(where=self.where, seen_at=self._seen_at))
        self.start_live()

    # -- navigation ----------------------------------------------------------

    def selected(self) -> str | None:
        select = getattr(self.screen, "selected", None)
        result = select() if select is not None else None
        return result if isinstance(result, str) else None

    def action_open(self) -> None:
        key = self.selected()
        if key is None:
            return
        self.open_key(key)

    @on(OpenRow)
    def open_row(self, event: OpenRow) -> None:
        self.open_key(event.key)

    def open_key(self, key: str) -> None:
        from opstui.tui.screens.endpoint import EndpointScreen
        from opstui.tui.screens.model import ModelScreen
        from opstui.tui.screens.pipeline import PipelineScreen

        kind, _, name = key.partition(":")
        screens = {"pipeline": PipelineScreen, "model": ModelScreen, "endpoint": EndpointScreen}
        make = screens.get(kind)
        if make is not None:
            self._push_detail(make(name, clock=self.clock))
            self.refresh_now()

    def _push_detail(self, screen: Detail) -> None:
        screen.where = self.where
        if self.snapshot is not None:
            screen.heading(self.snapshot)
        self.push_screen(screen)

    async def action_back(self) -> None:
        clear = getattr(self.screen, "clear_filter", None)
        if clear is not None and clear():
            return
        if len(self.screen_stack) > 2:
            await self.pop_screen()

    def action_audit(self) -> None:
        from opstui.tui.screens.audit import AuditScreen

        self._push_detail(AuditScreen(clock=self.clock))
        self.refresh_now()

    def action_timeline(self) -> None:
        from opstui.tui.screens.timeline import TimelineScreen

        self._push_detail(TimelineScreen(clock=self.clock))
        self.refresh_now()

    def action_policies(self) -> None:
        from opstui.policies.evaluate import holder_name
        from opstui.tui.screens.policies import PoliciesScreen

        # Who evaluates is said on the screen.
        why_not = self.why_not_evaluating
        holder = None if why_not else (self._evaluator.holder if self._evaluator else holder_name())
        policies = list(self.config.policies.values())
        self._push_detail(
            PoliciesScreen(policies, clock=self.clock, holder=holder, why_not=why_not)
        )
        self.refresh_now()

    # -- policies (policies/: the evaluator, answers, the pause) ------------------

    @property
    def why_not_evaluating(self) -> str:
        """Why this console leaves the policies to another evaluator (``opstui
        policies run``), or "" if it evaluates them: it must poll and may write."""
        return "read-only" if self.read_only else "" if self._poll else "polls nothing"

    def evaluate_policies(self, snap: Snapshot) -> None:
        """One evaluation of the policies every ``POLICY_EVERY`` seconds, on a
        worker, if this console evaluates them (``why_not_evaluating``)."""
        if not self.config.policies or self.why_not_evaluating or self._evaluating:
            return
        now = time.monotonic()
        if self._evaluated_at is not None and now - self._evaluated_at < POLICY_EVERY:
            return
        self._evaluated_at, self._evaluating = now, True
        self.start_job(POLICY, "policies", partial(self._evaluate, snap))

    def _evaluate(self, snap: Snapshot) -> None:
        from opstui.policies.evaluate import Evaluator
        from opstui.policies.loop import line_of
        from opstui.store import Store

        try:
            if self._evaluator is None:
                self._evaluator = Evaluator(self.config, every=POLICY_EVERY)
            with Store(self.store_path, create=False, clock=self.clock) as store:
                step = self._evaluator.step(store, snap)
            told = [(d.verdict, line_of(d)) for d in step.decisions if d.verdict in TOLD]
            if told:
                self.post_message(PoliciesDecided(told))
        finally:
            self._evaluating = False

    @on(PoliciesDecided)
    def policies_decided(self, event: PoliciesDecided) -> None:
        for verdict, line in event.lines:
            waits = verdict == "awaiting_approval"
            self.notify(line + (" (P: Policies)" if waits else ""), markup=False,
                        severity="warning" if verdict in ("awaiting_approval", "refused")
                        else "information", timeout=FAILURE_TIMEOUT if waits else None)  # fmt: skip
        self.refresh_now()

    @on(Worker.StateChanged)
    def policy_job(self, event: Worker.StateChanged) -> None:
        if event.worker.group == POLICY and event.state == WorkerState.SUCCESS:
            self._recovered(POLICY)

    @on(AnswerRequest)
    def answer_request(self, event: AnswerRequest) -> None:
        if self.read_only:
            self.notify("read-only session: answering a request is a write", severity="warning")
            return
        verb = "approval" if event.approve else "rejection"
        work = partial(self._answer, event.request_id, event.approve)
        self.start_job(ACTION, f"{verb} of request {event.request_id}", work)

    def _answer(self, request_id: int, approve: bool) -> None:
        from opstui.policies.evaluate import answer
        from opstui.policies.loop import line_of
        from opstui.store import Store

        with Store(self.store_path, create=False) as store:
            done = answer(store, self.config, request_id, approve=approve, by=self.actor)
        self._told(line_of(done))

    @on(PausePolicies)
    def pause_policies(self, event: PausePolicies) -> None:
        if self.read_only:
            self.notify("read-only session: pausing policies is a write", severity="warning")
            return
        what = "pause" if event.pause else "resume"
        self.start_job(ACTION, f"{what} of the policies", partial(self._pause, event.pause))

    def _pause(self, pause: bool) -> None:
        from opstui.store import Store
        from opstui.store import policies as sp

        verdict = "paused" if pause else "resumed"
        why = f"{verdict} by {self.actor} in the console"
        with Store(self.store_path, create=False) as store:
            if (sp.paused(store) is not None) != pause:
                sp.record(store, {"policy": sp.ALL, "target": sp.ALL, "verdict": verdict,
                                  "why": why}, by=self.actor)  # fmt: skip
        self._told(f"policies {why}")

    def action_filter(self) -> None:
        open_filter = getattr(self.screen, "open_filter", None)
        if open_filter is not None:
            open_filter()

    def action_jump(self) -> None:
        from opstui.tui.screens.modals import JumpScreen

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
        if board is not None:
            board.pause(self.paused)
        if not self.paused:
            self.refresh_now()

    def action_help(self) -> None:
        from opstui.tui.screens.modals import HelpScreen

        self.push_screen(HelpScreen(help_rows(self._keymap)))

    # -- actions (the flow: tui/actions.py) -------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Retry, roll back and retrain only where they apply to the selected
        row: elsewhere the footer dims the key (None) and pressing it says why."""
        if action in ACTIONS and self.why_not(action) is not None:
            return None
        return True

    def why_not(self, action: str) -> str | None:
        if not self.screen_stack:
            return None  # starting or closing: nothing selected, nothing to judge
        return unavailable(self.config, self.snapshot, action, self.selected())

    async def run_action(
        self,
        action: str | ActionParseResult,
        default_namespace: DOMNode | None = None,
        namespaces: Mapping[str, DOMNode] | None = None,
    ) -> bool:
        done = await super().run_action(action, default_namespace, namespaces)
        if not done and action in ACTIONS:
            # A dimmed key pressed: Textual drops it silently; the operator hears why.
            reason = self.why_not(str(action))
            if reason is not None:
                self.notify(safe(reason), severity="warning", markup=False)
        return done

    @on(DataTable.RowHighlighted)
    def row_moved(self) -> None:
        # Another row: another set of actions that apply (the footer's dimmed
        # keys). Only when that set changed: the footer restyles every key it
        # draws, ~15 ms, and a refresh that reorders rows moves the cursor.
        if self.screen_stack:  # (not while the app closes)
            self._offer()

    def action_retry(self) -> None:
        self.start_action("retry", self.selected())

    def action_rollback(self) -> None:
        self.start_action("rollback", self.selected())

    def action_retrain(self) -> None:
        self.start_action("retrain", self.selected())

    def action_acknowledge(self) -> None:
        """Acknowledge the fault on the selected row (again: undo it), in the
        store, audited: every console sees it, its bell stops, it sorts after."""
        from opstui.tui.screens.modals import AckScreen
        from opstui.views.urgency import faults

        key, snap = self.selected(), self.snapshot
        if key is None or snap is None:
            self.notify("select a row to acknowledge", severity="warning")
            return
        fault = next((f for f in faults(snap) if f.key == key), None)
        if fault is None:
            self.notify(safe(f"nothing to acknowledge on {key.partition(':')[2]}: no fault"))
            return
        if self.read_only:
            self.notify("read-only session: an acknowledgement is a write", severity="warning")
            return
        if fault.ident in snap.acknowledged:
            self.start_job(ACTION, f"unacknowledge of {key}", partial(self._unack, fault))
            return

        def decided(answer: tuple[str, float] | None) -> None:
            if answer is not None:
                note, seconds = answer
                work = partial(self._ack, fault, note, seconds)
                self.start_job(ACTION, f"acknowledgement of {key}", work)

        self.push_screen(AckScreen(fault.what or key), decided)

    def _ack(self, fault: Fault, note: str, seconds: float) -> None:
        from opstui.store import Store
        from opstui.store.acks import acknowledge

        with Store(self.store_path, create=False) as store:
            acknowledge(store, fault=fault.ident, target=fault.key, actor=self.actor,
                        note=note or None, seconds=seconds)  # fmt: skip
        self._told(f"acknowledged {fault.what} for {seconds / 60:g}m")

    def _unack(self, fault: Fault) -> None:
        from opstui.store import Store
        from opstui.store.acks import unacknowledge

        with Store(self.store_path, create=False) as store:
            unacknowledge(store, fault=fault.ident, target=fault.key, actor=self.actor)
        self._told(f"no longer acknowledged: {fault.what}")

    def _told(self, line: str) -> None:
        self.post_message(Acknowledged(line))  # from the worker's thread

    @on(Acknowledged)
    def acknowledged(self, event: Acknowledged) -> None:
        self.notify(safe(event.line), markup=False)
        self.refresh_now()

    def start_action(self, action: str, key: str | None) -> None:
        if key is None:
            self.notify(f"select a row to {action}", severity="warning")
            return
        work = partial(
            actions.plan_action,
            self.post_message,
            self.store_path,
            self.config,
            read_only=self.read_only,
            actor=self.actor,
            action=action,
            key=key,
        )
        self.start_job(ACTION, f"{action} of {key.partition(':')[2]}", work)

    @on(PlanReady)
    def plan_ready(self, event: PlanReady) -> None:
        """Show the plan; the operator's answer (or a decline) is performed on a worker."""
        from opstui.tui.screens.modals import ConfirmScreen

        proposal = event.proposal

        def decided(yes: bool | None) -> None:
            if proposal.refused is None:
                work = partial(
                    actions.perform_action,
                    self.post_message,
                    self.store_path,
                    self.config,
                    proposal,
                    actor=self.actor,
                    confirmed=bool(yes),
                )
                self.start_job(ACTION, actions.what_of(proposal.plan), work)

        self.push_screen(ConfirmScreen(proposal.plan, proposal.refused), decided)

    @on(ActionStarted)
    def action_started(self, event: ActionStarted) -> None:
        # Held until the run ends (then replaced by how it ended: tui/notices.py).
        notice = Notification(event.line, "", "information", HOLD, markup=False)
        self.post_message(Notify(notice))
        if event.created or event.run_id not in self._announced:
            self._announced[event.run_id] = (notice, f"{event.plan.action} {event.plan.target}")
        self.refresh_now()

    def _show(self, screen: Screen[Any], snap: Snapshot, extra: Any) -> None:
        super()._show(screen, snap, extra)
        self.evaluate_policies(self.snapshot or snap)
        for run_id, line, bad in ending({k: v[1] for k, v in self._announced.items()}, snap):
            notice, _ = self._announced.pop(run_id)
            # Textual's own way to take a notice down before its time.
            self._unnotify(notice)
            self.notify(safe(line), severity="error" if bad else "information", markup=False)
        self._offer()  # a run ended or started: the keys that apply may have changed

    def _offer(self) -> None:
        """The footer's keys again, if the actions that apply to the selected row changed."""
        offered = tuple(self.why_not(action) is None for action in ACTIONS)
        if offered != self._offered:
            self._offered = offered
            self.refresh_bindings()

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        """Notices go where the operator is not reading: the top right while
        the focus is low on the screen (the log, its search), else the bottom."""
        region, screen = event.widget.region, self.screen
        low = reading_low(region.y, region.height, screen.size.height)
        screen.set_class(low, "notices-top")

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title != "Keys":  # ours, "Key bindings", names each binding's id
                yield command
        if self.snapshot is not None:
            yield from palette(self.snapshot, open_key=self.open_key,
                               start_action=self.start_action, audit=self.action_audit,
                               timeline=self.action_timeline, filter_rows=self.action_filter,
                               jump=self.action_jump, help_keys=self.action_help,
                               pause=self.action_pause, policies=self.action_policies,
                               why_not=lambda action, key: unavailable(
                                   self.config, self.snapshot, action, key))  # fmt: skip


def _short(store: StoreLocation) -> str:
    """The store's path as short as it reads unambiguously: relative to here if
    below it; a PostgreSQL store as ``db@host`` (never its password)."""
    if store.path is None:
        return _short_url(store.display)
    path = store.path
    try:
        label = str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        parts = path.resolve().parts
        label = str(path) if len(parts) <= 3 else f"…/{parts[-2]}/{parts[-1]}"
    return label if len(label) <= 32 else f"…{label[-31:]}"


def _short_url(display: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(display)
    label = f"{parts.path.lstrip('/') or '?'}@{parts.hostname or 'local'}"
    return label if len(label) <= 32 else f"…{label[-31:]}"
