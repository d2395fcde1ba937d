"""Keeping endpoint samples bounded: raw for a day, thinned after, gone after 35 days.

Polled samples arrive every few seconds forever; without this the table
would grow without bound. Recent history keeps every sample (the 1m and 5m
windows need them); older history keeps the first sample of every
``THIN_TO`` seconds per series, which still serves the 6h, 1d and 3d
windows (a counter's increase over a window only needs its samples'
values, and a reset between two kept samples costs at most one interval's
increase); beyond ``KEEP_FOR`` it is deleted. Run samples
(``pipeline/...``) are history and are never thinned. opstui's own alerts
(``store/alerts.py``) are kept as long as the samples they were judged from:
one resolved more than ``KEEP_FOR`` ago is deleted; an open one never is.
"""

from __future__ import annotations

from dataclasses import dataclass

from opstui.store.db import Store

RAW_FOR = 86_400.0
THIN_TO = 300.0
KEEP_FOR = 35 * 86_400.0


@dataclass(frozen=True)
class RetentionResult:
    deleted_old: int
    thinned: int
    alerts: int = 0


def apply_retention(
    store: Store,
    *,
    now: float | None = None,
    raw_for: float = RAW_FOR,
    thin_to: float = THIN_TO,
    keep_for: float = KEEP_FOR,
    batch: int = 50_000,
) -> RetentionResult:
    """Delete and thin endpoint samples; each call does a bounded amount of work.

    ``batch`` caps the rows touched per transaction so a poller's writes
    never wait long behind it; a large backlog is worked off over calls.
    """
    now = store.clock() if now is None else now
    with store.write() as tx:
        series = [r[0] for r in tx.execute("SELECT id FROM series WHERE source LIKE 'endpoint/%'")]
    deleted = thinned = 0
    # The bucket's number, truncated: SQLite's CAST truncates, PostgreSQL's
    # rounds (and SQLite may be built without floor()).
    bucket = "floor(ts / ?)" if store.dialect == "postgresql" else "CAST(ts / ? AS INTEGER)"
    for sid in series:
        with store.write() as tx:
            cur = tx.execute(
                """DELETE FROM metric_samples WHERE id IN (
                       SELECT id FROM metric_samples WHERE series_id = ? AND ts < ? LIMIT ?)""",
                (sid, now - keep_for, batch),
            )
            deleted += cur.rowcount
            # Keep the first sample of each thin_to bucket between keep_for
            # and raw_for; bucket by integer division of the timestamp.
            cur = tx.execute(
                f"""DELETE FROM metric_samples WHERE id IN (
                       SELECT id FROM metric_samples
                       WHERE series_id = ? AND ts >= ? AND ts < ?
                         AND id NOT IN (
                             SELECT min(id) FROM metric_samples
                             WHERE series_id = ? AND ts >= ? AND ts < ?
                             GROUP BY {bucket})
                       LIMIT ?)""",
                (
                    sid,
                    now - keep_for,
                    now - raw_for,
                    sid,
                    now - keep_for,
                    now - raw_for,
                    thin_to,
                    batch,
                ),
            )
            thinned += cur.rowcount
    with store.write() as tx:
        cur = tx.execute(
            """DELETE FROM alerts WHERE id IN (
                   SELECT id FROM alerts WHERE resolved_at < ? LIMIT ?)""",
            (now - keep_for, batch),
        )
        alerts = cur.rowcount
    return RetentionResult(deleted, thinned, alerts)
