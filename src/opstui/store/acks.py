"""Acknowledgements: an operator says "I have this one" of a fault on the board.

Kept in the audit trail itself (``actions``, action ``acknowledge`` or
``unacknowledge``, the fault and the expiry in its plan), so every console
on the store sees them and each is audited by construction, with no table
of its own. A fault is ``views.urgency.Fault.ident`` (``pipeline:etl:run:17``,
``endpoint:web-api:burning:page``): another failed run, or an endpoint gone
from burning to down, is a new fault and is not covered. An acknowledged
fault sorts after the others and rings no bell; the acknowledgement ends at
its expiry.
"""

from __future__ import annotations

from typing import NamedTuple

from opstui.store import fields
from opstui.store.actions import add_action
from opstui.store.db import Store

ACKNOWLEDGE = "acknowledge"
UNACKNOWLEDGE = "unacknowledge"
#: How long an acknowledgement lasts unless said (and at most).
DEFAULT_FOR = 3600.0
LONGEST = 7 * 86400.0


class Ack(NamedTuple):
    fault: str
    target: str
    actor: str
    note: str | None
    at: float
    until: float


def acknowledge(
    store: Store,
    *,
    fault: str,
    target: str,
    actor: str,
    note: str | None = None,
    seconds: float = DEFAULT_FOR,
) -> Ack:
    """Acknowledge ``fault`` (on row ``target``) for ``seconds``; audited."""
    fields.name(fault, "fault")
    if not 0 < seconds <= LONGEST:
        raise fields.BadValue(f"an acknowledgement lasts from a second to 7 days, not {seconds:g}s")
    said = None if not note else fields.free_text(note)[:500]
    now = store.clock()
    with store.write() as tx:
        add_action(
            tx,
            actor=actor,
            action=ACKNOWLEDGE,
            target=target,
            environment=None,
            plan={"fault": fault, "until": now + seconds, "note": said},
            status="succeeded",
            outcome=said,
            now=now,
        )
    return Ack(fault, target, actor, said, now, now + seconds)


def unacknowledge(store: Store, *, fault: str, target: str, actor: str) -> None:
    now = store.clock()
    with store.write() as tx:
        add_action(tx, actor=actor, action=UNACKNOWLEDGE, target=target, environment=None,
                   plan={"fault": fault}, status="succeeded", now=now)  # fmt: skip


def active_acks(store: Store, now: float | None = None) -> dict[str, Ack]:
    """The acknowledgements in force, by fault: the newest word on each, not expired."""
    now = store.clock() if now is None else now
    rows = store.query(
        """SELECT action, target, actor, plan, ts FROM actions
           WHERE ts >= ? AND action IN (?, ?) ORDER BY id""",
        (now - LONGEST, ACKNOWLEDGE, UNACKNOWLEDGE),
    )
    out: dict[str, Ack] = {}
    for action, target, actor, plan, ts in rows:
        try:
            doc = fields.loads_object(plan, "plan")
        except fields.Unreadable:
            continue  # a hand-edited row: it acknowledges nothing
        fault, until, note = doc.get("fault"), doc.get("until"), doc.get("note")
        if not isinstance(fault, str):
            continue
        if action == UNACKNOWLEDGE:
            out.pop(fault, None)
        elif isinstance(until, int | float) and isinstance(ts, int | float):
            said = note if isinstance(note, str) else None
            out[fault] = Ack(fault, str(target), str(actor), said, float(ts), float(until))
    return {k: a for k, a in out.items() if a.until > now}
