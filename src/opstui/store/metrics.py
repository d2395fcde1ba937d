"""Metric samples: numeric time series from runs and endpoints.

A series is ``(source, name, labels)``; ``source`` is namespaced
(``pipeline/<name>`` for run metrics, ``endpoint/<name>`` for polled ones) so a
pipeline and an endpoint may share a name. Samples are read by series and
time window through the ``(series_id, ts)`` index, so a window costs what it
returns, whatever the table holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from opstui.store import fields
from opstui.store.db import Store, Transaction
from opstui.store.query import where
from opstui.store.rows import Sample, Series

SampleRow = tuple[int, float, float, int | None, int | None]  # series, ts, value, run, step


def labels_key(labels: Mapping[str, object] | None) -> str:
    """Canonical JSON of a label set (sorted keys), the series identity."""
    clean = {
        fields.name(str(k), "label name"): fields.name(str(v), f"label {str(k)[:40]}", empty=True)
        for k, v in (labels or {}).items()
    }
    return json.dumps(clean, sort_keys=True)


def ensure_series(
    tx: Transaction, source: str, name: str, labels: Mapping[str, object] | None = None
) -> int:
    fields.name(source, "metric source")
    fields.name(name, "metric name")
    key = labels_key(labels)
    row = tx.execute(
        "SELECT id FROM series WHERE source = ? AND name = ? AND labels = ?", (source, name, key)
    ).fetchone()
    if row:
        return int(row[0])
    cur = tx.execute(
        "INSERT INTO series(source, name, labels) VALUES (?, ?, ?) RETURNING id",
        (source, name, key),
    )
    return int(cur.fetchone()[0])


def insert_samples(tx: Transaction, rows: Iterable[SampleRow]) -> int:
    """Insert samples; a time out of range or a value that is not finite is
    refused (SQLite would store NaN as NULL, and the insert fail)."""
    cur = tx.conn.executemany(
        "INSERT INTO metric_samples(series_id, ts, value, run_id, step) VALUES (?, ?, ?, ?, ?)",
        (_checked(*row) for row in rows),
    )
    return int(cur.rowcount)


def last_sample_time(tx: Transaction, sid: int) -> float | None:
    """The time of the series' newest sample (one probe of the ``(series_id, ts)`` index)."""
    row = tx.execute("SELECT max(ts) FROM metric_samples WHERE series_id = ?", (sid,)).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def append_samples(tx: Transaction, rows: Iterable[SampleRow]) -> int:
    """Insert samples of series that only move forward, each point once.

    A point at or before its series' newest stored time is not stored (it
    was stored already, by this process or another, or it is older than what
    the series says it has covered), nor is a second point at one time
    within ``rows``. The check runs inside the caller's write transaction,
    so two writers appending the same points store them once between them.
    For sources whose points carry their own times (a Prometheus range
    query); run metrics and imports, which may fill in the past, use
    ``insert_samples``.
    """
    by_series: dict[int, list[SampleRow]] = {}
    for row in rows:
        by_series.setdefault(row[0], []).append(row)
    kept: list[SampleRow] = []
    for sid, points in by_series.items():
        last = last_sample_time(tx, sid)
        for row in sorted(points, key=lambda r: r[1]):
            if last is None or row[1] > last:
                kept.append(row)
                last = row[1]
    return insert_samples(tx, kept) if kept else 0


def read_watermarks(store: Store, source: str, names: Iterable[str]) -> dict[str, float]:
    """Where each of ``names`` (queries of ``source``) stopped: its source's time.

    A query with no watermark yet (a store from before watermarks existed)
    goes on from its series' newest stored point, if it has one; a query
    with neither is absent from the result.
    """
    out: dict[str, float] = {}
    with store.lock:
        for name in names:
            row = store.query_one(
                "SELECT through FROM watermarks WHERE source = ? AND name = ?", (source, name)
            )
            if row is None:
                row = store.query_one(
                    "SELECT max(m.ts) FROM series s JOIN metric_samples m ON m.series_id = s.id "
                    "WHERE s.source = ? AND s.name = ? AND s.labels = '{}'",
                    (source, name),
                )
            if row is not None and row[0] is not None and math.isfinite(row[0]):
                out[name] = float(row[0])
    return out


def advance_watermark(
    tx: Transaction, source: str, name: str, through: float, *, by: str, now: float
) -> None:
    """Move the watermark of ``name`` forward to ``through`` (never back)."""
    through = fields.timestamp(through, f"watermark of {source} {name}")
    tx.execute(
        """INSERT INTO watermarks(source, name, through, updated_at, updated_by)
           VALUES (?, ?, ?, ?, ?)
           ON CONFLICT(source, name) DO UPDATE SET
               through = CASE WHEN excluded.through > watermarks.through
                              THEN excluded.through ELSE watermarks.through END,
               updated_at = excluded.updated_at, updated_by = excluded.updated_by""",
        (source, name, through, now, by),
    )


