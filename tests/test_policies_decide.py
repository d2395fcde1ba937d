"""Every guard rail with an injected clock: M of N, once per fault, paused,
disabled, environments, cooldown, the daily cap handing over to a human,
approval, shadow, and inconclusive never acting."""

from __future__ import annotations

from dataclasses import replace

from opstui.config.policies import PolicyDef
from opstui.policies.decide import (
    ACTED,
    AWAITING,
    CLEAR,
    HELD,
    INCONCLUSIVE,
    MET,
    PAUSED,
    RESUMED,
    WOULD_ACT,
    Decision,
    Ledger,
    Reading,
    Windows,
    decide,
)

T0 = 1_800_000_000.0
RETRY = PolicyDef(name="retry-flaky", trigger="run_failed", action="retry",
                  pipeline="billing-worker", cooldown=600.0, daily_cap=3)  # fmt: skip


def failed(run: int, env: str = "production") -> Reading:
    return Reading("pipeline:billing-worker", MET, f"run {run} failed at test", f"run:{run}", env)


def verdict(d: Decision | None) -> str | None:
    return None if d is None else d.verdict


def why(d: Decision | None) -> str:
    return "" if d is None else d.why


class World:
    """A policy's evaluations over time, its decisions kept as the store would."""

    def __init__(self, policy: PolicyDef) -> None:
        self.policy = policy
        self.windows = Windows()
        self.ledger = Ledger()

    def see(self, reading: Reading, at: float) -> Decision | None:
        d = decide(self.policy, reading, windows=self.windows, ledger=self.ledger, now=at)
        if d is not None:
            self.ledger.add(d)
        return d


def test_a_failed_run_is_retried_once() -> None:
    w = World(RETRY)
    d = w.see(failed(164), T0)
    assert d is not None and d.verdict == ACTED and d.fault == "run:164"
    assert d.why == "run 164 failed at test: retry billing-worker"
    # The same failure seen again, by this or another evaluator: settled.
    assert w.see(failed(164), T0 + 15) is None
    assert w.see(failed(164), T0 + 9999) is None


def test_m_of_n_waits_for_the_condition_to_hold() -> None:
    w = World(replace(RETRY, m=2, n=3))
    first = w.see(failed(1), T0)
    assert first is not None and first.verdict == HELD and "1 of the last 3" in first.why
    d = w.see(failed(1), T0 + 15)
    assert d is not None and d.verdict == ACTED
    # A flap: met, clear, clear, met: never 2 of the last 3.
    w = World(replace(RETRY, m=2, n=3))
    verdicts = []
    for i, state in enumerate([MET, CLEAR, CLEAR, MET, CLEAR, CLEAR, MET]):
        reading = failed(7)._replace(state=state)
        d = w.see(reading, T0 + 15 * i)
        verdicts.append(d.verdict if d else None)
    assert ACTED not in verdicts


def test_inconclusive_never_acts_and_is_said_once() -> None:
    w = World(RETRY)
    dark = Reading("pipeline:billing-worker", INCONCLUSIVE, "its source airflow is down")
    d = w.see(dark, T0)
    assert d is not None and d.verdict == INCONCLUSIVE and "not acting" in d.why
    assert w.see(dark, T0 + 15) is None  # no news
    # Inconclusive readings do not count toward M.
    w2 = World(replace(RETRY, m=2, n=2))
    w2.see(failed(3), T0)
    w2.see(dark._replace(fault="run:3"), T0 + 15)
    d = w2.see(failed(3), T0 + 30)
    assert d is not None and d.verdict == ACTED


def test_cooldown_then_the_daily_cap_hands_over_to_a_human() -> None:
    w = World(RETRY)
    assert verdict(w.see(failed(1), T0)) == ACTED
    held = w.see(failed(2), T0 + 60)
    assert held is not None and held.verdict == HELD and "cooling down (9m left of 10m)" in held.why
    assert verdict(w.see(failed(2), T0 + 601)) == ACTED
    assert verdict(w.see(failed(3), T0 + 1300)) == ACTED
    capped = w.see(failed(4), T0 + 2000)
    assert capped is not None and capped.verdict == HELD
    assert "acted 3 times in 24h (daily_cap): a human decides" in capped.why
    # A day after the first act, one slot is free again.
    assert verdict(w.see(failed(4), T0 + 86_400 + 1)) == ACTED


def test_paused_disabled_and_environments_hold() -> None:
    w = World(RETRY)
    w.ledger.add(Decision("*", "*", None, PAUSED, "paused by alice", "", None, None, "", T0))
    d = w.see(failed(9), T0 + 1)
    assert d is not None and d.verdict == HELD and "policies are paused" in d.why
    w.ledger.add(Decision("*", "*", None, RESUMED, "resumed by alice", "", None, None, "", T0 + 2))
    assert verdict(w.see(failed(9), T0 + 3)) == ACTED

    off = World(replace(RETRY, enabled=False))
    assert "disabled" in why(off.see(failed(1), T0))
    staging_only = World(replace(RETRY, environments=("staging",)))
    d = staging_only.see(failed(1, env="production"), T0)
    assert d is not None and d.verdict == HELD and "not enabled in production" in d.why
    assert verdict(staging_only.see(failed(2, env="staging"), T0 + 1)) == ACTED


def test_production_rollback_waits_for_approval_and_shadow_only_says() -> None:
    rollback = PolicyDef(name="rb", trigger="burn", action="rollback", endpoint="web-api")
    burning = Reading("endpoint:web-api", MET, "web-api burning 20x within 4m of deploy 57",
                      "burn:web-api:deploy:57", "production", "web-api")  # fmt: skip
    w = World(rollback)
    d = w.see(burning, T0)
    assert d is not None and d.verdict == AWAITING
    assert "roll back web-api waits for an operator" in d.why
    assert w.see(burning, T0 + 15) is None  # asked once
    staging = World(rollback)
    assert verdict(staging.see(burning._replace(environment="staging"), T0)) == ACTED
    shadow = World(replace(rollback, mode="shadow", approval=False))
    d = shadow.see(burning, T0)
    assert (
        d is not None
        and d.verdict == WOULD_ACT
        and d.why.endswith(": would roll back web-api (shadow mode)")
    )
    # Shadow mode asks no one, even where approval is the default; it says it would have.
    asking = World(replace(rollback, mode="shadow"))
    d = asking.see(burning, T0)
    assert d is not None and d.verdict == WOULD_ACT
    assert d.why.endswith("would roll back web-api, after an operator's approval (shadow mode)")
    assert shadow.see(burning, T0 + 15) is None
