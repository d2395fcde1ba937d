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


def faults(snap: Snapshot, acknowledged: Collection[str] = ()) -> list[Fault]:
    """Every fault on the board, the most urgent first."""
    out: list[Fault] = []
    for e in snap.endpoints:
        key = f"endpoint:{e.name}"
        if e.state == st.BURNING:
            paging = any(a.firing and a.severity == "page" for a in e.alerts)
            out.append(Fault(key, PAGE if paging else TICKET, e.last_attempt_at or snap.at))
        elif e.state == st.DOWN:
            out.append(Fault(key, DOWN, e.last_success_at or e.last_attempt_at or 0.0))
        elif e.state == st.RECOVERING:
            out.append(Fault(key, TICKET, e.last_attempt_at or snap.at))
    for p in snap.pipelines:
        if p.failing and p.latest is not None:
            run = p.latest
            at = run.finished_at or run.heartbeat_at or run.started_at or run.created_at
            out.append(Fault(f"pipeline:{p.name}", DEPLOY if _deploy(p) else RUN, at))
    for m in snap.models:
        if m.retrain_suggested:
            out.append(Fault(f"model:{m.name}", DRIFT, snap.at))
    out.sort(key=lambda f: (f.key in acknowledged, f.rank, -f.at, f.key))
    return out


def _deploy(p: PipelineRow) -> bool:
    run = p.latest
    if run is None:
        return False
    failed = run.failed_stage
    return run.trigger == "rollback" or (failed is not None and failed.name in DEPLOY_STAGES)
