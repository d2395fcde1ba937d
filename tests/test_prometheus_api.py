"""``prometheus_api`` endpoints against a real Prometheus server.

Prometheus (Debian's package, installed by .ci/run) scrapes the test's own
HTTP service every second; opstui then queries Prometheus' HTTP API.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opstui.endpoint_config import EndpointDef
from opstui.sources.poller import Poller

from .http_service import Service, running_service

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="the prometheus binary is missing (apt-get install -y prometheus; .ci/run does it)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    print("FIRST", first.at, [t for t, _ in pairs][-3:], "SECOND", [t for t, _ in later])
    assert later and all(ts > first.at for ts, _ in later)
    with Store(store_path) as store:
        stored = [s.ts for s in series_window(store, "endpoint/range", "total")]
    assert stored == sorted(set(stored)), "a range point was stored twice"
