"""The console on a team store (a real PostgreSQL): runs of several hosts, a host filter,
an action that runs through the detached runner into the same database."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from opstui.store import Store
from opstui.store import runs as store_runs
from opstui.store.history import run_history
from opstui.store.importer import import_files
from opstui.tui.screens.modals import ConfirmScreen
from opstui.tui.screens.pipeline import PipelineScreen
from tests.test_tui import board, settle, text_of, until_modal
from tests.tui_support import FROZEN, ROOT, make_app


def team_store(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample history, then a failed run recorded on another host."""
    with Store(url, clock=lambda: FROZEN) as store:
        import_files(store, [ROOT / "sample_runs"])
        monkeypatch.setenv("OPSTUI_HOST", "ci-runner-7")
        run_id, _ = store_runs.create_run(store, "nightly-etl", stages=["extract", "load"])
        store_runs.finish_stage(store, run_id, "extract", exit_code=3)
        store_runs.finish_run(store, run_id)
        monkeypatch.delenv("OPSTUI_HOST")


async def test_the_console_shows_and_filters_the_hosts_of_a_team_store(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    team_store(pg_url, monkeypatch)
    app = make_app(tmp_path, store=pg_url)  # type: ignore[arg-type]
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        b = board(app)
        assert len(b.pipelines.keys) == 5
        shown = text_of(app)
        assert "nightly-etl" in shown
        assert "secret" not in shown and "@127.0.0.1" in shown  # db@host, no password
        await pilot.press("slash", *"host:ci-runner")
        assert b.pipelines.keys == ["pipeline:nightly-etl"]
        assert "Pipelines (1/5)" in text_of(app)
        await pilot.press("escape")
        assert len(b.pipelines.keys) == 5
        b.jump("pipeline:nightly-etl")
        await pilot.press("enter")
        for _ in range(100):
            await pilot.pause(0.02)
            if isinstance(app.screen, PipelineScreen) and app.screen.runs.keys:
                break
        await settle(pilot)
        assert isinstance(app.screen, PipelineScreen)
        assert "@ci-runner-7" in text_of(app)


async def test_a_retry_from_the_console_runs_into_the_team_store(
    tmp_path: Path, pg_url: str
) -> None:
    with Store(pg_url, clock=lambda: FROZEN) as store:
        import_files(store, [ROOT / "sample_runs"])
    app = make_app(tmp_path, store=pg_url, clock=time.time)  # type: ignore[arg-type]
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert board(app).jump("pipeline:fraud-model")
        await pilot.press("r")
        await until_modal(pilot, ConfirmScreen)
        assert "Retry fraud-model?" in text_of(app)
        await pilot.press("y")
        # The detached runner was given the store in its environment (never
        # on its command line): its run lands in the same database and
        # finishes there, and the console sees it.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            await pilot.pause(0.1)
            with Store(pg_url) as db:
                latest = run_history(db, "fraud-model", limit=1)[0]
            if latest.trigger == "retry" and latest.status == "succeeded":
                break
        else:
            raise AssertionError(f"the retry did not finish: {latest}")
        await settle(pilot)
        row = {p.name: p for p in app.snapshot.pipelines}["fraud-model"] if app.snapshot else None
        assert row is not None and row.latest is not None and row.latest.trigger == "retry"


async def test_a_commit_wakes_the_console_at_once(tmp_path: Path, pg_url: str) -> None:
    """LISTEN/NOTIFY: with a refresh interval of a minute, a run recorded by
    another process shows within a second."""
    with Store(pg_url, clock=lambda: FROZEN) as store:
        import_files(store, [ROOT / "sample_runs"])
    app = make_app(tmp_path, store=pg_url, refresh=60.0)  # type: ignore[arg-type]
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.pause(0.5)  # the listener is up
        with Store(pg_url, clock=lambda: FROZEN) as store:
            store_runs.create_run(store, "woken-up", stages=["a"])
        start = time.monotonic()
        while time.monotonic() - start < 5:
            await pilot.pause(0.05)
            if "pipeline:woken-up" in board(app).pipelines.keys:
                break
        took = time.monotonic() - start
        assert "pipeline:woken-up" in board(app).pipelines.keys
        assert took < 2.0, took
