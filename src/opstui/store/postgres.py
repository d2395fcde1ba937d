"""The run store on PostgreSQL: the connection the store's SQL runs on.

The store's modules write one SQL, the subset SQLite and PostgreSQL share
(``?`` parameters, ``RETURNING``, ``ON CONFLICT``); ``PgConnection`` gives it
the few methods of ``sqlite3.Connection`` they use and turns ``?`` into
psycopg's ``%s`` (and a literal ``%`` into ``%%``) once per statement text.
What differs is said where it differs, by ``Store.dialect``.

Concurrency, the PostgreSQL way. Every write transaction first takes one
transaction-scoped advisory lock (``pg_advisory_xact_lock``), the
equivalent of SQLite's ``BEGIN IMMEDIATE``: revisions are handed out in
commit order (a reader asking "what changed after revision 41" can never
miss a 41 committed after a 42), and a read-then-insert (a run key seen
twice, from two hosts) never races. Waiting for it is bounded by
``lock_timeout`` (the busy timeout), past which ``StoreBusy`` says so.
Readers take no lock: a REPEATABLE READ snapshot. Commits send ``NOTIFY
opstui_changes``, so a console listening wakes at once.

A connection lost (the server restarted, a network cut) fails the statement
in flight with ``StoreUnreachable`` (the transaction is rolled back whole:
what was committed stays committed) and the next use reconnects.

psycopg is imported here only: an SQLite store never loads it, and a
PostgreSQL URL without it says what to install.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from opstui.store.failures import (
    NotAStore,
    StoreBusy,
    StoreError,
    StoreFull,
    StoreMissing,
    StoreReadOnly,
    StoreTooNew,
    StoreUnreachable,
)
from opstui.store.location import StoreLocation

#: ``pg_advisory_xact_lock`` keys: the writers' lock and the migrators'.
WRITE_LOCK = 0x6F7073_7475_69  # "opstui"
MIGRATE_LOCK = WRITE_LOCK + 1
CHANNEL = "opstui_changes"
#: libpq settings opstui supplies unless the URL sets them: give up on a
#: dead server or a cut network in tens of seconds, not the kernel's hours.
_DEFAULTS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
    "application_name": "opstui",
}
#: ``INSERT INTO t(a, b) VALUES (?, ?)`` and nothing more: what COPY can do instead.
_PLAIN_INSERT = re.compile(
    r"\s*INSERT INTO (\w+)\s*\(([\w\s,]+)\)\s*VALUES\s*\(\s*\?(?:\s*,\s*\?)*\s*\)\s*\Z",
    re.IGNORECASE,
)
_PARAMETERS_HINT = (
    "libpq's parameters are listed at "
    "https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS"
)
INSTALL_HINT = "pip install 'opstui[postgres]' (psycopg 3, the PostgreSQL driver)"


def driver() -> Any:
    """The psycopg module, or the one line saying how to install it."""
    try:
        import psycopg
    except ImportError as exc:
        raise StoreError(
            f"a PostgreSQL run store needs the psycopg driver, which is not installed ({exc})",
            hint=INSTALL_HINT,
        ) from None
    return psycopg


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """``?`` parameters as ``%s``, and every literal ``%`` doubled (psycopg
    reads ``%`` inside string literals too)."""
    out: list[str] = []
    quoted = False
    for ch in sql:
        if ch == "'":
            quoted = not quoted
            out.append(ch)
        elif ch == "%":
            out.append("%%")
        elif ch == "?" and not quoted:
            out.append("%s")
        else:
            out.append(ch)
    return "".join(out)


def _value(v: object) -> object:
    # SQLite stores a bool as 0/1 in an INTEGER column; PostgreSQL refuses a
    # boolean there. Text cannot hold NUL in PostgreSQL: shown as U+FFFD,
    # the way undecodable bytes are.
    if v is True or v is False:
        return int(v)
    if type(v) is str and "\x00" in v:
        return v.replace("\x00", "\ufffd")
    return v


def _params(params: Sequence[object] | dict[str, object]) -> Any:
    if isinstance(params, dict):
        return {k: _value(v) for k, v in params.items()}
    return [_value(v) for v in params]


class PgCursor:
    """What the store's code reads of a cursor: rows, ``rowcount``."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur
        self.rowcount: int = cur.rowcount

    def fetchone(self) -> Any:
        return self._cur.fetchone() if self._cur.description else None

    def fetchall(self) -> list[Any]:
        return list(self._cur.fetchall()) if self._cur.description else []

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class PgConnection:
    """One psycopg connection, in autocommit: transactions are explicit
    (``begin_write``, ``begin_read``, ``COMMIT``), as on SQLite."""

    dialect = "postgresql"

    def __init__(self, location: StoreLocation, *, busy_timeout: float) -> None:
        self.location = location
        self.busy_timeout = busy_timeout
        self.psycopg = driver()
        self.raw: Any = None
        self.connect()

    # -- connecting ---------------------------------------------------------

    def connect(self) -> None:
        psycopg = self.psycopg
        assert self.location.url is not None
        try:
            given = psycopg.conninfo.conninfo_to_dict(self.location.url)
        except psycopg.Error as exc:  # a parameter libpq does not know, a bad value
            raise StoreError(
                f"store URL {self.location} cannot be used: {_first_line(exc)}",
                hint=_PARAMETERS_HINT,
            ) from None
        extra = {k: v for k, v in _DEFAULTS.items() if k not in given}
        if self.location.password_env is not None:
            secret = os.environ.get(self.location.password_env)
            if secret is None:
                raise StoreError(
                    f"run store {self.location}: the environment variable "
                    f"{self.location.password_env} holding its password is not set",
                    hint=f"export {self.location.password_env}, or drop password_env and use "
                    "PGPASSWORD or ~/.pgpass",
                )
            extra["password"] = secret
        try:
            self.raw = psycopg.connect(self.location.url, autocommit=True, **extra)
        except psycopg.Error as exc:
            explained = self.explain(exc, doing="connect to") or StoreError(
                # What libpq refused before talking to a server (a bad value).
                f"store URL {self.location} cannot be used: {_first_line(exc)}",
                hint=_PARAMETERS_HINT,
            )
            raise explained from None
        # Waiting for the writers' lock (or any row lock) is bounded like
        # SQLite's busy timeout; beyond it StoreBusy says so.
        self.raw.execute(f"SET lock_timeout = {int(self.busy_timeout * 1000)}")

    def reconnect_if_lost(self) -> None:
        """Open a new connection if the last one broke (a server restart).

        A server that refuses connections for now (restarting, starting up,
        a network blip) is tried again for up to the busy timeout, as SQLite
        waits for a lock: a poller or a pipeline's Tracker rides out a
        restart. A refusal that waiting cannot fix (a wrong password, a
        database that does not exist) is raised at once.
        """
        if self.raw is not None and not self.raw.closed and not self.raw.broken:
            return
        if self.raw is not None:
            self.raw.close()
            self.raw = None
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.1
        while True:
            try:
                self.connect()
                return
            except StoreUnreachable as exc:
                if not _transient(exc.message) or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 2.0)

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()

    # -- the subset of sqlite3.Connection the store uses --------------------

    @property
    def in_transaction(self) -> bool:
        info = self.raw.info
        return bool(info.transaction_status != self.psycopg.pq.TransactionStatus.IDLE)

    def execute(self, sql: str, params: Sequence[object] | dict[str, object] = ()) -> PgCursor:
        if self.raw is None:  # the last reconnection failed: try again, or say why
            self.reconnect_if_lost()
        try:
            if params:
                return PgCursor(self.raw.execute(translate(sql), _params(params)))
            return PgCursor(self.raw.execute(translate(sql)))
        except self.psycopg.Error as exc:
            explained = self.explain(exc)
            if explained is None:
                raise
            raise explained from None

    def script(self, sql: str) -> None:
        """Several statements without parameters (a migration)."""
        try:
            self.raw.execute(sql)
        except self.psycopg.Error as exc:
            explained = self.explain(exc)
            if explained is None:
                raise
            raise explained from None

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> PgCursor:
        """Many rows of one statement. A plain ``INSERT ... VALUES (?, ...)``
        goes as ``COPY ... FROM STDIN``: 2.5x faster than a statement a row
        for a batch of log lines (bench/team_store.py), with the same
        constraints checked; anything else (an upsert) row by row."""
        batch = [_params(r) for r in rows]
        plain = _PLAIN_INSERT.match(sql)
        try:
            with self.raw.cursor() as cur:
                if batch and plain is not None and len(batch) > 1:
                    table, cols = plain.group(1), plain.group(2)
                    with cur.copy(f"COPY {table}({cols}) FROM STDIN") as copy:
                        for row in batch:
                            copy.write_row(row)
                elif batch:
                    cur.executemany(translate(sql), batch)
                done = PgCursor(cur)
                done.rowcount = len(batch)
                return done
        except self.psycopg.Error as exc:
            explained = self.explain(exc)
            if explained is None:
                raise
            raise explained from None

    # -- transactions ---------------------------------------------------------

    def begin_write(self) -> None:
        self._begin("BEGIN")
        self.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")

    def begin_read(self) -> None:
        self._begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def _begin(self, statement: str) -> None:
        """Start a transaction; a connection that died while idle (the server
        restarted since the last statement) is replaced first: nothing of
        the transaction has happened yet, so trying again is safe."""
        self.reconnect_if_lost()
        try:
            self.execute(statement)
        except StoreUnreachable:
            if not (self.raw.closed or self.raw.broken):
                raise
            self.reconnect_if_lost()
            self.execute(statement)

    def commit_write(self) -> None:
        self.execute(f"NOTIFY {CHANNEL}")
        self.execute("COMMIT")

    def rollback(self) -> None:
        if self.raw is None or self.raw.closed or self.raw.broken:
            return
        with contextlib.suppress(self.psycopg.Error):
            self.raw.execute("ROLLBACK")

    def change_token(self) -> str:
        """Changes whenever any transaction that wrote starts or ends.

        The server's current snapshot (``xmin:xmax:in-progress``) moves with
        every transaction id handed out and every one that commits or aborts,
        and reading it touches no table. It is the cluster's: another
        database's writes move it too, costing one incremental read (a few
        index probes that find nothing), never a wrong answer.
        """
        self.reconnect_if_lost()
        row = self.execute("SELECT pg_current_snapshot()::text").fetchone()
        return str(row[0])

    # -- errors -------------------------------------------------------------

    def explain(self, exc: Exception, *, doing: str = "use") -> StoreError | None:
        return explain(self.location, exc, doing=doing, busy_timeout=self.busy_timeout)


