"""The WHERE clause of a filtered read, built from optional arguments.

The SQL stays in the read that runs it; ``where`` only joins the conditions
that apply and collects their parameters, in order::

    clause, params = where(("m.name = ?", model), ("b.kind = ?", kind))
    rows = store.query(f"SELECT ... {clause} ORDER BY b.id DESC LIMIT ?", [*params, limit])

A condition is SQL without a parameter (it always applies) or a pair of SQL
with one ``?`` and its value: the pair applies unless the value is None, so a
required condition is a pair whose value is never None.
"""

from __future__ import annotations

from typing import TypeAlias

Condition: TypeAlias = "str | tuple[str, object]"


def where(*conditions: Condition) -> tuple[str, list[object]]:
    """``WHERE c1 AND c2 ...`` of the conditions that apply, and their parameters.

    When none applies the clause is empty: every row.
    """
    clauses: list[str] = []
    params: list[object] = []
    for c in conditions:
        if isinstance(c, str):
            clauses.append(c)
        elif c[1] is not None:
            clauses.append(c[0])
            params.append(c[1])
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params
