"""The timeline screen (T): what happened, newest first, cut by service, kind,
environment, window and text; enter opens what a row is about. And the marks
of deploys and rollbacks under an endpoint's charts and a model's drift history.

The store is the bundled sample history, plus an incident written with the
store's own API 15 to 5 minutes before the frozen clock: web-api fails at
deploy (its message hostile), a deploy fails, and a rollback follows.
"""

from __future__ import annotations

import re
from pathlib import Path

from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Static

from opstui.store import Store
from opstui.store import status as st
from opstui.store.deployments import add_deployment
from opstui.store.runs import create_run, finish_run, finish_stage, start_stage
from opstui.tui.app import OpstuiApp
from opstui.tui.screens.endpoint import EndpointScreen
from opstui.tui.screens.model import ModelScreen
from opstui.tui.screens.pipeline import PipelineScreen
from opstui.tui.screens.timeline import TimelineScreen
from tests.test_tui import settle, text_of
from tests.tui_support import FROZEN, make_app, sample_config, sample_store

HOSTILE = "\x1b[2J[red]x[/]"
SERVED = (
    '[endpoints.web]\nurl = "http://127.0.0.1:9/metrics"\nkind = "health"\nservice = "web-api"\n'
)


class Incident:
    def __init__(self, path: Path, run: int, deployed: int, failed: int, rollback: int) -> None:
        self.path, self.run, self.deployed = path, run, deployed
        self.failed, self.rollback = failed, rollback


def incident_store(tmp: Path) -> Incident:
    path = sample_store(tmp)
    now = [FROZEN - 900.0]
    with Store(path, clock=lambda: now[0]) as store:
        run, _ = create_run(store, "web-api", stages=["build", "deploy"], actor="ci@build-03")
        for name in ("build", "deploy"):
            start_stage(store, run, name)
            now[0] += 5
            bad = name == "deploy"
            finish_stage(store, run, name, status=st.FAILED if bad else st.SUCCEEDED,
                         exit_code=1 if bad else 0, message=HOSTILE if bad else None)  # fmt: skip
        finish_run(store, run, message=HOSTILE)
        with store.write() as tx:
            deployed, _ = add_deployment(tx, environment="production", target="web-api",
                                         version="1.16.0", actor="ci@build-03",
                                         deployed_at=FROZEN - 1500)  # fmt: skip
            failed, _ = add_deployment(tx, environment="production", target="web-api",
                                       version="1.16.1", status="failed", actor="ci@build-03",
                                       deployed_at=FROZEN - 600)  # fmt: skip
            rollback, _ = add_deployment(tx, environment="production", target="web-api",
                                         version="1.14.10", action="rollback", actor="dana@ops",
                                         deployed_at=FROZEN - 300)  # fmt: skip
    return Incident(path, run, deployed, failed, rollback)


def timeline_app(tmp: Path, incident: Incident, **kwargs: object) -> OpstuiApp:
    config = sample_config(tmp, SERVED)
    return make_app(tmp, store=incident.path, config=config, **kwargs)  # type: ignore[arg-type]


async def open_timeline(pilot: Pilot[None]) -> TimelineScreen:
    await settle(pilot)
    await pilot.press("T")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, TimelineScreen)
    return screen


async def press(pilot: Pilot[None], *keys: str) -> None:
    await pilot.press(*keys)
    await settle(pilot)


def kind_of(screen: TimelineScreen) -> str | None:
    """The kind filter, read afresh (a key changes it under the type checker's feet)."""
    return screen.only_kind


def plain(screen: TimelineScreen) -> list[str]:
    """Each row's cells as one line of plain text."""
    return [
        " ".join(c.plain if isinstance(c, Text) else str(c) for c in cells)
        for _, cells in screen.table.shown_rows
    ]