_PERMANENT = ("password", "does not exist", "permission denied", "no pg_hba.conf entry")


def _transient(message: str) -> bool:
    """Whether a failed connection may succeed if tried again soon."""
    lowered = message.lower()
    return not any(word in lowered for word in _PERMANENT)


def _password_source(location: StoreLocation) -> str:
    """Where libpq took the password from, named, never shown."""
    if location.password_env is not None:
        return f"the password in {location.password_env}"
    url = location.url or ""
    if "password=" in url or (":" in url.split("://", 1)[-1].split("@", 1)[0] and "@" in url):
        return "the password in the store URL"
    if os.environ.get("PGPASSWORD"):
        return "the password in PGPASSWORD"
    passfile = os.environ.get("PGPASSFILE") or str(Path("~/.pgpass").expanduser())
    if Path(passfile).is_file():
        return f"the password file {passfile}"
    if os.environ.get("PGSERVICE"):
        return f"the service {os.environ['PGSERVICE']!r}"
    return "no password (none in PGPASSWORD, ~/.pgpass or the URL)"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    # libpq's messages: "connection failed: connection to server at ... failed: FATAL:  why"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    head = lines[0] if lines else type(exc).__name__
    if "FATAL:" in head:
        head = head.split("FATAL:", 1)[1].strip()
    elif "failed: " in head:
        head = head.rsplit("failed: ", 1)[1].strip()
    return " ".join(head.split())[:300]


