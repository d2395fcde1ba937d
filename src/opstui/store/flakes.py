"""What retries did, stage by stage: the flake ledger's rows.

A retry is a run whose ``parent_run_id`` names the run it retries. For each
stage that failed (or timed out) in the parent, the retry either passed it
(the failure did not reproduce: a flake, or a fix in between) or failed it
again. Manual retries (an operator's) and automatic ones (``policy:NAME``)
are counted apart, so automation cannot vouch for itself.
"""

from __future__ import annotations

from typing import NamedTuple

from opstui.store.db import Store


class Retried(NamedTuple):
    pipeline: str
    stage: str
    #: The retry's stage: succeeded (passed on retry) or failed again.
    passed: bool
    automatic: bool  # the retry's actor was a policy
    at: float  # when the retry was created


def retried_stages(store: Store, *, since: float, limit: int = 100_000) -> list[Retried]:
    """Each (retry, stage it retried) since ``since``, oldest first."""
    rows = store.query(
        """SELECT p.name, sp.name, sc.status, c.actor, c.created_at
           FROM runs c
           JOIN runs r ON r.id = c.parent_run_id
           JOIN pipelines p ON p.id = r.pipeline_id
           JOIN stage_runs sp ON sp.run_id = r.id AND sp.status IN ('failed', 'timed_out')
           JOIN stage_runs sc ON sc.run_id = c.id AND sc.name = sp.name
           WHERE c.created_at >= ? AND sc.status IN ('succeeded', 'failed', 'timed_out')
           ORDER BY c.created_at, c.id LIMIT ?""",
        (since, limit),
    )
    return [
        Retried(
            str(r[0]),
            str(r[1]),
            r[2] == "succeeded",
            str(r[3] or "").startswith("policy:"),
            float(r[4]),
        )
        for r in rows
        if isinstance(r[4], int | float)
    ]
