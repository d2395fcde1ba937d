"""The store: where it is, its back end, whether it opens, its schema
against this opstui's, size, integrity (``store.check``), write access,
and what the other checks read from it (endpoint statuses, poll leases,
the newest times other hosts wrote).

Nothing is written: a store whose schema is older is not opened through
``Store`` (which would migrate it); write access is a lock taken and
rolled back (SQLite ``BEGIN IMMEDIATE``) or a privilege asked (PostgreSQL).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from opstui.doctor.checks import FAIL, OK, WARN, Check, size
from opstui.store import Store, check
from opstui.store.check import check_store
from opstui.store.endpoints import EndpointStatusRow, endpoint_statuses, lease_holders
from opstui.store.location import StoreLocation
from opstui.store.schema import SCHEMA_VERSION

#: Seconds the doctor waits for a store's write lock before saying it is held.
LOCK_WAIT = 1.0
#: Runs read for the clock check: the most recently changed (the ``rev`` index).
RECENT_RUNS = 200


@dataclass
class StoreFacts:
    """What the source and clock checks read from the store."""

    opened: bool = False
    statuses: dict[str, EndpointStatusRow] = field(default_factory=dict)
    #: endpoint -> (holder, expires_at)
    leases: dict[str, tuple[str, float]] = field(default_factory=dict)
    #: (time, host or None, what was written then)
    stamps: list[tuple[float, str | None, str]] = field(default_factory=list)


def create_fix(location: StoreLocation) -> str:
    return (
        f"create it with `opstui store init --store {location}` (or record a run), "
        "or point --store / $OPSTUI_STORE / store= at the store you use"
    )


def stored_version(location: StoreLocation) -> int | None:
    return check.stored_version(location, busy_timeout=LOCK_WAIT)


def open_current(location: StoreLocation) -> Store | None:
    return check.open_current(location, busy_timeout=LOCK_WAIT)


def store_check(location: StoreLocation) -> tuple[list[Check], StoreFacts]:
    facts = StoreFacts()
    backend = "postgresql" if location.is_postgres else "sqlite"
    where = str(location) if location.is_postgres else str(location.file.absolute())
    if not location.is_postgres:
        path = location.file
        if path.is_dir():
            return [
                Check("store", FAIL, f"{where} is a directory", "pass --store the path of a file")
            ], facts
        if not path.exists():
            return [Check("store", FAIL, f"no run store at {where}", create_fix(location))], facts
    try:
        version = stored_version(location)
    except sqlite3.DatabaseError as exc:
        problem = "" if location.is_postgres else _file_writable(location)
        if problem:  # SQLite cannot make the -shm it needs beside a WAL store
            return [
                Check(
                    "store",
                    FAIL,
                    f"{where}: {backend}, cannot be opened: read-only: {problem} ({exc})",
                    f"chmod u+w the store and its directory, or run as its owner"
                    f"{_owner(location.file)}",
                )
            ], facts
        return [
            Check(
                "store",
                FAIL,
                f"{where}: {backend}, cannot be read as a run store: {exc}",
                "point --store at a run store; restore this one from a backup",
            )
        ], facts
    if version is None:
        return [
            Check("store", FAIL, f"{where}: {backend}, no opstui schema yet", create_fix(location))
        ], facts
    if version > SCHEMA_VERSION:
        return [
            Check(
                "store",
                FAIL,
                f"{where}: {backend}, schema {version}: this opstui knows up to {SCHEMA_VERSION}",
                "upgrade opstui (pip install -U opstui) on this host",
            )
        ], facts
    if version < SCHEMA_VERSION:
        writable = _file_writable(location) if not location.is_postgres else None
        return [
            Check(
                "store",
                WARN,
                f"{where}: {backend}, schema {version}, this opstui's is {SCHEMA_VERSION}"
                + ("" if writable is None else f", {writable or 'writable'}"),
                f"the next write migrates it; `opstui store init --store {where}` does it now "
                "(older opstuis sharing it will then refuse it: upgrade them too)",
            )
        ], facts
    with Store(location, create=False, busy_timeout=LOCK_WAIT) as db:
        facts.opened = True
        report = check_store(db)
        facts.statuses = {r.name: r for r in endpoint_statuses(db)}
        facts.leases = lease_holders(db)
        facts.stamps = _stamps(db)
        access, access_verdict, access_fix = _write_access(db, location)
    parts = [f"{where}: {backend}"]
    if report.server:
        parts.append(f"server {report.server}")
    parts.append(f"schema {report.schema_version}")
    if report.size_bytes is not None:
        parts.append(size(report.size_bytes))
    rows = sum(report.counts.values())
    parts.append(f"{rows:,} row{'s' * (rows != 1)}")
    if report.problems:
        more = f" (+{len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
        parts.append(f"problem: {report.problems[0]}{more}")
    elif backend == "sqlite":
        parts.append("quick_check ok")
    parts.append(access)
    detail = ", ".join(parts)
    if report.problems:
        return [
            Check(
                "store",
                FAIL,
                detail,
                f"`opstui store check --store {where}` lists every problem; restore the store "
                "from a backup, or `opstui store copy` what it still holds into a new one",
            )
        ], facts
    return [Check("store", access_verdict, detail, access_fix)], facts


def _file_writable(location: StoreLocation) -> str:
    """'' when this user may write the file and its directory (the -wal and
    -shm live there), else what is not writable."""
    path = location.file.absolute()
    if not os.access(path, os.W_OK):
        return f"the file is not writable by this user (uid {os.getuid()})"
    if not os.access(path.parent, os.W_OK):
        return f"its directory {path.parent} is not writable by this user (uid {os.getuid()})"
    return ""


def _write_access(db: Store, location: StoreLocation) -> tuple[str, str, str]:
    """(what was found, verdict, fix): may this process write, without writing."""
    if db.pg is not None:
        row = db.query_one("SELECT has_table_privilege('runs', 'INSERT')")
        if row is not None and row[0]:
            return "writable", OK, ""
        return (
            "read-only for this role (no INSERT on runs)",
            WARN,
            "fine for a reader; a recording or polling host needs a role with write grants",
        )
    problem = _file_writable(location)
    if problem:
        owner = _owner(location.file)
        return (
            f"read-only: {problem}",
            FAIL,
            f"chmod u+w the store and its directory, or run as its owner{owner}; "
            "a read-only console is `opstui --read-only`",
        )
    with db.lock:
        try:
            db.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                return (
                    f"write lock held by another process for over {LOCK_WAIT:g} s",
                    WARN,
                    "a long write is under way (an import, a copy); run doctor again, and if "
                    "it persists, find the holder with `fuser` on the store file",
                )
            return f"not writable: {text}", FAIL, "check the file's mode, owner and filesystem"
        db.conn.execute("ROLLBACK")
    return "writable", OK, ""


def _owner(path: Path) -> str:
    try:
        import pwd

        return f" ({pwd.getpwuid(path.stat().st_uid).pw_name})"
    except (ImportError, KeyError, OSError):
        return ""


def _stamps(db: Store) -> list[tuple[float, str | None, str]]:
    """The newest times written by the hosts sharing the store: runs recorded
    on a host (created, heartbeat) and endpoint polls (by ``user@host:pid``).
    Runs an orchestrator reported carry its clock, not a host's: left out."""
    out: list[tuple[float, str | None, str]] = []
    rows = db.query(
        "SELECT id, host, created_at, heartbeat_at FROM runs WHERE host IS NOT NULL "
        f"ORDER BY rev DESC LIMIT {RECENT_RUNS}"
    )
    for run_id, host, created, beat in rows:
        if isinstance(created, int | float):
            out.append((float(created), host, f"run {run_id} created_at"))
        if isinstance(beat, int | float):
            out.append((float(beat), host, f"run {run_id} heartbeat_at"))
    for name, at, by in db.query(
        "SELECT name, last_attempt_at, polled_by FROM endpoint_status "
        "ORDER BY last_attempt_at DESC LIMIT 50"
    ):
        if isinstance(at, int | float):
            out.append((float(at), _host_of(by), f"endpoint {name} last_attempt_at"))
    return out


def _host_of(polled_by: object) -> str | None:
    """``user@host:pid`` -> ``host``."""
    if not isinstance(polled_by, str) or not polled_by:
        return None
    return polled_by.rpartition("@")[2].rpartition(":")[0] or polled_by
