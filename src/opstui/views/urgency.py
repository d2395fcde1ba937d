"""Which fault an operator looks at first: the console's first frame puts
the cursor on it, and keeps it there while nobody moves the cursor by hand.

Classes, most urgent first: an endpoint burning its budget fast enough to
page, an endpoint down, a failed deploy (a run that failed at a deploy,
release or rollback stage, or a rollback run that failed), other failed
runs (failed, timed out, lost), a drifting model due a retrain, an endpoint
burning slowly enough to ticket or recovering. Newest first within a class;
acknowledged faults after the others.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

from opstui.store import status as st
from opstui.store.acks import Ack
from opstui.store.rows import PipelineRow
from opstui.views.snapshot import Snapshot

PAGE, DOWN, DEPLOY, RUN, DRIFT, TICKET = range(6)
#: Stages whose failure means a deploy failed.
DEPLOY_STAGES = frozenset({"deploy", "release", "rollback", "promote"})


class Fault(NamedTuple):
    #: The row it is on (``endpoint:web-api``, ``pipeline:billing-worker``).
    key: str
    rank: int
    #: When it happened, as well as the store knows (newest first in a class).
    at: float
    #: This fault, not only its row: another failed run of the same pipeline,
    #: or an endpoint gone from burning to down, is a new one.
    ident: str = ""
    #: One line for a notification: ``web-api burning (page)``.
    what: str = ""


def faults(snap: Snapshot, acknowledged: Collection[str] | None = None) -> list[Fault]:
    """Every fault on the board, the most urgent first; those acknowledged
    (``acknowledged``, by ident: else the snapshot's) after the others."""
    if acknowledged is None:
        acknowledged = snap.acknowledged.keys()
    out: list[Fault] = []
    for e in snap.endpoints:
        key = f"endpoint:{e.name}"
        if e.state == st.BURNING:
            paging = any(a.firing and a.severity == "page" for a in e.alerts)
            level = "page" if paging else "ticket"
            out.append(Fault(key, PAGE if paging else TICKET, e.last_attempt_at or snap.at,
                             f"{key}:burning:{level}", f"{e.name} burning ({level})"))  # fmt: skip
        elif e.state == st.DOWN:
            out.append(Fault(key, DOWN, e.last_success_at or e.last_attempt_at or 0.0,
                             f"{key}:down", f"{e.name} down"))  # fmt: skip
        elif e.state == st.RECOVERING:
            # Not a new fault: the burning one mending (it rings nothing).
            out.append(Fault(key, TICKET, e.last_attempt_at or snap.at, f"{key}:burning:page"))
    for p in snap.pipelines:
        if p.failing and p.latest is not None:
            run = p.latest
            at = run.finished_at or run.heartbeat_at or run.started_at or run.created_at
            failed = run.failed_stage
            what = f"{p.name} {run.status}" + (f" at {failed.name}" if failed else "")
            out.append(Fault(f"pipeline:{p.name}", DEPLOY if _deploy(p) else RUN, at,
                             f"pipeline:{p.name}:run:{run.id}", what))  # fmt: skip
    for m in snap.models:
        if m.retrain_suggested:
            out.append(Fault(f"model:{m.name}", DRIFT, snap.at, f"model:{m.name}:drift",
                             f"{m.name} drifting: retrain suggested"))  # fmt: skip
    out.sort(key=lambda f: (f.ident in acknowledged, f.rank, -f.at, f.key))
    return out


def _deploy(p: PipelineRow) -> bool:
    run = p.latest
    if run is None:
        return False
    failed = run.failed_stage
    return run.trigger == "rollback" or (failed is not None and failed.name in DEPLOY_STAGES)


def new_faults(
    seen: set[str] | None, now: list[Fault], acknowledged: Collection[str] = ()
) -> list[Fault]:
    """The faults of ``now`` not among those ``seen`` before (by ``ident``)
    nor acknowledged (one that flaps back rings no bell once someone has it);
    none on the first look (``seen`` None): a console opened during an
    incident rings for what happens next, not for what it finds."""
    if seen is None:
        return []
    return [f for f in now if f.ident and f.ident not in seen and f.ident not in acknowledged]


def acknowledged_rows(snap: Snapshot) -> set[str]:
    """The rows whose fault now is acknowledged (``pipeline:etl``)."""
    return {f.key for f in faults(snap) if f.ident in snap.acknowledged}


def acknowledgement(snap: Snapshot, key: str) -> Ack | None:
    """The acknowledgement of the fault row ``key`` has now, if any."""
    for f in faults(snap):
        if f.key == key:
            return snap.acknowledged.get(f.ident)
    return None
