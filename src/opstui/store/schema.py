"""The store's schema, as forward migrations.

``PRAGMA user_version`` holds the number of migrations applied. Opening a
store runs the missing ones in one ``BEGIN IMMEDIATE`` transaction, so two
processes opening an old store at once migrate it once. A store whose version
is higher than ``SCHEMA_VERSION`` was written by a newer opstui and is refused
before anything is written to it (see ``db.connect``).

Migrations use sqlite-utils' table builder (only here: it costs ~0.1 s to
import, so the read path never loads it). A migration, once released, is never
edited; a change to the schema is a new function in ``migrations``, appended to
``MIGRATIONS``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from opstui.store.migrations import (
    _v1_initial,
    _v2_action_requests,
    _v3_endpoints,
    _v4_drift,
    _v5_watermarks,
    _v6_upstream,
    _v7_alerts,
    _v8_policy_decisions,
)

MIGRATIONS: list[Callable[[Any], None]] = [
    _v1_initial,
    _v2_action_requests,
    _v3_endpoints,
    _v4_drift,
    _v5_watermarks,
    _v6_upstream,
    _v7_alerts,
    _v8_policy_decisions,
]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the store up to ``SCHEMA_VERSION``; return the version found.

    The caller has checked the store is not newer than the code. The version
    is read again inside the write transaction because another process may
    have migrated while we waited for the lock.
    """
    import sqlite_utils

    conn.execute("BEGIN IMMEDIATE")
    try:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if found < SCHEMA_VERSION:
            db = sqlite_utils.Database(conn, execute_plugins=False)
            for version in range(found, SCHEMA_VERSION):
                MIGRATIONS[version](db)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found
