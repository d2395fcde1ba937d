"""The console survives its workers' failures, and audits its refusals like the CLI.

Each test breaks one thing a worker calls (the drift pass, spawning a
runner, the store read, a detail screen's read, the poller's thread) with
the kind of exception an operator's machine really raises, and checks what
an operator needs mid-incident: the console is still up and answers keys, a
notification names what failed, the panel fed by it says stale and why, and
the next run of the job, once the fault is gone, clears it.
"""

from __future__ import annotations

import errno
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from opstui.store import Store
from opstui.store.actions import list_actions
from opstui.tui.app import OpstuiApp
from opstui.tui.screens.audit import AuditScreen
from opstui.tui.screens.endpoint import EndpointScreen
from opstui.tui.screens.modals import ConfirmScreen
from opstui.tui.screens.pipeline import PipelineScreen
from opstui.tui.widgets import Panel
from tests.conftest import run_cli
from tests.test_tui import board, settle, text_of, until_modal
from tests.tui_support import make_app, sample_config, sample_store

ENDPOINT = '[endpoints.web]\nurl = "http://127.0.0.1:9/metrics"\nkind = "health"\nslo = 0.999\n'


async def until(
    pilot: Pilot[None], ready: Callable[[], bool], what: str, seconds: float = 20
) -> None:
    """Let the app run until ``ready()`` (a worker's result reached the screen)."""
    for _ in range(int(seconds / 0.02)):
        if ready():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"never happened: {what}")


def notices(app: OpstuiApp) -> list[str]:
    return [n.message for n in app._notifications]


def told(app: OpstuiApp, text: str) -> Callable[[], bool]:
    return lambda: any(text in m for m in notices(app))


def panel(app: OpstuiApp, name: str) -> Panel:
    return board(app).query_one(f"#panel-{name}", Panel)


async def still_answers(pilot: Pilot[None]) -> None:
    """The app is up and its bindings work: `?` opens the help, escape closes it."""
    app = pilot.app
    assert app.is_running
    await pilot.press("question_mark")
    await until(pilot, lambda: type(app.screen).__name__ == "HelpScreen", "help opened")
    await pilot.press("escape")
    await until(pilot, lambda: type(app.screen).__name__ == "DashboardScreen", "help closed")


# --- the drift pass -------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        FloatingPointError("overflow encountered in exp"),
        ValueError("Input X contains NaN"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_a_drift_pass_that_raises_is_told_and_marks_models_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)

        def broken(*args: object, **kwargs: object) -> object:
            raise error

        monkeypatch.setattr("opstui.drift.check.compute_drift", broken)
        worker = app.recompute_drift()
        assert worker is not None
        name = type(error).__name__
        await until(pilot, told(app, f"drift check of churn (and 1 more) failed: {name}"), "told")
        line = next(m for m in notices(app) if "drift check" in m)
        assert str(error) in line and "\n" not in line
        models = panel(app, "models")
        await until(pilot, lambda: models.has_class("stale"), "models stale")
        assert "drift check of churn" in str(models.border_subtitle)
        assert not panel(app, "pipelines").has_class("stale")
        assert len(board(app).models.keys) == 2  # the last data stays on screen
        await still_answers(pilot)

        # The fault goes: the next pass checks both models and clears the mark.
        monkeypatch.undo()
        again = app.recompute_drift()
        assert again is not None
        await until(pilot, lambda: not models.has_class("stale"), "models fresh again")
        await settle(pilot)
        snap = app.snapshot
        assert snap is not None
        fraud = next(m for m in snap.models if m.name == "fraud")
        assert fraud.drift_share is not None  # this pass really ran


