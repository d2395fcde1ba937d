"""The poller against a real HTTP service on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opstui.config import parse_config
from opstui.config.endpoints import EndpointDef
from opstui.sources.backoff import backoff
from opstui.sources.poller import Poller
from opstui.store import Store
from opstui.store.endpoints import Observation, endpoint_statuses, lease_holders
from opstui.store.metrics import series_window

from .conftest import run_cli, sqlite_conn
from .http_service import TOKEN, Service, running_service


@pytest.fixture
def service() -> Iterator[tuple[Service, str]]:
    with running_service() as pair:
        yield pair


def ep(name: str, url: str, kind: str = "health", **extra: object) -> EndpointDef:
    return EndpointDef(name=name, kind=kind, url=url, **extra)  # type: ignore[arg-type]


def poll_once(store_path: Path, endpoints: list[EndpointDef]) -> dict[str, Observation]:
    results = asyncio.run(Poller(store_path, endpoints).poll_once())
    return {ob.endpoint: ob for ob in results}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_failure_is_a_state_with_a_reason(
    service: tuple[Service, str], store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, base = service
    monkeypatch.setenv("API_TOKEN", f"Bearer {TOKEN}")
    monkeypatch.setenv("BAD_TOKEN", "Bearer wrong-secret-value")
    endpoints = [
        ep("ok", f"{base}/health"),
        ep("refused", f"http://127.0.0.1:{closed_port()}/health"),
        ep("hang", f"{base}/hang", timeout=1.0),
        ep("error500", f"{base}/500"),
        ep("html", f"{base}/html", kind="prometheus", requests="http_requests_total"),
        ep("big", f"{base}/big", max_body=5_000_000, timeout=20.0),
        ep("authed", f"{base}/auth", secret_headers={"Authorization": "API_TOKEN"}),
        ep("bad-token", f"{base}/auth", secret_headers={"Authorization": "BAD_TOKEN"}),
        ep("no-token", f"{base}/auth", secret_headers={"Authorization": "UNSET_TOKEN_VAR"}),
        ep("json-html", f"{base}/html", kind="json", fields={"x": "a"}),
    ]
    started = time.monotonic()
    seen = poll_once(store_path, endpoints)
    # The hanging endpoint cost its own timeout, not everyone's.
    assert time.monotonic() - started < 8
    expected = {
        "ok": ("up", None),
        "refused": ("down", "connection refused"),
        "hang": ("down", "no answer within 1s"),
        "error500": ("down", "HTTP 500 Internal Server Error"),
        "html": ("down", "expected Prometheus text, got an HTML page (HTTP 200)"),
        "big": ("down", "response larger than 5,000,000 bytes (max_body)"),
        "authed": ("up", None),
        "bad-token": ("down", "HTTP 401 unauthorized (check the token in $BAD_TOKEN)"),
        "no-token": ("down", "header Authorization needs $UNSET_TOKEN_VAR, which is not set"),
        "json-html": ("down", "expected JSON, got an HTML page (HTTP 200)"),
    }
    assert {name: (ob.state, ob.reason) for name, ob in seen.items()} == expected
    # The status is stored, and no secret value reached the store.
    with Store(store_path) as store:
        stored = {s.name: (s.state, s.reason) for s in endpoint_statuses(store)}
        dump = "\n".join(sqlite_conn(store).iterdump())
    assert stored == expected
    assert TOKEN not in dump and "wrong-secret-value" not in dump


def test_slow_health_is_degraded(service: tuple[Service, str], store_path: Path) -> None:
    svc, base = service
    svc.health_delay = 0.3
    ob = poll_once(store_path, [ep("slow", f"{base}/health", slow_ms=100)])["slow"]
    assert ob.state == "degraded"
    assert ob.reason is not None and ob.reason.startswith("slow: ")


def test_prometheus_counters_become_an_error_rate(
    service: tuple[Service, str], store_path: Path
) -> None:
    svc, base = service
    metrics = ep(
        "web",
        f"{base}/metrics",
        kind="prometheus",
        requests="http_requests_total",
        latency="http_request_duration_seconds",
    )
    svc.serve(ok=90, errors=10)
    first = poll_once(store_path, [metrics])["web"]
    assert first.state == "up"
    values = {(name, tuple(labels.items())): v for name, labels, v in first.samples}
    assert values[("requests_total", ())] == 100
    assert values[("errors_total", ())] == 10
    assert values[("latency_bucket", (("le", "0.1"),))] == 100
    svc.serve(ok=150, errors=50)
    poll_once(store_path, [metrics])
    # A restart: counters start again from zero; the increase still counts it.
    svc.reset_metrics()
    svc.serve(ok=80, errors=20)
    poll_once(store_path, [metrics])
    with Store(store_path) as store:
        total = series_window(store, "endpoint/web", "requests_total")
        errors = series_window(store, "endpoint/web", "errors_total")
    assert [s.value for s in total] == [100, 300, 100]
    assert [s.value for s in errors] == [10, 60, 20]


def test_malformed_exposition_is_degraded_not_fatal(
    service: tuple[Service, str], store_path: Path
) -> None:
    svc, base = service
    svc.serve(ok=5, errors=0)
    ob = poll_once(
        store_path,
        [ep("bad", f"{base}/malformed", kind="prometheus", requests="http_requests_total")],
    )["bad"]
    assert ob.state == "degraded"
    assert ob.reason is not None and "2 malformed lines skipped" in ob.reason
    assert ("requests_total", {}, 5.0) in ob.samples


def test_json_fields(service: tuple[Service, str], store_path: Path) -> None:
    svc, base = service
    fields = {"depth": "queue.depth", "lag": "lag_seconds", "ok": "ok"}
    ob = poll_once(store_path, [ep("q", f"{base}/json", kind="json", fields=fields)])["q"]
    assert ob.state == "up"
    assert {n: v for n, _, v in ob.samples} == {"up": 1.0, "depth": 7.0, "lag": 1.5, "ok": 1.0}
    svc.json_doc = {"queue": {}}
    ob = poll_once(store_path, [ep("q", f"{base}/json", kind="json", fields=fields)])["q"]
    assert ob.state == "degraded"
    assert ob.reason is not None and "depth: no 'depth' at queue.depth" in ob.reason


def test_backoff_grows_with_failures_and_is_jittered() -> None:
    rng = random.Random(1)
    assert backoff(10, 0, rng) == 10
    delays = [backoff(10, n, rng) for n in (1, 2, 3, 10)]
    assert 16 <= delays[0] <= 24
    assert 32 <= delays[1] <= 48
    assert 64 <= delays[2] <= 96
    assert delays[3] <= 300 * 1.2


def test_a_hanging_endpoint_does_not_delay_the_others(
    service: tuple[Service, str], store_path: Path
) -> None:
    svc, base = service
    endpoints = [ep(f"ok{i}", f"{base}/health", interval=0.2) for i in range(5)]
    endpoints += [ep(f"hang{i}", f"{base}/hang", interval=0.2, timeout=2.0) for i in range(3)]
    poller = Poller(store_path, endpoints, max_concurrency=8, use_leases=False, seed=1)
    asyncio.run(poller.run(duration=3.0))
    ok_polls = svc.hits["/health"]
    # Each healthy endpoint kept its 0.2 s rhythm (about 15 polls in 3 s).
    assert ok_polls >= 5 * 10
    with Store(store_path) as store:
        states = {s.name: s.state for s in endpoint_statuses(store)}
    assert all(states[f"ok{i}"] == "up" for i in range(5))
    assert all(states[f"hang{i}"] == "down" for i in range(3))


def test_two_pollers_share_the_work_through_leases(
    service: tuple[Service, str], store_where: Path | str
) -> None:
    svc, base = service
    endpoints = [ep(f"e{i}", f"{base}/health", interval=0.25) for i in range(4)]
    Store(store_where).close()

    async def both() -> tuple[Poller, Poller]:
        a, b = Poller(store_where, endpoints, seed=1), Poller(store_where, endpoints, seed=2)
        a.holder, b.holder = "poller-a", "poller-b"
        await asyncio.gather(a.run(duration=2.0), b.run(duration=2.0))
        return a, b

    a, b = asyncio.run(both())
    # Every endpoint was polled by exactly one of them: the polls add up to
    # one poller's worth (about 8 per endpoint in 2 s), not two.
    assert a.stats.polls + b.stats.polls == svc.hits["/health"]
    assert svc.hits["/health"] <= 4 * 10
    assert a.stats.polls == 0 or b.stats.polls == 0 or a.held.isdisjoint(b.held)
    with Store(store_where) as store:
        assert lease_holders(store) == {}  # released on exit


def test_endpoints_command_reports_states_and_burn(
    service: tuple[Service, str], tmp_path: Path
) -> None:
    from opstui.views.endpoints import endpoint_reports

    svc, base = service
    svc.serve(ok=10, errors=0)  # the live poll below finds the counter
    config = tmp_path / "opstui.toml"
    config.write_text(
        f"""
