"""The detail screens at every size an operator uses: 60x20 usable, 80x24
with nothing the operator needs cut, 120x40 and 200x50 using the room.

Each screen is opened on the sample history (clock frozen, as the snapshot
tests do), with seven hours of a Prometheus endpoint's counters and a drift
check of the fraud model, and read as the terminal shows it: the key
columns' headers and their values whole (``40.0x``, never ``40.``), every
stage of a six-stage run from 80x24, and on a wide screen charts that fill
their box.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from opstui.config import Config
from opstui.store import Store
from opstui.store.endpoints import Observation, record_observations
from tests.test_tui import settle, text_of
from tests.tui_support import FROZEN, make_app, sample_config, sample_store

SIZES = [(60, 20), (80, 24), (120, 40), (200, 50)]
IDS = [f"{w}x{h}" for w, h in SIZES]
#: A Prometheus endpoint serving web-api in production: its counters are
#: written below (4% of requests failing against 99.9%: a burn of 40.0x).
ENDPOINT = """
[endpoints.web]
kind = "prometheus"
url = "http://127.0.0.1:9/metrics"
requests = "http_requests_total"
slo = 0.999
interval = 15
service = "web-api"
environment = "production"
"""
STAGES = ("data", "validate", "train", "evaluate", "deploy", "monitor")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample history, the endpoint's counters (a 15 s poll for seven
    hours) and the fraud model's drift check: built once, copied per test."""
    from opstui.drift.check import compute_drift

    tmp = tmp_path_factory.mktemp("sizes")
    path = sample_store(tmp)
    requests = errors = 0.0
    obs = []
    for i in range(7 * 240 + 1):
        requests += 100.0
        errors += 4.0
        counters: tuple[tuple[str, dict[str, str], float], ...] = (
            ("requests_total", {}, requests),
            ("errors_total", {}, errors),
        )
        t = FROZEN - 7 * 3600 + 15 * i
        obs.append(Observation("web", "prometheus", "u", t, "up", None, 1.0, counters))
    with Store(path, clock=lambda: FROZEN) as store:
        record_observations(store, obs, holder="test")
        compute_drift(store, "fraud", config=sample_config(tmp, ENDPOINT))
    return path


async def _screen(tmp_path: Path, history: Path, size: tuple[int, int], key: str) -> str:
    """What the terminal shows once ``key``'s screen has drawn two reads."""
    store = tmp_path / "opstui.db"
    shutil.copy(history, store)
    config: Config = sample_config(tmp_path, ENDPOINT)
    app = make_app(tmp_path, store=store, config=config)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        app.open_key(key)
        # The second read is drawn in the heights the first one's rows gave.
        await settle(pilot, ticks=2)
        await pilot.pause(0.05)
        return text_of(app)


def _headers(text: str, *names: str) -> None:
    """Each column header is on screen, whole."""
    for header in names:
        assert f" {header} " in text, (header, text)


def _row(text: str, first: str) -> str:
    """The screen line whose table row begins with ``first``."""
    found = [line for line in text.splitlines() if line.startswith(f"│ {first} ")]
    assert found, f"no row {first!r} on screen:\n{text}"
    return found[0]


@pytest.mark.parametrize("size", SIZES, ids=IDS)
async def test_pipeline_screen(tmp_path: Path, history: Path, size: tuple[int, int]) -> None:
    text = await _screen(tmp_path, history, size, "pipeline:fraud-model")
    width, _ = size
    _headers(text, "RUN", "STATUS", "STAGES", "TRIGGER", "AGE", "TOOK", "STAGE", "EXIT")
    run = _row(text, "#161")
    assert "failed" in run and "schedule" in run and " 8h23m " in run and " 5m24s " in run, run
    # Who started the run is on the note line at every width.
    assert "schedule by scheduler@airflow" in text, text
    validate = _row(text, "validate")
    assert " 36s " in validate and " 1 " in validate, validate  # took, exit code
    if width >= 80:
        # Every stage of the six, nothing secondary dropped.
        for stage in STAGES:
            assert _row(text, stage)
        _headers(text, "HOST", "TRY", "TIMELINE", "MESSAGE")
        assert "airflow" in run, run
        assert "null share 0.31" in validate, validate
    # The log keeps at least three lines, following its end.
    assert "Log of validate · 5 lines" in text, text
    assert "1 of 24 failed; stop" in text, text
    # Long lines are cut at the edge with a mark (w wraps them).
    assert "4 null share 0.31 in column 'merchant_categor" in text, text


@pytest.mark.parametrize("size", SIZES, ids=IDS)
async def test_endpoint_screen(tmp_path: Path, history: Path, size: tuple[int, int]) -> None:
    text = await _screen(tmp_path, history, size, "endpoint:web")
    width, height = size
    _headers(text, "WINDOW", "ERRORS", "BURN", "ALERT", "OVER", "STATUS", "VERSION", "AGE")
    # The burn whole in every window shown: 40.0x, never 40. or 40.0.
    for window in ("1m", "5m"):
        row = _row(text, window)
        assert " 4.00% " in row and " 40.0x " in row, row
    assert "FIRING" in text, text
    # What b moves back from: its version, status and age whole.
    now = _row(text, "1.14.10 ← now")
    assert " succeeded " in now and " 1d19h " in now, now
    if width >= 120:
        assert " REQUESTS " in text and " FAILED " in text, text
        assert " 24,000 " in _row(text, "1h"), text  # 240 polls of 100 requests
        assert " WINDOWS " in text and "1h & 5m" in text, text
    else:
        # Their columns gave way: the selected window's counts are said under it.
        assert "1m: 400 req, 16 failed" in text, text
    # The error chart fills its box: a bar in (nearly) every column.
    errors = next(line for line in text.splitlines() if line.startswith("│ errors "))
    bars = sum(ch in "▁▂▃▄▅▆▇█" for ch in errors)
    assert bars >= width - 4 - 9 - 16, errors
    if height >= 40:
        # And is taller than a row: the rows the tables do not need.
        below = text.splitlines()[text.splitlines().index(errors) + 1]
        assert "█" in below, text


@pytest.mark.parametrize("size", SIZES, ids=IDS)
async def test_model_screen(tmp_path: Path, history: Path, size: tuple[int, int]) -> None:
    text = await _screen(tmp_path, history, size, "model:fraud")
    width, _ = size
    _headers(text, "VER", "STATUS", "GATE", "ENV", "AGE", "FEATURE", "TEST", "VALUE", "DRIFT")
    # The gate's verdict and a deployment's age, whole.
    assert "│ 1    archived    pass " in text, text
    assert "│ stag  6    2d04h " in text, text
    amount = _row(text, "amount")
    assert "DRIFT" in amount, amount
    if width >= 80:
        assert " LIMIT " in text and " SINCE " in text, text
    if width >= 120:
        assert "│ 4    rejected    fail " in text, text  # every version
    # The selected feature's verdict over its bins, on one line.
    assert "(limit " in text, text
