"""Opening the run store: checks, pragmas, migrations, write transactions.

The store is an SQLite file (this module) or a PostgreSQL database
(``postgres``, which says how its concurrency differs); ``Store`` is the
one way in for both.

Many writers (pipelines, the runner, the poller) and several readers share one
SQLite file. WAL lets readers run while one writer writes; a busy timeout plus
``BEGIN IMMEDIATE`` makes writers queue instead of failing, so "database is
locked" never reaches an operator unless a writer holds the lock for longer
than ``busy_timeout`` (then ``StoreBusy`` says so, with the fix).

Every other way a write can fail (disk full, a read-only file or directory,
an I/O error) becomes one ``StoreError`` line (``failures``) naming the store, the cause and
the fix; a transaction either commits whole or not at all, so what was
committed before stays committed. A store deleted or replaced under an open
connection is the silent one: SQLite goes on writing into the unlinked inode
and every write "succeeds". ``Store.write`` compares the file at the path with
the one it opened before each commit and raises ``StoreGone`` instead.

A new store is created owner-only (0600); SQLite gives its ``-wal`` and
``-shm`` the main file's mode, whatever the umask.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opstui.store import fields
from opstui.store.connection import Connection, Cursor
from opstui.store.failures import (
    NotAStore,
    StoreError,
    StoreFull,
    StoreGone,
    StoreMissing,
    StoreReadOnly,
    StoreTooNew,
    explain,
)
from opstui.store.location import StoreLocation, parse_location
from opstui.store.schema import SCHEMA_VERSION, migrate

if TYPE_CHECKING:
    from opstui.store.postgres import PgConnection

DEFAULT_BUSY_TIMEOUT = 30.0


def file_identity(path: Path) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of the file at ``path`` now, or None if there is none.

    The connection's own descriptor cannot be asked (SQLite does not expose
    it, and opening one of ours is ruled out, see ``_check_file``), so the
    identity is taken from the path right after connecting and compared later.
    """
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def host_name() -> str:
    """The host runs, runners and pollers record: ``OPSTUI_HOST`` if set
    (a container's random hostname, a CI runner's stable name), else the
    machine's. A reader takes a run's process for dead on sight only when
    the run was recorded under its own host name (``dashboard.process_gone``)."""
    named = os.environ.get("OPSTUI_HOST", "").strip()
    if named and len(named) <= 255 and named.isprintable():
        return named
    return socket.gethostname()


