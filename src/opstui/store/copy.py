"""Copying a run store's history to another store, between back ends.

``opstui store copy FROM TO``: SQLite to PostgreSQL when a team outgrows one
machine, PostgreSQL to SQLite to take a history away. The whole copy is one
transaction of the destination (a cut network or a full disk leaves it as
it was) read from one snapshot of the source, and rows keep their ids, so
every reference between them holds.

Idempotent: the destination remembers what it is a copy of (a row
``copy-of:<source id>`` in ``imported``); copying again updates the rows it
has and adds the new ones, nothing twice. A destination that holds history
of its own, not copied from this source, is refused before anything is
written: merging two histories would mix their ids.

Copied rows are stamped with the destination's next revision, so consoles
already watching it read them at their next refresh.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from opstui.errors import UsageError
from opstui.store import fields
from opstui.store.connection import Connection
from opstui.store.db import Store, Transaction
from opstui.store.failures import StoreWriteFailed
from opstui.store.tables import REV_TABLES, TABLES, Table, columns

#: Rows read from the source and written to the destination at a time.
CHUNK = 5_000
#: ``counters`` row holding a store's identity (a random 62-bit number).
IDENTITY = "store_id"

Progress = Callable[[str, int, int], None]


@dataclass
class CopySummary:
    rows: dict[str, int] = field(default_factory=dict)
    #: True when the destination already was a copy of the source (a re-copy).
    again: bool = False

    @property
    def total(self) -> int:
        return sum(self.rows.values())


class NotACopy(UsageError):
    """The destination holds a history of its own."""


def identity(store: Store) -> str:
    """The store's identity, created on first use; its name if it cannot be written."""
    row = store.query_one("SELECT value FROM counters WHERE name = ?", (IDENTITY,))
    if row is not None:
        return f"store-{row[0]}"
    try:
        with store.write() as tx:
            tx.execute(
                "INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
                (IDENTITY, secrets.randbits(62)),
            )
    except StoreWriteFailed:  # a read-only source: its name will do
        return store.name
    row = store.query_one("SELECT value FROM counters WHERE name = ?", (IDENTITY,))
    return f"store-{row[0]}"


def _count(store: Store, table: str) -> int:
    row = store.query_one(f"SELECT count(*) FROM {table}")
    return int(row[0]) if row else 0


def copy_store(
    source: Store, destination: Store, *, on_progress: Progress | None = None
) -> CopySummary:
    """Copy every table's rows from ``source`` into ``destination``, in one transaction."""
    if source.location == destination.location:
        raise UsageError(f"cannot copy run store {source.name} onto itself")
    marker = f"copy-of:{identity(source)}"
    again = destination.query_one("SELECT 1 FROM imported WHERE key = ?", (marker,)) is not None
    tables = [t for t in TABLES if t.copied]
    if not again:
        held = [t.name for t in tables if _count(destination, t.name)]
        if held:
            raise NotACopy(
                f"run store {destination.name} already holds history of its own "
                f"({', '.join(held[:4])}{', ...' if len(held) > 4 else ''}), not a copy of "
                f"{source.name}; nothing was copied",
                hint="copy into a new, empty store (opstui store init --store URL creates one)",
            )
    totals = {t.name: _count(source, t.name) for t in tables}
    shared = {
        t.name: [c for c in columns(source, t.name) if c in set(columns(destination, t.name))]
        for t in tables
    }
    summary = CopySummary(again=again)
    with source.read() as src, destination.write() as tx:
        for t in tables:
            summary.rows[t.name] = _copy_table(
                src, tx, t, names=shared[t.name], total=totals[t.name], on_progress=on_progress
            )
        tx.execute(
            "INSERT INTO imported(key, imported_at) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
            "SET imported_at = excluded.imported_at",
            (marker, destination.clock()),
        )
        if destination.dialect == "postgresql":
            # Rows came with their ids: the identity columns go on after them.
            for table in tables:
                if table.key == ("id",):
                    tx.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT max(id) FROM {table.name}))"
                    )
    return summary


def _copy_table(
    src: Connection,
    tx: Transaction,
    table: Table,
    *,
    names: list[str],
    total: int,
    on_progress: Progress | None,
) -> int:
    marks = ", ".join("?" * len(names))
    update = ", ".join(f"{c} = excluded.{c}" for c in names if c not in table.key)
    conflict = f"DO UPDATE SET {update}" if update else "DO NOTHING"
    insert = (
        f"INSERT INTO {table.name}({', '.join(names)}) VALUES ({marks}) "
        f"ON CONFLICT({', '.join(table.key)}) {conflict}"
    )
    stamp = names.index("rev") if table.name in REV_TABLES and "rev" in names else None
    rev = tx.rev if stamp is not None else 0
    select = f"SELECT {', '.join(names)} FROM {table.name}"
    done = 0
    if on_progress is not None:
        on_progress(table.name, 0, total)
    keyset = table.key == ("id",)
    after = None
    while True:
        if keyset:
            rows = fields.fetch_all(
                src,
                f"{select} WHERE id > ? ORDER BY id LIMIT {CHUNK}",
                (after if after is not None else fields.INT64_MIN,),
            )
        else:
            rows = fields.fetch_all(src, select) if after is None else []
        if not rows:
            break
        if stamp is not None:
            rows = [(*r[:stamp], rev, *r[stamp + 1 :]) for r in rows]
        tx.conn.executemany(insert, rows)
        done += len(rows)
        if on_progress is not None:
            on_progress(table.name, done, total)
        after = rows[-1][names.index("id")] if keyset else True
    return done