store = "ops.db"
[endpoints.web]
kind = "prometheus"
url = "{base}/metrics"
requests = "http_requests_total"
slo = 0.999
interval = 60
[endpoints.broken]
kind = "health"
url = "{base}/500"
"""
    )
    cfg = parse_config(config.read_text(), config)
    store_path = tmp_path / "ops.db"
    # Seventy minutes of history at 10 % errors, written as the poller would:
    # enough to judge the 1h page (burn alerts need history covering their
    # long window; tests/test_burn_history.py has the young endpoint).
    with Store(store_path) as store:
        from opstui.store.endpoints import record_observations

        now = time.time()
        obs: list[Observation] = []
        for i in range(421):
            at = now - 4200 + 10 * i
            samples: tuple[tuple[str, dict[str, str], float], ...] = (
                ("requests_total", {}, 1000.0 * i),
                ("errors_total", {}, 100.0 * i),
            )
            obs.append(
                Observation(
                    "web", "prometheus", cfg.endpoints["web"].url, at, "up", None, 5.0, samples
                )
            )
        record_observations(store, obs, holder="test")
        reports = {r.name: r for r in endpoint_reports(store, cfg, now)}
    web = reports["web"]
    assert web.ratios["5m"] == pytest.approx(0.1)
    assert web.burn["5m"] == pytest.approx(100)
    assert web.state == "burning"
    assert web.reason is not None and "page" in web.reason
    assert reports["broken"].state == "unknown"
    once = run_cli("poll", "--once", "--config", config, cwd=tmp_path)
    assert once.returncode == 1
    assert "broken: down: HTTP 500" in once.stdout
    result = run_cli("endpoints", "--json", "--config", config, cwd=tmp_path)
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    states = {e["name"]: e["state"] for e in doc["endpoints"]}
    assert states == {"broken": "down", "web": "burning"}
    table = run_cli("endpoints", "--config", config, cwd=tmp_path)
    assert "ERR 5m" in table.stdout and "broken: HTTP 500" in table.stdout


def test_latency_quantiles_come_from_the_histogram(tmp_path: Path) -> None:
    from opstui.store.endpoints import record_observations
    from opstui.views.endpoints import endpoint_reports

    config = tmp_path / "opstui.toml"
    config.write_text(
        '[endpoints.web]\nkind = "prometheus"\nurl = "http://127.0.0.1:1/metrics"\n'
        'requests = "http_requests_total"\nlatency = "http_request_duration_seconds"\n'
    )
    cfg = parse_config(config.read_text(), config)
    now = time.time()
    obs = []
    for i in range(31):  # five minutes, every 10 s: 100 requests, 90 under 0.1 s
        n = 100.0 * i
        buckets = {"0.1": 0.9 * n, "0.5": 0.99 * n, "1.0": n, "+Inf": n}
        samples = tuple(("latency_bucket", {"le": le}, c) for le, c in buckets.items())
        obs.append(
            Observation("web", "prometheus", "u", now - 300 + 10 * i, "up", None, 1.0, samples)
        )
    with Store(tmp_path / "s.db") as store:
        record_observations(store, obs, holder="t")
        (report,) = endpoint_reports(store, cfg, now)
    assert report.latency_p50 == pytest.approx(0.1 * 0.5 / 0.9)
    assert report.latency_p99 == pytest.approx(0.5)


def test_a_locked_store_delays_writes_but_loses_nothing(
    service: tuple[Service, str], store_path: Path
) -> None:
    import sqlite3

    _, base = service
    Store(store_path).close()
    endpoints = [ep("ok", f"{base}/health", interval=0.2)]

    async def scenario() -> Poller:
        # A short busy timeout, so the writes fail while another process
        # holds the write lock (instead of queueing behind it for 30 s).
        poller = Poller(
            store_path, endpoints, use_leases=False, flush_interval=0.2, busy_timeout=0.2
        )
        poller_task = asyncio.create_task(poller.run(duration=4.0))
        await asyncio.sleep(0.5)
        hog = sqlite3.connect(store_path, isolation_level=None, timeout=0)
        hog.execute("BEGIN IMMEDIATE")
        await asyncio.sleep(1.5)
        hog.execute("ROLLBACK")
        hog.close()
        await poller_task
        return poller

    poller = asyncio.run(scenario())
    assert poller.stats.write_errors, "the lock was never felt"
    assert "StoreBusy" in poller.stats.write_errors[0]
    assert poller.stats.polls >= 12  # polling went on while the store was locked
    with Store(store_path) as store:
        stored = len(series_window(store, "endpoint/ok", "up"))
    assert stored == poller.stats.polls


def test_a_write_in_flight_when_the_poller_stops_is_awaited_not_lost(
    service: tuple[Service, str], store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stopping cancels the periodic flush; its write goes on in a thread. The
    # final flush used to run beside it: here the first write is still held
    # (a lock) when the poller stops and then fails busy, and its batch, with
    # nobody left to put it back, was lost.
    import threading

    from opstui.sources import poller as poller_module
    from opstui.store import StoreBusy
    from opstui.store.endpoints import record_observations as real

    calls = []
    held = threading.Event()

    def write(store: Store, batch: list[Observation], **kw: object) -> None:
        calls.append(len(batch))
        if len(calls) == 1:
            held.set()
            time.sleep(1.0)  # past the poller's stop
            raise StoreBusy("the store is locked (test)")
        real(store, batch, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(poller_module, "record_observations", write)
    _, base = service
    Store(store_path).close()
    poller = Poller(
        store_path, [ep("ok", f"{base}/health", interval=0.1)], use_leases=False,
        flush_interval=0.3,
    )  # fmt: skip
    asyncio.run(poller.run(duration=0.6))
    assert held.is_set() and len(calls) >= 2
    with Store(store_path) as store:
        stored = len(series_window(store, "endpoint/ok", "up"))
    assert stored == poller.stats.polls, (stored, poller.stats.polls, calls)


def test_endpoints_on_a_missing_store_says_so_and_creates_nothing(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    config = tmp_path / "opstui.toml"
    config.write_text('[endpoints.web]\nurl = "http://127.0.0.1:9/health"\nkind = "health"\n')
    missing = tmp_path / "nowhere.db"
    result = run_cli("endpoints", "--store", missing, "--config", config)
    assert result.returncode == 2, result.stderr
    assert "nowhere.db" in result.stderr and len(result.stderr.strip().splitlines()) <= 2
    assert not missing.exists()
