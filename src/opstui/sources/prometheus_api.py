"""The Prometheus HTTP API as an endpoint kind (``prometheus_api``).

Instant queries become samples; range queries fetch only the points after
each query's watermark, on one grid of instants on the server's clock
(``range_window``), so two polls never ask for one instant twice.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

import httpx

from opstui.config.endpoints import EndpointDef
from opstui.sources.probe import _get, _http_problem, _observation
from opstui.store.endpoints import Observation
from opstui.store.status import DEGRADED, DOWN, UP


class _ApiDown(Exception):
    pass


async def _api(
    transport: httpx.AsyncBaseTransport, ep: EndpointDef, path: str, params: dict[str, str]
) -> dict[str, Any]:
    """One Prometheus API call; raises ``_ApiDown`` when the answer is not the API's JSON."""
    url = httpx.URL(f"{ep.url.rstrip('/')}{path}", params=params)
    response, body = await _get(transport, ep, url)
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise _ApiDown(_http_problem(ep, response) or "expected the Prometheus API's JSON")
    return doc


def _api_error(doc: Mapping[str, Any]) -> str | None:
    if doc.get("status") == "success":
        return None
    return f"{doc.get('errorType', 'error')}: {doc.get('error', '')}"


async def _prometheus_api(
    transport: httpx.AsyncBaseTransport,
    ep: EndpointDef,
    at: float,
    started: float,
    watermarks: Mapping[str, float],
) -> Observation:
    samples: list[tuple[str, Mapping[str, str], float]] = []
    history: list[tuple[str, Mapping[str, str], tuple[tuple[float, float], ...]]] = []
    marks: list[tuple[str, float]] = []
    problems = []
    try:
        for name, query in ep.queries.items():
            doc = await _api(transport, ep, "/api/v1/query", {"query": query})
            error = _api_error(doc)
            value = None if error else _api_value(doc.get("data") or {})
            if error or value is None:
                problems.append(f"{name}: {error or 'no data'}")
            else:
                samples.append((name, {}, value))
        # The range queries' window is on the server's clock: time() asked of
        # Prometheus itself, not this host's, which may be ahead or behind.
        now = await _server_time(transport, ep) if ep.range_queries else None
        if ep.range_queries and now is None:
            problems.append("range queries: the server did not say its time (time())")
        for name, query in ep.range_queries.items():
            if now is None:
                break
            window = range_window(watermarks.get(name), now, ep.interval)
            if window is None:
                continue  # no step of the grid has passed since the last poll
            start, end, step = window
            params = {
                "query": query,
                "start": f"{start:.3f}",
                "end": f"{end:.3f}",
                "step": f"{step:.3f}",
            }
            doc = await _api(transport, ep, "/api/v1/query_range", params)
            error = _api_error(doc)
            if error:
                problems.append(f"{name}: {error}")
                continue
            after = watermarks.get(name)
            pairs = _api_matrix(doc.get("data") or {}, after=after, until=end)
            if pairs:
                history.append((name, {}, pairs))
            marks.append((name, end))
    except _ApiDown as exc:
        latency = (time.perf_counter() - started) * 1000
        return _observation(ep, at, DOWN, str(exc), latency)
    latency = (time.perf_counter() - started) * 1000
    state = DEGRADED if problems else UP
    reason = "; ".join(problems) if problems else None
    ob = _observation(ep, at, state, reason, latency, samples=(("up", {}, 1.0), *samples))
    return ob._replace(history=tuple(history), watermarks=tuple(marks))


#: Points one range query asks for at most (Prometheus refuses more than
#: 11,000); a longer catch-up continues on the next polls.
MAX_RANGE_POINTS = 10_000
#: How far back the first poll of a range query reaches.
FIRST_RANGE = 3600.0


def range_window(
    watermark: float | None, now: float, interval: float
) -> tuple[float, float, float] | None:
    """``(start, end, step)`` of the next range query, or None when nothing is new.

    Every instant is on one grid, the multiples of ``step`` (the endpoint's
    interval) since the epoch, whichever process asks: ``start`` is the
    first grid instant after ``watermark`` (an hour back on the first poll),
    ``end`` the last one at or before ``now``, the server's time (so a host
    clock ahead of Prometheus cannot ask for instants that have not
    happened). Two polls therefore never ask for one instant twice, nor for
    two instants a millisecond apart. In milliseconds, as Prometheus' times are.
    """
    step_ms = max(1, round(interval * 1000))
    end_ms = math.floor(now * 1000) // step_ms * step_ms
    if watermark is None:
        start_ms = -(-(end_ms - round(FIRST_RANGE * 1000)) // step_ms) * step_ms
    else:
        start_ms = (round(watermark * 1000) // step_ms + 1) * step_ms
    if start_ms > end_ms:
        return None
    end_ms = min(end_ms, start_ms + (MAX_RANGE_POINTS - 1) * step_ms)
    return start_ms / 1000, end_ms / 1000, step_ms / 1000


async def _server_time(transport: httpx.AsyncBaseTransport, ep: EndpointDef) -> float | None:
    """Prometheus' own clock (its ``time()``), or None if it does not answer with one."""
    doc = await _api(transport, ep, "/api/v1/query", {"query": "time()"})
    data = doc.get("data")
    if _api_error(doc) or not isinstance(data, dict) or data.get("resultType") != "scalar":
        return None
    try:
        now = float(data["result"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return now if math.isfinite(now) else None


def _api_matrix(
    data: Mapping[str, Any], *, after: float | None, until: float
) -> tuple[tuple[float, float], ...]:
    """A range result as one series: the values of all its series summed per timestamp.

    Only points in ``(after, until]`` are kept: the window asked for, which a
    server should not overstep anyway.
    """
    if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
        return ()
    sums: dict[float, float] = {}
    try:
        for series in data["result"]:
            for ts, value in series["values"]:
                t = float(ts)
                if (after is None or t > after) and t <= until:
                    sums[t] = sums.get(t, 0.0) + float(value)
    except (KeyError, TypeError, ValueError):
        return ()
    return tuple(sorted(sums.items()))


def _api_value(data: Mapping[str, Any]) -> float | None:
    """A query result as one number: a scalar, or the sum of a vector."""
    kind, result = data.get("resultType"), data.get("result")
    try:
        if kind == "scalar" and isinstance(result, list):
            return float(result[1])
        if kind == "vector" and isinstance(result, list) and result:
            return sum(float(item["value"][1]) for item in result)
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return None
