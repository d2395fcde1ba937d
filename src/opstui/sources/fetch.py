"""One poll of one endpoint: fetch, read, and judge it.

Every failure becomes an ``Observation`` with a state and a one-line reason;
nothing here raises for a bad endpoint, so one broken endpoint never stops
the poller. Secret header values are read from the environment at poll time
and never appear in a reason (only the variable's name does): every reason is
masked in ``_observation``, the one place an observation is made, because it
may quote the server (a reason phrase, a Prometheus API error, a malformed
line) and a server may echo the request's headers.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx

from opstui import __version__
from opstui.config.endpoints import EndpointDef
from opstui.sources.http import (
    MissingSecret,
    RedirectRefused,
    Redirects,
    TooLarge,
    add_capped,
    auth_problem,
    connect_reason,
    looks_html,
    mask,
    secret_headers,
    shown_url,
)
from opstui.store.endpoints import Observation
from opstui.store.status import DEGRADED, DOWN, UP

Samples = tuple[tuple[str, Mapping[str, str], float], ...]
#: Characters of a reason kept (after masking: a cut must not halve a token
#: before the mask can recognise it).
REASON_MAX = 300


#: Sent with every poll; an endpoint's own headers override them.
DEFAULT_HEADERS = {"User-Agent": f"opstui/{__version__}", "Accept-Encoding": "gzip, deflate"}
# Parsing a URL is a good part of a request's cost; an endpoint's is parsed once.
_parsed_url = functools.lru_cache(maxsize=4096)(httpx.URL)


async def _get(
    transport: httpx.AsyncBaseTransport, ep: EndpointDef, url: str | httpx.URL
) -> tuple[httpx.Response, bytes]:
    """GET ``url`` straight on the transport, following redirects (``Redirects``).

    A poll needs none of the rest of what ``httpx.AsyncClient.send`` adds
    (auth flows, and a cookie jar it parses every response into, which a
    poller should not keep anyway), and that layer cost more CPU than the
    request itself (bench/poller_load.py). Raises ``RedirectRefused`` for a
    loop, too many hops or a downgrade to http.
    """
    hops = Redirects(
        _parsed_url(url) if isinstance(url, str) else url,
        {**DEFAULT_HEADERS, **ep.headers},
        secret_headers(ep),
    )
    t = ep.timeout
    # No per-read timer: ``observe``'s deadline bounds the whole exchange,
    # every hop included.
    extensions = {"timeout": {"connect": t, "read": None, "write": t, "pool": t}}
    while True:
        request = httpx.Request("GET", hops.url, headers=hops.headers(), extensions=extensions)
        response = await transport.handle_async_request(request)
        response.request = request
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                add_capped(body, chunk, ep.max_body)
        finally:
            await response.aclose()
        if not hops.follow(response.status_code, response.headers.get("location")):
            return response, bytes(body)


def _observation(
    ep: EndpointDef,
    at: float,
    state: str,
    reason: str | None,
    latency_ms: float | None,
    *,
    samples: Samples = (),
) -> Observation:
    if reason is not None:
        reason = mask(reason, ep)[:REASON_MAX]
    return Observation(ep.name, ep.kind, shown_url(ep.url), at, state, reason, latency_ms, samples)


def _http_problem(ep: EndpointDef, response: httpx.Response) -> str | None:
    code = response.status_code
    auth = auth_problem(ep, code)
    if auth:
        return auth
    if code >= 400:
        return f"HTTP {code} {response.reason_phrase}".strip()
    if code >= 300:
        # A redirect ``_get`` did not follow is no answer: a health check
        # must not read up on it.
        why = "without a Location to follow" if "location" not in response.headers else ""
        return f"HTTP {code} {response.reason_phrase} {why or '(not followed)'}".strip()
    return None


async def observe(
    transport: httpx.AsyncBaseTransport,
    ep: EndpointDef,
    *,
    watermarks: Mapping[str, float] | None = None,
) -> Observation:
    """Poll ``ep`` once (kinds health, prometheus, prometheus_api, json).

    ``watermarks`` says, per range query, up to which time (the server's)
    its points are stored already: the query fetches only what came after.
    """
    at = time.time()
    started = time.perf_counter()
    try:
        # The overall deadline also bounds a server that drips bytes slowly,
        # which httpx's per-read timeout alone would not.
        async with asyncio.timeout(ep.timeout):
            if ep.kind == "prometheus_api":
                return await _prometheus_api(transport, ep, at, started, watermarks or {})
            response, body = await _get(transport, ep, ep.url)
    except MissingSecret as exc:
        return _observation(ep, at, DOWN, str(exc), None)
    except RedirectRefused as exc:
        latency = (time.perf_counter() - started) * 1000
        return _observation(ep, at, DOWN, str(exc), latency, samples=(("up", {}, 0.0),))
    except TooLarge:
        return _observation(
            ep, at, DOWN, f"response larger than {ep.max_body:,} bytes (max_body)", None
        )
    except (TimeoutError, httpx.TimeoutException):
        return _observation(ep, at, DOWN, f"no answer within {ep.timeout:g}s", None)
    except httpx.ConnectError as exc:
        return _observation(ep, at, DOWN, connect_reason(exc), None)
    except httpx.HTTPError as exc:
        return _observation(ep, at, DOWN, f"{type(exc).__name__}: {exc}", None)
    latency = (time.perf_counter() - started) * 1000
    problem = _http_problem(ep, response)
    if problem:
        return _observation(ep, at, DOWN, problem, latency, samples=(("up", {}, 0.0),))
    if ep.kind == "health":
        return _health(ep, at, latency)
    if looks_html(response.headers.get("content-type", ""), body):
        expected = "Prometheus text" if ep.kind == "prometheus" else "JSON"
        return _observation(
            ep, at, DOWN, f"expected {expected}, got an HTML page (HTTP {response.status_code})",
            latency,
        )  # fmt: skip
    if ep.kind == "prometheus":
        return _prometheus(ep, at, latency, body)
    return _json(ep, at, latency, body)


def _health(ep: EndpointDef, at: float, latency: float) -> Observation:
    samples: Samples = (("up", {}, 1.0), ("latency_ms", {}, latency))
    if ep.slow_ms is not None and latency > ep.slow_ms:
        reason = f"slow: {latency:.0f} ms > {ep.slow_ms:g} ms"
        return _observation(ep, at, DEGRADED, reason, latency, samples=samples)
    return _observation(ep, at, UP, None, latency, samples=samples)


def _prometheus(ep: EndpointDef, at: float, latency: float, body: bytes) -> Observation:
    from opstui.sources.exposition import counter_total, histogram_buckets, parse_exposition

    exp = parse_exposition(body.decode("utf-8", errors="replace"))
    assert ep.requests is not None  # validated by the config
    pattern = re.compile(ep.error_match)
    total = counter_total(exp, ep.requests)
    if total is None:
        reason = f"counter {ep.requests} is not in the exposition"
        if exp.errors:
            reason += f" ({exp.error_count} malformed lines, first: {exp.errors[0]})"
        return _observation(ep, at, DEGRADED, reason, latency, samples=(("up", {}, 1.0),))
    errors = counter_total(
        exp,
        ep.requests,
        where=lambda labels: pattern.fullmatch(labels.get(ep.error_label, "")) is not None,
    )
    samples: list[tuple[str, Mapping[str, str], float]] = [
        ("up", {}, 1.0),
        ("requests_total", {}, total),
        ("errors_total", {}, errors or 0.0),
    ]
    if ep.latency:
        for le, count in sorted((histogram_buckets(exp, ep.latency) or {}).items()):
            samples.append(("latency_bucket", {"le": _le(le)}, count))
    if exp.errors:
        reason = f"{exp.error_count} malformed lines skipped, first: {exp.errors[0]}"
        return _observation(ep, at, DEGRADED, reason, latency, samples=tuple(samples))
    return _observation(ep, at, UP, None, latency, samples=tuple(samples))


def _le(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)


def json_path(document: Any, path: str) -> float:
    """Follow ``a.b.0.c`` into a JSON document; raise ``ValueError`` naming the step."""
    node = document
    for step in path.split("."):
        if isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        elif isinstance(node, dict) and step in node:
            node = node[step]
        else:
            raise ValueError(f"no {step!r} at {path}")
    if isinstance(node, bool):
        return 1.0 if node else 0.0
    if isinstance(node, int | float):
        return float(node)
    if isinstance(node, str):
        try:
            return float(node)
        except ValueError:
            pass
    raise ValueError(f"{path} is {type(node).__name__}, not a number")


def _json(ep: EndpointDef, at: float, latency: float, body: bytes) -> Observation:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _observation(ep, at, DOWN, "expected JSON, got something else", latency)
    samples: list[tuple[str, Mapping[str, str], float]] = [("up", {}, 1.0)]
    problems = []
    for name, path in ep.fields.items():
        try:
            samples.append((name, {}, json_path(document, path)))
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        return _observation(ep, at, DEGRADED, "; ".join(problems), latency, samples=tuple(samples))
    return _observation(ep, at, UP, None, latency, samples=tuple(samples))


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
