"""The shapes a key of opstui.toml may take, in words an operator reads.

``validate`` checks a file against a schema built of these
(``load.SCHEMA``); ``pipelines``, ``endpoints`` and ``drift`` build their
tables' schemas from them. A leaf: it imports nothing from opstui, so every
config module can use it without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Spec:
    """One key's expected type, in words an operator reads in an error."""

    types: tuple[type, ...]
    words: str
    minimum: float | None = None
    required: bool = False
    #: Extra check on a well-typed value; returns an error text or None.
    check: Callable[[Any], str | None] | None = None


@dataclass(frozen=True)
class Named:
    """A table of user-named entries (``[pipelines.NAME]``), each like ``schema``."""

    schema: dict[str, Any]


@dataclass(frozen=True)
class Items:
    """An array of tables (``[[pipelines.NAME.stages]]``), each like ``schema``."""

    schema: dict[str, Any]
