"""The flake ledger: stages that pass when retried, counted over time.

A stage is flaky when, over the last ``DAYS`` days, its failures were
retried and passed at least ``MIN_PASSES`` times and in at least half of
the retries: a failure that reproduces is a real one, and an automatic
retry limited to flaky stages (``flaky_only``) does not hide it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

from opstui.store import Store
from opstui.store.flakes import retried_stages

DAYS = 14
MIN_PASSES = 2


class StageFlakes(NamedTuple):
    pipeline: str
    stage: str
    retried: int  # retries of a failure at this stage
    passed: int  # of which passed the stage
    automatic: int  # of which a policy started

    @property
    def flaky(self) -> bool:
        return self.passed >= MIN_PASSES and self.passed * 2 >= self.retried

    @property
    def share(self) -> float:
        return self.passed / self.retried if self.retried else 0.0


def ledger(
    store: Store, *, now: float, days: int = DAYS, pipeline: str | None = None
) -> list[StageFlakes]:
    """Every stage retried in the last ``days`` days (of one ``pipeline`` when
    named), the flakiest first."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in retried_stages(store, since=now - days * 86400.0, pipeline=pipeline):
        c = counts[(r.pipeline, r.stage)]
        c[0] += 1
        c[1] += r.passed
        c[2] += r.automatic
    out = [StageFlakes(p, s, *c) for (p, s), c in counts.items()]
    return sorted(out, key=lambda f: (-f.share, -f.retried, f.pipeline, f.stage))


def flaky_stages(store: Store, *, now: float) -> frozenset[tuple[str, str]]:
    return frozenset((f.pipeline, f.stage) for f in ledger(store, now=now) if f.flaky)