async def test_T_opens_the_timeline_with_the_failure_and_the_rollback_after_it(
    tmp_path: Path,
) -> None:
    incident = incident_store(tmp_path)
    app = timeline_app(tmp_path, incident)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_timeline(pilot)
        keys = screen.table.keys
        rolled, failed_deploy, failed_run = (
            f"deployment:{incident.rollback}",
            f"deployment:{incident.failed}",
            f"run:{incident.run}",
        )
        # Newest first: the rollback, the deploy that failed, the run that failed.
        assert keys.index(rolled) < keys.index(failed_deploy) < keys.index(failed_run)
        shown = text_of(app)
        assert "Timeline: what happened, newest first" in shown
        assert "rolled back" in shown and "failed" in shown
        assert "last 24h" in shown
        # The sample's older events of the day are there too.
        assert any("fraud-model #161 failed" in row for row in plain(screen))
        # The severity is a word (what) as well as a colour.
        cells = dict(screen.table.shown_rows)
        what = cells[failed_run][1]
        assert isinstance(what, Text) and what.plain == "failed" and "red" in str(what.style)
        assert cells[rolled][1].plain == "rolled back" and "yellow" in str(cells[rolled][1].style)


async def test_filters_cut_rows_and_say_so(tmp_path: Path) -> None:
    incident = incident_store(tmp_path)
    app = timeline_app(tmp_path, incident)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_timeline(pilot)
        everything = len(screen.table.keys)
        # s: all, then each service met, sorted.
        for _ in range(10):
            if screen.only_service == "web-api":
                break
            await press(pilot, "s")
        assert screen.only_service == "web-api"
        rows = plain(screen)
        assert rows and all("web-api" in r for r in rows)
        assert len(rows) < everything
        assert "service web-api" in str(screen.query_one("#note", Static).render())
        # K: the kinds in turn; "run" first (k is up a row, as in every table).
        await press(pilot, "K")
        assert screen.only_kind == "run"
        assert screen.table.keys == [f"run:{incident.run}"]
        await press(pilot, "K")  # deploy
        assert screen.only_kind == "deploy"
        assert all(k.startswith("deployment:") for k in screen.table.keys)
        note = str(screen.query_one("#note", Static).render())
        assert "service web-api" in note and "kind deploy" in note
        # w: 24h -> 7d -> 30d -> 1h; the sample's 22h-old staging deploy goes at 1h.
        for _ in range(10):  # K round to all kinds again
            if kind_of(screen) is None:
                break
            await press(pilot, "K")
        await press(pilot, "w", "w")
        assert "last 30d" in text_of(app)
        month = len(screen.table.keys)
        await press(pilot, "w")
        assert "last 1h" in text_of(app)
        hour = screen.table.keys
        assert len(hour) < month
        assert set(hour) == {
            f"deployment:{incident.deployed}",
            f"deployment:{incident.rollback}",
            f"deployment:{incident.failed}",
            f"run:{incident.run}",
        }
        # The text filter (/): rows whose text holds it.
        await press(pilot, "slash")
        await pilot.press(*"rolled")
        await pilot.pause(0.1)
        assert screen.table.keys == [f"deployment:{incident.rollback}"]
        assert "text 'rolled'" in str(screen.query_one("#note", Static).render())
        await press(pilot, "escape")  # clears the filter, stays on the screen
        assert app.screen is screen and len(screen.table.keys) == 4


async def test_hostile_text_in_a_summary_is_shown_escaped(tmp_path: Path) -> None:
    incident = incident_store(tmp_path)
    app = timeline_app(tmp_path, incident)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_timeline(pilot)
        (row,) = [r for k, r in zip(screen.table.keys, plain(screen), strict=True)
                  if k == f"run:{incident.run}"]  # fmt: skip
        assert "\\x1b[2J[red]x[/]" in row and "\x1b" not in row
        assert "\\x1b[2J[red]x[/]" in text_of(app)


async def test_enter_opens_the_pipeline_of_a_run(tmp_path: Path) -> None:
    incident = incident_store(tmp_path)
    app = timeline_app(tmp_path, incident)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_timeline(pilot)
        assert screen.table.select_key(f"run:{incident.run}")
        assert screen.selected() == "pipeline:web-api"
        await press(pilot, "enter")
        assert isinstance(app.screen, PipelineScreen) and app.screen.target == "web-api"
        await press(pilot, "escape")  # back to the timeline
        assert app.screen_stack[-1] is screen
        # A deployment of a service opens its pipeline too.
        assert screen.table.select_key(f"deployment:{incident.rollback}")
        assert screen.selected() == "pipeline:web-api"


