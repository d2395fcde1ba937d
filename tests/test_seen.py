"""The headline says what changed since the console last showed the board
(the incident flow, part 3): since the previous console closed, and since a
detail screen covered it; the state file is a convenience that never breaks
the console."""

from __future__ import annotations

import json
import os
from pathlib import Path

from opstui.store import Store
from opstui.tui import seen
from opstui.tui.screens.modals import AckScreen
from opstui.views.snapshot import Event, changes

from .test_tui import board, settle, until_modal
from .test_worst_first import _fail
from .tui_support import FROZEN, make_app, sample_store


def test_changes_are_counted_most_urgent_first() -> None:
    events = [
        Event(10.0, "deploy", "ok", "web deployed 1 -> 2 in staging", "deployed"),
        Event(11.0, "run", "fault", "etl #3 failed", "failed"),
        Event(12.0, "run", "fault", "etl #4 failed", "failed"),
        Event(13.0, "alert", "fault", "web burning [page] firing", "firing"),
        Event(14.0, "action", "ok", "dana rollback web", "rollback"),
        Event(15.0, "run", "ok", "etl #5 succeeded"),  # a latest run: not a change
        Event(5.0, "run", "fault", "etl #2 failed", "failed"),  # before: not counted
    ]
    assert changes(events, 9.0) == ["2 failed", "1 alert firing", "1 deployed", "1 action"]
    assert changes(events, 20.0) == []


def test_the_state_file_round_trips_and_a_bad_one_is_ignored(tmp_path: Path) -> None:
    assert seen.last_seen("/srv/ops.db") is None
    seen.remember("/srv/ops.db", 1234.5)
    assert seen.last_seen("/srv/ops.db") == 1234.5
    path = Path(os.environ["XDG_STATE_HOME"]) / "opstui" / "seen.json"
    path.write_text('{"/srv/ops.db": "soon", "/b": NaN, "/c": 7}')
    assert seen.last_seen("/srv/ops.db") is None and seen.last_seen("/c") == 7.0
    path.write_text("[1, 2")
    assert seen.last_seen("/c") is None
    seen.remember("/d", 8.0)  # a broken file is replaced, not a crash
    assert json.loads(path.read_text()) == {"/d": 8.0}


async def test_the_headline_says_what_changed_since_the_last_console(tmp_path: Path) -> None:
    store = sample_store(tmp_path)
    seen.remember(str(store.absolute()), FROZEN - 2 * 3600)  # the last console: 2h ago
    with Store(store, clock=lambda: FROZEN - 60) as db:
        _fail(db, "billing-worker")
    app = make_app(tmp_path, store=store)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        line = str(board(app).headline(board(app).snap))  # type: ignore[arg-type]
        # The sample's clock stands at 12:30 UTC: two hours before is 10:30.
        assert "since 10:30: 1 failed, 1 deployed" in line


async def test_back_from_a_detail_screen_it_says_what_happened_meanwhile(
    tmp_path: Path,
) -> None:
    store = sample_store(tmp_path)
    clock = [FROZEN]
    app = make_app(tmp_path, store=store, clock=lambda: clock[0])
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        b = board(app)
        assert b.snap is not None and "since" not in str(b.headline(b.snap))
        # A dialog over the board leaves it in view: not a return.
        await pilot.press("A")
        await until_modal(pilot, AckScreen)
        clock[0] += 60
        with Store(store, clock=lambda: clock[0]) as db:
            _fail(db, "billing-worker")
        await pilot.press("escape")
        await settle(pilot)
        assert "since" not in str(b.headline(b.snap))
        await pilot.press("enter")  # the selected pipeline's screen covers the board
        await settle(pilot)
        clock[0] += 300
        with Store(store, clock=lambda: clock[0]) as db:
            _fail(db, "web-api")
        await pilot.press("escape")
        await settle(pilot)
        assert b.snap is not None
        assert "since 12:31: 1 failed" in str(b.headline(b.snap))
    app.remember_seen()
    assert seen.last_seen(str(store.absolute())) == clock[0]
