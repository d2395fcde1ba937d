"""The store-wide timeline (the incident flow, part 2): every failure,
recovery, deploy, rollback, alias move, alert, drift change and operator
action, kept however many runs come after; filtered by service, environment
and kind; alerts open once across consoles and resolve only when judged."""

from __future__ import annotations

from opstui.store import Store
from opstui.store import status as st
from opstui.store.acks import acknowledge
from opstui.store.actions import record_action
from opstui.store.alerts import Wanted, open_alerts, settle
from opstui.store.deployments import add_deployment
from opstui.store.runs import create_run, finish_run, finish_stage, start_stage
from opstui.store.timeline import timeline

from .conftest import Clock


def _run(store: Store, clock: Clock, pipeline: str, outcome: str, *, stage: str = "deploy",
         trigger: str = "manual") -> int:  # fmt: skip
    run, _ = create_run(store, pipeline, stages=["build", stage], trigger=trigger)
    for name in ("build", stage):
        start_stage(store, run, name)
        clock.advance(5)
        failed = name == stage and outcome == st.FAILED
        finish_stage(store, run, name, status=st.FAILED if failed else st.SUCCEEDED,
                     exit_code=1 if failed else 0)  # fmt: skip
    finish_run(store, run)
    clock.advance(30)
    return run


def test_a_rollback_and_the_failure_it_fixed_outlive_ten_newer_runs(
    store: Store, clock: Clock
) -> None:
    start = clock()
    with store.write() as tx:
        add_deployment(tx, environment="production", target="web-api", version="41",
                       deployed_at=clock())  # fmt: skip
    clock.advance(60)
    failed = _run(store, clock, "web-api", st.FAILED)
    with store.write() as tx:
        add_deployment(tx, environment="production", target="web-api", version="42",
                       status="failed", deployed_at=clock(), actor="ci")  # fmt: skip
    clock.advance(60)
    rollback = _run(store, clock, "web-api", st.SUCCEEDED, stage="rollback", trigger="rollback")
    with store.write() as tx:
        add_deployment(tx, environment="production", target="web-api", version="40",
                       action="rollback", deployed_at=clock(), actor="dana@ops")  # fmt: skip
    for _ in range(10):
        _run(store, clock, "web-api", st.SUCCEEDED)
        _run(store, clock, "etl", st.SUCCEEDED)
    events = timeline(store, since=start)
    refs = [e.ref for e in events]
    assert f"run:{failed}" in refs and f"run:{rollback}" in refs
    by_ref = {e.ref: e for e in events}
    assert by_ref[f"run:{failed}"].what == "failed"
    assert "web-api #" in by_ref[f"run:{failed}"].summary
    assert "at deploy" in by_ref[f"run:{failed}"].summary
    assert by_ref[f"run:{rollback}"].what == "recovered"
    whats = [e.what for e in events if e.kind == "deploy"]
    assert whats == ["rolled back", "deploy failed", "deployed"]  # newest first
    (back,) = [e for e in events if e.what == "rolled back"]
    assert "41 -> 40" in back.summary and back.actor == "dana@ops"
    # Ten newer successes are not events: only changes are.
    assert len([e for e in events if e.kind == "run"]) == 2
    # Newest first, and the filters cut it.
    assert [e.at for e in events] == sorted((e.at for e in events), reverse=True)
    assert {e.subject for e in timeline(store, since=start, service="etl")} <= {"etl"}
    assert all(e.kind == "deploy" for e in timeline(store, since=start, kinds=["deploy"]))
    assert {e.environment for e in timeline(store, since=start, environment="production")} == {
        "production"
    }


