"""Policy decisions in the store, on SQLite and PostgreSQL: a fault acted on
once whoever writes first, a request answered once, the pause with who."""

from __future__ import annotations

from pathlib import Path

import pytest

from opstui.store import Store
from opstui.store import policies as sp
from tests.conftest import Clock

ACT = {"policy": "retry-flaky", "target": "pipeline:billing-worker", "fault": "run:164",
       "verdict": "acted", "why": "run 164 failed at test: retry billing-worker",
       "action": "retry", "environment": "production", "mode": "act"}  # fmt: skip


def test_a_fault_is_acted_on_once_by_two_writers(store_where: Path | str, clock: Clock) -> None:
    with Store(store_where, clock=clock) as one, Store(store_where, clock=clock) as two:
        first = sp.record(one, ACT, by="host-a:1")
        second = sp.record(two, ACT, by="host-b:2")
        shadow = sp.record(two, {**ACT, "verdict": "would_act"}, by="host-b:2")
        assert first is not None and second is None and shadow is None
        # Holding back is not acting: said as often as it is news.
        held = {**ACT, "fault": "run:165", "verdict": "held", "why": "cooling down"}
        assert sp.record(one, held, by="a") is not None
        assert sp.record(two, held, by="b") is not None
        rows = sp.decisions(one, since=0)
        assert [(r.verdict, r.decided_by) for r in rows] == [
            ("acted", "host-a:1"), ("held", "a"), ("held", "b"),
        ]  # fmt: skip
        assert sp.settled_faults(two, since=0) == {("retry-flaky", "run:164")}


def test_a_request_for_approval_is_answered_once(store: Store) -> None:
    ask = sp.record(store, {**ACT, "verdict": "awaiting_approval"}, by="ev")
    assert ask is not None
    assert [r.id for r in sp.pending(store)] == [ask]
    assert sp.record(store, {**ACT, "verdict": "awaiting_approval"}, by="ev") is None
    yes = sp.record(store, {**ACT, "verdict": "approved", "approval_of": ask}, by="alice")
    no = sp.record(store, {**ACT, "verdict": "rejected", "approval_of": ask}, by="bob")
    assert yes is not None and no is None  # bob was a moment late
    assert sp.pending(store) == []
    # The approved act itself goes in as the fault's act (the request is no act).
    acted = sp.record(store, ACT, by="ev")
    assert acted is not None
    sp.set_action(store, acted, action_id=12, run_id=170)
    row = sp.get(store, acted)
    assert row is not None and (row.action_id, row.run_id) == (12, 170)


def test_pause_and_resume_are_decisions_with_who(store: Store, clock: Clock) -> None:
    assert sp.paused(store) is None
    pause = {"policy": "*", "target": "*", "verdict": "paused", "why": "incident 42: hands off"}
    sp.record(store, pause, by="alice")
    clock.advance(60)
    now = sp.paused(store)
    assert now is not None and now.decided_by == "alice" and "incident 42" in now.why
    sp.record(store, {**pause, "verdict": "resumed", "why": "resumed"}, by="bob")
    assert sp.paused(store) is None
    # A policy's own trail includes the pauses (they applied to it).
    assert [r.verdict for r in sp.decisions(store, since=0, policy="retry-flaky")] == [
        "paused", "resumed",
    ]  # fmt: skip


def test_hostile_text_is_stored_as_it_came_but_nul_and_bad_verdicts_refused(
    store: Store,
) -> None:
    evil = {**ACT, "fault": "run:1", "why": "x\x1b[2J\ny\x00"}
    decision = sp.record(store, evil, by="ev")
    assert decision is not None
    row = sp.get(store, decision)
    # The screens escape what they show; PostgreSQL's text cannot hold NUL.
    assert row is not None and row.why == "x\x1b[2J\ny\ufffd"
    with pytest.raises(ValueError, match="unknown verdict"):
        sp.record(store, {**ACT, "verdict": "nuked"}, by="ev")


def test_decisions_are_on_the_timeline_with_who_and_why(store: Store, clock: Clock) -> None:
    from opstui.store.timeline import timeline

    sp.record(store, {**ACT, "service": "billing-worker"}, by="host-a:1:policies")
    clock.advance(5)
    sp.record(store, {"policy": "*", "target": "*", "verdict": "paused", "why": "paused by alice"},
              by="alice")  # fmt: skip
    clock.advance(5)
    held = {**ACT, "fault": "run:165", "verdict": "held", "why": "run 165: policies are paused"}
    sp.record(store, held, by="host-a:1:policies")
    events = timeline(store, since=0, kinds=("policy",))
    assert [(e.what, e.actor, e.severity) for e in events] == [
        ("held", "policy:retry-flaky", "ok"),
        ("paused", "alice", "warn"),
        ("acted", "policy:retry-flaky", "warn"),
    ]
    acted = events[-1]
    assert acted.subject == "billing-worker" and acted.service == "billing-worker"
    assert acted.summary == "policy retry-flaky: run 164 failed at test: retry billing-worker"
    assert acted.ref.startswith("policy:") and acted.environment == "production"
    # Cut to one service, the pause (every policy) is not its event.
    assert [e.what for e in timeline(store, since=0, service="billing-worker",
                                     kinds=("policy",))] == ["held", "acted"]  # fmt: skip
