"""Range-query watermarks: the grid a window is cut from, and a writer that
stores each point once, whichever process writes it and in whichever order.

The same against a real Prometheus, across processes and restarts, is in
test_prometheus_api.py.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import httpx
import pytest

from opstui.config.endpoints import EndpointDef
from opstui.sources.fetch import observe
from opstui.sources.prometheus_api import FIRST_RANGE, MAX_RANGE_POINTS, range_window
from opstui.store import Store
from opstui.store.endpoints import Observation, record_observations
from opstui.store.metrics import read_watermarks, series_window

NOW = 1_800_000_000.0


def test_the_first_window_is_an_hour_on_the_grid() -> None:
    window = range_window(None, NOW + 7.4, 15)
    assert window == (NOW - FIRST_RANGE, NOW, 15.0)


def test_the_next_window_starts_one_step_after_the_watermark() -> None:
    assert range_window(NOW, NOW + 31, 15) == (NOW + 15, NOW + 30, 15.0)
    # A watermark with float noise in it is the same instant.
    assert range_window(NOW - 1e-7, NOW + 31, 15) == (NOW + 15, NOW + 30, 15.0)
    # A watermark off the grid (another interval, an older opstui) goes on
    # from the next instant of this grid after it.
    assert range_window(NOW + 0.001, NOW + 31, 15) == (NOW + 15, NOW + 30, 15.0)


def test_nothing_new_until_a_step_has_passed() -> None:
    assert range_window(NOW, NOW + 14.999, 15) is None
    # The server's clock behind the watermark (a restarted Prometheus, a
    # host clock that was ahead before): nothing is asked for, not the past.
    assert range_window(NOW, NOW - 300, 15) is None


def test_a_long_catch_up_is_cut_into_polls() -> None:
    start, end, step = range_window(NOW, NOW + 30 * 86400, 15) or (0, 0, 0)
    assert (start, step) == (NOW + 15, 15.0)
    assert (end - start) / step + 1 == MAX_RANGE_POINTS
    assert range_window(end, NOW + 30 * 86400, 15) == (end + 15, end + 15 * MAX_RANGE_POINTS, 15.0)


def test_subsecond_intervals_stay_on_millisecond_instants() -> None:
    start, end, step = range_window(NOW + 0.25, NOW + 1.0004, 0.25) or (0, 0, 0)
    assert (start, end, step) == (NOW + 0.5, NOW + 1.0, 0.25)


def _ob(at: float, points: tuple[tuple[float, float], ...], through: float) -> Observation:
    return Observation(
        "prom", "prometheus_api", "u", at, "up", None, 1.0, (),
        history=(("total", {}, points),),
        watermarks=(("total", through),),
    )  # fmt: skip


def test_a_point_already_stored_is_not_stored_again(store_where: Path | str) -> None:
    with Store(store_where) as store:
        record_observations(store, [_ob(NOW, ((NOW - 2, 1.0), (NOW - 1, 2.0)), NOW)], holder="a")
        # A second process fetched an overlapping window (a restart without
        # watermarks, or two pollers at once); one batch holds the same
        # point twice.
        overlapping = ((NOW - 2, 1.0), (NOW - 1, 2.0), (NOW, 3.0), (NOW, 3.0), (NOW + 1, 4.0))
        record_observations(store, [_ob(NOW + 1, overlapping, NOW + 1)], holder="b")
        stored = [(s.ts, s.value) for s in series_window(store, "endpoint/prom", "total")]
        marks = read_watermarks(store, "endpoint/prom", ["total"])
    assert stored == [(NOW - 2, 1.0), (NOW - 1, 2.0), (NOW, 3.0), (NOW + 1, 4.0)]
    assert marks == {"total": NOW + 1}


def test_a_slower_writer_neither_duplicates_nor_moves_the_watermark_back(
    store_where: Path | str,
) -> None:
    with Store(store_where) as store:
        # B fetched further than A but wrote first.
        record_observations(store, [_ob(NOW, ((NOW - 1, 1.0), (NOW, 2.0)), NOW)], holder="b")
        record_observations(store, [_ob(NOW, ((NOW - 1, 1.0),), NOW - 1)], holder="a")
        stored = [s.ts for s in series_window(store, "endpoint/prom", "total")]
        marks = read_watermarks(store, "endpoint/prom", ["total"])
    assert stored == [NOW - 1, NOW]
    assert marks == {"total": NOW}


def test_an_empty_window_still_moves_the_watermark(store_where: Path | str) -> None:
    with Store(store_where) as store:
        record_observations(store, [_ob(NOW, (), NOW)], holder="a")
        assert read_watermarks(store, "endpoint/prom", ["total", "other"]) == {"total": NOW}


def test_without_a_watermark_a_query_goes_on_from_its_last_point(store_where: Path | str) -> None:
    # A store from before watermarks, with range points in it.
    with Store(store_where) as store:
        ob = _ob(NOW, ((NOW - 5, 1.0), (NOW - 4, 1.0)), NOW)._replace(watermarks=())
        record_observations(store, [ob], holder="old")
        assert read_watermarks(store, "endpoint/prom", ["total"]) == {"total": NOW - 4}


def test_observe_asks_prometheus_for_its_time_and_the_window_after_the_watermark() -> None:
    """The window is on the server's clock, here a day behind this host's."""
    asked: list[dict[str, str]] = []
    server_now = NOW - 86400 + 0.7

    def answer(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        asked.append(params)
        if params["query"] == "time()":
            data = {"resultType": "scalar", "result": [server_now, repr(server_now)]}
        else:
            start, end = float(params["start"]), float(params["end"])
            values = [[start, "1"], [end, "2"], [end + 1, "9"]]  # one past the end
            data = {"resultType": "matrix", "result": [{"metric": {}, "values": values}]}
        return httpx.Response(200, json={"status": "success", "data": data})

    ep = EndpointDef(
        name="prom", kind="prometheus_api", url="http://prom", interval=1.0,
        range_queries={"total": "sum(x)"},
    )  # fmt: skip
    import asyncio

    ob = asyncio.run(
        observe(httpx.MockTransport(answer), ep, watermarks={"total": NOW - 86400 - 3})
    )
    assert ob.state == "up", ob.reason
    assert asked[1]["start"] == f"{NOW - 86400 - 2:.3f}"
    assert asked[1]["end"] == f"{NOW - 86400:.3f}"
    assert ob.history == (("total", {}, ((NOW - 86400 - 2, 1.0), (NOW - 86400, 2.0))),)
    assert ob.watermarks == (("total", NOW - 86400),)


@pytest.mark.parametrize("time_answer", [{"status": "error", "error": "x"}, {"status": "success"}])
def test_no_server_time_no_range_query(time_answer: dict[str, object]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.params["query"] == "time()"
        return httpx.Response(200, json=time_answer)

    ep = EndpointDef(
        name="prom", kind="prometheus_api", url="http://prom", range_queries={"total": "x"}
    )
    import asyncio

    ob = asyncio.run(observe(httpx.MockTransport(answer), ep))
    assert ob.state == "degraded" and ob.watermarks == () and ob.history == ()


def test_a_poller_does_not_fetch_again_what_its_writer_has_not_stored_yet(
    store_where: Path | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polls faster than the writer flushes: each goes on from the last
    one's end, not from the store's older watermark."""
    import asyncio
    import time

    from opstui.sources import poller as poller_module

    windows: list[tuple[float, float]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        if params["query"] == "time()":
            now = time.time()
            data: dict[str, object] = {"resultType": "scalar", "result": [now, repr(now)]}
        else:
            start, end, step = (float(params[k]) for k in ("start", "end", "step"))
            windows.append((start, end))
            n = round((end - start) / step) + 1
            values = [[round(start + i * step, 3), "1"] for i in range(n)]
            data = {"resultType": "matrix", "result": [{"metric": {}, "values": values}]}
        return httpx.Response(200, json={"status": "success", "data": data})

    monkeypatch.setattr(poller_module, "transport_for", lambda _: httpx.MockTransport(answer))
    ep = EndpointDef(
        name="prom", kind="prometheus_api", url="http://prom", interval=0.1,
        range_queries={"total": "sum(x)"},
    )  # fmt: skip
    poller = poller_module.Poller(store_where, [ep], flush_interval=60, use_leases=False)
    asyncio.run(poller.run(duration=1.5))
    assert len(windows) >= 5
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start == pytest.approx(end + 0.1, abs=1e-6)
    with Store(store_where) as store:
        stored = [s.ts for s in series_window(store, "endpoint/prom", "total")]
    assert len(stored) == len(set(stored))
    assert [round(b - a, 3) for a, b in itertools.pairwise(stored)] == [0.1] * (len(stored) - 1)
