"""What automation policies decided, in the store: the trail, the approval queue, the pause.

Each row is one decision (``policies/decide.py`` says which, and why);
``record`` writes it unless the store already holds the act (or the request
for approval) for that policy and fault, which another evaluator may have
written a moment before: the partial unique indexes of schema v8 decide,
and the loser is told (None), never doubled. Pausing every policy is a
decision too (policy ``*``, verdict paused/resumed, who), so the trail says
who paused and when.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from opstui.store import fields
from opstui.store.db import Store, Transaction

#: The verdicts of policies/decide.py, as stored.
VERDICTS = frozenset(
    {"acted", "would_act", "awaiting_approval", "approved", "rejected", "held", "refused",
     "inconclusive", "paused", "resumed"}
)  # fmt: skip
ALL = "*"


class DecisionRow(NamedTuple):
    id: int
    policy: str
    target: str
    fault: str | None
    verdict: str
    why: str
    action: str | None
    environment: str | None
    service: str | None
    mode: str | None
    decided_at: float
    decided_by: str | None
    action_id: int | None
    run_id: int | None
    approval_of: int | None


_COLUMNS = (
    "id, policy, target, fault, verdict, why, action, environment, service, mode, decided_at,"
    " decided_by, action_id, run_id, approval_of"
)


def add_decision(
    tx: Transaction, d: Mapping[str, Any], *, now: float, by: str | None
) -> int | None:
    """Insert one decision (keys: policy, target, fault, verdict, why, action,
    environment, service, mode, action_id, run_id, approval_of); its id, or
    None if the store already settled that fault for that policy (or that
    request was answered) first."""
    if d["verdict"] not in VERDICTS:
        raise ValueError(f"unknown verdict {d['verdict']!r}")
    fields.name(d["policy"], "policy")
    fields.name(d["target"], "target")
    # Kept as it came (the screens escape it), but for NUL, which PostgreSQL's
    # text refuses: a policy's reason quotes names and messages from data.
    why = fields.free_text(d["why"]).replace("\x00", "\ufffd")
    params = (
        d["policy"], d["target"], d.get("fault"), d["verdict"], why,
        d.get("action"), d.get("environment"), d.get("service"), d.get("mode"), now, by,
        d.get("action_id"), d.get("run_id"), d.get("approval_of"),
    )  # fmt: skip
    # ON CONFLICT DO NOTHING with a partial index's predicate: both SQLite and
    # PostgreSQL take it; the row that got there first stands.
    cur = tx.execute(
        f"""INSERT INTO policy_decisions ({_COLUMNS.removeprefix("id, ")})
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT DO NOTHING RETURNING id""",
        params,
    )
    row = cur.fetchone()
    return None if row is None else int(row[0])


def record(
    store: Store, d: Mapping[str, Any], *, by: str | None, now: float | None = None
) -> int | None:
    """``add_decision`` in its own transaction."""
    with store.write() as tx:
        return add_decision(tx, d, now=store.clock() if now is None else now, by=by)


def set_action(
    store: Store, decision_id: int, *, action_id: int | None, run_id: int | None
) -> None:
    """The audit row and the run an acted decision started (known after it started)."""
    with store.write() as tx:
        tx.execute(
            "UPDATE policy_decisions SET action_id = ?, run_id = ? WHERE id = ?",
            (action_id, run_id, decision_id),
        )


def refused(store: Store, decision_id: int, why: str) -> None:
    """A claimed act the action path refused: settled as refused, with why
    (the fault is not tried again; an operator takes it from there)."""
    with store.write() as tx:
        tx.execute(
            "UPDATE policy_decisions SET verdict = 'refused', why = ? WHERE id = ?",
            (fields.free_text(why).replace("\x00", "\ufffd"), decision_id),
        )


def decisions(
    store: Store,
    *,
    since: float,
    until: float | None = None,
    policy: str | None = None,
    limit: int = 5000,
) -> list[DecisionRow]:
    """Decisions in [since, until], oldest first (at most ``limit``, the newest)."""
    hi = 1e300 if until is None else until
    where, params = "decided_at >= ? AND decided_at <= ?", list[object]([since, hi])
    if policy is not None:
        where += " AND (policy = ? OR policy = ?)"
        params += [policy, ALL]
    rows = store.query(
        f"SELECT {_COLUMNS} FROM policy_decisions WHERE {where} ORDER BY decided_at DESC, id DESC"
        " LIMIT ?",
        (*params, limit),
    )
    return list(reversed(_readable(rows)))


def settled_faults(store: Store, *, since: float) -> set[tuple[str, str]]:
    """(policy, fault) of every act, would-act and request since ``since``."""
    rows = store.query(
        """SELECT policy, fault FROM policy_decisions WHERE decided_at >= ?
           AND verdict IN ('acted', 'would_act', 'awaiting_approval', 'refused')
           AND fault IS NOT NULL""",
        (since,),
    )
    return {(str(r[0]), str(r[1])) for r in rows}


def paused(store: Store) -> DecisionRow | None:
    """The pause in force (who, when, why), or None."""
    rows = store.query(
        f"""SELECT {_COLUMNS} FROM policy_decisions WHERE policy = ?
            AND verdict IN ('paused', 'resumed') ORDER BY decided_at DESC, id DESC LIMIT 1""",
        (ALL,),
    )
    found = _readable(rows)
    return found[0] if found and found[0].verdict == "paused" else None


def pending(store: Store) -> list[DecisionRow]:
    """Requests for approval not answered yet, oldest first."""
    rows = store.query(
        f"""SELECT {_COLUMNS} FROM policy_decisions d WHERE verdict = 'awaiting_approval'
            AND NOT EXISTS (SELECT 1 FROM policy_decisions a WHERE a.approval_of = d.id)
            ORDER BY decided_at, id"""
    )
    return _readable(rows)


def get(store: Store, decision_id: int) -> DecisionRow | None:
    rows = store.query(f"SELECT {_COLUMNS} FROM policy_decisions WHERE id = ?", (decision_id,))
    found = _readable(rows)
    return found[0] if found else None


def _readable(rows: list[tuple[Any, ...]]) -> list[DecisionRow]:
    out = []
    for r in rows:
        problem = fields.time_problem("decided_at", r[10])
        if problem:
            fields.skipped(f"policy decision {r[0]}", problem)
            continue
        out.append(DecisionRow(*r))
    return out
