"""Acknowledge a fault (the incident flow, part 5): in the store's audit
trail, so every console sees it; it sorts after the others, rings no bell,
and ends at its expiry or when taken back; another failed run is a new
fault, not covered."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opstui.store import Store
from opstui.store.acks import acknowledge, active_acks, unacknowledge
from opstui.store.actions import list_actions
from opstui.store.fields import BadValue
from opstui.tui.screens.modals import AckScreen, duration
from opstui.views.urgency import Fault, new_faults

from .conftest import Clock
from .test_tui import board, settle, text_of, until_modal
from .test_worst_first import _fail
from .tui_support import FROZEN, make_app, sample_store


def test_an_acknowledgement_is_audited_seen_and_ends(store: Store, clock: Clock) -> None:
    acknowledge(store, fault="pipeline:etl:run:7", target="pipeline:etl", actor="dana@ops",
                note="on it \x1b[31m", seconds=600)  # fmt: skip
    (ack,) = active_acks(store).values()
    assert (ack.fault, ack.actor, ack.until) == ("pipeline:etl:run:7", "dana@ops", clock() + 600)
    assert ack.note == "on it \x1b[31m"  # kept as written; escaped where shown
    (row,) = list_actions(store, limit=5)
    assert (row.action, row.target, row.actor) == ("acknowledge", "pipeline:etl", "dana@ops")
    clock.advance(601)
    assert active_acks(store) == {}  # expired
    acknowledge(store, fault="pipeline:etl:run:7", target="pipeline:etl", actor="dana@ops")
    unacknowledge(store, fault="pipeline:etl:run:7", target="pipeline:etl", actor="erin@ops")
    assert active_acks(store) == {}
    assert [a.action for a in list_actions(store, limit=5)][:2] == ["unacknowledge", "acknowledge"]
    with pytest.raises(BadValue, match="from a second to 7 days"):
        acknowledge(store, fault="f", target="pipeline:etl", actor="x", seconds=8 * 86400)


def test_a_hand_edited_audit_row_acknowledges_nothing(store: Store) -> None:
    acknowledge(store, fault="f", target="pipeline:etl", actor="x")
    with store.write() as tx:
        tx.execute("UPDATE actions SET plan = '{not json' WHERE action = 'acknowledge'")
    assert active_acks(store) == {}


def test_an_acknowledged_fault_that_flaps_back_rings_no_bell() -> None:
    burning = Fault("endpoint:web", 0, 1.0, "endpoint:web:burning:page", "web burning (page)")
    assert new_faults(set(), [burning]) == [burning]
    assert new_faults(set(), [burning], {"endpoint:web:burning:page"}) == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600), ("30m", 1800), ("90s", 90), ("2d", 172800), ("45", 2700), (" 2H ", 7200),
     ("0m", None), ("8d", None), ("-1h", None), ("1.5h", None), ("soon", None), ("", None)],
)  # fmt: skip
def test_how_long_reads_a_number_and_a_unit(text: str, seconds: float | None) -> None:
    assert duration(text) == seconds


async def test_A_acknowledges_the_selected_fault_and_another_console_sees_it(
    tmp_path: Path,
) -> None:
    store = sample_store(tmp_path)
    app = make_app(tmp_path, store=store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert board(app).selected() == "pipeline:churn-model"  # the worst fault
        await pilot.press("A")
        await until_modal(pilot, AckScreen)
        assert "Acknowledge churn-model lost at train" in text_of(app)
        await pilot.press(*"restarting the trainer", "enter", "enter")
        for _ in range(100):
            await pilot.pause(0.05)
            if "churn-model (ack)" in text_of(app):
                break
        shown = text_of(app)
        assert "churn-model (ack)" in shown, shown
        # Acknowledged: after the others. The cursor follows the worst one left.
        assert board(app).selected() == "pipeline:fraud-model"
        # Its screen says who has it, until when and why.
        app.open_key("pipeline:churn-model")
        for _ in range(100):
            await pilot.pause(0.05)
            if "acknowledged by" in text_of(app):
                break
        shown = text_of(app)
        said = re.search(
            r"acknowledged by tester@console \S+, until \d\d:\d\d:\d\dZ: restart", shown
        )
        assert said, shown
    with Store(store) as db:
        (ack,) = active_acks(db, FROZEN).values()
        assert (ack.target, ack.note, ack.until - ack.at) == (
            "pipeline:churn-model",
            "restarting the trainer",
            3600,
        )
    second = make_app(tmp_path, store=store)
    async with second.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "churn-model (ack)" in text_of(second)
        # A new failure of the same pipeline is a new fault: not covered.
        with Store(store, clock=lambda: FROZEN + 5) as db:
            _fail(db, "churn-model")
        await settle(pilot)
        assert "churn-model (ack)" not in text_of(second)
        assert second.rings == 1


async def test_a_read_only_console_does_not_acknowledge(tmp_path: Path) -> None:
    store = sample_store(tmp_path)
    app = make_app(tmp_path, store=store, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("A")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, AckScreen)
        assert any("read-only session" in n.message for n in app._notifications)
