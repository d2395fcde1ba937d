"""``prometheus_api`` endpoints against a real Prometheus server.

Prometheus (Debian's package, installed by .ci/run) scrapes the test's own
HTTP service every second; opstui then queries Prometheus' HTTP API.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opstui.config.endpoints import EndpointDef
from opstui.sources.poller import Poller

from .conftest import run_cli
from .http_service import Service, running_service
from .processes import free_port

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="the prometheus binary is missing (apt-get install -y prometheus; .ci/run does it)",
)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    assert PROMETHEUS is not None
    root = tmp_path_factory.mktemp("prometheus")
    with running_service() as (service, base):
        target = base.removeprefix("http://")
        (root / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: app\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        port = free_port()
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None, "prometheus exited"
                assert time.monotonic() < deadline, "prometheus not ready after 60 s"
                time.sleep(0.2)
            yield service, url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def query_until(url: str, query: str, want: float, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()
        result = doc["data"]["result"]
        if result and float(result[0]["value"][1]) >= want:
            return
        time.sleep(0.5)
    raise AssertionError(f"{query} never reached {want}")


def test_queries_through_the_prometheus_api(
    prometheus: tuple[Service, str], tmp_path: Path
) -> None:
    service, url = prometheus
    service.serve(ok=300, errors=100)
    query_until(url, "sum(http_requests_total)", 400)
    ep = EndpointDef(
        name="prom",
        kind="prometheus_api",
        url=url,
        queries={
            "requests": "sum(http_requests_total)",
            "error_share": 'sum(http_requests_total{code=~"5.."}) / sum(http_requests_total)',
            "nothing": "sum(no_such_metric_opstui)",
            "broken": "sum(rate(",
        },
    )
    (ob,) = asyncio.run(Poller(tmp_path / "s.db", [ep]).poll_once())
    values = {name: v for name, _, v in ob.samples}
    assert values["requests"] == 400
    assert values["error_share"] == pytest.approx(0.25)
    assert ob.state == "degraded"
    assert ob.reason is not None
    assert "nothing: no data" in ob.reason
    assert "broken: bad_data" in ob.reason


def test_prometheus_api_down_and_html(prometheus: tuple[Service, str], tmp_path: Path) -> None:
    _, url = prometheus
    with running_service() as (_, base):
        eps = [
            EndpointDef(name="html", kind="prometheus_api", url=f"{base}/html", queries={"q": "1"}),
            EndpointDef(
                name="gone",
                kind="prometheus_api",
                url=f"http://127.0.0.1:{free_port()}",
                queries={"q": "1"},
            ),
            EndpointDef(name="ok", kind="prometheus_api", url=url, queries={"one": "vector(1)"}),
        ]
        seen = {ob.endpoint: ob for ob in asyncio.run(Poller(tmp_path / "s.db", eps).poll_once())}
    assert seen["gone"].state == "down"
    assert seen["gone"].reason == "connection refused"
    assert seen["html"].state == "down"
    assert seen["ok"].state == "up"


def test_range_queries_backfill_then_fetch_only_what_is_new(
    prometheus: tuple[Service, str], tmp_path: Path
) -> None:
    from opstui.store import Store
    from opstui.store.metrics import series_window

    service, url = prometheus
    service.serve(ok=10, errors=0)
    # Several scrapes (one a second) must exist for a backfill to show them.
    query_until(url, 'count_over_time(http_requests_total{code="200"}[1m])', 3)
    ep = EndpointDef(
        name="range",
        kind="prometheus_api",
        url=url,
        interval=1.0,
        range_queries={"total": "sum(http_requests_total)"},
    )
    store_path = tmp_path / "s.db"
    poller = Poller(store_path, [ep])
    (first,) = asyncio.run(poller.poll_once())
    assert first.state == "up", first.reason
    ((name, _, pairs),) = first.history
    assert name == "total" and len(pairs) >= 2  # the backfill saw several scrapes
    time.sleep(2.5)
    (second,) = asyncio.run(poller.poll_once())
    later = second.history[0][2] if second.history else ()
    ((query, through),) = first.watermarks
    assert query == "total" and pairs[-1][0] <= through
    assert later and all(ts > through for ts, _ in later)
    with Store(store_path) as store:
        stored = [s.ts for s in series_window(store, "endpoint/range", "total")]
    assert stored == sorted(set(stored)), "a range point was stored twice"


def _stored(store_path: Path, name: str = "total") -> list[tuple[float, float]]:
    from opstui.store import Store
    from opstui.store.metrics import series_window

    with Store(store_path) as store:
        return [(s.ts, s.value) for s in series_window(store, "endpoint/range", name)]


def _assert_one_unbroken_series(points: list[tuple[float, float]], step: float) -> None:
    times = [t for t, _ in points]
    assert len(times) == len(set(times)), "a range point was stored twice"
    gaps = [(a, b) for a, b in itertools.pairwise(times) if round(b - a, 3) != step]
    assert not gaps, f"the series is not one point every {step}s: {gaps[:5]}"


def test_range_queries_continue_across_processes_and_restarts(
    prometheus: tuple[Service, str], tmp_path: Path
) -> None:
    """Two ``poll --once`` processes in a row, then a poller stopped and
    started again: every point once, one point per step, no gap, and the
    values Prometheus itself gives for those instants."""
    service, url = prometheus
    service.serve(ok=10, errors=0)
    query_until(url, 'count_over_time(http_requests_total{code="200"}[1m])', 3)
    config = tmp_path / "opstui.toml"
    config.write_text(
        "[endpoints.range]\n"
        'kind = "prometheus_api"\n'
        f'url = "{url}"\n'
        "interval = 1\n"
        'range_queries = { total = "sum(http_requests_total)" }\n'
    )
    store_path = tmp_path / "s.db"

    def poll(*args: str) -> None:
        done = run_cli("poll", *args, "--config", config, "--store", store_path)
        assert done.returncode == 0, done.stderr

    poll("--once")
    first = _stored(store_path)
    assert len(first) >= 3
    service.serve(ok=5, errors=0)
    time.sleep(2.5)  # a few scrapes, and a few steps of the grid
    poll("--once")  # a second process: it goes on from the store's watermark
    second = _stored(store_path)
    assert second[: len(first)] == first  # what was stored stays as it was
    assert len(second) > len(first)
    _assert_one_unbroken_series(second, 1.0)

    poll("--duration", "3")  # a poller that runs, stops...
    time.sleep(2)
    service.serve(ok=5, errors=0)
    time.sleep(1.5)
    poll("--duration", "3")  # ...and starts again
    after = _stored(store_path)
    assert after[: len(second)] == second
    _assert_one_unbroken_series(after, 1.0)

    # The values are Prometheus' own at those instants, gaps filled.
    start, end = after[0][0], after[-1][0]
    doc = httpx.get(
        f"{url}/api/v1/query_range",
        params={"query": "sum(http_requests_total)", "start": start, "end": end, "step": 1},
        timeout=10,
    ).json()
    theirs = [(float(t), float(v)) for t, v in doc["data"]["result"][0]["values"]]
    assert after == theirs

    from opstui.store import Store
    from opstui.store.metrics import read_watermarks

    with Store(store_path) as store:
        mark = read_watermarks(store, "endpoint/range", ["total"])["total"]
    assert mark >= end


def test_two_pollers_at_once_store_each_range_point_once(
    prometheus: tuple[Service, str], tmp_path: Path
) -> None:
    """``poll --once`` ignores leases, so two can fetch the same window: the
    writer stores what the other did not, each point once."""
    _, url = prometheus
    query_until(url, 'count_over_time(http_requests_total{code="200"}[1m])', 3)
    config = tmp_path / "opstui.toml"
    config.write_text(
        "[endpoints.range]\n"
        'kind = "prometheus_api"\n'
        f'url = "{url}"\n'
        "interval = 1\n"
        'range_queries = { total = "sum(http_requests_total)" }\n'
    )
    store_path = tmp_path / "s.db"
    command = [sys.executable, "-m", "opstui", "poll", "--once", "--config", str(config)]
    command += ["--store", str(store_path)]
    for _ in range(2):
        procs = [subprocess.Popen(command, stderr=subprocess.PIPE) for _ in range(2)]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
        time.sleep(1.5)
    _assert_one_unbroken_series(_stored(store_path), 1.0)


def total_now(url: str, query: str) -> float:
    doc = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()
    result = doc["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def test_prometheus_api_endpoints_as_an_slo_source(
    prometheus: tuple[Service, str], tmp_path: Path
) -> None:
    """Requests and errors counters, or a ratio query, give error ratios, burn,
    alerts and a state in `opstui endpoints --json`; two polls seconds apart are
    a fresh endpoint, so every alert pair says partial and none fires."""
    import json

    from opstui.config import load_config

    from .conftest import run_cli

    service, url = prometheus
    total, bad = "sum(http_requests_total)", 'sum(http_requests_total{code=~"5.."}) or vector(0)'
    config = tmp_path / "opstui.toml"
    config.write_text(
        f"""store = "ops.db"
