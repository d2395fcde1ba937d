"""Burn alerts judge only the history they have, on recorded sequences.

Each case writes what a poller would have written (counters every interval)
into a real store and reads it back through ``endpoint_reports``, the read
model behind ``opstui endpoints`` and the console.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from opstui.analysis.rates import EDGE_SLACK, WINDOWS, BurnAlert, duration_words, history
from opstui.config import Config, parse_config
from opstui.errors import ConfigError
from opstui.store import Store
from opstui.store.endpoints import Observation, record_observations
from opstui.views.endpoints import EndpointReport, endpoint_reports

from .conftest import run_cli

NOW = 1_800_000_000.0


# -- history(): how much of a window the samples reach -------------------------------------------


def test_history_of_an_exactly_covered_window_is_the_window() -> None:
    pts = [(NOW - 3600 + 15 * i, float(i)) for i in range(241)]  # first sample at the start
    assert history(pts, NOW - 3600, NOW, 15) == 3600


def test_history_allows_one_sample_step_of_slack_at_the_start() -> None:
    # A poll lands anywhere in its interval: a first sample a step (and
    # Prometheus' 10 %) after the start still reaches it; a little later does not.
    edge = 15 * EDGE_SLACK
    assert history([(NOW - 3600 + edge, 0.0), (NOW, 1.0)], NOW - 3600, NOW, 15) == 3600
    late = NOW - 3600 + edge + 0.5
    assert history([(late, 0.0), (NOW, 1.0)], NOW - 3600, NOW, 15) == pytest.approx(NOW - late)


def test_history_without_samples_is_zero_and_older_samples_do_not_count() -> None:
    assert history([], NOW - 60, NOW, 15) == 0.0
    assert history([(NOW - 4000, 1.0)], NOW - 3600, NOW, 15) == 0.0


def test_duration_words() -> None:
    assert [duration_words(s) for s in (12, 300, 3599, 3600, 7800, 86400, 93600)] == [
        "12s",
        "5m",
        "59m",
        "1h",
        "2h10m",
        "1d",
        "1d2h",
    ]


# -- recorded sequences through the store ---------------------------------------------------------

CONFIG = """
[endpoints.web]
kind = "prometheus"
url = "http://127.0.0.1:1/metrics"
requests = "http_requests_total"
slo = 0.999
interval = {interval}
"""


def config(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "opstui.toml"
    path.write_text(f'store = "ops.db"\n{text}')
    return parse_config(path.read_text(), path)


def record(
    tmp_path: Path, name: str, kind: str, times: Iterable[float], values: dict[str, float]
) -> None:
    """Counters at ``times`` growing by ``values`` per sample (the ratio stays put)."""
    obs = [
        Observation(
            name,
            kind,
            "u",
            t,
            "up",
            None,
            1.0,
            tuple((series, {}, per * i) for series, per in values.items()),
        )
        for i, t in enumerate(sorted(times))
    ]
    with Store(tmp_path / "ops.db") as store:
        record_observations(store, obs, holder="test")


def report(tmp_path: Path, cfg: Config, name: str = "web") -> EndpointReport:
    with Store(tmp_path / "ops.db") as store:
        reports = {r.name: r for r in endpoint_reports(store, cfg, NOW)}
    return reports[name]


def by_pair(alerts: Sequence[BurnAlert]) -> dict[str, BurnAlert]:
    return {f"{a.long_window}/{a.short_window}": a for a in alerts}


def every(step: float, start: float, end: float = NOW) -> list[float]:
    n = round((end - start) / step)
    return [start + step * i for i in range(n + 1)]


# Every request fails: a burn of 1000x against 99.9 %, far over every threshold.
ALL_FAIL = {"requests_total": 10.0, "errors_total": 10.0}


def test_fresh_endpoint_five_minutes_fires_nothing_and_says_partial(tmp_path: Path) -> None:
    cfg = config(tmp_path, CONFIG.format(interval=15))
    record(tmp_path, "web", "prometheus", every(15, NOW - 300), ALL_FAIL)
    web = report(tmp_path, cfg)
    alerts = by_pair(web.alerts)
    assert web.burn["5m"] == pytest.approx(1000)
    assert web.coverage["5m"] == WINDOWS["5m"]
    assert web.coverage["1h"] == pytest.approx(300)
    assert not any(a.firing for a in web.alerts)
    assert {p: a.partial for p, a in alerts.items()} == {
        "1h/5m": "5m of 1h",
        "6h/30m": "5m of 6h",
        "1d/2h": "5m of 1d",
        "3d/6h": "5m of 3d",
    }
    assert {a.status for a in web.alerts} == {"partial"}
    # Not paged, not a failing exit, but said.
    assert web.state == "up"
    assert web.reason is not None
    assert "5m of 1h" in web.reason and "not a page until 1h of history" in web.reason


def test_exactly_covered_long_window_fires_and_the_next_stays_partial(tmp_path: Path) -> None:
    cfg = config(tmp_path, CONFIG.format(interval=15))
    record(tmp_path, "web", "prometheus", every(15, NOW - 3600), ALL_FAIL)
    web = report(tmp_path, cfg)
    alerts = by_pair(web.alerts)
    assert alerts["1h/5m"].firing and alerts["1h/5m"].covered
    assert alerts["1h/5m"].status == "firing"
    assert alerts["6h/30m"].partial == "1h of 6h" and not alerts["6h/30m"].firing
    assert web.state == "burning"
    assert web.reason is not None and "over 1h" in web.reason and "page" in web.reason


def test_one_poll_short_of_the_window_is_partial(tmp_path: Path) -> None:
    # The first sample two intervals after the window's start: not covered.
    cfg = config(tmp_path, CONFIG.format(interval=15))
    record(tmp_path, "web", "prometheus", every(15, NOW - 3600 + 30), ALL_FAIL)
    alerts = by_pair(report(tmp_path, cfg).alerts)
    assert not alerts["1h/5m"].firing
    assert alerts["1h/5m"].partial == "59m of 1h"


def test_a_poller_restart_leaves_the_window_partial_until_it_is_refilled(
    tmp_path: Path,
) -> None:
    # Polled for two hours, stopped for an hour and a half, back for ten minutes:
    # the last hour has ten minutes of samples; the ratio is those ten minutes'.
    cfg = config(tmp_path, CONFIG.format(interval=15))
    times = every(15, NOW - 4 * 3600, NOW - 2 * 3600) + every(15, NOW - 600)
    record(tmp_path, "web", "prometheus", times, ALL_FAIL)
    web = report(tmp_path, cfg)
    alerts = by_pair(web.alerts)
    assert web.coverage["1h"] == pytest.approx(600)
    assert alerts["1h/5m"].partial == "10m of 1h" and not alerts["1h/5m"].firing
    assert alerts["6h/30m"].partial == "4h of 6h"
    assert web.state == "up"


def test_a_gap_inside_a_covered_window_still_counts(tmp_path: Path) -> None:
    # Counters span a gap: the increase across it is still the requests and
    # errors of the whole window (a reset inside the gap would lose some).
    cfg = config(tmp_path, CONFIG.format(interval=15))
    times = every(15, NOW - 3600, NOW - 2400) + every(15, NOW - 1200)
    record(tmp_path, "web", "prometheus", times, ALL_FAIL)
    web = report(tmp_path, cfg)
    assert web.coverage["1h"] == WINDOWS["1h"]
    assert by_pair(web.alerts)["1h/5m"].firing


def test_three_days_with_thinned_history_cover_the_ticket(tmp_path: Path) -> None:
    # What retention leaves: every poll for the last day, one sample per
    # 5 minutes before; the oldest kept sample need not sit on the window's start.
    cfg = config(tmp_path, CONFIG.format(interval=60))
    older = every(300, NOW - 3 * 86400 + 290, NOW - 86400 - 10)
    record(tmp_path, "web", "prometheus", older + every(60, NOW - 86400), ALL_FAIL)
    web = report(tmp_path, cfg)
    assert web.coverage["3d"] == WINDOWS["3d"]
    assert all(a.covered and a.firing for a in web.alerts)


def test_no_traffic_is_no_data_not_partial(tmp_path: Path) -> None:
    cfg = config(tmp_path, CONFIG.format(interval=15))
    record(tmp_path, "web", "prometheus", every(15, NOW - 3600), {"requests_total": 0.0})
    alerts = by_pair(report(tmp_path, cfg).alerts)
    assert alerts["1h/5m"].status == "no data" and alerts["1h/5m"].partial is None


# -- prometheus_api as an SLO source ------------------------------------------------------------

API = """
[endpoints.prom]
kind = "prometheus_api"
url = "http://127.0.0.1:1"
interval = 15
slo = 0.99
"""


def test_prometheus_api_requests_and_errors_counters(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        API + 'queries = { all = "sum(x_total)", bad = "sum(x_total{code=~\\"5..\\"})" }\n'
        'requests = "all"\nerrors = "bad"\n',
    )
    # 5 % errors for an hour: 5x a 99 % SLO's budget, over 3x (1d/2h) but partial there.
    record(tmp_path, "prom", "prometheus_api", every(15, NOW - 3600), {"all": 100.0, "bad": 5.0})
    prom = report(tmp_path, cfg, "prom")
    assert prom.ratios["1h"] == pytest.approx(0.05)
    assert prom.burn["5m"] == pytest.approx(5)
    assert prom.coverage["1h"] == WINDOWS["1h"]
    assert not any(a.firing for a in prom.alerts)  # 5x < 14.4x; the rest are partial
    assert prom.state == "up"
    assert len(prom.history) == 30 and prom.history[-1] == pytest.approx(0.05)


def test_prometheus_api_error_ratio_query_is_averaged_per_window(tmp_path: Path) -> None:
    cfg = config(tmp_path, API + 'queries = { ratio = "..." }\nerror_ratio = "ratio"\n')
    times = every(15, NOW - 3600)
    obs = [
        Observation("prom", "prometheus_api", "u", t, "up", None, 1.0, (("ratio", {}, r),))
        for t, r in zip(times, [0.2 if t >= NOW - 300 else 0.3 for t in times], strict=True)
    ]
    with Store(tmp_path / "ops.db") as store:
        record_observations(store, obs, holder="test")
    prom = report(tmp_path, cfg, "prom")
    # The mean of the samples in each window, as avg_over_time.
    assert prom.ratios["5m"] == pytest.approx(0.2)
    assert prom.ratios["1h"] == pytest.approx((0.3 * 220 + 0.2 * 21) / 241)
    page = by_pair(prom.alerts)["1h/5m"]
    assert page.firing and page.short_burn == pytest.approx(20)  # over 14.4x of a 1 % budget
    assert prom.state == "burning"


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ('error_ratio = "nope"', '"endpoints.prom.error_ratio" is "nope", which is none'),
        ('requests = "q"', 'has only one of "requests" and "errors"'),
        ('error_ratio = "q"\nrequests = "q"\nerrors = "q"', 'both "error_ratio" and'),
        ("", '"endpoints.prom.slo" needs to know which query is the error ratio'),
    ],
)
def test_prometheus_api_slo_keys_are_checked(tmp_path: Path, extra: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, API + f'queries = {{ q = "vector(0)" }}\n{extra}\n')
    assert words in str(caught.value)


def test_errors_key_is_only_for_prometheus_api(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, CONFIG.format(interval=15) + 'errors = "x"\n')
    assert "only applies to kind prometheus_api, not prometheus" in str(caught.value)


# -- what `opstui endpoints` prints ---------------------------------------------------------------


def test_endpoints_command_says_partial(tmp_path: Path) -> None:
    config(tmp_path, CONFIG.format(interval=15))
    import time

    now = time.time()
    record(tmp_path, "web", "prometheus", every(15, now - 300, now), ALL_FAIL)
    path = tmp_path / "opstui.toml"
    doc = json.loads(run_cli("endpoints", "--json", "--config", path, cwd=tmp_path).stdout)
    (web,) = doc["endpoints"]
    assert web["state"] == "up"
    assert web["history_seconds"]["5m"] == 300
    page = web["alerts"][0]
    assert page["status"] == "partial" and page["firing"] is False
    assert page["partial"] == "5m of 1h"
    text = run_cli("endpoints", "--config", path, cwd=tmp_path)
    assert text.returncode == 0, text.stdout + text.stderr
    assert "page 1h/5m partial (5m of 1h)" in text.stdout
    assert "ticket 3d/6h partial (5m of 3d)" in text.stdout
    # ERR 1h is the ratio of the five minutes there are, and is marked so.
    assert "100.0%*" in text.stdout
    assert "* less history than the window" in text.stdout