def local_actor() -> str:
    """``user@host`` for audit rows and run actors."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{host_name()}"


def _check_file(path: Path, *, create: bool) -> None:
    try:
        _check_path(path, create=create)
    except OSError as exc:  # a directory on the way not searchable or writable
        raise _os_error(path, exc, "create" if create else "open") from exc


def _check_path(path: Path, *, create: bool) -> None:
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
        _create_owner_only(path)
        return
    # Whether it is SQLite is left to SQLite itself (see ``connect``). Reading
    # the header here would be wrong: closing any descriptor of the database
    # file drops every POSIX lock this process holds on it, including those
    # of a connection already open (a second Store in the same process), and
    # SQLite would then delete the WAL under that connection and corrupt it.
    # https://www.sqlite.org/howtocorrupt.html#_posix_advisory_locks_canceled_by_a_separate_thread_doing_close_


def _create_owner_only(path: Path) -> None:
    """Create the empty store file 0600 before SQLite opens it.

    SQLite would create it 0644 minus the umask: runs, logs and endpoint
    replies readable by every user of the host. It gives the -wal and -shm it
    creates later exactly the main file's mode (and owner), so they follow.
    ``O_EXCL`` makes this a no-op for a store someone else just created, and
    the descriptor closed here is of a brand-new inode no connection of this
    process has locked yet (see the POSIX-lock note in ``_check_file``).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise _os_error(path, exc, "create") from exc
    try:
        # The umask only narrows the mode given to open(); 0600 exactly
        # keeps it writable by its owner even under an odd umask like 0o277.
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _os_error(path: Path, exc: OSError, doing: str) -> StoreError:
    if exc.errno == errno.EROFS:
        return StoreReadOnly(
            f"cannot {doing} run store {path}: its filesystem is mounted read-only",
            hint="pass --store a path on a writable filesystem",
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        can = "writable" if doing == "create" else "searchable"
        return StoreReadOnly(
            f"cannot {doing} run store {path}: a directory on its path is not {can} "
            f"by this user ({exc.strerror}: {exc.filename or path.parent})",
            hint=f"make it {can}, or pass --store a path this user can {doing}",
        )
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFull(
            f"cannot {doing} run store {path}: the disk is full ({exc.strerror})",
            hint=f"free space on the filesystem of {path.parent} (df -h {path.parent})",
        )
    return StoreError(f"cannot {doing} run store {path}: {exc.strerror or exc}")


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
        explained = explain(p, exc, doing="open", busy_timeout=busy_timeout)
        raise explained or StoreError(f"cannot open run store {p}: {exc}") from exc
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
        explained = explain(p, exc, doing="open", busy_timeout=busy_timeout)
        raise explained or StoreError(f"cannot open run store {p}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


class Store:
    """One connection to the run store, shared by the functions in this package.

    ``where`` is an SQLite file's path or a PostgreSQL URL (``location``).
    ``dialect`` ("sqlite" or "postgresql") is for the few statements that
    differ. A ``Store`` may be used from several threads: a lock serialises
    access to its connection (the tracker's heartbeat thread shares it with
    the caller).
    """

    def __init__(
        self,
        where: str | os.PathLike[str] | StoreLocation,
        *,
        create: bool = True,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.location = parse_location(where)
        #: The store as messages name it (a PostgreSQL URL without its password).
        self.name = self.location.display
        self.busy_timeout = busy_timeout
        self.clock = clock
        self.lock = threading.RLock()
        #: Commits made through this connection. ``PRAGMA data_version`` only
        #: moves for other connections' commits; readers add this to notice ours.
        self.local_commits = 0
        self.conn: Connection
        self.pg: PgConnection | None
        #: The SQLite file; None for a PostgreSQL store.
        self.path: Path | None
        if self.location.is_postgres:
            from opstui.store import postgres
            from opstui.store.pg_migrations import PG_MIGRATIONS

            self.dialect = "postgresql"
            self.path = None
            self.identity = None
            self.pg = postgres.open_store(
                self.location,
                create=create,
                busy_timeout=busy_timeout,
                target=SCHEMA_VERSION,
                migrations=PG_MIGRATIONS,
                actor=local_actor(),
            )
            self.conn = self.pg
            return
        self.dialect = "sqlite"
        self.pg = None
        self.path = self.location.file
        self.conn = connect(self.path, create=create, busy_timeout=busy_timeout)
        #: The file this connection opened, compared with the path's before
        #: every commit (a stat, ~1-2 µs) and by ``check_same_file``.
        # Absolute, as SQLite holds it: a process that changes its working
        # directory (a pipeline script may) has not lost its store.
        self._where = self.path.absolute()
        self.identity = file_identity(self._where)
        if self.identity is None:  # gone between SQLite's open and the stat
            self.conn.close()
            raise StoreGone(self.path, "deleted or moved away", unwritten="nothing yet")

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[Transaction]:
        """A write transaction: SQLite's ``BEGIN IMMEDIATE``, or PostgreSQL's
        writers' advisory lock (``postgres``).

        Taking the write lock up front means SQLite's busy handler waits for
        it; a deferred transaction that upgrades later can fail with "locked"
        at once, whatever the timeout.
        """
        if self.pg is not None:
            with self.lock:
                self.pg.begin_write()
                try:
                    yield Transaction(self.conn)
                    self.pg.commit_write()
                    self.local_commits += 1
                except BaseException:
                    self.pg.rollback()
                    raise
            return
        with self.lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._write_error(exc) from exc
            tx = Transaction(self.conn)
            try:
                yield tx
                # Checked last, with the write lock held: a store deleted or
                # replaced during the transaction's body is caught too, and
                # nothing goes into a file no reader will see again.
                self.check_same_file(unwritten="this write")
                self.conn.execute("COMMIT")
                self.local_commits += 1
            except BaseException as exc:
                if self.conn.in_transaction:
                    # A failed commit (disk full) may have rolled back itself;
                    # a failing rollback must not hide the error that matters.
                    with contextlib.suppress(sqlite3.Error):
                        self.conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    explained = explain(self.location.file, exc, busy_timeout=self.busy_timeout)
                    if explained is not None:
                        raise explained from exc
                raise

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A consistent snapshot for several SELECTs."""
        with self.lock:
            if self.pg is not None:
                self.pg.begin_read()
            else:
                self.conn.execute("BEGIN")
            try:
                yield self.conn
            finally:
                if self.pg is not None:
                    self.pg.rollback()  # nothing to keep: a read-only snapshot
                else:
                    self.conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> list[Any]:
        """Every row of one read, taken under the lock (text that is not UTF-8
        reads as U+FFFD, see ``fields.fetch_all``). Build an optional filter
        with ``opstui.store.query.where``."""
        with self.lock:
            if self.pg is not None:
                self.pg.reconnect_if_lost()
            return fields.fetch_all(self.conn, sql, params)

    def query_one(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> Any:
        """The first row of ``query``, or None: for a read by key or with ``LIMIT 1``."""
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def change_token(self) -> object:
        """Changes whenever anyone commits; costs no table read."""
        with self.lock:
            if self.pg is not None:
                return self.pg.change_token()
            version = int(self.conn.execute("PRAGMA data_version").fetchone()[0])
            return version, self.local_commits

    def gone(self) -> str | None:
        """How the file at ``path`` stopped being this connection's, or None if it still is.

        A stat of the path: cheap enough for every write and every refresh
        of a long-running reader (a connection left on a replaced file reads
        stale data as if all were well). A PostgreSQL store has no file.
        """
        if self.path is None:
            return None
        now = file_identity(self._where)
        if now == self.identity:
            return None
        return "deleted or moved away" if now is None else "replaced by another file"

    def check_same_file(self, *, unwritten: str | None = None) -> None:
        """Raise ``StoreGone`` if the store's file was deleted or replaced since it was opened.

        ``unwritten`` says what the caller loses with it ("this write").
        """
        how = self.gone()
        if how is not None:
            assert self.path is not None
            raise StoreGone(self.path, how, unwritten=unwritten)

    def _write_error(self, exc: sqlite3.Error) -> StoreError:
        assert self.path is not None
        explained = explain(self.path, exc, busy_timeout=self.busy_timeout)
        return explained or StoreError(f"cannot write run store {self.path}: {exc}")


class Transaction:
    """An open write transaction; ``rev`` is this transaction's store revision.

    Every change a dashboard must notice stamps its row with ``rev``; readers
    ask "what changed after the revision I last saw" through an index, so a
    refresh costs what changed, not what the store holds.
    """

    def __init__(self, conn: Connection) -> None:
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

    def execute(self, sql: str, params: tuple[object, ...] | dict[str, object] = ()) -> Cursor:
        return self.conn.execute(sql, params)
