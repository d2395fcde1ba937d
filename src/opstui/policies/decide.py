"""The guard rails: from what a policy sees to what it decides, pure, clock injected.

Each evaluation gives a policy one ``Reading`` per target: its condition
``met`` (with the ``fault`` an action would fix: ``run:164``), ``clear``, or
``inconclusive`` (no data, its source down: never acted on). ``decide``
turns it into a ``Decision`` through the rails, in this order:

1. inconclusive: said once per streak, never acts;
2. M of N: the condition held in M of the last N conclusive readings;
3. once per fault: a fault acted on (or would-have-been, or waiting for a
   human) is not decided again;
4. paused (every policy, by an operator), disabled, or an environment the
   policy may not act in: held;
5. cooldown after the policy last acted on this target; the daily cap
   (acts in the last 24 hours), after which a human decides: held;
6. shadow mode: would_act (and whether it would have asked first);
7. approval required (a production rollback or retrain, by default):
   awaiting_approval, the operator approves or rejects; otherwise act.

A decision that only repeats the one before it (held for the same reason,
still inconclusive) is not returned again: the trail says when something
changed, not every tick. The ``Ledger`` is what was decided before (the
store's rows, or replay's own list).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

from opstui.config.policies import PolicyDef

MET, CLEAR, INCONCLUSIVE = "met", "clear", "inconclusive"
#: Verdicts.
ACTED = "acted"
WOULD_ACT = "would_act"
AWAITING = "awaiting_approval"
APPROVED = "approved"
REJECTED = "rejected"
HELD = "held"
#: It said act, and the action path refused (no earlier good version, a
#: read-only environment): settled, with why; an operator takes it from there.
REFUSED = "refused"
PAUSED = "paused"
RESUMED = "resumed"
#: Verdicts that settle a fault: it is not decided again.
SETTLING = frozenset({ACTED, WOULD_ACT, AWAITING, REFUSED})
DAY = 86400.0
#: An action as a verb in a reason: "would roll back web-api".
VERB = {"rollback": "roll back"}


class Reading(NamedTuple):
    """What a policy sees of one target at one evaluation."""

    target: str  # pipeline:billing-worker, endpoint:web-api, model:fraud
    state: str  # met, clear, inconclusive
    why: str  # one line: "run 164 failed at test", "source down (stale for 3m)"
    #: What an action would fix, once: run:164, burn:web-api:deploy:57, drift:fraud:12.
    fault: str | None = None
    environment: str | None = None
    service: str | None = None


class Decision(NamedTuple):
    policy: str
    target: str
    fault: str | None
    verdict: str
    why: str
    action: str
    environment: str | None
    service: str | None
    mode: str
    at: float


@dataclass
class Ledger:
    """What was decided before, as the rails need it (newest last)."""

    decisions: list[Decision] = field(default_factory=list)
    paused: bool = False
    #: (policy, fault) settled before ``decisions`` begin (the store's longer memory).
    settled_before: set[tuple[str, str]] = field(default_factory=set)

    def add(self, decision: Decision) -> None:
        self.decisions.append(decision)
        if decision.verdict == PAUSED:
            self.paused = True
        elif decision.verdict == RESUMED:
            self.paused = False

    def settled(self, policy: str, fault: str) -> bool:
        return (policy, fault) in self.settled_before or any(
            d.policy == policy and d.fault == fault and d.verdict in SETTLING
            for d in self.decisions
        )

    def acts(self, policy: str, target: str, since: float) -> list[float]:
        return [
            d.at
            for d in self.decisions
            if d.policy == policy and d.target == target and d.verdict == ACTED and d.at >= since
        ]

    def last(self, policy: str, target: str) -> Decision | None:
        for d in reversed(self.decisions):
            if d.policy == policy and d.target == target:
                return d
        return None


@dataclass
class Windows:
    """The last N conclusive readings of each (policy, target): the M-of-N rail."""

    seen: dict[tuple[str, str], deque[bool]] = field(default_factory=dict)

    def push(self, policy: PolicyDef, target: str, met: bool) -> int:
        """Add a reading; return how many of the last N were met."""
        window = self.seen.setdefault((policy.name, target), deque(maxlen=policy.n))
        if window.maxlen != policy.n:  # the config changed under a running evaluator
            window = self.seen[(policy.name, target)] = deque(window, maxlen=policy.n)
        window.append(met)
        return sum(window)


def decide(
    policy: PolicyDef,
    reading: Reading,
    *,
    windows: Windows,
    ledger: Ledger,
    now: float,
    production: tuple[str, ...] = ("production",),
) -> Decision | None:
    """What ``policy`` decides on ``reading`` (None: nothing to say)."""

    def say(verdict: str, why: str) -> Decision | None:
        d = Decision(policy.name, reading.target, reading.fault, verdict, why, policy.action,
                     reading.environment, reading.service, policy.mode, now)  # fmt: skip
        last = ledger.last(policy.name, reading.target)
        if last is not None and (last.verdict, last.why, last.fault) == (verdict, why, d.fault):
            return None  # no news
        return d

    if reading.state == INCONCLUSIVE:
        # Not counted either way: a source that went dark neither confirms
        # nor clears the condition.
        return say(INCONCLUSIVE, f"inconclusive, not acting: {reading.why}")
    met = windows.push(policy, reading.target, reading.state == MET)
    if reading.state != MET or reading.fault is None:
        return None
    if met < policy.m:
        return say(HELD, f"{reading.why}: seen in {met} of the last {policy.n} "
                         f"evaluations, acting from {policy.m}")  # fmt: skip
    if ledger.settled(policy.name, reading.fault):
        return None
    what = f"{VERB.get(policy.action, policy.action)} {reading.target.partition(':')[2]}"
    if not policy.enabled:
        return say(HELD, f"{reading.why}: would {what}, but the policy is disabled")
    if ledger.paused:
        return say(HELD, f"{reading.why}: would {what}, but policies are paused")
    if not policy.may_act_in(reading.environment):
        where = reading.environment or "no environment"
        return say(HELD, f"{reading.why}: would {what}, but not enabled in {where}")
    acts = ledger.acts(policy.name, reading.target, now - DAY)
    if acts and now - max(acts) < policy.cooldown:
        wait = policy.cooldown - (now - max(acts))
        return say(HELD, f"{reading.why}: would {what}, cooling down "
                         f"({_minutes(wait)} left of {_minutes(policy.cooldown)})")  # fmt: skip
    if len(acts) >= policy.daily_cap:
        return say(HELD, f"{reading.why}: would {what}, but it acted {len(acts)} times "
                         "in 24h (daily_cap): a human decides")  # fmt: skip
    asks = policy.needs_approval(reading.environment, production)
    if policy.shadow:
        # Shadow mode asks no one: it says what it would do, and that it would ask first.
        first = ", after an operator's approval" if asks else ""
        return say(WOULD_ACT, f"{reading.why}: would {what}{first} (shadow mode)")
    if asks:
        return say(AWAITING, f"{reading.why}: {what} waits for an operator's approval")
    return say(ACTED, f"{reading.why}: {what}")


def _minutes(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))}m"
