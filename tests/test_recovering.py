"""An endpoint whose last minute is within its SLO while its long windows
still burn reads ``recovering`` (after a rollback), with when it last
failed a request; the console's header counts it apart from ``burning``."""

from __future__ import annotations

from pathlib import Path

from opstui.store import Store
from opstui.store import status as st
from opstui.store.endpoints import Observation, record_observations
from opstui.views.endpoints import EndpointReport, endpoint_reports

from .test_burn_history import CONFIG, NOW, config, every


def _record(tmp_path: Path, clean_for: float, *, traffic_after: bool = True) -> None:
    """Seven hours of a 15 s poll: every request failing, then none for the
    last ``clean_for`` seconds (the rollback)."""
    requests = errors = 0.0
    obs = []
    for t in every(15, NOW - 7 * 3600):
        clean = t > NOW - clean_for
        requests += 10.0 if (traffic_after or not clean) else 0.0
        errors += 0.0 if clean else 10.0
        counters: tuple[tuple[str, dict[str, str], float], ...] = (
            ("requests_total", {}, requests),
            ("errors_total", {}, errors),
        )
        obs.append(Observation("web", "prometheus", "u", t, "up", None, 1.0, counters))
    with Store(tmp_path / "ops.db") as store:
        record_observations(store, obs, holder="test")


def _web(tmp_path: Path) -> EndpointReport:
    cfg = config(tmp_path, CONFIG.format(interval=15))
    with Store(tmp_path / "ops.db") as store:
        (web,) = endpoint_reports(store, cfg, NOW)
    return web


def test_a_clean_last_minute_under_burning_long_windows_reads_recovering(tmp_path: Path) -> None:
    _record(tmp_path, clean_for=190)
    web = _web(tmp_path)
    assert any(a.firing for a in web.alerts)  # the workbook's alerts still fire
    assert web.state == st.RECOVERING
    assert web.reason is not None
    assert web.reason.startswith("recovering: within the SLO over 1m, last error 3m ago (")
    assert "still " in web.reason and "over 1h (page: > 14.4x)" in web.reason


def test_errors_in_the_last_minute_keep_it_burning(tmp_path: Path) -> None:
    _record(tmp_path, clean_for=30)  # the rollback was half a minute ago
    assert _web(tmp_path).state == st.BURNING


def test_no_traffic_in_the_last_minute_is_not_recovery(tmp_path: Path) -> None:
    # No request at all: nothing says the errors stopped (the service may be down).
    _record(tmp_path, clean_for=190, traffic_after=False)
    assert _web(tmp_path).state == st.BURNING


async def test_the_header_counts_recovering_apart_from_burning(tmp_path: Path) -> None:
    from opstui.tui.app import OpstuiApp

    from .test_tui import settle, text_of

    _record(tmp_path, clean_for=190)
    cfg = config(tmp_path, CONFIG.format(interval=15))
    app = OpstuiApp(tmp_path / "ops.db", cfg, poll=False, read_only=True, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        header = text_of(app).splitlines()[0]
        assert "1 recovering" in header and "burning" not in header, header
