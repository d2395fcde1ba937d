"""opstui's own alerts in the store: each one from firing to resolved.

What should fire is judged elsewhere (``notify.judge``, from what the
console shows); this module keeps the lifecycle. ``settle`` takes the
alerts wanted now and, in one write transaction, opens those not open and
resolves those open but no longer wanted, so consoles and pollers sharing a
store that judge at the same moment open an alert once (the partial unique
index ``alerts_open`` holds one open row per key). What could not be judged
this time (its panel failed to read, its source is down) is named in
``undecided`` and left as it is: monitoring that broke is not an all-clear.

The rows are history too: the timeline shows each firing and resolution,
and ``opstui incident`` prints them; ``retention`` forgets resolved ones
after the metrics' ``KEEP_FOR``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

from opstui.store import fields
from opstui.store.db import Store, Transaction

KINDS = ("burn", "deploy", "drift")
SEVERITIES = ("page", "ticket")


class Wanted(NamedTuple):
    """An alert that should be firing now."""

    #: What it is about, stable across judgements: ``burn:web-api:page``.
    key: str
    kind: str
    #: The endpoint, service or model it is about.
    subject: str
    severity: str
    service: str | None
    environment: str | None
    #: One line: ``web-api burning its error budget (page): 14.4x over 1h``.
    summary: str


class AlertRow(NamedTuple):
    id: int
    key: str
    kind: str
    subject: str
    severity: str
    service: str | None
    environment: str | None
    summary: str
    fired_at: float
    resolved_at: float | None
    fired_by: str | None
    resolved_by: str | None

    @property
    def firing(self) -> bool:
        return self.resolved_at is None


class Settled(NamedTuple):
    fired: list[AlertRow]
    resolved: list[AlertRow]
    #: Every alert open after this judgement (``fired`` among them).
    open: list[AlertRow]


_COLUMNS = (
    "id, key, kind, subject, severity, service, environment, summary, "
    "fired_at, resolved_at, fired_by, resolved_by"
)


def _row(r: Sequence[Any]) -> AlertRow:
    return AlertRow(
        int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]),
        None if r[5] is None else str(r[5]), None if r[6] is None else str(r[6]),
        str(r[7]), float(r[8]), None if r[9] is None else float(r[9]),
        None if r[10] is None else str(r[10]), None if r[11] is None else str(r[11]),
    )  # fmt: skip


def _readable(rows: Sequence[Sequence[Any]]) -> list[AlertRow]:
    """Rows a reader can use; one another writer mangled is skipped with a note."""
    out = []
    for r in rows:
        try:
            out.append(_row(r))
        except (TypeError, ValueError):
            fields.skipped(f"alert {r[0]!r}", "a column is not what opstui writes")
    return out


def _check(w: Wanted) -> Wanted:
    if w.kind not in KINDS:
        raise fields.BadValue(f"alert kind must be one of {', '.join(KINDS)}, not {w.kind!r}")
    if w.severity not in SEVERITIES:
        raise fields.BadValue(f"alert severity must be page or ticket, not {w.severity!r}")
    return w._replace(
        key=fields.name(w.key, "alert key", limit=500),
        subject=fields.name(w.subject, "alert subject", limit=500),
        summary=" ".join(fields.free_text(w.summary).split())[:500] or w.key,
    )


def open_alerts(store: Store) -> list[AlertRow]:
    rows = store.query(
        f"SELECT {_COLUMNS} FROM alerts WHERE resolved_at IS NULL ORDER BY fired_at, id"
    )
    return _readable(rows)


def _open(tx: Transaction) -> list[AlertRow]:
    rows = tx.execute(
        f"SELECT {_COLUMNS} FROM alerts WHERE resolved_at IS NULL ORDER BY fired_at, id"
    ).fetchall()
    return _readable(rows)


def settle(
    store: Store,
    wanted: Sequence[Wanted],
    *,
    undecided: Collection[str] = (),
    by: str,
    now: float | None = None,
) -> Settled:
    """Open what is wanted and not open; resolve what is open and not wanted,
    unless its key starts with one of ``undecided`` (not judged this time)."""
    now = store.clock() if now is None else now
    want = {w.key: w for w in map(_check, wanted)}
    with store.write() as tx:
        current = {a.key: a for a in _open(tx)}
        fired_ids, resolved = [], []
        for key, w in want.items():
            if key in current:
                continue
            cur = tx.execute(
                """INSERT INTO alerts (key, kind, subject, severity, service, environment,
                       summary, fired_at, fired_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   RETURNING id""",
                (key, w.kind, w.subject, w.severity, w.service, w.environment, w.summary,
                 now, by),
            )  # fmt: skip
            fired_ids.append(int(cur.fetchone()[0]))
        for key, a in current.items():
            if key in want or any(key.startswith(u) for u in undecided):
                continue
            tx.execute(
                "UPDATE alerts SET resolved_at = ?, resolved_by = ? WHERE id = ?",
                (now, by, a.id),
            )
            resolved.append(a._replace(resolved_at=now, resolved_by=by))
        after = _open(tx)
    fired = [a for a in after if a.id in fired_ids]
    return Settled(fired, resolved, after)


def alert_history(
    store: Store, *, since: float, until: float | None = None, limit: int = 5000
) -> list[AlertRow]:
    """Alerts that fired or resolved in [since, until], newest change first."""
    hi = 1e300 if until is None else until
    rows = store.query(
        f"""SELECT {_COLUMNS} FROM alerts
            WHERE (fired_at >= ? AND fired_at <= ?) OR (resolved_at >= ? AND resolved_at <= ?)
            ORDER BY coalesce(resolved_at, fired_at) DESC, id DESC LIMIT ?""",
        (since, hi, since, hi, limit),
    )
    return _readable(rows)


def recently_resolved(store: Store, *, since: float) -> list[AlertRow]:
    """Alerts resolved since ``since``: their resolution is sent again until
    then, so one that did not reach Alertmanager the first time does later."""
    rows = store.query(
        f"SELECT {_COLUMNS} FROM alerts WHERE resolved_at >= ? ORDER BY resolved_at, id",
        (since,),
    )
    return _readable(rows)
