"""The console, driven through Textual's Pilot: every binding and screen.

The store is the bundled sample history with a frozen clock; actions run for
real (the detached runner executes the config's tiny stage commands), and
the tests read their effects back from the store.
"""

from __future__ import annotations

import io
import sqlite3
import time
from pathlib import Path

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Input

from opstui.store import Store
from opstui.store.actions import list_actions
from opstui.store.history import run_history
from opstui.tui.app import OpstuiApp
from opstui.tui.logview import LogView
from opstui.tui.screens.audit import AuditScreen
from opstui.tui.screens.dashboard import DashboardScreen
from opstui.tui.screens.endpoint import EndpointScreen
from opstui.tui.screens.modals import ConfirmScreen, HelpScreen, JumpScreen
from opstui.tui.screens.model import ModelScreen
from opstui.tui.screens.pipeline import PipelineScreen
from opstui.tui.widgets import Panel
from tests.tui_support import make_app, sample_config, sample_store


async def until_modal(pilot: Pilot[None], kind: type) -> None:
    for _ in range(200):
        await pilot.pause(0.02)
        if isinstance(pilot.app.screen, kind):
            await pilot.pause(0.05)  # drawn
            return
    raise AssertionError(f"{kind.__name__} never opened")


async def settle(pilot: Pilot[None], *, ticks: int = 1) -> None:
    """Wait until ``ticks`` refreshes have reached the screen."""
    app = pilot.app
    assert isinstance(app, OpstuiApp)
    for _ in range(ticks):
        app.refresh_now()
        for _ in range(200):
            await pilot.pause(0.02)
            if app.snapshot is not None and not app.reading:
                break
        else:
            raise AssertionError("the refresh never reached the screen")


def following(screen: PipelineScreen) -> bool:
    return screen.follow


def paused(app: OpstuiApp) -> bool:
    return app.paused


def board(app: OpstuiApp) -> DashboardScreen:
    screen = app.dashboard()
    assert isinstance(screen, DashboardScreen)
    return screen