def explain(
    location: StoreLocation,
    exc: Exception,
    *,
    doing: str = "use",
    busy_timeout: float | None = None,
) -> StoreError | None:
    """The operator's line for a PostgreSQL error; None for a bug (bad SQL)."""
    import psycopg
    from psycopg import errors as pg

    why = _first_line(exc)
    kept = "what was committed stays committed; this transaction was rolled back"
    if isinstance(exc, pg.InsufficientPrivilege):
        return StoreReadOnly(
            f"run store {location}: this role may read but not write it ({why})",
            hint="GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO the role, "
            "or write with the store's owner",
        )
    if isinstance(exc, pg.ReadOnlySqlTransaction):
        return StoreReadOnly(
            f"run store {location} is read-only here ({why})",
            hint="point writers at the primary server, not a standby",
        )
    if isinstance(exc, pg.DiskFull | pg.OutOfMemory):
        return StoreFull(
            f"cannot write run store {location}: the server is out of space ({why}); {kept}",
            hint="free space on the database server and run the command again",
        )
    if isinstance(exc, pg.LockNotAvailable) or (
        isinstance(exc, pg.QueryCanceled) and "lock" in str(exc)
    ):
        waited = "" if busy_timeout is None else f" for {busy_timeout:.0f}s"
        return StoreBusy(
            f"run store {location} stayed locked{waited}",
            hint="another writer holds a long transaction; retry, or find it in pg_stat_activity",
        )
    if isinstance(exc, pg.UndefinedTable):
        return NotAStore(
            f"run store {location} lacks a table opstui needs ({why})",
            hint="restore it, or copy what is left to a new store (opstui store copy)",
        )
    if isinstance(exc, psycopg.OperationalError):
        lowered = why.lower()
        if "password authentication failed" in lowered or "no password supplied" in lowered:
            source = _password_source(location)
            return StoreUnreachable(
                f"cannot {doing} run store {location}: {why} (tried {source})",
                hint="set the role's password in PGPASSWORD, ~/.pgpass, or the variable "
                "named by ?password_env=",
            )
        if "does not exist" in lowered and "database" in lowered:
            return StoreMissing(
                f"no run store at {location}: {why}",
                hint="create it: createdb -O ROLE DBNAME (see the README's Team store)",
            )
        if doing == "use":
            return StoreUnreachable(
                f"lost run store {location}: {why}; {kept}",
                hint="check the server is up and reachable; the next attempt reconnects",
            )
        return StoreUnreachable(
            f"cannot {doing} run store {location}: {why}",
            hint="check the server is up, and the host, port and sslmode in the URL",
        )
    if isinstance(exc, psycopg.DataError):
        return StoreError(f"run store {location} refused a value: {why}")
    return None


