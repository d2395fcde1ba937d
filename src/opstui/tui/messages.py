"""What the console's workers and screens tell the app: small Textual messages.

Workers run on threads; ``post_message`` is thread-safe, so a worker hands
its result to the event loop by posting one of these and returns, instead
of calling back into the app with ``call_from_thread`` (which blocks the
worker on the UI and hides who handles what). Each message says which
worker posts it and who handles it; the app handles them with ``@on`` in
``tui/app.py``. Screens post the ones that bubble (``OpenRow``,
``RefreshWanted``), so a screen never reaches into the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from textual.screen import Screen

    from opstui.runner.actions import Proposal
    from opstui.runner.plan import Plan
    from opstui.sources.background import PollerThread
    from opstui.views.snapshot import Snapshot


class SnapshotRead(Message):
    """The refresh worker read the store: every panel, plus the screen's own rows.

    ``extra`` is what ``screen.load`` returned (None for the dashboard);
    ``what`` names the read in a failure's words, should drawing it fail.
    """

    def __init__(self, screen: Screen[Any], snapshot: Snapshot, extra: Any, what: str) -> None:
        super().__init__()
        self.screen = screen
        self.snapshot = snapshot
        self.extra = extra
        self.what = what


class PlanReady(Message):
    """An action was planned (posted by the action worker): the app shows it for confirmation.

    ``proposal.refused`` set (read-only): shown with the reason; the worker
    audits the refusal itself.
    """

    def __init__(self, proposal: Proposal) -> None:
        super().__init__()
        self.proposal = proposal


class ActionStarted(Message):
    """A confirmed action's runner started, or joined one already doing it (action worker)."""

    def __init__(self, plan: Plan, run_id: int, created: bool) -> None:
        super().__init__()
        self.plan = plan
        self.run_id = run_id
        self.created = created

    @property
    def line(self) -> str:
        plan = self.plan
        if self.created:
            return f"{plan.action} {plan.target}: run {self.run_id} started"
        return f"{plan.action} {plan.target}: joined run {self.run_id}, already doing this"


class DriftChecked(Message):
    """The drift worker stored new checks: the models panel is worth reading again."""


class PollerStopped(Message):
    """The endpoint poller's thread ended (posted from that thread: it is not a worker)."""

    def __init__(self, poller: PollerThread, error: BaseException | None) -> None:
        super().__init__()
        self.poller = poller
        self.error = error


class OpenRow(Message):
    """A screen asks for a row's own screen (``pipeline:web``); bubbles to the app."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


class RefreshWanted(Message):
    """A screen changed what it shows (another run, another stage's log): read it now."""


class Acknowledged(Message):
    """The acknowledge worker wrote (or took back) an acknowledgement; the app
    says ``line`` and reads the store at once (``tui/app.py``)."""

    def __init__(self, line: str) -> None:
        super().__init__()
        self.line = line


class PoliciesDecided(Message):
    """The policy worker recorded decisions (posted from its thread): the app
    tells the operator the ones that act or wait for them."""

    def __init__(self, lines: list[tuple[str, str]]) -> None:
        super().__init__()
        #: (verdict, the line to show)
        self.lines = lines


class AnswerRequest(Message):
    """The policies screen: approve (or reject) a policy's request; the app does it on a worker."""

    def __init__(self, request_id: int, approve: bool, what: str) -> None:
        super().__init__()
        self.request_id = request_id
        self.approve = approve
        self.what = what


class PausePolicies(Message):
    """The policies screen: pause (or resume) every policy, audited as the operator."""

    def __init__(self, pause: bool) -> None:
        super().__init__()
        self.pause = pause
