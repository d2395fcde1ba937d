"""The connection and cursor every store module is written against.

``sqlite3.Connection`` has these methods, and ``postgres.PgConnection``
gives PostgreSQL the same ones, so a store function runs on either.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol


class Cursor(Protocol):
    """What the store's code uses of a cursor (sqlite3's, or ``postgres.PgCursor``)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the store's code uses of a connection: ``sqlite3.Connection``'s
    methods, which ``postgres.PgConnection`` also has."""

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...

    @property
    def in_transaction(self) -> bool: ...

    def close(self) -> None: ...