def schema_version(conn: PgConnection) -> int | None:
    """The store's schema version, or None for a database without opstui's schema."""
    row = conn.execute("SELECT to_regclass('opstui_schema') IS NOT NULL").fetchone()
    if not row[0]:
        return None
    found = conn.execute("SELECT coalesce(max(version), 0) FROM opstui_schema").fetchone()
    return int(found[0])


def open_store(
    location: StoreLocation,
    *,
    create: bool,
    busy_timeout: float,
    target: int,
    migrations: list[str],
    actor: str,
) -> PgConnection:
    """Connect, refuse a newer schema, migrate an older one (under a lock)."""
    conn = PgConnection(location, busy_timeout=busy_timeout)
    try:
        found = schema_version(conn)
        if found is None and not create:
            raise StoreMissing(
                f"run store {location} has no opstui schema yet",
                hint=f"create it with `opstui store init --store {location}` (as a role that "
                "may create tables), or record a run into it",
            )
        if found is not None and found > target:
            raise StoreTooNew(
                f"run store {location} has schema version {found}, this opstui knows up to "
                f"{target}",
                hint="upgrade opstui (pip install -U opstui); the store was left untouched",
            )
        if found is None or found < target:
            migrate(conn, target=target, migrations=migrations, actor=actor)
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: PgConnection, *, target: int, migrations: list[str], actor: str) -> int:
    """Apply the missing migrations in one transaction; return the version found.

    Two processes migrating at once: the second waits on the migrators' lock,
    then finds the work done. DDL is transactional in PostgreSQL, so a failed
    migration leaves the store as it was.
    """
    conn.execute("BEGIN")
    try:
        conn.execute(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK})")
        conn.execute(
            """CREATE TABLE IF NOT EXISTS opstui_schema (
                   version BIGINT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL,
                   applied_by TEXT)"""
        )
        found = int(
            conn.execute("SELECT coalesce(max(version), 0) FROM opstui_schema").fetchone()[0]
        )
        if found > target:
            raise StoreTooNew(
                f"run store {conn.location} has schema version {found}, this opstui knows up "
                f"to {target}",
                hint="upgrade opstui (pip install -U opstui); the store was left untouched",
            )
        for version in range(found, target):
            conn.script(migrations[version])
            conn.execute(
                "INSERT INTO opstui_schema(version, applied_at, applied_by) VALUES (?, ?, ?)",
                (version + 1, time.time(), actor),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.rollback()
        raise
    return found


class ChangeListener:
    """Wakes a reader as soon as any writer commits, instead of at its next tick.

    ``LISTEN opstui_changes`` on a connection of its own, in a daemon thread;
    every write transaction sends ``NOTIFY`` (delivered at its commit). Calls
    ``on_change`` at most every ``every`` seconds however many commits come;
    a lost connection is opened again after a pause, and meanwhile the
    reader's own interval still refreshes it.
    """

    def __init__(
        self, location: StoreLocation, on_change: Callable[[], object], *, every: float = 0.1
    ) -> None:
        self.location = location
        self.on_change = on_change
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="opstui-listen", daemon=True)

    def start(self) -> ChangeListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn = PgConnection(self.location, busy_timeout=1.0)
            except StoreError:
                self._stop.wait(5.0)
                continue
            try:
                conn.execute(f"LISTEN {CHANNEL}")
                last = 0.0
                while not self._stop.is_set():
                    woke = False
                    for _ in conn.raw.notifies(timeout=0.5, stop_after=1):
                        woke = True
                    if woke and time.monotonic() - last >= self.every:
                        last = time.monotonic()
                        self.on_change()
            except (StoreError, conn.psycopg.Error):
                self._stop.wait(1.0)
            finally:
                conn.close()
