"""What an operator reads about an endpoint: state, freshness, error rate, burn.

Joins the poller's stored status and samples (``store``) with the SLO
arithmetic (``analysis.rates``). Used by ``opstui endpoints`` and the console.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from opstui.analysis.rates import (
    WINDOWS,
    BurnAlert,
    burn_alerts,
    burn_rate,
    error_ratio,
    history,
    increase,
    latency_quantile,
    mean_over,
)
from opstui.config import Config
from opstui.config.endpoints import EndpointDef
from opstui.sources.backoff import backoff_delay
from opstui.store import Store
from opstui.store import status as st
from opstui.store.endpoints import EndpointStatusRow, endpoint_statuses
from opstui.store.metrics import find_series, points
from opstui.store.retention import RAW_FOR, THIN_TO
from opstui.timeutil import clock_time

#: Windows shown per endpoint; the alert pairs use the longer ones too.
SHOWN = ("1m", "5m", "1h", "6h")
#: A status older than this many intervals is stale: nobody is polling.
STALE_INTERVALS = 3


@dataclass(frozen=True)
class EndpointReport:
    name: str
    kind: str
    url: str
    state: str  # UP, DEGRADED, DOWN, BURNING, RECOVERING, STALE or UNKNOWN (store/status.py)
    reason: str | None
    last_success_at: float | None
    last_attempt_at: float | None
    latency_ms: float | None
    polled_by: str | None
    slo: float | None
    ratios: dict[str, float | None] = field(default_factory=dict)
    #: Seconds of each window the stored history covers (``rates.history``):
    #: a window's full length when covered; less for a young endpoint or
    #: one whose poller stopped.
    coverage: dict[str, float] = field(default_factory=dict)
    burn: dict[str, float | None] = field(default_factory=dict)
    alerts: tuple[BurnAlert, ...] = ()
    #: Error ratio of the last minutes, oldest first, for a sparkline.
    history: tuple[float, ...] = ()
    #: Request latency quantiles over the last 5 minutes, in seconds, from
    #: the endpoint's histogram (None without one).
    latency_p50: float | None = None
    latency_p99: float | None = None
    #: What it serves (``Config.served``): (service or model, name, environment).
    served: tuple[str, str, str] | None = None

    def serves(self, kind: str, name: str) -> bool:
        return self.served is not None and self.served[:2] == (kind, name)


def endpoint_reports(store: Store, config: Config, now: float) -> list[EndpointReport]:
    statuses = {s.name: s for s in endpoint_statuses(store)}
    reports = []
    for ep in config.endpoints.values():
        status = statuses.get(ep.name)
        ratios: dict[str, float | None] = {}
        coverage: dict[str, float] = {}
        burn: dict[str, float | None] = {}
        alerts: tuple[BurnAlert, ...] = ()
        history_: tuple[float, ...] = ()
        p50 = p99 = None
        if ep.kind == "prometheus" and ep.latency:
            p50, p99 = _latency(store, ep.source, now)
        series = slo_series(store, ep, now - max(WINDOWS.values()), now)
        if series is not None:
            ratio_over, base = series
            for name, seconds in WINDOWS.items():
                ratios[name] = ratio_over(now - seconds, now)
                coverage[name] = history(base, now - seconds, now, _step(ep, seconds))
            history_ = tuple(
                r if (r := ratio_over(t - 60, t)) is not None else 0.0
                for t in (now - 60 * i for i in range(29, -1, -1))
            )
            if ep.slo is not None:
                burn = {w: burn_rate(r, ep.slo) for w, r in ratios.items()}
                alerts = tuple(burn_alerts(ratios, ep.slo, history=coverage))
        state, reason = _state(ep.interval, status, alerts, now)
        if state == st.BURNING and _clean_lately(ratios, ep.slo):
            state, reason = st.RECOVERING, _recovering(alerts, history_, now)
        reports.append(
            EndpointReport(
                name=ep.name,
                kind=ep.kind,
                url=ep.url,
                state=state,
                reason=reason,
                last_success_at=status.last_success_at if status else None,
                last_attempt_at=status.last_attempt_at if status else None,
                latency_ms=status.latency_ms if status else None,
                polled_by=status.polled_by if status else None,
                slo=ep.slo,
                ratios=ratios,
                coverage=coverage,
                burn=burn,
                alerts=alerts,
                history=history_,
                latency_p50=p50,
                latency_p99=p99,
                served=config.served(ep),
            )
        )
    order = {
        st.DOWN: 0,
        st.BURNING: 1,
        st.RECOVERING: 2,
        st.DEGRADED: 3,
        st.STALE: 4,
        st.UNKNOWN: 5,
        st.UP: 6,
    }
    reports.sort(key=lambda r: (order.get(r.state, 9), r.name))
    return reports


RatioOver = Callable[[float, float], float | None]


def slo_series(
    store: Store, ep: EndpointDef, start: float, end: float
) -> tuple[RatioOver, list[tuple[float, float]]] | None:
    """How ``ep``'s error ratio over a window is computed from its stored samples
    in ``[start, end]``, and the series whose history says how far back it is
    known; None for an endpoint with no error ratio.

    Counters (a ``prometheus`` endpoint's, or a ``prometheus_api`` one's
    ``requests`` and ``errors`` queries): ``increase(errors) /
    increase(requests)``, as PromQL. A ratio query (``error_ratio``): the mean
    of its values in the window, as ``avg_over_time``.
    """
    kind = ep.slo_source
    if kind == "counters":
        total_name, errors_name = _counter_names(ep)
        total = points(store, ep.source, total_name, start=start, end=end)
        errors = points(store, ep.source, errors_name, start=start, end=end)
        return (lambda a, b: error_ratio(total, errors, a, b)), total
    if kind == "ratio":
        assert ep.error_ratio is not None
        values = points(store, ep.source, ep.error_ratio, start=start, end=end)
        return (lambda a, b: mean_over(values, a, b)), values
    return None


def _counter_names(ep: EndpointDef) -> tuple[str, str]:
    """The stored series counting all requests and failed ones."""
    if ep.kind == "prometheus":
        return "requests_total", "errors_total"
    return ep.requests or "", ep.errors or ""


def _step(ep: EndpointDef, window: float) -> float:
    """How far apart samples are expected at the start of a window: the poll
    interval within a day, the thinning step (``store.retention``) beyond."""
    return ep.interval if window <= RAW_FOR else THIN_TO + ep.interval


def _latency_buckets(
    store: Store, source: str, start: float, end: float
) -> dict[float, list[tuple[float, float]]]:
    """The histogram's cumulative bucket counters in a window, by upper bound."""
    return {
        float(s.labels["le"]): points(
            store, source, "latency_bucket", s.labels, start=start, end=end
        )
        for s in find_series(store, source, "latency_bucket")
        if "le" in s.labels
    }


