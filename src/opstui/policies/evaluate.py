"""One evaluator per store: each step reads the board, decides, records, acts.

``Evaluator.step`` is one evaluation: take (or keep) the store's policy
lease, so two evaluators (a console and ``opstui policies run`` on another
host) never act on one fault twice; read what was decided in the last day
(cooldowns, caps, the pause, what was already said); read each policy's
targets (``signals``); pass each reading through the guard rails
(``decide``); record every decision, acting first where it says act. The
store's unique indexes are the last word: a decision another evaluator
recorded first is dropped, and its action not taken.

An operator's answer to a request for approval is ``answer``: audited as
the operator, then acted on as the policy.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NamedTuple

from opstui.config import Config
from opstui.config.policies import PolicyDef
from opstui.errors import OpstuiError
from opstui.policies.act import Acted, act
from opstui.policies.decide import (
    ACTED,
    APPROVED,
    DAY,
    REFUSED,
    REJECTED,
    Decision,
    Ledger,
    Windows,
    decide,
)
from opstui.policies.signals import gather, readings
from opstui.store import Store
from opstui.store import policies as sp
from opstui.store.endpoints import acquire_leases, lease_holders
from opstui.views.snapshot import Snapshot

#: The lease's name in the store's ``leases`` table (endpoint names hold none with a colon).
LEASE = "policies:evaluator"
#: How far back a fault counts as settled (a drift streak can last weeks).
SETTLED_FOR = 30 * DAY


class Step(NamedTuple):
    """What one evaluation did."""

    decisions: list[Decision]
    #: Who holds the lease if not this evaluator (then it decided nothing).
    held_by: str | None = None


def holder_name() -> str:
    from opstui.store.db import host_name

    # Its own name (not the poller's host:pid): leaving releases this lease only.
    return f"{host_name()}:{os.getpid()}:policies"


class Evaluator:
    def __init__(
        self,
        config: Config,
        *,
        holder: str | None = None,
        every: float = 15.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.config = config
        self.holder = holder or holder_name()
        self.every = every
        self.clock = clock
        self.windows = Windows()

    @property
    def policies(self) -> list[PolicyDef]:
        return list(self.config.policies.values())

    def step(self, store: Store, snap: Snapshot) -> Step:
        if not self.policies:
            return Step([])
        now = self.clock() if self.clock is not None else snap.at
        # The lease outlives a missed step or two, not a dead evaluator.
        if not acquire_leases(store, [LEASE], holder=self.holder, ttl=3 * self.every):
            holder = lease_holders(store).get(LEASE)
            return Step([], holder[0] if holder else "another evaluator")
        ledger = self.ledger(store, now)
        facts = gather(store, self.config, self.policies, snap)
        made = []
        for policy in self.policies:
            for reading in readings(policy, snap, facts, self.config):
                d = decide(policy, reading, windows=self.windows, ledger=ledger, now=now,
                           production=self.config.notify.production)  # fmt: skip
                if d is None:
                    continue
                d = self.record(store, policy, d, now)
                if d is not None:
                    ledger.add(d)
                    made.append(d)
        return Step(made)

    def ledger(self, store: Store, now: float) -> Ledger:
        rows = sp.decisions(store, since=now - DAY)
        ledger = Ledger([_decision(r) for r in rows])
        ledger.paused = sp.paused(store) is not None
        ledger.settled_before = sp.settled_faults(store, since=now - SETTLED_FOR)
        return ledger

    def record(self, store: Store, policy: PolicyDef, d: Decision, now: float) -> Decision | None:
        """Write ``d`` (acting first if it says act); None if another evaluator
        settled that fault first."""
        row = _row(d)
        if d.verdict != ACTED:
            return d if sp.record(store, row, by=self.holder, now=now) is not None else None
        # Claimed before acting: the unique index lets one evaluator through.
        claim = sp.record(store, row, by=self.holder, now=now)
        if claim is None:
            return None
        try:
            done = act(self.config, store, policy, d)
        except Exception as exc:
            # Claimed and not done (the runner could not be spawned, the store
            # failed mid-way): the trail must not say it acted.
            why = exc.message if isinstance(exc, OpstuiError) else f"{type(exc).__name__}: {exc}"
            done = Acted(refused=f"failed to start: {why}")
        if done.refused is not None:
            why = f"{d.why}: refused, {done.refused}"
            sp.refused(store, claim, why)
            return d._replace(verdict=REFUSED, why=why)
        sp.set_action(store, claim, action_id=done.action_id, run_id=done.run_id)
        if done.run_id is not None:
            joined = "" if done.created else " (joined, already in flight)"
            return d._replace(why=f"{d.why}: run {done.run_id}{joined}")
        return d


def answer(
    store: Store, config: Config, request_id: int, *, approve: bool, by: str, why: str = ""
) -> Decision:
    """An operator approves or rejects a policy's request (audited as them);
    an approval then acts as the policy. Raises ``OpstuiError`` if there is
    no such open request (answered already, or never asked)."""
    from opstui.errors import UsageError

    request = sp.get(store, request_id)
    if request is None or request.verdict != "awaiting_approval":
        raise UsageError(f"no request for approval with id {request_id}",
                         hint="opstui policies list shows the open ones")  # fmt: skip
    policy = config.policies.get(request.policy)
    if policy is None:
        raise UsageError(f"policy {request.policy!r} is no longer in the config")
    if approve:
        # The config changed since it asked: what the operator would approve
        # is no longer what the policy may do. Rejecting it stays possible.
        changed = (
            "is disabled" if not policy.enabled
            else "is in shadow mode" if policy.mode == "shadow"
            else f"now does {policy.action}, not the {request.action} it asked for"
            if request.action and policy.action != request.action
            else ""
        )  # fmt: skip
        if changed:
            raise UsageError(
                f"request {request_id} cannot be approved: policy {request.policy!r} {changed} "
                "in the config",
                hint=f"reject it (opstui policies reject {request_id}); the policy asks again "
                "if it still should",
            )
    now = store.clock()
    verdict = APPROVED if approve else REJECTED
    said = f"{verdict} by {by}" + (f": {why}" if why else "")
    base = _decision(request)._replace(verdict=verdict, why=f"{request.why}: {said}", at=now)
    row = {**_row(base), "approval_of": request_id}
    if sp.record(store, row, by=by, now=now) is None:
        raise UsageError(f"request {request_id} was answered already",
                         hint="opstui policies log shows who answered it")  # fmt: skip
    if not approve:
        return base
    acting = base._replace(verdict=ACTED, why=f"{request.why}: approved by {by}")
    done = Evaluator(config, holder=by).record(store, policy, acting, now)
    return done or acting._replace(verdict="held", why="acted on by another evaluator first")


def _row(d: Decision) -> dict[str, object]:
    return {"policy": d.policy, "target": d.target, "fault": d.fault, "verdict": d.verdict,
            "why": d.why, "action": d.action, "environment": d.environment,
            "service": d.service, "mode": d.mode}  # fmt: skip


def _decision(r: sp.DecisionRow) -> Decision:
    return Decision(r.policy, r.target, r.fault, r.verdict, r.why, r.action or "", r.environment,
                    r.service, r.mode or "act", r.decided_at)  # fmt: skip
