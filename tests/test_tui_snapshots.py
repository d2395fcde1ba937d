"""Every console screen at 80x24, 120x40 and 200x50, compared with the SVGs in __snapshots__/.

Built from sample_runs/ with the clock frozen 30 minutes after the history
ends and the store under the test's own directory, so nothing on screen
changes between runs. `pytest --snapshot-update` rewrites them after a
deliberate change; look at the report before accepting one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from opstui.tui.app import OpstuiApp
from opstui.tui.screens.modals import ConfirmScreen, HelpScreen, JumpScreen
from tests.test_tui import settle, until_modal
from tests.tui_support import make_app, sample_config

SIZES = [(80, 24), (120, 40), (200, 50)]
ENDPOINT = '[endpoints.web]\nurl = "http://127.0.0.1:9/metrics"\nkind = "health"\nslo = 0.999\n'


def _open(key: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run(pilot: Pilot[None]) -> None:
        await settle(pilot)
        app = pilot.app
        assert isinstance(app, OpstuiApp)
        app.open_key(key)
        await settle(pilot)

    return run


async def _dashboard(pilot: Pilot[None]) -> None:
    await settle(pilot)


async def _audit(pilot: Pilot[None]) -> None:
    await settle(pilot)
    await pilot.press("a")
    await settle(pilot)


async def _timeline_screen(pilot: Pilot[None]) -> None:
    await settle(pilot)
    await pilot.press("T")
    await settle(pilot)


async def _confirm(pilot: Pilot[None]) -> None:
    await settle(pilot)
    await pilot.press("down", "r")
    await until_modal(pilot, ConfirmScreen)


async def _help(pilot: Pilot[None]) -> None:
    await settle(pilot)
    await pilot.press("question_mark")
    await until_modal(pilot, HelpScreen)


async def _jump(pilot: Pilot[None]) -> None:
    # Waits for what it shows, not a fixed time: a fixed 0.1 s failed once
    # on a loaded machine.
    await settle(pilot)
    await pilot.press("colon")
    await until_modal(pilot, JumpScreen)
    await pilot.press(*"mod")
    for _ in range(200):
        await pilot.pause(0.02)
        if pilot.app.screen.query_one(Input).value == "mod":
            await pilot.pause(0.05)  # the matches filtered and drawn
            return
    raise AssertionError("the jump box never read 'mod'")


SCREENS = {
    "dashboard": _dashboard,
    "pipeline": _open("pipeline:fraud-model"),
    "model": _open("model:fraud"),
    "endpoint": _open("endpoint:web"),
    "audit": _audit,
    "timeline": _timeline_screen,
    "confirm": _confirm,
    "help": _help,
    "jump": _jump,
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(
    screen: str,
    size: tuple[int, int],
    snap_compare: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # the status line shows the store path relative to here
    app = make_app(tmp_path, config=sample_config(tmp_path, ENDPOINT, portable=True))
    assert snap_compare(app, terminal_size=size, run_before=SCREENS[screen])


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_endpoint_serving_a_service(
    size: tuple[int, int], snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its screen lists the service's deployments in its environment, the current marked."""
    monkeypatch.chdir(tmp_path)
    served = ENDPOINT + 'service = "web-api"\n'
    app = make_app(tmp_path, config=sample_config(tmp_path, served, portable=True))
    assert snap_compare(app, terminal_size=size, run_before=_open("endpoint:web"))


@pytest.mark.parametrize("size", [(80, 24), (160, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_timeline(
    size: tuple[int, int], snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An incident (a failed run with a hostile message, a failed deploy, a
    rollback) over the sample's day: newest first, the columns by width."""
    from tests.test_timeline_screen import SERVED, incident_store

    monkeypatch.chdir(tmp_path)
    incident = incident_store(tmp_path)
    config = sample_config(tmp_path, SERVED, portable=True)
    app = make_app(tmp_path, store=incident.path, config=config)
    assert snap_compare(app, terminal_size=size, run_before=_timeline_screen)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_endpoint_marks_deploys(
    size: tuple[int, int], snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under its charts, a mark in the minute of each deploy, failure and rollback."""
    from tests.test_timeline_screen import SERVED, incident_store

    monkeypatch.chdir(tmp_path)
    incident = incident_store(tmp_path)
    config = sample_config(tmp_path, SERVED, portable=True)
    app = make_app(tmp_path, store=incident.path, config=config)
    assert snap_compare(app, terminal_size=size, run_before=_open("endpoint:web"))


async def _log_search_typed(pilot: Pilot[None]) -> None:
    await _open("pipeline:fraud-model")(pilot)
    await pilot.press("slash", *"merch.nt")
    for _ in range(200):
        await pilot.pause(0.02)
        if pilot.app.screen.query_one("#search", Input).value == "merch.nt":
            await pilot.pause(0.05)  # drawn
            return
    raise AssertionError("the search box never read 'merch.nt'")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_log_search_is_visible_while_typed(
    size: tuple[int, int], snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log's search box sits above the footer, what is typed on screen."""
    monkeypatch.chdir(tmp_path)
    app = make_app(tmp_path, config=sample_config(tmp_path, ENDPOINT, portable=True))
    assert snap_compare(app, terminal_size=size, run_before=_log_search_typed)


POLICIES = """
[policies.retry-web-tests]
trigger = "run_failed"
pipeline = "web-api"
stages = ["test"]
action = "retry"

[policies.retrain-fraud]
trigger = "drift"
model = "fraud"
action = "retrain"

[policies.rollback-on-burn]
trigger = "burn"
endpoint = "web"
action = "rollback"
mode = "shadow"
"""


async def _policies(pilot: Pilot[None]) -> None:
    await settle(pilot)
    await pilot.press("P")
    await settle(pilot)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_policies_screen(
    size: tuple[int, int], snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three policies, one request waiting, a decision of each kind, the flaky stage."""
    from opstui.store import Store
    from opstui.store import policies as sp
    from tests.tui_support import FROZEN, sample_store

    monkeypatch.chdir(tmp_path)
    store = sample_store(tmp_path)
    served = ENDPOINT + 'service = "web-api"\n'
    config = sample_config(tmp_path, served + POLICIES, portable=True)
    decisions = [
        ("retry-web-tests", "pipeline:web-api", "run:144", "acted", "run 144 of web-api failed "
         "at test: retry web-api: run 145", 3000),
        ("rollback-on-burn", "endpoint:web", "burn:web:deploy:9", "would_act", "web burning 20.1x "
         "over 1h after deploy of web-api 1.15.1 in production: would roll back web-api, after "
         "an operator's approval (shadow mode)", 900),
        ("retrain-fraud", "model:fraud", "drift:fraud:1", "awaiting_approval", "fraud's dataset "
         "drifted in 3 checks in a row: retrain fraud waits for an operator's approval", 600),
    ]  # fmt: skip
    with Store(store) as db:
        for policy, target, fault, verdict, why, ago in decisions:
            sp.record(db, {"policy": policy, "target": target, "fault": fault, "verdict": verdict,
                           "why": why, "action": "retry", "environment": "production"},
                      by="ops-host:1:policies", now=FROZEN - ago)  # fmt: skip
    app = make_app(tmp_path, store=store, config=config)
    assert snap_compare(app, terminal_size=size, run_before=_policies)
