"""``opstui policies replay``: what the policies would have done over the recorded history.

The history is stepped through every ``step`` seconds and at each moment
something was recorded (a run ended, an alert fired); at each a
policy sees its targets as they stood then (the latest run of a pipeline
that had finished by then, the alerts firing then, the deploys before, the
drift checks computed by then) and decides through the very guard rails the
live evaluator uses (``decide``), with its own in-memory trail: nothing is
written and nothing acts. What the rails held back is counted (the flaps
M of N avoided, the cooldowns, the daily cap's hand-overs), so an operator
tunes a threshold before turning a policy on.

What the store did not keep cannot be replayed: a burn is the store's own
alert history (``alerts``: judged by a console or ``opstui poll`` at the
time); a run's outcome is what its row says now.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from opstui.config import Config
from opstui.config.policies import PolicyDef
from opstui.policies.decide import (
    ACTED,
    CLEAR,
    HELD,
    MET,
    SETTLING,
    Decision,
    Ledger,
    Reading,
    Windows,
    decide,
)
from opstui.policies.signals import (
    FRESH,
    Streak,
    drift_reading,
    environment,
    run_reading,
    slot_reading,
)
from opstui.store import Store
from opstui.store.deployments import deployment_history
from opstui.store.drift import checks as drift_checks
from opstui.store.history import run_history
from opstui.store.rows import DeploymentRow

#: The most runs of one pipeline a replay reads.
MOST_RUNS = 20_000


class Ended(NamedTuple):
    """A run as a policy saw it once it had ended."""

    at: float
    id: int
    status: str
    stage: str | None


class Firing(NamedTuple):
    start: float
    end: float | None
    summary: str


class History(NamedTuple):
    runs: dict[str, tuple[list[float], list[Ended]]]  # pipeline -> end times, its ended runs
    firing: dict[tuple[str, str], list[Firing]]  # (endpoint, severity) -> alerts
    deploys: dict[tuple[str, str], list[DeploymentRow]]  # (service, env) -> oldest first
    drift: dict[str, list[tuple[float, bool, str | None]]]  # model -> (at, drifted, reference)
    #: (pipeline, stage) the flake ledger marks flaky now (``flaky_only``).
    flaky: frozenset[tuple[str, str]] = frozenset()


class Report(NamedTuple):
    decisions: list[Decision]
    since: float
    until: float

    def summary(self, policy: str) -> Counter[str]:
        """What the policy would have done, and the faults each guard rail held
        back (a fault counted once per rail; a flap is a fault M of N never
        let through)."""
        mine = [d for d in self.decisions if d.policy == policy]
        settled = {d.fault for d in mine if d.verdict in SETTLING}
        out: Counter[str] = Counter()
        seen: set[tuple[str, str | None]] = set()
        for d in mine:
            rail = _rail(d)
            if rail == "flap avoided (M of N)" and d.fault in settled:
                continue  # held a while, then acted: not a flap
            if (rail, d.fault) in seen and rail != ACTED:
                continue
            seen.add((rail, d.fault))
            out[rail] += 1
        return out


def _rail(d: Decision) -> str:
    if d.verdict != HELD:
        return d.verdict
    for words, rail in (
        ("evaluations, acting from", "flap avoided (M of N)"),
        ("cooling down", "cooldown"),
        ("daily_cap", "daily cap"),
        ("paused", "paused"),
        ("not enabled in", "environment"),
        ("disabled", "disabled"),
    ):
        if words in d.why:
            return rail
    return HELD


def load(store: Store, config: Config, policies: Sequence[PolicyDef], since: float,
         until: float) -> History:  # fmt: skip
    """What the replay of ``policies`` over [since, until] needs from the store."""
    from opstui.store.alerts import alert_history

    runs: dict[str, tuple[list[float], list[Ended]]] = {}
    pipelines = {p.pipeline for p in policies if p.trigger == "run_failed"}
    if None in pipelines:
        pipelines = {r[0] for r in store.query("SELECT name FROM pipelines")}
    for name in sorted(n for n in pipelines if n):
        ended = [
            Ended(r.finished_at, r.id, r.status, r.failed_stage.name if r.failed_stage else None)
            for r in run_history(store, name, limit=MOST_RUNS, now=until)
            if r.finished_at is not None and since - FRESH <= r.finished_at <= until
        ]
        ended.sort()
        runs[name] = ([r.at for r in ended], ended)
    firing: dict[tuple[str, str], list[Firing]] = {}
    deploys: dict[tuple[str, str], list[DeploymentRow]] = {}
    if any(p.trigger == "burn" for p in policies):
        for a in alert_history(store, since=since - 86400, until=until, limit=50_000):
            if a.kind == "burn":
                endpoint = a.key.split(":")[1] if a.key.count(":") >= 2 else a.subject
                firing.setdefault((endpoint, a.severity), []).append(
                    Firing(a.fired_at, a.resolved_at, a.summary)
                )
        for p in policies:
            ep = config.endpoints.get(p.endpoint or "")
            served = config.served(ep) if ep is not None else None
            if served is not None:
                rows = deployment_history(store, served[1], served[2], limit=5000)
                deploys[(served[1], served[2])] = sorted(
                    (d for d in rows if d.action == "deploy" and d.status == "succeeded"),
                    key=lambda d: d.deployed_at,
                )
    drift: dict[str, list[tuple[float, bool, str | None]]] = {}
    for p in policies:
        if p.trigger == "drift" and p.model and p.model not in drift:
            found = drift_checks(store, p.model, limit=10_000)
            drift[p.model] = sorted((c.computed_at, c.drifted, c.reference_digest) for c in found)
    flaky: frozenset[tuple[str, str]] = frozenset()
    if any(p.flaky_only for p in policies):
        from opstui.policies.flaky import flaky_stages

        flaky = flaky_stages(store, now=until)
    return History(runs, firing, deploys, drift, flaky)


def replay(
    config: Config,
    policies: Iterable[PolicyDef],
    history: History,
    *,
    since: float,
    until: float,
    step: float = 60.0,
) -> Report:
    """Step through [since, until] deciding as the live evaluator would; nothing acts."""
    chosen = list(policies)
    windows, ledger = Windows(), Ledger()
    made: list[Decision] = []
    production = config.notify.production
    # Every ``step`` from ``since``, and ``until`` itself: what ended in the
    # last step's seconds is judged too.
    # And the moment each thing happened: a failure retried within the step
    # by hand was still seen by the live evaluator, which runs more often.
    moments = [since + i * step for i in range(int((until - since) // step) + 1)]
    moments += [t for t in _happened(history) if since <= t <= until] + [until]
    moments = sorted(set(moments))
    for at in moments:
        for policy in chosen:
            for reading in _readings(policy, history, config, at):
                d = decide(policy, reading, windows=windows, ledger=ledger, now=at,
                           production=production)  # fmt: skip
                if d is not None:
                    ledger.add(d)
                    made.append(d)
    return Report(made, since, until)


def _happened(h: History) -> list[float]:
    """When each recorded thing happened: runs ending, alerts firing, deploys, checks."""
    out = [at for ends, _ in h.runs.values() for at in ends]
    out += [f.start for firing in h.firing.values() for f in firing]
    out += [d.deployed_at for rows in h.deploys.values() for d in rows]
    out += [c[0] for checks in h.drift.values() for c in checks]
    return out


def _readings(policy: PolicyDef, h: History, config: Config, at: float) -> list[Reading]:
    if policy.trigger == "run_failed":
        return _runs(policy, h, config, at)
    if policy.trigger == "burn":
        return _burn(policy, h, config, at)
    if policy.trigger == "drift":
        return _drift(policy, h, config, at)
    return [slot_reading(policy, at, config)]


def _runs(policy: PolicyDef, h: History, config: Config, at: float) -> list[Reading]:
    out = []
    for name, (ends, runs) in h.runs.items():
        if policy.pipeline is not None and name != policy.pipeline:
            continue
        env = environment(config, name)
        i = bisect.bisect_right(ends, at)
        if i == 0:
            continue
        run = runs[i - 1]
        out.append(run_reading(policy, h.flaky, pipeline=name, env=env, run_id=run.id,
                               status=run.status, stage=run.stage, ago=at - run.at))  # fmt: skip
    return out


def _burn(policy: PolicyDef, h: History, config: Config, at: float) -> list[Reading]:
    ep = config.endpoints.get(policy.endpoint or "")
    served = config.served(ep) if ep is not None else None
    name = policy.endpoint or ""
    target = f"endpoint:{name}"
    env: str | None = served[2] if served else None
    service: str | None = served[1] if served else None
    now_firing = [f for f in h.firing.get((name, policy.severity), [])
                  if f.start <= at and (f.end is None or f.end > at)]  # fmt: skip
    if not now_firing:
        return [Reading(target, CLEAR, f"{name} not burning", None, env, service)]
    before = [d for d in h.deploys.get((service or "", env or ""), []) if d.deployed_at <= at]
    if not before or at - before[-1].deployed_at > policy.within:
        return [Reading(target, CLEAR, f"{name} burning, no deploy just before", None, env,
                        service)]  # fmt: skip
    deploy = before[-1]
    why = f"{now_firing[0].summary} after deploy of {service} {deploy.version} in {env}"
    return [Reading(target, MET, why, f"burn:{name}:deploy:{deploy.id}", env, service)]


def _drift(policy: PolicyDef, h: History, config: Config, at: float) -> list[Reading]:
    seen = [c for c in h.drift.get(policy.model or "", []) if c[0] <= at]
    if not seen:
        return [drift_reading(policy, config, None, checked=False)]
    # The checks in a row that drifted against the latest one's reference.
    reference, streak, since = seen[-1][2], 0, seen[-1][0]
    for when, drifted, ref in reversed(seen):
        if ref != reference or not drifted:
            break
        streak, since = streak + 1, when
    found = Streak(streak, since) if streak >= policy.windows else None
    return [drift_reading(policy, config, found, checked=True)]


#: How a replay's decisions read: a verdict in the report's words.
SAID = {"acted": "would act", "would_act": "would act (shadow)",
        "awaiting_approval": "would ask for approval"}  # fmt: skip
#: The summary's parts, in order: (what ``Report.summary`` counts, its words).
SUMMARY = (
    ("acted", "would act"),
    ("would_act", "would act in shadow mode"),
    ("awaiting_approval", "would ask for approval"),
    ("flap avoided (M of N)", "flaps avoided (M of N)"),
    ("cooldown", "held by the cooldown"),
    ("daily cap", "held by the daily cap (a human decides)"),
    ("environment", "held: environment not enabled"),
    ("paused", "held: paused"),
    ("disabled", "held: disabled"),
    ("inconclusive", "inconclusive (never acted on)"),
)
