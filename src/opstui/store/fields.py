"""What the store accepts, and what its readers can read.

Every door into the store checks its values here (``opstui import``,
``opstui record``, the Tracker, the runner, the pollers): a value a reader
cannot handle was once stored without complaint and then made every reader
of the store raise (``datetime`` has no year 3170979, SQLite holds no
integer of 2**63, UTF-8 holds no lone surrogate, SQLite turns NaN into
NULL). A door refuses such a value with a one-line reason.

Rows that got in anyway (an older opstui, an ``INSERT`` by hand) are the
readers' business: they ask ``time_problem`` / ``loads`` about each row,
skip a row they cannot read and name it with ``skipped``; whoever shows
the result collects those notes with ``collect_skipped``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

from opstui.errors import UsageError
from opstui.store.connection import Connection

#: Times are epoch seconds from 1970 to the last day of year 9999: beyond
#: it ``datetime`` overflows (the end is a day short, so that a local
#: timezone cannot push a time past it either).
TIME_MIN = 0.0
TIME_MAX = 253_402_214_400.0  # 9999-12-31T00:00:00Z
TIME_RANGE = "1970-01-01 to 9999-12-31"
#: SQLite's INTEGER.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: The largest process id (a C int): ``os.kill`` overflows beyond it.
MAX_PID = 2**31 - 1
#: Names, keys, versions, environments, label values: one screen line each.
NAME_MAX = 1_000
#: JSON objects kept with a record (params, metrics, labels), in characters,
#: and how deep they nest (a reader walks them recursively).
JSON_MAX = 1_000_000
DEPTH_MAX = 32

_SURROGATE = re.compile("[\ud800-\udfff]")
_log = logging.getLogger("opstui.store")
# Library code: a skipped row noted outside ``collect_skipped`` (a Tracker in
# someone's pipeline) is not printed over their output unless they ask.
_log.addHandler(logging.NullHandler())


class BadValue(UsageError):
    """A value the store's readers could not read; nothing was written."""


