"""The policies: what each automates, what it decided last, the requests waiting, flaky stages.

One row per ``[policies.NAME]``: its trigger and action, its mode (act,
shadow, disabled, or held by the pause), how many of its daily cap it used
in the last 24 hours, when it may act again (its cooldown), and its last
decision with why. Below, the requests for approval: ``y`` approves the
selected one (a dialog first; audited as the operator, then done as the
policy), ``n`` rejects it; ``X`` pauses or resumes every policy. Then the
day's decisions, newest first, and the flake ledger. The app does every
write on a worker (``AnswerRequest``, ``PausePolicies``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Footer, Static

from opstui.config.policies import PolicyDef
from opstui.tui.messages import AnswerRequest, PausePolicies
from opstui.tui.render import age, safe
from opstui.tui.screens.base import Detail
from opstui.tui.table import LiveTable, dim
from opstui.tui.widgets import Panel
from opstui.views.snapshot import Snapshot, SnapshotReader

DAY = 86400.0
VERDICT_STYLE = {"acted": "bold yellow", "refused": "bold red", "awaiting_approval": "bold cyan",
                 "would_act": "cyan", "inconclusive": "dim", "held": "", "rejected": "yellow",
                 "approved": "green"}  # fmt: skip
EMPTY = (
    "No policies. Add [policies.NAME] to opstui.toml: a trigger (run_failed, burn, drift, "
    "schedule), an action (retry, rollback, retrain, notify) and guard rails; "
    "opstui policies replay shows what one would have done."
)


class PoliciesData(NamedTuple):
    decisions: list[Any]  # store.policies.DecisionRow, oldest first
    pending: list[Any]
    paused: Any | None
    flakes: list[Any]  # policies.flaky.StageFlakes
    now: float
    #: The evaluator's lease in the store: (holder, expires at), or None.
    lease: tuple[str, float] | None = None


class PoliciesScreen(Detail):
    DEFAULT_CSS = """
    PoliciesScreen #panel-policies { height: auto; max-height: 40%; }
    PoliciesScreen #panel-approvals { height: auto; max-height: 30%; }
    PoliciesScreen #panel-decisions { height: 1fr; min-height: 4; }
    PoliciesScreen #panel-flakes { height: auto; max-height: 25%; }
    PoliciesScreen LiveTable { height: auto; }
    PoliciesScreen #panel-decisions LiveTable { height: 1fr; }
    PoliciesScreen #empty { height: auto; padding: 1 2; display: none; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "approve", "Approve"),
        Binding("n", "reject", "Reject"),
        Binding("X", "pause_all", "Pause all"),
    ]

    def __init__(
        self,
        policies: Sequence[PolicyDef],
        *,
        clock: Callable[[], float],
        holder: str | None = None,
        why_not: str = "",
    ) -> None:
        super().__init__("policies", clock=clock)
        #: The config's policies (the app's, given when it opens the screen).
        self.defined = list(policies)
        #: This console's evaluator's name in the lease (None: it evaluates
        #: nothing), and why not (``read-only``, ``polls nothing``).
        self.holder = holder
        self.why_not = why_not
        self.data: PoliciesData | None = None
        self.policies = LiveTable(
            [("name", "POLICY"), ("when", "WHEN", 100), ("does", "DOES"), ("mode", "MODE"),
             ("today", "TODAY"), ("next", "NEXT", 90), ("last", "LAST")],
            flex="last", id="policies",
        )  # fmt: skip
        self.approvals = LiveTable(
            [("id", "ID"), ("age", "AGE"), ("policy", "POLICY"), ("why", "WHY")],
            flex="why", id="approvals",
        )  # fmt: skip
        self.decisions = LiveTable(
            [("age", "AGE"), ("policy", "POLICY"), ("verdict", "VERDICT"), ("why", "WHY")],
            flex="why", id="decisions",
        )  # fmt: skip
        self.flakes = LiveTable(
            [("stage", "STAGE"), ("passed", "PASSED ON RETRY"), ("auto", "AUTO", 70),
             ("flaky", "")],
            id="flakes",
        )  # fmt: skip

    @property
    def label(self) -> str:
        return "policies"

    def compose(self) -> ComposeResult:
        yield Static("", id="title")
        yield Static("", id="note")
        with Vertical():
            yield Static(Text(EMPTY), id="empty")
            yield Panel("policies", self.policies)
            yield Panel("approvals", self.approvals)
            yield Panel("decisions", self.decisions)
            yield Panel("flakes", self.flakes)
        yield Footer()

    def on_mount(self) -> None:
        self.set_title("Policies: what automation decided, and what waits for you")
        self.query_one("#panel-flakes", Panel).border_title = "Flaky stages (14 days)"
        self.policies.focus()

    def load(self, console: SnapshotReader) -> PoliciesData:
        from opstui.policies.evaluate import LEASE
        from opstui.policies.flaky import ledger
        from opstui.store import policies as sp
        from opstui.store.endpoints import lease_holders

        store, now = console.store, self.clock()
        return PoliciesData(
            sp.decisions(store, since=now - DAY),
            sp.pending(store),
            sp.paused(store),
            ledger(store, now=now),
            now,
            lease_holders(store).get(LEASE),
        )

    def show_extra(self, data: Any, snap: Snapshot) -> None:
        assert isinstance(data, PoliciesData)
        self.data = data
        defined = self.defined
        self.query_one("#empty", Static).display = not defined
        for name in ("policies", "approvals", "decisions", "flakes"):
            self.query_one(f"#panel-{name}", Panel).display = bool(defined) or name == "flakes"
        self._note(data)
        self.policies.show([self._policy_row(p, data) for p in defined])
        self.approvals.show(
            [
                (f"{r.id}", (str(r.id), age(data.now - r.decided_at), safe(r.policy), safe(r.why)))
                for r in data.pending
            ]
            or [("none", ("", "", dim("no request waits"), ""))]
        )
        self.query_one("#panel-approvals", Panel).border_title = (
            f"Waiting for approval ({len(data.pending)})"
            if data.pending
            else "Waiting for approval"
        )
        self.decisions.show(
            [
                (
                    f"{r.id}",
                    (
                        age(data.now - r.decided_at),
                        safe(r.policy),
                        Text(r.verdict.replace("_", " "), style=VERDICT_STYLE.get(r.verdict, "")),
                        safe(r.why),
                    ),
                )
                for r in reversed(data.decisions)
            ]
            or [("none", ("", "", dim("no decision in 24h"), ""))]
        )
        self.query_one(
            "#panel-decisions", Panel
        ).border_title = f"Decisions, last 24h ({len(data.decisions)})"
        self.flakes.show(
            [
                (
                    f"{f.pipeline}/{f.stage}",
                    (
                        safe(f"{f.pipeline}/{f.stage}"),
                        f"{f.passed} of {f.retried}",
                        str(f.automatic),
                        Text("flaky", style="bold yellow") if f.flaky else Text(""),
                    ),
                )
                for f in data.flakes
            ]
            or [("none", (dim("no stage retried in 14 days"), "", "", ""))]
        )

    def _note(self, data: PoliciesData) -> None:
        note = self.query_one("#note", Static)
        if self.stale:
            return
        if data.paused is not None:
            p = data.paused
            note.update(Text(f"PAUSED by {safe(p.decided_by)} {age(data.now - p.decided_at)} ago: "
                             f"{safe(p.why)} · X resumes", style="bold yellow"))  # fmt: skip
        else:
            keys = (
                "read-only: y, n and X are writes"
                if self.why_not == "read-only"
                else "y approves, n rejects the selected request · X pauses all"
            )
            note.update(Text.assemble(self._who(data), (f" · {keys}", "dim")))

    def _who(self, data: PoliciesData) -> Text:
        """Who evaluates the policies: this console, another evaluator (by the
        store's lease), or nobody, which nothing else on screen would say."""
        lease = data.lease
        holder = lease[0] if lease is not None and lease[1] >= data.now else None
        if self.holder is not None and holder in (None, self.holder):
            return Text("evaluated by this console", style="dim")
        if holder is not None:
            who = safe(holder.removesuffix(":policies"))
            return Text(f"evaluated by {who} (its lease)", style="dim")
        # Short enough for 80 columns: the fix is in it.
        return Text(
            f"NOT EVALUATED: not here ({self.why_not or 'off'}), no opstui policies run: "
            "nothing acts",
            style="bold yellow",
        )

    def _policy_row(self, p: PolicyDef, data: PoliciesData) -> tuple[str, tuple[Any, ...]]:
        mine = [r for r in data.decisions if r.policy == p.name]
        acts = [r.decided_at for r in mine if r.verdict == "acted"]
        mode: str | Text = p.mode
        if not p.enabled:
            mode = dim("disabled")
        elif data.paused is not None:
            mode = Text("paused", style="yellow")
        elif p.mode == "shadow":
            mode = Text("shadow", style="cyan")
        nxt = "now"
        if acts and data.now - max(acts) < p.cooldown:
            nxt = f"in {age(p.cooldown - (data.now - max(acts)))}"
        if len(acts) >= p.daily_cap:
            nxt = "a human decides"
        last: str | Text = dim("no decision yet")
        if mine:
            r = mine[-1]
            last = Text.assemble(
                (f"{age(data.now - r.decided_at)} ", "dim"),
                (r.verdict.replace("_", " "), VERDICT_STYLE.get(r.verdict, "")),
                f": {safe(r.why)}",
            )
        what = p.pipeline or p.endpoint or p.model or "any pipeline"
        return (
            f"policy:{p.name}",
            (safe(p.name), safe(f"{p.trigger} {what}"), p.action, mode,
             f"{len(acts)}/{p.daily_cap}", nxt, last),
        )  # fmt: skip

    # -- keys -------------------------------------------------------------------

    def _request(self) -> Any | None:
        key = self.approvals.selected_key
        data = self.data
        if data is None or key is None:
            return None
        return next((r for r in data.pending if str(r.id) == key), None)

    def action_approve(self) -> None:
        from opstui.tui.screens.modals import ApproveScreen

        request = self._request()
        if request is None:
            self.notify("select a request waiting for approval (tab to its panel)",
                        severity="warning")  # fmt: skip
            return

        def decided(yes: bool | None) -> None:
            if yes:
                self.post_message(AnswerRequest(request.id, True, safe(request.why)))

        self.app.push_screen(ApproveScreen(request.policy, request.why), decided)

    def action_reject(self) -> None:
        request = self._request()
        if request is None:
            self.notify("select a request waiting for approval (tab to its panel)",
                        severity="warning")  # fmt: skip
            return
        self.post_message(AnswerRequest(request.id, False, safe(request.why)))

    def action_pause_all(self) -> None:
        data = self.data
        if data is not None:
            self.post_message(PausePolicies(data.paused is None))
