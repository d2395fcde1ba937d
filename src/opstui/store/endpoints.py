"""Endpoint observations, endpoint status, and the per-endpoint poll lease.

The poller hands over ``Observation``s in batches: one transaction writes
their samples and the endpoints' current state. ``leases`` make several
opstui processes sharing one store poll each endpoint once between them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from opstui.store import fields
from opstui.store.db import Store
from opstui.store.metrics import advance_watermark, append_samples, ensure_series, insert_samples
from opstui.store.status import DOWN


class Observation(NamedTuple):
    """One poll of one endpoint."""

    endpoint: str
    kind: str
    url: str
    at: float
    state: str  # status.UP, DEGRADED or DOWN
    reason: str | None
    latency_ms: float | None
    #: (series name, labels, value) measured by this poll.
    samples: tuple[tuple[str, Mapping[str, str], float], ...] = ()
    #: (series name, labels, ((ts, value), ...)): points with their own
    #: times, e.g. a Prometheus range query's.
    history: tuple[tuple[str, Mapping[str, str], tuple[tuple[float, float], ...]], ...] = ()
    #: (query name, through): the source's time up to which each of
    #: ``history``'s queries has been fetched; stored with the points.
    watermarks: tuple[tuple[str, float], ...] = ()


class EndpointStatusRow(NamedTuple):
    name: str
    kind: str | None
    url: str | None
    state: str
    reason: str | None
    last_attempt_at: float
    last_success_at: float | None
    latency_ms: float | None
    failures: int
    polled_by: str | None


def record_observations(store: Store, observations: Sequence[Observation], *, holder: str) -> None:
    """Write a batch of polls: their samples, and each endpoint's latest state."""
    if not observations:
        return
    with store.write() as tx:
        series: dict[tuple[str, str, tuple[tuple[str, str], ...]], int] = {}
        rows: list[tuple[int, float, float, int | None, int | None]] = []
        # Points with the source's own times (range queries) are appended:
        # one already stored (by another process, or before a restart) is
        # not stored again. Their watermarks move in this transaction, so
        # points and watermark are written together or not at all.
        history_rows: list[tuple[int, float, float, int | None, int | None]] = []
        timed: list[tuple[str, Mapping[str, str], tuple[tuple[float, float], ...], list[Any]]]
        for ob in observations:
            source = f"endpoint/{ob.endpoint}"
            timed = [(n, lb, ((ob.at, v),), rows) for n, lb, v in ob.samples]
            timed += [(n, lb, pairs, history_rows) for n, lb, pairs in ob.history]
            for name, raw_labels, pairs, out in timed:
                # What a server said is its business: a NaN (Prometheus has
                # them) or a time beyond year 9999 is not stored, and the rest
                # of the poll is.
                kept = [(ts, v) for ts, v in pairs if _storable(ts, v)]
                if not kept:
                    continue
                labels = {
                    fields.free_text(str(k)): fields.free_text(str(v))
                    for k, v in raw_labels.items()
                }
                key = (source, name, tuple(sorted(labels.items())))
                if key not in series:
                    series[key] = ensure_series(tx, source, name, labels)
                out.extend((series[key], ts, value, None, None) for ts, value in kept)
        insert_samples(tx, rows)
        append_samples(tx, history_rows)
        now = store.clock()
        for ob in observations:
            for name, through in ob.watermarks:
                if fields.TIME_MIN <= through <= fields.TIME_MAX:
                    advance_watermark(
                        tx, f"endpoint/{ob.endpoint}", name, through, by=holder, now=now
                    )
        for ob in observations:
            ok = ob.state != DOWN
            at = fields.timestamp(ob.at, f"poll time of {ob.endpoint}")
            latency = ob.latency_ms
            if latency is not None and not math.isfinite(latency):
                latency = None
            tx.execute(
                """INSERT INTO endpoint_status(name, kind, url, state, reason, last_attempt_at,
                       last_success_at, latency_ms, failures, polled_by, rev)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(name) DO UPDATE SET
                       kind = excluded.kind, url = excluded.url, state = excluded.state,
                       reason = excluded.reason, last_attempt_at = excluded.last_attempt_at,
                       last_success_at = coalesce(excluded.last_success_at,
                                                  endpoint_status.last_success_at),
                       latency_ms = excluded.latency_ms,
                       failures = CASE WHEN ? = 1 THEN 0 ELSE endpoint_status.failures + 1 END,
                       polled_by = excluded.polled_by, rev = excluded.rev""",
                (
                    ob.endpoint,
                    ob.kind,
                    fields.free_text(ob.url),
                    ob.state,
                    None if ob.reason is None else fields.free_text(ob.reason)[:1000],
                    at,
                    at if ok else None,
                    latency,
                    0 if ok else 1,
                    holder,
                    tx.rev,
                    ok,
                ),
            )


def _storable(ts: float, value: float) -> bool:
    return fields.TIME_MIN <= ts <= fields.TIME_MAX and math.isfinite(value)


def endpoint_statuses(store: Store) -> list[EndpointStatusRow]:
    rows = store.query(
        """SELECT name, kind, url, state, reason, last_attempt_at, last_success_at,
                  latency_ms, failures, polled_by FROM endpoint_status ORDER BY name"""
    )
    out = []
    for r in rows:
        problem = fields.time_problem("last_attempt_at", r[5]) or fields.time_problem(
            "last_success_at", r[6]
        )
        if problem:
            fields.skipped(f"the status of endpoint {r[0]!r}", problem)
        else:
            out.append(EndpointStatusRow(*r))
    return out


def acquire_leases(store: Store, names: Iterable[str], *, holder: str, ttl: float) -> set[str]:
    """Take or renew the poll lease of each endpoint free for ``holder``; return those held.

    A lease is free when nobody holds it or its holder let it expire (that
    opstui exited or hung); one transaction decides all of them.
    """
    now = store.clock()
    held = set()
    with store.write() as tx:
        for name in names:
            row = tx.execute(
                "SELECT holder, expires_at FROM leases WHERE name = ?", (name,)
            ).fetchone()
            if row is None or row[0] == holder or row[1] < now:
                tx.execute(
                    """INSERT INTO leases(name, holder, expires_at) VALUES (?, ?, ?)
                       ON CONFLICT(name) DO UPDATE SET holder = excluded.holder,
                           expires_at = excluded.expires_at""",
                    (name, holder, now + ttl),
                )
                held.add(name)
    return held


def release_leases(store: Store, *, holder: str) -> None:
    with store.write() as tx:
        tx.execute("DELETE FROM leases WHERE holder = ?", (holder,))


def lease_holders(store: Store) -> dict[str, tuple[str, float]]:
    rows = store.query("SELECT name, holder, expires_at FROM leases")
    return {r[0]: (r[1], r[2]) for r in rows}