def show(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages."""
    if isinstance(value, int) and value.bit_length() > 256:
        # repr() itself refuses integers of more than 4,300 digits.
        return f"an integer of {value.bit_length():,} bits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- doors -------------------------------------------------------------------


def timestamp(value: object, what: str) -> float:
    """``value`` as epoch seconds, if it is a finite number in ``TIME_RANGE``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadValue(f"{what} must be epoch seconds, not {type(value).__name__}")
    if not TIME_MIN <= value <= TIME_MAX:  # NaN fails this too
        raise BadValue(f"{what} {show(value)} is out of range ({TIME_RANGE})")
    return float(value)


def optional_timestamp(value: object, what: str) -> float | None:
    return None if value is None else timestamp(value, what)


def finite(value: object, what: str) -> float:
    """``value`` as a finite float (a metric sample, a timeout)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        if hasattr(value, "item"):  # a numpy scalar
            return finite(value.item(), what)
        raise BadValue(f"{what} must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise BadValue(f"{what} {show(value)} is too large for a number") from None
    if not math.isfinite(number):
        raise BadValue(f"{what} {show(value)} is not a finite number")
    return number


def int64(value: object, what: str, *, minimum: int = INT64_MIN) -> int:
    """``value`` as an integer SQLite can hold (exit codes, steps, ids, counts)."""
    if isinstance(value, bool) or not isinstance(value, int):
        if hasattr(value, "item") and isinstance(value.item(), int):  # a numpy integer
            return int64(value.item(), what, minimum=minimum)
        raise BadValue(f"{what} must be an integer, not {type(value).__name__}")
    if not minimum <= value <= INT64_MAX:
        raise BadValue(f"{what} {show(value)} is out of range ({minimum} to {INT64_MAX})")
    return int(value)


def optional_int64(value: object, what: str, *, minimum: int = INT64_MIN) -> int | None:
    return None if value is None else int64(value, what, minimum=minimum)


def name(value: object, what: str, *, limit: int = NAME_MAX, empty: bool = False) -> str:
    """A name, key or version: text without lone surrogates, one screen line long
    (and not empty, unless ``empty``: a label's value may be)."""
    if not isinstance(value, str):
        raise BadValue(f"{what} must be text, not {type(value).__name__}")
    if not value and not empty:
        raise BadValue(f"{what} is empty")
    if len(value) > limit:
        raise BadValue(f"{what} is {len(value):,} characters long (at most {limit:,})")
    _no_surrogate(value, what)
    return value


def optional_name(value: object, what: str, *, limit: int = NAME_MAX) -> str | None:
    return None if value is None else name(value, what, limit=limit)


def _no_surrogate(text: str, what: str) -> None:
    if not text.isascii():
        found = _SURROGATE.search(text)
        if found:
            raise BadValue(
                f"{what} holds a lone surrogate ({found.group()!r}), which is not text",
                hint="decode the input as UTF-8",
            )


def free_text(text: str) -> str:
    """Free text (a log line, a message, a server's reason) made storable:
    lone surrogates (undecodable bytes) become U+FFFD, visibly."""
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub("\ufffd", text)


def check_tree(value: object, what: str, *, finite_only: bool = True) -> None:
    """Refuse what a JSON reader of ``value`` would choke on: nesting deeper than
    ``DEPTH_MAX``, lone surrogates, integers beyond int64, NaN or infinities
    (with ``finite_only``). Iterative, so the check itself cannot overflow."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > DEPTH_MAX:
            raise BadValue(f"{what} nests deeper than {DEPTH_MAX} levels")
        if isinstance(item, str):
            _no_surrogate(item, what)
        elif item is None or isinstance(item, bool):
            continue
        elif isinstance(item, int):
            int64(item, f"{what}: integer")
        elif isinstance(item, float):
            if finite_only and not math.isfinite(item):
                raise BadValue(f"{what} holds {item!r}, not a finite number")
        elif isinstance(item, Mapping):
            for key, sub in item.items():
                if isinstance(key, str):
                    _no_surrogate(key, what)
                stack.append((sub, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((sub, depth + 1) for sub in item)
        # Anything else (a numpy scalar, a Path) is stored as str() of it.


def json_object(value: Mapping[str, Any] | None, what: str, *, lenient: bool = False) -> str:
    """``value`` (a mapping) as the JSON text the store keeps, checked.

    ``lenient`` is for what a source read from a server (a registry's run
    params): a NaN there is the server's business, so non-finite numbers
    become null and lone surrogates U+FFFD instead of refusing the record.
    """
    data = _cleaned(dict(value or {}), 1) if lenient else dict(value or {})
    check_tree(data, what)
    try:
        try:
            text = json.dumps(data, default=str, sort_keys=True, allow_nan=False)
        except TypeError:  # keys of mixed types ({1: .., "a": ..}) do not sort
            text = json.dumps(data, default=str, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BadValue(f"{what} cannot be stored as JSON ({exc})") from None
    if len(text) > JSON_MAX:
        raise BadValue(f"{what} is {len(text):,} characters of JSON (at most {JSON_MAX:,})")
    return text


def _cleaned(value: Any, depth: int) -> Any:
    if depth > DEPTH_MAX:
        raise BadValue(f"a value nests deeper than {DEPTH_MAX} levels")
    if isinstance(value, str):
        return free_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value if INT64_MIN <= value <= INT64_MAX else str(value)
    if isinstance(value, Mapping):
        return {free_text(str(k)): _cleaned(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cleaned(v, depth + 1) for v in value]
    return value


# --- readers -----------------------------------------------------------------


class Unreadable(Exception):
    """A stored row a reader cannot use; ``str()`` says why."""


def time_problem(column: str, value: object) -> str | None:
    """Why a stored time cannot be shown, or None (a missing time is fine)."""
    if value is None:
        return None
    if isinstance(value, int | float) and TIME_MIN <= value <= TIME_MAX:
        return None
    return f"{column} {show(value)} is out of range ({TIME_RANGE})"


def check_times(pairs: Sequence[tuple[str, object]]) -> None:
    """Raise ``Unreadable`` naming the first stored time that cannot be shown."""
    for column, value in pairs:
        problem = time_problem(column, value)
        if problem:
            raise Unreadable(problem)


def loads(text: str | None, column: str, default: Any) -> Any:
    """Stored JSON text, or ``Unreadable`` naming the column."""
    if text is None or text == "":
        return default
    try:
        return json.loads(text)
    except (ValueError, RecursionError, TypeError):
        raise Unreadable(f"{column} is not readable JSON") from None


def loads_object(text: str | None, column: str) -> dict[str, Any]:
    value = loads(text, column, {})
    if not isinstance(value, dict):
        raise Unreadable(f"{column} is not a JSON object")
    return value


def fetch_all(
    conn: Connection, sql: str, params: Sequence[object] | Mapping[str, object] = ()
) -> list[Any]:
    """``conn.execute(sql, params).fetchall()``, tolerating text that is not UTF-8.

    SQLite keeps whatever bytes it was given as TEXT; Python refuses to
    decode a row of them, and with it the whole result. Only then is the
    query run again with those bytes shown as U+FFFD. Call it holding the
    store's lock: the text factory belongs to the shared connection.
    """
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "decode" not in str(exc) or not isinstance(conn, sqlite3.Connection):
            raise
    conn.text_factory = _lenient
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.text_factory = str


def _lenient(data: bytes) -> str:
    return data.decode("utf-8", "replace")


_NOTES: ContextVar[list[str] | None] = ContextVar("opstui_skipped_rows", default=None)


def skipped(what: str, reason: str) -> None:
    """Note that a reader skipped ``what`` (e.g. ``run 17``) and why."""
    note = f"skipped {what}: {reason}"
    notes = _NOTES.get()
    if notes is None:
        _log.warning("%s", note)
    elif note not in notes:
        notes.append(note)


@contextlib.contextmanager
def collect_skipped() -> Iterator[list[str]]:
    """Collect the notes of rows skipped by the reads inside the block (this thread)."""
    notes: list[str] = []
    token = _NOTES.set(notes)
    try:
        yield notes
    finally:
        _NOTES.reset(token)