def _checked(sid: int, ts: float, value: float, run_id: int | None, step: int | None) -> SampleRow:
    # The common case costs two comparisons a sample: pollers write many.
    if type(ts) is not float or not fields.TIME_MIN <= ts <= fields.TIME_MAX:
        ts = fields.timestamp(ts, "metric sample time")
    if type(value) is not float or not math.isfinite(value):
        value = fields.finite(value, "metric value")
    if run_id is not None:
        fields.int64(run_id, "run id")
    if step is not None:
        fields.int64(step, "step")
    return sid, ts, value, run_id, step


def record_samples(
    store: Store,
    source: str,
    name: str,
    points: Iterable[tuple[float, float]],
    *,
    labels: Mapping[str, object] | None = None,
    run_id: int | None = None,
) -> int:
    """Append ``(ts, value)`` points to one series in one transaction."""
    with store.write() as tx:
        sid = ensure_series(tx, source, name, labels)
        return insert_samples(tx, ((sid, t, v, run_id, None) for t, v in points))


def find_series(store: Store, source: str | None = None, name: str | None = None) -> list[Series]:
    """Series matching ``source`` and/or ``name`` (both optional)."""
    clause, params = where(("source = ?", source), ("name = ?", name))
    rows = store.query(
        f"SELECT id, source, name, labels FROM series {clause} ORDER BY source, name, labels",
        params,
    )
    out = []
    for r in rows:
        try:
            out.append(Series(r[0], r[1], r[2], fields.loads_object(r[3], "labels")))
        except fields.Unreadable as exc:
            fields.skipped(f"series {r[0]} ({r[1]} {r[2]})", str(exc))
    return out


def samples(
    store: Store,
    series_id: int,
    *,
    start: float | None = None,
    end: float | None = None,
    limit: int | None = None,
) -> list[Sample]:
    """Samples of one series with ``start <= ts <= end``, oldest first."""
    # Samples at times no reader can show are outside every window.
    lo = fields.TIME_MIN if start is None else max(start, fields.TIME_MIN)
    hi = fields.TIME_MAX if end is None else min(end, fields.TIME_MAX)
    # No LIMIT clause for no limit: SQLite's LIMIT -1 is an error in PostgreSQL.
    rows = store.query(
        "SELECT ts, value, run_id, step FROM metric_samples "
        "WHERE series_id = ? AND ts >= ? AND ts <= ? ORDER BY ts"
        + ("" if limit is None else " LIMIT ?"),
        (series_id, lo, hi, *(() if limit is None else (limit,))),
    )
    return [Sample(r[0], r[1], r[2], r[3]) for r in _finite(rows, "series", str(series_id))]


def series_window(
    store: Store,
    source: str,
    name: str,
    labels: Mapping[str, object] | None = None,
    *,
    start: float | None = None,
    end: float | None = None,
) -> list[Sample]:
    """Samples of the series ``(source, name, labels)`` in a window; [] if unknown."""
    sid = series_id(store, source, name, labels)
    return [] if sid is None else samples(store, sid, start=start, end=end)


def series_id(
    store: Store, source: str, name: str, labels: Mapping[str, object] | None = None
) -> int | None:
    row = store.query_one(
        "SELECT id FROM series WHERE source = ? AND name = ? AND labels = ?",
        (source, name, labels_key(labels)),
    )
    return None if row is None else int(row[0])


def points(
    store: Store,
    source: str,
    name: str,
    labels: Mapping[str, object] | None = None,
    *,
    start: float,
    end: float,
) -> list[tuple[float, float]]:
    """``(ts, value)`` pairs of a series in a window, straight from SQLite.

    The rate arithmetic wants plain pairs; skipping ``Sample`` objects makes
    reading 3 days of a 15 s series several times cheaper (bench/error_rates.py).
    """
    sid = series_id(store, source, name, labels)
    if sid is None:
        return []
    result: list[tuple[float, float]] = store.query(
        "SELECT ts, value FROM metric_samples WHERE series_id = ? AND ts >= ? AND ts <= ? "
        "ORDER BY ts",
        (sid, max(start, fields.TIME_MIN), min(end, fields.TIME_MAX)),
    )
    return _finite(result, source, name)


def _finite(rows: list[Any], source: str, name: str) -> list[Any]:
    """Rows whose value (second column) is finite; others are named and left out.

    The store refuses infinities; an older store or a hand-written insert may
    hold some, and one would turn every rate of its window into inf.
    """
    for r in rows:
        if not math.isfinite(r[1]):
            bad = sum(1 for r in rows if not math.isfinite(r[1]))
            fields.skipped(f"{bad} sample(s) of {source} {name}", "value is not a finite number")
            return [r for r in rows if math.isfinite(r[1])]
    return rows