def _latency(store: Store, source: str, now: float) -> tuple[float | None, float | None]:
    window = WINDOWS["5m"]
    buckets = _latency_buckets(store, source, now - window - 60, now)
    if not buckets:
        return None, None
    return (
        latency_quantile(buckets, 0.5, now - window, now),
        latency_quantile(buckets, 0.99, now - window, now),
    )


def _state(
    interval: float, status: EndpointStatusRow | None, alerts: tuple[BurnAlert, ...], now: float
) -> tuple[str, str | None]:
    if status is None:
        return st.UNKNOWN, "never polled: run `opstui poll` (or the console) to start polling"
    age = now - status.last_attempt_at
    # A failing endpoint is polled less often (backoff): expect that delay.
    expected = backoff_delay(interval, status.failures)
    if age > STALE_INTERVALS * max(expected, 1.0):
        return st.STALE, f"last poll {age:.0f}s ago: is a poller running?"
    firing = [a for a in alerts if a.firing]
    if status.state == st.UP and firing:
        a = firing[0]
        return st.BURNING, (
            f"error budget burning {a.long_burn:.1f}x over {a.long_window} and "
            f"{a.short_burn:.1f}x over {a.short_window} ({a.severity}: > {a.threshold:g}x)"
        )
    # A pair without the history to judge does not page, but an operator
    # should hear that the part it has seen burns.
    unsure = [a for a in alerts if a.would_fire]
    if status.state == st.UP and unsure:
        a = unsure[0]
        return st.UP, (
            f"burning {a.long_burn:.1f}x over the history there is ({a.partial}) and "
            f"{a.short_burn:.1f}x over {a.short_window}: not a {a.severity} until "
            f"{a.long_window} of history covers it"
        )
    return status.state, status.reason