# --- starting a runner --------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (OSError(errno.ENOMEM, "Cannot allocate memory"), "started: Cannot allocate memory"),
        (PermissionError(errno.EACCES, "Permission denied"), "started: Permission denied"),
    ],
    ids=["ENOMEM", "EACCES"],
)
async def test_a_runner_that_cannot_be_spawned_is_told_and_the_console_stays_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, shown: str
) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)

        def no_fork(*args: object, **kwargs: object) -> None:
            raise error

        monkeypatch.setattr("opstui.runner.actions.spawn_detached", no_fork)
        assert board(app).jump("pipeline:fraud-model")
        await pilot.press("r")
        await until_modal(pilot, ConfirmScreen)
        await pilot.press("y")
        # The run it queued is failed at once, not left to read "running".
        await until(pilot, told(app, f"the runner could not be {shown}"), "told")
        assert "is recorded failed" in next(m for m in notices(app) if shown in m)
        await still_answers(pilot)
        await settle(pilot)  # and it keeps reading the store
        assert not panel(app, "pipelines").has_class("stale")

        # With the fault gone, the next action starts its runner.
        monkeypatch.undo()
        assert board(app).jump("pipeline:web-api")
        await pilot.press("b")
        await until_modal(pilot, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, told(app, "rollback web-api: run"), "the rollback started")


# --- the store read ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (sqlite3.OperationalError("disk I/O error"), "OperationalError: disk I/O error"),
        (RuntimeError("the read model broke"), "RuntimeError: the read model broke"),
    ],
    ids=["sqlite", "RuntimeError"],
)
async def test_a_failing_store_read_marks_every_panel_stale_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, shown: str
) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)

        def broken(self: object) -> object:
            raise error

        monkeypatch.setattr("opstui.views.snapshot.SnapshotReader.snapshot", broken)
        await settle(pilot, ticks=3)
        assert notices(app) == [f"refresh failed: {shown}"]  # told once, not once a tick
        for name in ("pipelines", "endpoints", "models", "events"):
            assert panel(app, name).has_class("stale"), name
        assert "refresh failed" in str(panel(app, "pipelines").border_subtitle)
        assert len(board(app).pipelines.keys) == 4  # the last data stays on screen
        await still_answers(pilot)

        monkeypatch.undo()
        await settle(pilot)
        for name in ("pipelines", "endpoints", "models", "events"):
            assert not panel(app, name).has_class("stale"), name
        assert "2 failing" in text_of(app)


async def test_a_row_the_dashboard_cannot_draw_is_a_failed_refresh_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)

        def broken(*args: object, **kwargs: object) -> object:
            raise TypeError("unsupported format string passed to NoneType.__format__")

        monkeypatch.setattr("opstui.tui.screens.dashboard.model_rows", broken)
        await settle(pilot)
        await until(pilot, told(app, "refresh failed: TypeError: unsupported format"), "told")
        await still_answers(pilot)
        monkeypatch.undo()
        await settle(pilot)
        assert not panel(app, "models").has_class("stale")
        assert "prod:5" in text_of(app)


async def test_a_first_read_that_fails_says_why_instead_of_reading_for_ever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: object) -> object:
        raise KeyError("pipelines")

    monkeypatch.setattr("opstui.views.snapshot.SnapshotReader.snapshot", broken)
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, told(app, "refresh failed: KeyError: 'pipelines'"), "told")
        await until(pilot, lambda: panel(app, "pipelines").has_class("stale"), "stale")
        assert "No data: refresh failed: KeyError" in text_of(app)
        monkeypatch.undo()
        await settle(pilot)
        assert "2 failing" in text_of(app)


# --- detail screens: a log, an endpoint's history -------------------------------------


async def test_a_log_read_that_fails_marks_the_pipeline_screen_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)

        def broken(*args: object, **kwargs: object) -> object:
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

        monkeypatch.setattr("opstui.tui.screens.pipeline.log_window", broken)
        app.open_key("pipeline:fraud-model")
        screen = app.screen
        assert isinstance(screen, PipelineScreen)
        what = "refresh of pipeline fraud-model failed: UnicodeDecodeError"
        await until(pilot, told(app, what), "told")
        await until(pilot, lambda: screen.stale, "stale note")
        assert "stale: " + what in text_of(app)
        # The dashboard's own read worked: its panels are not marked.
        assert not panel(app, "pipelines").has_class("stale")
        await pilot.press("escape")  # the screen still answers its keys
        await until(pilot, lambda: app.screen is board(app), "back on the dashboard")

        monkeypatch.undo()
        app.open_key("pipeline:fraud-model")
        await settle(pilot)
        fresh = app.screen
        assert isinstance(fresh, PipelineScreen)
        assert "null share 0.31" in text_of(app)
        assert not fresh.stale