async def test_nothing_happened_is_said(tmp_path: Path) -> None:
    incident = incident_store(tmp_path)
    app = timeline_app(tmp_path, incident, clock=lambda: FROZEN + 30 * 86400)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_timeline(pilot)
        assert screen.table.keys == []
        assert "Nothing happened in the last 24h" in text_of(app)


async def test_the_endpoint_marks_the_rollback_of_what_it_serves(tmp_path: Path) -> None:
    incident = incident_store(tmp_path)
    app = timeline_app(tmp_path, incident)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_key("endpoint:web")
        await settle(pilot)
        assert isinstance(app.screen, EndpointScreen)
        charts = str(app.screen.query_one("#charts", Static).render())
        (marks,) = [line for line in charts.splitlines() if line.startswith("deploys")]
        # A mark in the minute of each: the deploy 25 minutes ago, the failed one
        # 10, the rollback 5. The chart fills its box (as many columns as fit,
        # a shorter history spread across them): the marks keep their order
        # and their spacing, scaled, and the rollback sits by the right edge.
        down, failed, up = marks.index("▼"), marks.index("✗"), marks.index("▲")
        assert up < failed < down
        assert abs((failed - up) - 3 * (down - failed)) <= 2, marks
        assert len(marks.rstrip()) - down <= 8, marks
        assert "▼ 12:25Z 1.14.10 dana@ops" in charts


async def test_the_model_marks_its_rollback_on_the_drift_history(tmp_path: Path) -> None:
    path = sample_store(tmp_path)
    with Store(path, clock=lambda: FROZEN) as store, store.write() as tx:
        add_deployment(tx, environment="production", target="fraud", target_kind="model",
                       version="4", action="rollback", actor="dana@ops",
                       deployed_at=FROZEN - 2 * 3600)  # fmt: skip
    app = make_app(tmp_path, store=path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_key("model:fraud")
        await settle(pilot)
        assert isinstance(app.screen, ModelScreen)
        history = str(app.screen.query_one("#history", Static).render())
        (marks,) = [line for line in history.splitlines() if line.startswith("deploys")]
        # Two hours ago, an hour a bar, the newest hour the last bar: as many
        # hours as the width holds, said at the line's end ("46h, an hour a bar").
        hours = int(re.search(r"(\d+)h, an hour a bar", history).group(1))  # type: ignore[union-attr]
        assert marks.index("▼") == len("deploys  ") + hours - 1 - 2, marks
        assert "▼ 10:30Z prod v4 dana@ops" in history


async def test_ten_newer_runs_leave_the_rollback_and_the_failure_it_fixed(
    tmp_path: Path,
) -> None:
    incident = incident_store(tmp_path)
    app = timeline_app(tmp_path, incident)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_timeline(pilot)
        # Ten newer runs, written by another process while the screen is open.
        at = [FROZEN - 240.0]
        with Store(incident.path, clock=lambda: at[0]) as store:
            for _ in range(10):
                run, _ = create_run(store, "web-api", stages=["deploy"], actor="ci@build-01")
                start_stage(store, run, "deploy")
                at[0] += 20
                finish_stage(store, run, "deploy", exit_code=0)
                finish_run(store, run)
        await settle(pilot)
        keys = screen.table.keys
        assert f"run:{incident.run}" in keys and f"deployment:{incident.rollback}" in keys
        # The dashboard's feed too (its newest end): both, among the newer runs.
        await press(pilot, "escape")
        board = app.dashboard()
        assert board is not None
        feed = " ".join(str(cells[1]) for _, cells in board.events.shown_rows)
        # (The failed 1.16.1 replaced nothing: the rollback replaced 1.16.0.)
        assert "web-api rolled back 1.16.0 -> 1.14.10 in production" in feed
        assert f"web-api #{incident.run} failed" in feed
