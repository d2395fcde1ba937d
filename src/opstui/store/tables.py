"""The store's tables as data: their order, keys and columns, on either back end.

``copy`` walks them in this order (a table after those it refers to) and
``check`` counts them. A new table in a migration is added here too;
``tests/test_store_copy.py`` fails if a table of the schema is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from opstui.store.db import Store


@dataclass(frozen=True)
class Table:
    name: str
    #: The primary key's columns.
    key: tuple[str, ...] = ("id",)
    #: Whether a copy carries it (leases are a live process's, not history).
    copied: bool = True


#: Every table, each after the tables its foreign keys name.
TABLES: tuple[Table, ...] = (
    Table("pipelines"),
    Table("runs"),
    Table("stage_runs"),
    Table("log_lines"),
    Table("series"),
    Table("metric_samples"),
    Table("models"),
    Table("model_versions"),
    Table("deployments"),
    Table("feature_batches"),
    Table("drift_references"),
    Table("drift_checks"),
    Table("drift_results"),
    Table("actions"),
    Table("alerts"),
    Table("policy_decisions"),
    Table("imported", key=("key",)),
    Table("endpoint_status", key=("name",)),
    Table("watermarks", key=("source", "name")),
    Table("counters", key=("name",), copied=False),
    Table("leases", key=("name",), copied=False),
)
#: Tables whose rows carry the revision readers follow (``Transaction.rev``).
REV_TABLES = frozenset({"pipelines", "runs", "endpoint_status"})


def columns(store: Store, table: str) -> list[str]:
    """The table's columns in the store, in their order."""
    if store.dialect == "postgresql":
        rows = store.query(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = current_schema() AND table_name = ?
               ORDER BY ordinal_position""",
            (table,),
        )
        return [str(r[0]) for r in rows]
    return [str(r[1]) for r in store.query(f"PRAGMA table_info({table})")]


def present(store: Store) -> set[str]:
    """The names of the tables the store has."""
    if store.dialect == "postgresql":
        rows = store.query("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    else:
        rows = store.query("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(r[0]) for r in rows}
