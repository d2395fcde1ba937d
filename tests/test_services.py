"""An endpoint says what it serves (issue: the incident flow, part 1).

``service = "web-api"`` (a pipeline that deploys it) or ``model = "fraud"``,
in an ``environment``: ``b`` on the endpoint's row or screen plans the
rollback of that service or model there, and its screen lists what was
deployed, the current one marked. A typo is a config error at load, not a
surprise during an incident.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from opstui.config import parse_config
from opstui.errors import ConfigError
from opstui.tui.screens.endpoint import EndpointScreen
from opstui.tui.screens.modals import ConfirmScreen

from .test_tui import board, settle, text_of, until_modal
from .tui_support import config_text, make_app, sample_config, sample_store

HEALTH = 'kind = "health"\nurl = "http://127.0.0.1:9/health"\n'


def _config(tmp_path: Path, endpoint: str) -> Path:
    path = tmp_path / "opstui.toml"
    path.write_text(config_text() + f"[endpoints.web]\n{HEALTH}{endpoint}")
    return path


@pytest.mark.parametrize(
    ("endpoint", "said"),
    [
        ('service = "web-ap"\n', "\"endpoints.web.service\" names 'web-ap', which is not a"),
        ('model = "frad"\n', "\"endpoints.web.model\" names 'frad', which is not a [models]"),
        ('service = "web-api"\nmodel = "fraud"\n', "names both a service and a model"),
        ('service = "web-api"\nenvironment = "prod"\n', "which is not in [environments]"),
        ("service = 3\n", '"endpoints.web.service" must be'),
    ],
)
def test_what_an_endpoint_serves_is_checked_at_load(
    tmp_path: Path, endpoint: str, said: str
) -> None:
    path = _config(tmp_path, endpoint)
    with pytest.raises(ConfigError) as caught:
        parse_config(path.read_text(), path)
    assert said in str(caught.value)


def test_the_environment_is_the_endpoints_else_its_pipelines_else_production(
    tmp_path: Path,
) -> None:
    path = _config(tmp_path, 'service = "web-api"\n')
    config = parse_config(path.read_text(), path)
    assert config.served(config.endpoints["web"]) == ("service", "web-api", "production")
    path = _config(tmp_path, 'model = "fraud"\nenvironment = "staging"\n')
    config = parse_config(path.read_text(), path)
    assert config.served(config.endpoints["web"]) == ("model", "fraud", "staging")
    path = _config(tmp_path, "")
    config = parse_config(path.read_text(), path)
    assert config.served(config.endpoints["web"]) is None


async def test_b_on_a_burning_endpoint_plans_the_rollback_of_its_service(tmp_path: Path) -> None:
    config = sample_config(tmp_path, f'[endpoints.web]\n{HEALTH}service = "web-api"\n')
    app = make_app(tmp_path, store=sample_store(tmp_path), config=config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        board(app).jump("endpoint:web")
        await pilot.press("b")
        await until_modal(pilot, ConfirmScreen)
        shown = text_of(app)
        assert "Roll back web-api to 1.14.9 in production" in shown, shown
        assert "production: web-api 1.14.10 -> 1.14.9" in shown, shown
        await pilot.press("escape")


async def test_an_endpoint_that_serves_nothing_named_says_how_to_name_it(tmp_path: Path) -> None:
    config = sample_config(tmp_path, f"[endpoints.web]\n{HEALTH}")
    app = make_app(tmp_path, store=sample_store(tmp_path), config=config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        board(app).jump("endpoint:web")
        await pilot.press("b")
        said: list[str] = []
        for _ in range(100):
            await pilot.pause(0.05)
            said = [n.message for n in app._notifications]
            if any("does not say what it serves" in m for m in said):
                break
        assert any("endpoint web does not say what it serves" in m for m in said), said
        assert any('add service = "PIPELINE"' in m for m in said), said
        assert not isinstance(app.screen, ConfirmScreen)


async def test_the_endpoint_screen_lists_its_services_deployments_the_current_marked(
    tmp_path: Path,
) -> None:
    config = sample_config(tmp_path, f'[endpoints.web]\n{HEALTH}service = "web-api"\n')
    app = make_app(tmp_path, store=sample_store(tmp_path), config=config)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        app.open_key("endpoint:web")
        assert isinstance(app.screen, EndpointScreen)
        for _ in range(100):
            await pilot.pause(0.05)
            if "← now" in text_of(app):
                break
        shown = text_of(app)
        assert "deployments of service web-api in production" in shown, shown
        (now,) = [line for line in shown.splitlines() if "← now" in line]
        assert "1.14.10" in now and "rollback" in now, now
        await pilot.press("b")
        await until_modal(pilot, ConfirmScreen)
        assert "Roll back web-api to 1.14.9 in production" in text_of(app)


async def test_the_pipeline_and_model_screens_show_the_health_of_their_endpoints(
    tmp_path: Path,
) -> None:
    extra = (
        f'[endpoints.web]\n{HEALTH}service = "web-api"\n'
        f'[endpoints.scorer]\n{HEALTH}model = "fraud"\n'
        f"[endpoints.other]\n{HEALTH}"
    )
    config = sample_config(tmp_path, extra)
    app = make_app(tmp_path, store=sample_store(tmp_path), config=config)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        for key, want, not_want in (
            ("pipeline:web-api", "web unknown", "scorer"),
            ("model:fraud", "scorer unknown", "web unknown"),
        ):
            app.open_key(key)
            for _ in range(100):
                await pilot.pause(0.05)
                if want in text_of(app):
                    break
            shown = text_of(app)
            assert want in shown, shown
            assert not_want not in shown and "other unknown" not in shown
            await pilot.press("escape")