async def test_an_endpoint_history_read_that_fails_is_stale_then_fresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, config=sample_config(tmp_path, ENDPOINT))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)

        def broken(*args: object, **kwargs: object) -> object:
            raise ZeroDivisionError("float division by zero")

        monkeypatch.setattr("opstui.views.endpoints.endpoint_history", broken)
        app.open_key("endpoint:web")
        screen = app.screen
        assert isinstance(screen, EndpointScreen)
        what = "refresh of endpoint web failed: ZeroDivisionError: float division by zero"
        await until(pilot, told(app, what), "told")
        await until(pilot, lambda: screen.stale, "stale note")
        monkeypatch.undo()
        await settle(pilot)
        assert not screen.stale
        assert "Endpoint web" in text_of(app)


# --- the poller's thread -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (RuntimeError("event loop broke"), "RuntimeError: event loop broke"),
        (SystemExit(3), "SystemExit: 3"),
    ],
    ids=["RuntimeError", "SystemExit"],
)
async def test_a_poller_thread_that_dies_marks_endpoints_stale_and_is_restarted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException, shown: str
) -> None:
    from opstui.sources.poller import Poller

    monkeypatch.setattr("opstui.tui.live.POLLER_RETRY", 0.3)
    monkeypatch.setattr("opstui.tui.live.DRIFT_FIRST", 3600.0)  # no drift pass in this test
    runs: list[int] = []

    async def dies(self: Poller, **kwargs: object) -> None:
        runs.append(1)
        raise error

    original = Poller.run
    monkeypatch.setattr(Poller, "run", dies)
    app = make_app(tmp_path, config=sample_config(tmp_path, ENDPOINT), poll=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, told(app, f"endpoint poller failed: {shown}"), "told")
        await settle(pilot)
        endpoints = panel(app, "endpoints")
        assert endpoints.has_class("stale")
        assert "endpoint poller failed" in str(endpoints.border_subtitle)
        await still_answers(pilot)
        # Restarted, died again: told once all the same.
        await until(pilot, lambda: len(runs) >= 3, "restarted")
        assert sum("endpoint poller" in m for m in notices(app)) == 1

        monkeypatch.setattr(Poller, "run", original)
        await until(pilot, lambda: not endpoints.has_class("stale"), "endpoints fresh again")
        assert app._poller is not None and app._poller.alive


# --- every worker --------------------------------------------------------------------------


