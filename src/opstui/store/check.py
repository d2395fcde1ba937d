"""``opstui store check``: is this store whole, which version, how big, what is in it.

On SQLite: ``PRAGMA quick_check`` (or the slower ``integrity_check``, which
also reads every index entry) and ``foreign_key_check``. On PostgreSQL the
server keeps pages and foreign keys consistent itself; what is checked is
what opstui relies on: every table there, the schema's version. On both:
the revision counter is ahead of every row's revision (incremental readers
would otherwise miss the rows beyond it), and the rows of each table.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from opstui.store.db import Store
from opstui.store.location import StoreLocation
from opstui.store.schema import SCHEMA_VERSION
from opstui.store.tables import REV_TABLES, TABLES, present

#: Problems listed at most, per check (a damaged file can report thousands).
SHOWN = 20


@dataclass
class CheckReport:
    store: str
    backend: str
    #: The PostgreSQL server's version; None for SQLite.
    server: str | None
    schema_version: int
    code_schema_version: int
    size_bytes: int | None
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_store(store: Store, *, full: bool = False) -> CheckReport:
    """Check ``store``; ``full`` reads every page and index entry (SQLite)."""
    if store.dialect == "postgresql":
        server = str(store.query_one("SHOW server_version")[0])
        version = int(store.query_one("SELECT coalesce(max(version), 0) FROM opstui_schema")[0])
        size = int(store.query_one("SELECT pg_database_size(current_database())")[0])
    else:
        server = None
        version = int(store.query_one("PRAGMA user_version")[0])
        size = _file_size(store.location.file)
    report = CheckReport(store.name, store.dialect, server, version, SCHEMA_VERSION, size)
    try:
        _check(store, report, full=full)
    except sqlite3.DatabaseError as exc:  # the file is damaged where a read went
        report.problems.append(f"the store cannot be read whole: {exc}")
    return report


def _check(store: Store, report: CheckReport, *, full: bool) -> None:
    if store.dialect == "sqlite":
        pragma = "integrity_check" if full else "quick_check"
        try:
            found = [str(r[0]) for r in store.query(f"PRAGMA {pragma}")]
        except sqlite3.DatabaseError as exc:
            found = [str(exc)]
        if found != ["ok"]:
            report.problems += [f"{pragma}: {line}" for line in found[:SHOWN]]
        for table, rowid, parent, _ in store.query("PRAGMA foreign_key_check")[:SHOWN]:
            report.problems.append(f"{table} row {rowid} refers to a missing {parent} row")
    tables = present(store)
    for t in TABLES:
        if t.name not in tables:
            report.problems.append(f"table {t.name} is missing")
            continue
        try:
            report.counts[t.name] = int(store.query_one(f"SELECT count(*) FROM {t.name}")[0])
        except sqlite3.DatabaseError as exc:
            report.problems.append(f"table {t.name} cannot be counted: {exc}")
    row = store.query_one("SELECT value FROM counters WHERE name = 'rev'")
    rev = row[0] if row is not None and isinstance(row[0], int) else None
    if rev is None:
        report.problems.append("the revision counter is missing or not a number")
    for name in sorted(REV_TABLES & tables):
        highest = store.query_one(f"SELECT max(rev) FROM {name}")[0]
        if rev is not None and isinstance(highest, int) and highest > rev:
            report.problems.append(
                f"{name} has revision {highest}, past the counter's {rev}: consoles would "
                "not see changes until the counter passes it"
            )


def _file_size(path: Path) -> int:
    total = 0
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            total += p.stat().st_size
        except OSError:
            continue
    return total


def stored_version(location: StoreLocation, *, busy_timeout: float = 1.0) -> int | None:
    """The schema version the store holds, read without migrating it; None
    when there is no opstui schema. Raises the store's own errors."""
    if location.is_postgres:
        from opstui.store.postgres import PgConnection, schema_version

        pg = PgConnection(location, busy_timeout=busy_timeout)
        try:
            return schema_version(pg)
        finally:
            pg.close()
    path = location.file.absolute()
    # Read-only, through SQLite (never a descriptor of our own: see store/db.py).
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=busy_timeout)
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version == 0:
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            return None if tables == 0 else 0
        return version
    finally:
        conn.close()


def open_current(location: StoreLocation, *, busy_timeout: float = 1.0) -> Store | None:
    """The store opened for reading, or None when it is missing or its schema
    is not this opstui's (opening an older one would migrate it)."""
    if location.missing_file():
        return None
    try:
        if stored_version(location, busy_timeout=busy_timeout) != SCHEMA_VERSION:
            return None
        return Store(location, create=False, busy_timeout=busy_timeout)
    except Exception:
        return None