def text_of(app: OpstuiApp) -> str:
    """What the terminal shows, as plain text: the screen with any modal over it."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True,
                      force_terminal=True, color_system=None, legacy_windows=False)  # fmt: skip
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text()


async def test_dashboard_shows_faults_first_with_every_panel(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        b = board(app)
        assert b.pipelines.keys[:2] == ["pipeline:churn-model", "pipeline:fraud-model"]
        screen = text_of(app)
        assert "2 failing" in screen
        assert "✓✗⊘⊘⊘⊘" in screen and "validate" in screen
        assert "lost" in screen and "failed" in screen
        assert "Models (2)" in screen and "prod:5" in screen
        assert "none configured" in screen  # endpoints: a hint, not a blank
        assert "web-api #162 succeeded" in screen  # the events feed, newest first
        feed = [str(cells[1]) for _, cells in b.events.shown_rows]
        assert any("rolled back 1.15.0 -> 1.14.10 in production" in text for text in feed)


async def test_enter_opens_a_pipeline_and_escape_comes_back(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("down", "enter")
        await settle(pilot)
        assert isinstance(app.screen, PipelineScreen)
        assert app.screen.target == "fraud-model"
        screen = text_of(app)
        assert "run #161" in screen
        # The failed stage's log is open first.
        assert "Log of validate" in screen
        assert "null share 0.31" in screen
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_log_search_and_follow(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_key("pipeline:fraud-model")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, PipelineScreen)
        await pilot.press("slash")
        search = screen.query_one("#search", Input)
        assert search.has_focus
        await pilot.press(*"merchant", "enter")
        assert not search.has_class("shown")
        await settle(pilot)  # the search runs over the whole log on the refresh worker
        view = screen.query_one(LogView)
        # "expect_column_values_to_not_be_null(merchant_category...": line 3
        assert (screen.match, view.cursor) == (0, 3)
        await pilot.press("n")
        assert view.cursor == 4  # "null share 0.31 in column 'merchant_category'..."
        await pilot.press("N")
        assert view.cursor == 3
        assert not screen.follow  # a search stops following
        await pilot.press("f")
        # (read through a function: mypy keeps the narrowing from the assert above)
        assert following(screen)


async def test_retry_confirmed_runs_for_real_and_is_audited(tmp_path: Path) -> None:
    store = sample_store(tmp_path)
    app = make_app(tmp_path, store=store, clock=time.time)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert board(app).jump("pipeline:fraud-model")
        await pilot.press("r")
        await until_modal(pilot, ConfirmScreen)
        modal = app.screen
        assert isinstance(modal, ConfirmScreen)
        shown = text_of(app)
        assert "Retry fraud-model?" in shown
        assert "target: fraud-model" in shown
        assert "from stage validate" in shown  # the plan: where it resumes
        assert "reuse (succeeded in run 161)" in shown
        await pilot.press("y")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            await pilot.pause(0.1)
            with Store(store) as db:
                latest = run_history(db, "fraud-model", limit=1)[0]
            if latest.trigger == "retry" and latest.status == "succeeded":
                break
        else:
            raise AssertionError(f"the retry did not finish: {latest}")
        with Store(store) as db:
            action = list_actions(db, limit=1)[0]
        assert (action.actor, action.action, action.target) == (
            "tester@console",
            "retry",
            "fraud-model",
        )
        assert action.run_id == latest.id
        # The reused stages were not run again.
        assert [s.status for s in latest.stages][:2] == ["succeeded", "succeeded"]
        assert latest.stages[0].reused_from_id is not None


async def test_declining_changes_nothing_but_is_audited(tmp_path: Path) -> None:
    store = sample_store(tmp_path)
    app = make_app(tmp_path, store=store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        board(app).jump("pipeline:web-api")
        await pilot.press("b")
        await until_modal(pilot, ConfirmScreen)
        assert "web-api" in text_of(app) and "1.14.10 ->" in text_of(app)
        await pilot.press("n")
        for _ in range(100):
            await pilot.pause(0.02)
            with Store(store) as db:
                actions = list_actions(db, limit=5)
            if actions:
                break
        assert actions[0].status == "refused"
        assert actions[0].outcome == "declined in the console"
        with Store(store) as db:
            assert run_history(db, "web-api", limit=1)[0].trigger != "rollback"


async def test_read_only_shows_the_plan_and_why_it_cannot_run(tmp_path: Path) -> None:
    store = sample_store(tmp_path)
    app = make_app(tmp_path, store=store, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "READ-ONLY" in text_of(app)
        board(app).jump("model:fraud")
        await pilot.press("t")
        await until_modal(pilot, ConfirmScreen)
        shown = text_of(app)
        assert "Retrain fraud" in shown
        assert "Unavailable: read-only session (--read-only)" in shown
        await pilot.press("y")  # does nothing
        await pilot.pause(0.2)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        for _ in range(100):  # the audit row is written by the plan's worker
            await pilot.pause(0.02)
            with Store(store) as db:
                actions = list_actions(db)
                runs = run_history(db, "fraud-model", limit=1)
            if actions:
                break
        # Nothing ran; the refusal is audited, as the CLI's is (tests/test_tui_resilience.py
        # compares the two rows).
        assert [(a.action, a.status) for a in actions] == [("retrain", "refused")]
        assert runs[0].trigger != "retrain"


async def test_filter_jump_help_pause_audit_and_quit(tmp_path: Path) -> None:
    app = make_app(tmp_path, keymap={"retry": "R"})
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        b = board(app)
        await pilot.press("slash", *"web")
        assert b.pipelines.keys == ["pipeline:web-api"]
        assert "Pipelines (1/4)" in text_of(app)
        await pilot.press("escape")
        assert len(b.pipelines.keys) == 4

        await pilot.press("colon")
        assert isinstance(app.screen, JumpScreen)
        await pilot.press(*"fraud-m", "enter")
        await pilot.pause(0.1)
        assert b.selected() == "pipeline:fraud-model"

        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_text = text_of(app)
        for ident in ("open", "retry", "rollback", "retrain", "filter", "jump", "audit",
                      "pause", "help", "quit"):  # fmt: skip
            assert f" {ident} " in help_text
        assert " R " in help_text  # the remapped retry key
        await pilot.press("escape")

        await pilot.press("p")
        assert app.paused
        before = app.snapshot
        app.tick()
        await pilot.pause(0.2)
        assert app.snapshot is before  # no read while paused
        assert "PAUSED" in text_of(app)
        await pilot.press("p")
        assert not paused(app)

        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, AuditScreen)
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0


async def test_model_and_endpoint_screens(tmp_path: Path) -> None:
    extra = '[endpoints.web]\nurl = "http://127.0.0.1:9/metrics"\nkind = "health"\nslo = 0.999\n'
    app = make_app(tmp_path, config=sample_config(tmp_path, extra))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_key("model:fraud")
        await settle(pilot)
        assert isinstance(app.screen, ModelScreen)
        shown = text_of(app)
        assert "Versions" in shown and "production" in shown
        await pilot.press("escape")
        app.open_key("endpoint:web")
        await settle(pilot)
        assert isinstance(app.screen, EndpointScreen)
        assert "Endpoint web" in text_of(app)


async def test_empty_store_says_how_to_fill_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    Store(empty).close()
    app = make_app(tmp_path, store=empty)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        shown = text_of(app)
        assert "Empty store" in shown and "opstui import sample_runs/" in shown


async def test_a_missing_store_is_explained_and_picked_up_when_it_appears(
    tmp_path: Path,
) -> None:
    path = tmp_path / "later.db"
    app = make_app(tmp_path, store=path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "No data: no run store at" in text_of(app)
        assert not path.exists()  # the console never creates a store
        sample_store(tmp_path, "later.db")
        await settle(pilot)
        assert "2 failing" in text_of(app)


async def test_a_writer_holding_the_lock_does_not_stall_the_console(tmp_path: Path) -> None:
    """WAL: readers never wait for a writer, so a long write leaves every panel fresh."""
    store = sample_store(tmp_path)
    app = make_app(tmp_path, store=store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        writer = sqlite3.connect(store)
        writer.execute("BEGIN EXCLUSIVE")
        writer.execute("UPDATE counters SET value = value WHERE name = 'rev'")
        try:
            await settle(pilot, ticks=2)
            snap = app.snapshot
            assert snap is not None and snap.problems == {}
        finally:
            writer.rollback()
            writer.close()


async def test_a_failing_panel_read_is_stale_and_keeps_its_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)

        def locked(*args: object, **kwargs: object) -> object:
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr("opstui.views.snapshot.Dashboard.read", locked)
        await settle(pilot)
        panel = board(app).query_one("#panel-pipelines", Panel)
        assert panel.has_class("stale")
        assert "locked by another writer" in str(panel.border_subtitle)
        assert len(board(app).pipelines.keys) == 4  # the last data stays on screen
        assert not board(app).query_one("#panel-models", Panel).has_class("stale")
        monkeypatch.undo()
        await settle(pilot)
        assert not panel.has_class("stale")


async def test_a_store_that_vanishes_mid_session(tmp_path: Path) -> None:
    store = sample_store(tmp_path)
    app = make_app(tmp_path, store=store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{store}{suffix}").unlink(missing_ok=True)
        await settle(pilot, ticks=2)
        panel = board(app).query_one("#panel-pipelines", Panel)
        assert panel.has_class("stale"), panel.border_subtitle
        assert len(board(app).pipelines.keys) == 4
        assert not store.exists()  # never re-created by a reader


async def test_a_small_terminal_and_a_resize(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(pilot)
        assert "churn-model" in text_of(app)
        await pilot.resize_terminal(120, 40)
        await settle(pilot)
        assert "churn-model" in text_of(app)


async def test_a_broken_theme_falls_back_with_a_notice(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\nprimary = "not a colour"\n')
    app = make_app(tmp_path, theme=str(bad))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.theme == "dark"
        assert any("theme not loaded" in n.message for n in app._notifications)


@pytest.mark.parametrize("theme", ["dark", "light", "high-contrast", "ansi-dark"])
async def test_every_bundled_theme_loads(tmp_path: Path, theme: str) -> None:
    app = make_app(tmp_path, theme=theme)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.theme == theme
        assert not list(app._notifications)


def test_no_module_outside_tui_imports_textual() -> None:
    src = Path(__file__).resolve().parent.parent / "src" / "opstui"
    offenders = [
        str(p.relative_to(src))
        for p in src.rglob("*.py")
        if "tui" not in p.relative_to(src).parts
        and any(
            line.lstrip().startswith(("import textual", "from textual"))
            for line in p.read_text().splitlines()
        )
    ]
    assert offenders == []


async def test_drift_is_recomputed_in_the_background(tmp_path: Path) -> None:
    app = make_app(tmp_path, poll=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        fraud = next(m for m in app.snapshot.models if m.name == "fraud")  # type: ignore[union-attr]
        assert fraud.drift_share is None  # the sample store holds no checks yet
        worker = app.recompute_drift()
        assert worker is not None
        assert app.recompute_drift() is None  # never two passes at once
        await worker.wait()
        await settle(pilot)
        assert app.snapshot is not None
        fraud = next(m for m in app.snapshot.models if m.name == "fraud")
        assert fraud.drift_share is not None and fraud.drift_share > 0.3
        assert fraud.drifted[:1] == ("amount",)
        assert "amount" in text_of(app)


async def test_refreshes_asked_for_at_once_never_overlap_or_repeat_log_lines(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_key("pipeline:fraud-model")
        for _ in range(5):
            app.refresh_now()
        await settle(pilot, ticks=2)
        screen = app.screen
        assert isinstance(screen, PipelineScreen)
        assert len(screen.log_lines) == 5, screen.log_lines
        assert screen.query_one(LogView).total == 5


async def test_escapes_in_a_log_are_shown_never_interpreted(tmp_path: Path) -> None:
    from opstui.track import Tracker

    store = tmp_path / "esc.db"
    hostile = "\x1b[31mred\x1b[0m \x1b]0;pwned\x07 bell\x07 cr\roverwrite \x9b2J"
    with Tracker(store) as tracker, tracker.run("shell", stages=["build"]) as run:
        with run.stage("build"):
            run.log(hostile)
    app = make_app(tmp_path, store=store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_key("pipeline:shell")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, PipelineScreen)
        # The recorder splits at the carriage return (a progress bar's redraws
        # become lines); each is shown with its escapes made visible.
        lines = screen.log_lines
        assert len(lines) == 2
        for line in lines:
            assert not any(c in line for c in "\x1b\x07\r\x9b")
        assert "\\x1b[31mred\\x1b[0m" in lines[0] and "\\x07" in lines[0]
        assert lines[1] == "overwrite \\x9b2J"


async def test_markup_in_names_is_shown_as_written(tmp_path: Path) -> None:
    from opstui.track import Tracker

    store = tmp_path / "markup.db"
    names = ["[bold]loud", "[link=https://example.invalid]x[/link]", "[red]stage"]
    with Tracker(store) as tracker:
        for name in names[:2]:
            with tracker.run(name, stages=[names[2]]) as run, run.stage(names[2]):
                pass
    app = make_app(tmp_path, store=store)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        # A DataTable reads a str cell as markup: these would lose their
        # brackets in the pipelines panel (the events feed starts with an age).
        rows = [line.lstrip("│ ") for line in text_of(app).splitlines()]
        assert any(row.startswith("[bold]loud ") for row in rows)
        assert any(row.startswith("[link=https://example.invalid]x[/link] ") for row in rows)


async def test_forty_stages_and_ten_thousand_pipelines(tmp_path: Path) -> None:
    from opstui.store.runs import create_run, finish_run, finish_stage, start_stage

    store_path = tmp_path / "big.db"
    stages = [f"s{i:02d}" for i in range(40)]
    with Store(store_path) as store:
        run_id, _ = create_run(store, "long-one", stages=stages)
        for name in stages[:30]:
            start_stage(store, run_id, name)
            finish_stage(store, run_id, name, status="succeeded")
        start_stage(store, run_id, "s30")
        finish_stage(store, run_id, "s30", status="failed", message="boom")
        finish_run(store, run_id, status="failed")
        for i in range(10_000):
            create_run(store, f"p{i:05d}", stages=["build"], status="queued")
    app = make_app(tmp_path, store=store_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        b = board(app)
        assert len(b.pipelines.keys) == 10_001
        assert b.pipelines.keys[0] == "pipeline:long-one"  # the fault first
        shown = text_of(app)
        assert "Pipelines (10001)" in shown
        # 40 glyphs cannot fit: the bar keeps the failed stage in view.
        bar = next(line for line in shown.splitlines() if "long-one" in line)
        assert "…" in bar and "✗" in bar
        await pilot.press("slash", *"p0999")
        assert len(b.pipelines.keys) == 10
        await pilot.press("escape")
        app.open_key("pipeline:long-one")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, PipelineScreen)
        assert len(screen.stages.keys) == 40


async def test_the_in_process_poller_feeds_the_endpoint_panels_and_a_hang_blocks_nothing(
    tmp_path: Path,
) -> None:
    from tests.http_service import running_service

    with running_service() as (svc, base):
        svc.serve(ok=900, errors=100)
        extra = (
            f'[endpoints.web]\nurl = "{base}/metrics"\nkind = "prometheus"\ninterval = 0.5\n'
            'requests = "http_requests_total"\nlatency = "http_request_duration_seconds"\n'
            "slo = 0.999\n"
            f'[endpoints.stuck]\nurl = "{base}/hang"\nkind = "health"\ninterval = 0.5\n'
            "timeout = 1\n"
        )
        app = make_app(tmp_path, config=sample_config(tmp_path, extra), clock=time.time, poll=True)
        async with app.run_test(size=(120, 40)) as pilot:
            deadline = time.monotonic() + 30
            states: dict[str, str] = {}
            while time.monotonic() < deadline:
                svc.serve(ok=90, errors=10)
                await settle(pilot)
                assert app.snapshot is not None
                states = {e.name: e.state for e in app.snapshot.endpoints}
                web = next(e for e in app.snapshot.endpoints if e.name == "web")
                if states.get("stuck") == "down" and web.ratios.get("1m") is not None:
                    break
                await pilot.pause(0.3)
            else:
                raise AssertionError(f"the poller never reported: {states}")
            # 10% errors burns a 99.9% SLO, but seconds of history page nobody.
            assert states["web"] == "up"
            assert web.ratios["1m"] == pytest.approx(0.1, abs=0.02)
            stuck = next(e for e in app.snapshot.endpoints if e.name == "stuck")
            assert stuck.reason == "no answer within 1s"
            assert "stuck" in text_of(app)
            app.open_key("endpoint:web")
            await settle(pilot)
            shown = text_of(app)
            assert "errors " in shown and "max 10" in shown
            assert "latency " in shown and "s (p99)" in shown
            # Seconds of history: each burn alert pair says how little it has seen.
            assert "partial: " in shown and " of 1h" in shown and "FIRING" not in shown
            assert "1h (" in shown and " seen)" in shown  # the windows say it too


async def test_no_color_keeps_every_state_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.no_color
        shown = text_of(app)
        # Glyphs and words carry the state, not colour alone.
        assert "✓✗⊘⊘⊘⊘" in shown and "failed" in shown and "lost" in shown
        assert "2 failing" in shown


async def test_the_command_palette_offers_every_action(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        wanted = [
            "Retry fraud-model", "Roll back web-api", "Retrain fraud", "Roll back model churn",
            "Open pipeline web-api", "Audit trail", "Filter rows", "Jump to…", "Key bindings",
            "Pause / resume refresh", "Timeline",
        ]  # fmt: skip
        assert [w for w in wanted if w not in titles] == []
        # Only what can run: web-api's latest run succeeded; one keys entry.
        assert "Retry web-api" not in titles and "Keys" not in titles
        assert len(titles) == len(set(titles))


async def test_ctrl_c_quits_as_in_any_terminal_program(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+c")
        await pilot.pause(0.2)
        assert not app.is_running


def test_jump_matches_every_word_of_kind_and_name() -> None:
    """What the jump box lists is what can be typed back: ``endpoint web-api``
    (as the list shows it), ``model:fraud``, a bare part of a name; an exact
    name first."""
    from opstui.tui.screens.modals import matching

    targets = [
        ("pipeline:web-api", "pipeline web-api"),
        ("endpoint:web-api-health", "endpoint web-api-health"),
        ("endpoint:web-api", "endpoint web-api"),
        ("model:fraud", "model fraud"),
    ]

    def keys(needle: str) -> list[str]:
        return [k for k, _ in matching(targets, needle)]

    assert keys("endpoint web-api") == ["endpoint:web-api", "endpoint:web-api-health"]
    assert keys("ENDPOINT:web") == ["endpoint:web-api-health", "endpoint:web-api"]
    assert keys("model:fraud") == ["model:fraud"]
    assert keys("web-api") == ["pipeline:web-api", "endpoint:web-api", "endpoint:web-api-health"]
    assert keys("api health") == ["endpoint:web-api-health"]
    assert keys("") == [k for k, _ in targets]
    assert keys("nothing") == []
