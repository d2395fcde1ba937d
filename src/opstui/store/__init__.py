"""The run store: one SQLite file shared by every writer and reader.

Only modules in this package run SQL. Writers call the functions in
``runs``, ``metrics`` and ``models``; readers use the read models
(``Dashboard``, ``history``, ``metrics.samples``, ``models.current_deployments``)
that return the typed rows of ``rows``.
"""

from opstui.store.db import Store, local_actor
from opstui.store.failures import (
    NotAStore,
    StoreBusy,
    StoreError,
    StoreMissing,
    StoreTooNew,
)
from opstui.store.schema import SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "NotAStore",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreMissing",
    "StoreTooNew",
    "local_actor",
]
