"""The run store's errors, and what an SQLite error means to an operator.

Each error is one line naming the store, the cause and the fix. ``explain``
turns an SQLite error on a write (or an open) into one of them: busy, full,
read-only, an I/O error, a damaged file; None for a bug (a bad SQL).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from opstui.errors import OpstuiError


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


class StoreUnreachable(StoreError):
    """A PostgreSQL store's server cannot be reached, or refused us (a wrong
    password), or the connection broke mid-transaction (rolled back whole).

    Long-running writers wait it out like ``StoreBusy``: a server restart
    must not stop a poller or lose a Tracker's buffer.
    """


class StoreWriteFailed(StoreError):
    """A write failed in a way retrying soon will not fix (an I/O error).

    Long-running writers (the poller, ``drift --watch``, the Tracker, the
    runner) stop on it, and on ``StoreGone``, instead of retrying for ever;
    only ``StoreBusy`` is worth waiting out.
    """


class StoreFull(StoreWriteFailed):
    """The disk (or the file-size limit) is full: the transaction was rolled back."""


class StoreReadOnly(StoreWriteFailed):
    """The store file, its -wal/-shm, or its directory is not writable by this user."""


class StoreGone(StoreError):
    """The file at the store's path is no longer the one this connection opened.

    Deleted, moved away, or replaced (renamed over, restored from a backup):
    SQLite keeps writing into the old inode, which no reader will ever see.
    """

    def __init__(self, path: Path, how: str, *, unwritten: str | None = None) -> None:
        self.path = path
        self.how = how
        lost = f" (not written: {unwritten})" if unwritten else ""
        super().__init__(
            f"run store {path} was {how} while this process was using it{lost}",
            hint="nothing more goes to the old file; restart pointed at the store "
            "(--store or OPSTUI_STORE; a new one is created if none is there)",
        )

    def not_written(self, what: str) -> StoreGone:
        """The same error, saying what the caller lost (``"37 polls"``)."""
        return StoreGone(self.path, self.how, unwritten=what)


#: Errors after which a long-running writer stops: retrying cannot help soon.
FATAL_WRITE_ERRORS: tuple[type[StoreError], ...] = (StoreGone, StoreWriteFailed)
#: Errors a long-running writer waits out, keeping what it has not written:
#: a long lock, a PostgreSQL server restarting or out of reach.
RETRYABLE_WRITE_ERRORS: tuple[type[StoreError], ...] = (StoreBusy, StoreUnreachable)


# SQLite's primary result codes (the low byte of an extended code).
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26
_SQLITE_READONLY_DIRECTORY = 1544


def _writable(path: Path) -> bool:
    # Only to pick the right words; SQLite's error code says that writing failed.
    return not path.exists() or os.access(path, os.W_OK)


def explain(
    path: Path, exc: sqlite3.Error, *, doing: str = "write", busy_timeout: float | None = None
) -> StoreError | None:
    """The operator's line for an SQLite error on ``path``; None for a bug (a bad SQL).

    ``doing`` is what failed ("write", "open"): a failed write was rolled
    back whole, so the line says what was committed stays committed.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc)
    primary = code & 0xFF if isinstance(code, int) else None
    kept = (
        "everything committed before stays committed, this write was rolled back"
        if doing == "write"
        else "nothing was changed"
    )
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in text or "busy" in text:
        waited = "" if busy_timeout is None else f" for {busy_timeout:.0f}s"
        return StoreBusy(
            f"run store {path} stayed locked{waited}",
            hint="another process holds a long write; retry, or find it with `fuser`",
        )
    limit = _file_size_limit() if primary in (_SQLITE_FULL, _SQLITE_IOERR) else None
    if limit is not None:
        # A short write past RLIMIT_FSIZE reads as "full", a refused one
        # (EFBIG: a WAL frame, growing the -shm) as an I/O error: either way
        # the limit is what to raise.
        return StoreFull(
            f"cannot {doing} run store {path}: a file reached this process's file-size limit "
            f"of {limit} bytes ({text}); {kept}",
            hint="raise the limit (ulimit -f) and run the command again",
        )
    if primary == _SQLITE_FULL or (primary == _SQLITE_IOERR and _disk_full(path)):
        said = "" if primary == _SQLITE_FULL else f" ({text})"
        return StoreFull(
            f"cannot {doing} run store {path}: the disk is full{said}; {kept}",
            hint=f"free space on the filesystem of {path.parent} (df -h {path.parent}) "
            "and run the command again",
        )
    if primary in (_SQLITE_READONLY, _SQLITE_CANTOPEN):
        directory = path.parent
        if _read_only_fs(directory):
            return StoreReadOnly(
                f"cannot {doing} run store {path}: its filesystem is mounted read-only ({text})",
                hint="remount it read-write, or copy the store to a writable filesystem "
                "and pass --store",
            )
        if code == _SQLITE_READONLY_DIRECTORY or (
            not _writable(directory) and (primary == _SQLITE_CANTOPEN or not _sidecars_exist(path))
        ):
            return StoreReadOnly(
                f"cannot {doing} run store {path}: its directory {directory} is not writable "
                f"by this user, and SQLite must create {path.name}-wal and {path.name}-shm "
                f"there ({text})",
                hint="make the directory writable, or copy the store to a writable one "
                "and pass --store",
            )
        if primary == _SQLITE_READONLY:
            culprits = [p for p in _store_files(path) if not _writable(p)] or [path]
            named = ", ".join(str(p) for p in culprits)
            are, them = ("is", "it") if len(culprits) == 1 else ("are", "them")
            return StoreReadOnly(
                f"cannot {doing} run store {path}: {named} {are} read-only for this user "
                f"({text}); nothing was changed",
                hint=f"chmod u+w {them}, or run as the owner (uid {_owner(path)})",
            )
        return StoreError(f"cannot {doing} run store {path}: {text}")
    if primary == _SQLITE_IOERR:
        return StoreWriteFailed(
            f"cannot {doing} run store {path}: I/O error ({text}, "
            f"{getattr(exc, 'sqlite_errorname', 'SQLITE_IOERR')}); {kept}",
            hint="check the disk and the filesystem (dmesg), then run the command again",
        )
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return NotAStore(
            f"run store {path} is damaged ({text})",
            hint="restore it from a backup, or salvage it with `sqlite3 STORE .recover`",
        )
    return None


def _store_files(path: Path) -> list[Path]:
    return [path, Path(f"{path}-wal"), Path(f"{path}-shm")]


def _sidecars_exist(path: Path) -> bool:
    return all(p.exists() for p in _store_files(path)[1:])


def _read_only_fs(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _owner(path: Path) -> str:
    try:
        return str(path.stat().st_uid)
    except OSError:
        return "?"


def _disk_full(path: Path) -> bool:
    # Some full-disk paths come back as an I/O error (creating the 32 KiB
    # -shm, a short write of the WAL's header): say what it really is. Under
    # 1 MiB free, "full" is what an operator needs to hear.
    try:
        return shutil.disk_usage(path.parent).free < 1 << 20
    except OSError:
        return False


def _file_size_limit() -> int | None:
    """RLIMIT_FSIZE if this process has one (``ulimit -f``), else None."""
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else int(soft)