async def test_every_worker_the_console_starts_keeps_the_app_up_on_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Textual's default ends the app on a worker's first exception: none of ours may."""
    started: list[tuple[str, bool]] = []
    run_worker = OpstuiApp.run_worker

    def spy(self: OpstuiApp, work: Any, *args: Any, **kwargs: Any) -> Any:
        started.append((kwargs.get("group", "default"), kwargs.get("exit_on_error", True)))
        return run_worker(self, work, *args, **kwargs)

    monkeypatch.setattr(OpstuiApp, "run_worker", spy)
    monkeypatch.setattr("opstui.tui.live.DRIFT_FIRST", 3600.0)
    app = make_app(tmp_path, config=sample_config(tmp_path, ENDPOINT), poll=True, read_only=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        worker = app.recompute_drift()
        assert worker is not None
        await until(pilot, lambda: worker.is_finished, "drift pass")
        board(app).jump("pipeline:fraud-model")
        await pilot.press("r")
        await until_modal(pilot, ConfirmScreen)
        await pilot.press("n")
        await until(pilot, told(app, "not confirmed"), "declined")
        app.open_key("pipeline:fraud-model")
        await settle(pilot)
    assert {group for group, _ in started} >= {"refresh", "drift", "poller", "action"}
    assert [s for s in started if s[1]] == []


def test_a_failure_reads_as_one_escaped_line() -> None:
    from opstui.tui.jobs import JobFailed, failure_line

    hostile = RuntimeError("line one\nline two \x1b]52;c;cGF5bG9hZA==\x07")
    line = failure_line("drift check", JobFailed("drift check of fraud", hostile))
    assert line.startswith("drift check of fraud failed: RuntimeError: line one line two")
    assert "\x1b" not in line and "\x07" not in line and "\n" not in line
    assert len(failure_line("refresh", ValueError("x" * 1000))) == 160


# --- refusals are audited like the CLI's ---------------------------------------------------


def _audit_json(store: Path, config: Path) -> list[dict[str, Any]]:
    out = run_cli("actions", "--json", "--store", store, "--config", config)
    assert out.returncode == 0, out.stderr
    rows: list[dict[str, Any]] = json.loads(out.stdout)["actions"]
    return rows


@pytest.mark.parametrize(
    ("key", "press", "cli", "session_read_only"),
    [
        ("model:fraud", "t", ["retrain", "fraud", "--read-only"], True),
        ("pipeline:fraud-model", "r", ["retry", "161", "--read-only"], True),
        (
            "pipeline:web-api",
            "b",
            ["rollback", "production", "--pipeline", "web-api", "--read-only"],
            True,
        ),
        # Not a read-only session: the plan's environment is read-only.
        ("pipeline:web-api", "b", ["rollback", "production", "--pipeline", "web-api"], False),
    ],
    ids=["read-only retrain", "read-only retry", "read-only rollback", "read-only environment"],
)
async def test_a_refusal_in_the_console_is_audited_like_the_clis(
    tmp_path: Path, key: str, press: str, cli: list[str], session_read_only: bool
) -> None:
    from opstui.config import parse_config

    store = sample_store(tmp_path)
    sample_config(tmp_path)
    path = tmp_path / "opstui.toml"
    if not session_read_only:
        text = path.read_text().replace(
            "[environments.production]\n", "[environments.production]\nread_only = true\n"
        )
        path.write_text(text)
    config = parse_config(path.read_text(), path)
    app = make_app(tmp_path, store=store, config=config, read_only=session_read_only)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert board(app).jump(key)
        await pilot.press(press)
        await until_modal(pilot, ConfirmScreen)
        assert "Unavailable:" in text_of(app)

        def audited() -> bool:
            with Store(store) as db:
                return bool(list_actions(db, limit=1))

        await until(pilot, audited, "the refusal's audit row")
        await pilot.press("escape")
        await pilot.press("a")  # and it is on the audit screen
        await settle(pilot)
        assert isinstance(app.screen, AuditScreen)
        assert "refused" in text_of(app)

    out = run_cli(*cli, "--yes", "--store", store, "--config", path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    cli_row, console_row = _audit_json(store, path)[:2]
    for row in (cli_row, console_row):
        assert row["status"] == "refused" and row["run_id"] is None
        assert row["finished_at"] is not None
    same = {k: v for k, v in cli_row.items() if k not in ("id", "at", "finished_at")}
    assert {k: v for k, v in console_row.items() if k not in ("id", "at", "finished_at")} == same


# --- rows the store holds but cannot show -------------------------------------------


async def test_rows_the_reads_skip_are_counted_and_told_once(tmp_path: Path) -> None:
    path = sample_store(tmp_path)
    with Store(path) as store, store.write() as tx:
        # As an older opstui or a hand edit could have left them.
        tx.execute("UPDATE runs SET started_at = 1e20 WHERE id = (SELECT max(id) FROM runs)")
    app = make_app(tmp_path, store=path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, ticks=3)
        assert "1 row skipped" in text_of(app)
        told = [m for m in notices(app) if m.startswith("skipped run")]
        assert len(told) == 1, notices(app)  # once, not once a refresh
        assert "out of range" in told[0]
        assert not panel(app, "pipelines").has_class("stale")  # the rest is fresh