#: The window that says what an endpoint does now: within the SLO over it, a
#: burning endpoint is recovering (its long windows remember the incident).
RECENT = "1m"


def _clean_lately(ratios: dict[str, float | None], slo: float | None) -> bool:
    recent = burn_rate(ratios.get(RECENT), slo) if slo is not None else None
    return recent is not None and recent <= 1.0


def _recovering(alerts: tuple[BurnAlert, ...], minutes: tuple[float, ...], now: float) -> str:
    """Why an endpoint reads recovering: when it last failed a request (the
    last minute with errors, of the 30 kept), and what still burns."""
    firing = next(a for a in alerts if a.firing)
    ago = next((i for i, r in enumerate(reversed(minutes)) if r > 0), None)
    last = (
        "no error in the last 30m"
        if ago is None
        else "last error this minute"
        if ago == 0
        else f"last error {ago}m ago ({clock_time(now - 60 * ago)})"
    )
    return (
        f"recovering: within the SLO over {RECENT}, {last}; still {firing.long_burn:.1f}x "
        f"over {firing.long_window} ({firing.severity}: > {firing.threshold:g}x)"
    )


@dataclass(frozen=True)
class EndpointHistory:
    """An endpoint over the last hour, a point a minute, for the console's charts."""

    minutes: int
    #: Error ratio per minute, oldest first (None: no traffic or no data).
    error_ratio: tuple[float | None, ...]
    #: p99 latency per minute in seconds (prometheus histograms), or the
    #: poll's own latency in ms (health checks), oldest first.
    latency: tuple[float | None, ...]
    latency_unit: str
    #: Requests and errors counted per window (counter increases).
    requests: dict[str, float | None] = field(default_factory=dict)
    errors: dict[str, float | None] = field(default_factory=dict)


def endpoint_history(
    store: Store, ep_name: str, config: Config, now: float, *, minutes: int = 60
) -> EndpointHistory:
    ep = config.endpoints[ep_name]
    start = now - minutes * 60 - 60
    steps = [now - 60 * i for i in range(minutes - 1, -1, -1)]
    ratios: tuple[float | None, ...] = ()
    latency: tuple[float | None, ...] = ()
    unit = ""
    requests: dict[str, float | None] = {}
    errors: dict[str, float | None] = {}
    # Over the whole span asked for (a wide chart shows more than the hour).
    series = slo_series(store, ep, min(now - WINDOWS["1h"], start), now)
    if series is not None:
        ratio_over, _ = series
        ratios = tuple(ratio_over(t - 60, t) for t in steps)
    if ep.slo_source == "counters":
        total_name, errors_name = _counter_names(ep)
        total = points(store, ep.source, total_name, start=now - WINDOWS["6h"], end=now)
        bad = points(store, ep.source, errors_name, start=now - WINDOWS["6h"], end=now)
        for w in SHOWN:
            requests[w] = increase(total, now - WINDOWS[w], now)
            errors[w] = increase(bad, now - WINDOWS[w], now)
    if ep.kind == "prometheus" and ep.latency:
        buckets = _latency_buckets(store, ep.source, start, now)
        latency = tuple(latency_quantile(buckets, 0.99, t - 60, t) for t in steps)
        unit = "s (p99)"
    if not latency:
        polls = points(store, ep.source, "latency_ms", start=start, end=now)
        if polls:
            per_minute: list[float | None] = []
            for t in steps:
                inside = [v for ts, v in polls if t - 60 < ts <= t]
                per_minute.append(max(inside) if inside else None)
            latency = tuple(per_minute)
            unit = "ms (poll, worst)"
    return EndpointHistory(minutes, ratios, latency, unit, requests, errors)