def test_actions_and_acknowledgements_belong_to_the_service_an_endpoint_serves(
    store: Store, clock: Clock
) -> None:
    start = clock()
    acknowledge(store, fault="endpoint:web:burning:page", target="endpoint:web",
                actor="dana@ops", note="rolling back", seconds=1800)  # fmt: skip
    clock.advance(10)
    record_action(store, actor="dana@ops", action="rollback", target="web-api", plan={},
                  environment="production", status="succeeded",
                  outcome="run 12 succeeded")  # fmt: skip
    served = {"web": ("service", "web-api", "production")}
    events = timeline(store, since=start, service="web-api", served=served)
    assert [e.what for e in events] == ["rollback succeeded", "acknowledged"]
    ack = events[1]
    assert ack.summary == "dana@ops acknowledged web for 30m: rolling back"
    assert ack.service == "web-api"


def test_an_alert_opens_once_and_resolves_only_when_judged(store: Store, clock: Clock) -> None:
    start = clock()
    page = Wanted("burn:web:page", "burn", "web", "page", "web-api", "production",
                  "web burning its error budget")  # fmt: skip
    first = settle(store, [page], by="console-1")
    again = settle(store, [page], by="console-2")  # a second console judging the same
    assert len(first.fired) == 1 and again.fired == [] and len(open_alerts(store)) == 1
    clock.advance(60)
    # The endpoints could not be judged (its source down): not an all-clear.
    assert settle(store, [], undecided=["burn:web:"], by="console-1").resolved == []
    clock.advance(60)
    resolved = settle(store, [], by="console-2").resolved
    assert [a.key for a in resolved] == ["burn:web:page"] and open_alerts(store) == []
    events = timeline(store, since=start, kinds=["alert"])
    assert [e.what for e in events] == ["resolved", "firing"]
    assert events[0].summary == "web burning its error budget [page] resolved after 2m"
    assert events[0].actor == "console-2" and events[1].actor == "console-1"
    # Firing again later is a new alert, the old one kept.
    settle(store, [page], by="console-1")
    assert len(timeline(store, since=start, kinds=["alert"])) == 3


def test_drift_starting_and_clearing_are_events_not_every_check(store: Store, clock: Clock) -> None:
    from opstui.store.drift import CheckRow, save_check

    start = clock()
    for i, drifted in enumerate([False, True, True, True, False, False]):
        check = CheckRow(0, "fraud", "3", None, clock(), None, None, 100, f"w{i}", 4,
                         2 if drifted else 0, 0.5 if drifted else 0.0, drifted, None, None,
                         {}, {})  # fmt: skip
        with store.write() as tx:
            save_check(tx, check, [])
        clock.advance(600)
    events = timeline(store, since=start, kinds=["drift"])
    assert [e.what for e in events] == ["cleared", "started"]
    assert events[1].summary == "fraud v3 drift started: 2/4 features drifted"


def test_hostile_text_in_the_store_is_one_line_and_crashes_nothing(
    store: Store, clock: Clock
) -> None:
    start = clock()
    run, _ = create_run(store, "evil\x1b[2J", stages=["a"])
    finish_run(store, run, status=st.FAILED, message="boom\nsecond line\r\x07")
    with store.write() as tx:
        tx.execute("UPDATE runs SET params = '{not json' WHERE id = ?", (run,))
        tx.execute(
            """INSERT INTO actions (ts, actor, action, target, plan, status)
               VALUES (?, 'x', 'acknowledge', 'pipeline:evil', '[1, 2', 'succeeded')""",
            (clock(),),
        )
    events = timeline(store, since=start)
    assert len(events) == 2
    for e in events:
        assert "\n" not in e.summary and "\r" not in e.summary


def test_resolved_alerts_are_forgotten_with_the_metrics_open_ones_never(
    store: Store, clock: Clock
) -> None:
    from opstui.store.retention import KEEP_FOR, apply_retention

    old = Wanted("drift:fraud", "drift", "fraud", "ticket", "fraud", None, "fraud drifting")
    kept = Wanted("burn:web:page", "burn", "web", "page", None, None, "web burning")
    settle(store, [old, kept], by="c")
    settle(store, [kept], by="c")  # old resolves now
    clock.advance(KEEP_FOR + 60)
    assert apply_retention(store).alerts == 1
    assert [a.key for a in open_alerts(store)] == ["burn:web:page"]
    assert apply_retention(store).alerts == 0
