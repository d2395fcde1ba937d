"""One poll of one endpoint: fetch, read, and judge it.

Every failure becomes an ``Observation`` with a state and a one-line reason;
nothing here raises for a bad endpoint, so one broken endpoint never stops
the poller. ``observe`` judges the exchange and reads the body by kind
(health, Prometheus text, JSON here; the Prometheus HTTP API in
``opstui.sources.prometheus_api``); the request and the one place an
observation is made are ``opstui.sources.probe``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx

from opstui.config.endpoints import EndpointDef
from opstui.sources.http import (
    MissingSecret,
    RedirectRefused,
    TooLarge,
    connect_reason,
    looks_html,
)
from opstui.sources.probe import Samples, _get, _http_problem, _observation
from opstui.sources.prometheus_api import _prometheus_api
from opstui.store.endpoints import Observation
from opstui.store.status import DEGRADED, DOWN, UP


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
