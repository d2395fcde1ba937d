"""Opening the run store: checks, pragmas, migrations, write transactions.

Many writers (pipelines, the runner, the poller) and several readers share one
SQLite file. WAL lets readers run while one writer writes; a busy timeout plus
``BEGIN IMMEDIATE`` makes writers queue instead of failing, so "database is
locked" never reaches an operator unless a writer holds the lock for longer
than ``busy_timeout`` (then ``StoreBusy`` says so, with the fix).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from opstui.errors import OpstuiError
from opstui.store.schema import SCHEMA_VERSION, migrate

DEFAULT_BUSY_TIMEOUT = 30.0


class StoreError(OpstuiError):
    """The run store cannot be used."""


class StoreMissing(StoreError):
    """A command that only reads found no store."""


class NotAStore(StoreError):
    """The file exists but is not an SQLite database."""


class StoreTooNew(StoreError):
    """The store was written by a newer opstui."""


class StoreBusy(StoreError):
    """Another process held the write lock for longer than the busy timeout."""


def local_actor() -> str:
    """``user@host`` for audit rows and run actors."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def _check_file(path: Path, *, create: bool) -> None:
    if path.is_dir():
        raise NotAStore(
            f"run store {path} is a directory",
            hint="pass the path of a .db file with --store",
        )
    if not path.exists():
        if not create:
            raise StoreMissing(
                f"no run store at {path}",
                hint="record a run or `opstui import sample_runs/` to create one, "
                "or point --store / OPSTUI_STORE at an existing store",
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    # Whether it is SQLite is left to SQLite itself (see ``connect``). Reading
    # the header here would be wrong: closing any descriptor of the database
    # file drops every POSIX lock this process holds on it, including those
    # of a connection already open (a second Store in the same process), and
    # SQLite would then delete the WAL under that connection and corrupt it.
    # https://www.sqlite.org/howtocorrupt.html#_posix_advisory_locks_canceled_by_a_separate_thread_doing_close_


def connect(
    path: str | os.PathLike[str],
    *,
    create: bool = True,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
) -> sqlite3.Connection:
    """Open ``path`` as a run store, migrating it forward if it is older.

    Nothing is written before the file is known to be an SQLite database of a
    schema version this code understands.
    """
    p = Path(path)
    _check_file(p, create=create)
    try:
        conn = sqlite3.connect(
            p, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open run store {p}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if found > SCHEMA_VERSION:
            raise StoreTooNew(
                f"run store {p} has schema version {found}, this opstui knows up to "
                f"{SCHEMA_VERSION}",
                hint="upgrade opstui (pip install -U opstui); the store was left untouched",
            )
        # WAL is persistent in the file; setting it again is a no-op.
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable across application crashes in WAL mode; only an
        # OS crash can lose the last transactions, which costs us nothing
        # that matters and saves an fsync per commit.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        if found < SCHEMA_VERSION:
            migrate(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if "not a database" in str(exc):
            raise NotAStore(
                f"{p} is not an SQLite database",
                hint="it was left untouched; point --store at a run store or a new path",
            ) from exc
        if "malformed" in str(exc):
            raise NotAStore(
                f"{p} is not a usable SQLite database ({exc})",
                hint="it was left untouched; point --store at a run store or a new path",
            ) from exc
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreBusy(
                f"run store {p} stayed locked for {busy_timeout:.0f}s",
                hint="another process holds a long write; retry, or find it with `fuser`",
            ) from exc
        raise StoreError(f"cannot open run store {p}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


class Store:
    """One connection to the run store, shared by the functions in this package.

    A ``Store`` may be used from several threads: a lock serialises access to
    its connection (the tracker's heartbeat thread shares it with the caller).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.clock = clock
        self.conn = connect(self.path, create=create, busy_timeout=busy_timeout)
        self.lock = threading.RLock()
        #: Commits made through this connection. ``PRAGMA data_version`` only
        #: moves for other connections' commits; readers add this to notice ours.
        self.local_commits = 0

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[Transaction]:
        """A write transaction, taken with ``BEGIN IMMEDIATE``.

        Taking the write lock up front means SQLite's busy handler waits for
        it; a deferred transaction that upgrades later can fail with "locked"
        at once, whatever the timeout.
        """
        with self.lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise self._busy(exc) from exc
            tx = Transaction(self.conn)
            try:
                yield tx
                self.conn.execute("COMMIT")
                self.local_commits += 1
            except BaseException as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                    raise self._busy(exc) from exc
                raise

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several SELECTs."""
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            finally:
                self.conn.execute("COMMIT")

    def change_token(self) -> tuple[int, int]:
        """Changes whenever anyone commits; costs no table read."""
        with self.lock:
            version = int(self.conn.execute("PRAGMA data_version").fetchone()[0])
            return version, self.local_commits

    def _busy(self, exc: Exception) -> StoreError:
        if "locked" in str(exc) or "busy" in str(exc):
            return StoreBusy(
                f"run store {self.path} stayed locked for {self.busy_timeout:.0f}s",
                hint="another process holds a long write; retry, or find it with `fuser`",
            )
        return StoreError(f"cannot write run store {self.path}: {exc}")


class Transaction:
    """An open write transaction; ``rev`` is this transaction's store revision.

    Every change a dashboard must notice stamps its row with ``rev``; readers
    ask "what changed after the revision I last saw" through an index, so a
    refresh costs what changed, not what the store holds.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._rev: int | None = None

    @property
    def rev(self) -> int:
        if self._rev is None:
            row = self.conn.execute(
                "UPDATE counters SET value = value + 1 WHERE name = 'rev' RETURNING value"
            ).fetchone()
            self._rev = int(row[0])
        return self._rev

    def execute(
        self, sql: str, params: tuple[object, ...] | dict[str, object] = ()
    ) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)