[endpoints.counted]
kind = "prometheus_api"
url = "{url}"
queries = {{ all = '{total}', failed = '{bad}' }}
requests = "all"
errors = "failed"
slo = 0.99

[endpoints.ratio]
kind = "prometheus_api"
url = "{url}"
queries = {{ share = '({bad}) / {total}' }}
error_ratio = "share"
slo = 0.99
"""
    )
    cfg = load_config(config)
    poller = Poller(tmp_path / "ops.db", list(cfg.endpoints.values()))
    shares = []
    for _ in range(2):
        # 10 % of the requests between two polls fail: that is the ratio over any
        # window holding both polls (both counters extrapolate alike).
        before = total_now(url, total)
        service.serve(ok=90, errors=10)
        query_until(url, total, before + 100)
        seen = {ob.endpoint: ob for ob in asyncio.run(poller.poll_once())}
        assert seen["counted"].state == "up", seen["counted"].reason
        shares.append(next(v for n, _, v in seen["ratio"].samples if n == "share"))
    result = run_cli("endpoints", "--json", "--config", config, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = {e["name"]: e for e in json.loads(result.stdout)["endpoints"]}

    counted = doc["counted"]
    assert counted["error_ratio"]["5m"] == pytest.approx(0.1)
    assert counted["burn_rate"]["5m"] == pytest.approx(10)
    assert counted["state"] == "up"
    assert [a["status"] for a in counted["alerts"]] == ["partial"] * 4
    assert counted["alerts"][0]["partial"].endswith(" of 1h")
    assert counted["history_seconds"]["1h"] < 60

    ratio = doc["ratio"]
    assert ratio["error_ratio"]["5m"] == pytest.approx(sum(shares) / 2)
    assert ratio["burn_rate"]["5m"] == pytest.approx(sum(shares) / 2 / 0.01)
    assert ratio["state"] == "up"
    assert not any(a["firing"] for a in ratio["alerts"])
