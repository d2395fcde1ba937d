"""Only what applies, and notices that keep up: the footer dims retry where
there is nothing to retry and pressing it says why; a run's "started" notice
is replaced by how the run ended; notices leave the half being read."""

from __future__ import annotations

import time
from pathlib import Path

from textual.widgets import Footer

from opstui.tui.app import OpstuiApp
from opstui.tui.notices import reading_low
from opstui.tui.screens.modals import ConfirmScreen
from tests.test_tui import board, settle, until_modal
from tests.tui_support import make_app, sample_store


def _said(app: OpstuiApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def _footer_keys(app: OpstuiApp) -> dict[str, bool]:
    """Each footer key's action and whether it is offered (not dimmed)."""
    footer = app.screen.query_one(Footer)
    out = {}
    for item in footer.query("FooterKey"):
        action = getattr(item, "action", "")
        out[action] = not item.has_class("-disabled")
    return out


async def test_retry_is_offered_only_on_a_run_it_would_accept(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        b = board(app)
        assert b.jump("pipeline:billing-worker")  # its last run succeeded
        await pilot.pause(0.1)
        assert app.check_action("retry", ()) is None
        assert app.check_action("rollback", ()) is True
        assert _footer_keys(app).get("retry") is False
        await pilot.press("r")
        await pilot.pause(0.1)
        assert "billing-worker's last run succeeded: nothing to retry" in _said(app)
        assert not isinstance(app.screen, ConfirmScreen)

        assert b.jump("pipeline:fraud-model")  # failed: retry applies
        await pilot.pause(0.1)
        assert app.check_action("retry", ()) is True
        assert _footer_keys(app).get("retry") is True

        # A model row: retrain applies, retry does not.
        assert b.jump("model:fraud")
        await pilot.pause(0.1)
        assert app.check_action("retrain", ()) is True
        assert app.check_action("retry", ()) is None


async def test_a_started_notice_becomes_how_the_run_ended(tmp_path: Path) -> None:
    store = sample_store(tmp_path)
    app = make_app(tmp_path, store=store, clock=time.time)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert board(app).jump("pipeline:fraud-model")
        await pilot.press("r")
        await until_modal(pilot, ConfirmScreen)
        await pilot.press("y")
        deadline = time.monotonic() + 30
        started = ended = None
        while time.monotonic() < deadline and ended is None:
            await pilot.pause(0.1)
            said = _said(app)
            started = started or next((s for s in said if s.endswith(" started")), None)
            ended = next((s for s in said if " succeeded in " in s), None)
        assert started is not None and started.startswith("retry fraud-model: run ")
        assert ended is not None, _said(app)
        run = started.split()[3]
        assert ended == f"retry fraud-model: run {run} succeeded in {ended.rsplit(' ', 1)[1]}"
        # The "started" notice is down once the run has ended.
        assert not any(s.endswith(" started") for s in _said(app))


def test_notices_go_to_the_half_not_being_read() -> None:
    assert reading_low(15, 8, 24)  # the log, low on an 80x24 screen
    assert not reading_low(1, 8, 24)  # the pipelines table at the top
    assert reading_low(22, 1, 24)  # a search input above the footer


async def test_focus_low_moves_the_notices_to_the_top(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert not app.screen.has_class("notices-top")
        board(app).events.focus()
        await pilot.pause(0.05)
        assert app.screen.has_class("notices-top")
        board(app).pipelines.focus()
        await pilot.pause(0.05)
        assert not app.screen.has_class("notices-top")


async def test_the_palette_offers_what_the_footer_does(tmp_path: Path) -> None:
    """No "Retry" for a run that succeeded, no "Retrain" for a model that no
    [models.NAME] trains (the sample store knows churn and fraud)."""
    from opstui.config.load import parse_config
    from tests.tui_support import config_text

    path = tmp_path / "opstui.toml"
    path.write_text(config_text().replace('[models.fraud]\npipeline = "fraud-model"\n', ""))
    app = make_app(tmp_path, config=parse_config(path.read_text(), path))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        titles = [str(c.title) for c in app.get_system_commands(app.screen)]
        assert "Retrain churn" in titles and "Retrain fraud" not in titles
        assert "Retry fraud-model" in titles and "Retry billing-worker" not in titles
        assert "Roll back model fraud" in titles
