"""What should be firing now, judged from one snapshot of the board.

- ``burn``: an endpoint's multiwindow burn-rate condition of a severity
  (``page`` or ``ticket``, the SRE workbook's, ``analysis/rates.py``) fires;
  it resolves when every condition of that severity is evaluated and none
  fires (the recovering state: the short window clean).
- ``deploy``: a pipeline's latest run failed a deploy (``views/urgency``'s
  deploy class) in a production environment (``[notify] production``);
  resolves when a later run of it does not.
- ``drift``: a model has drifted long enough for a retrain to be suggested
  (its ``retrain_after`` checks in a row).

What cannot be judged now is named ``undecided`` and kept as it is: an
endpoint whose poller or source is down (state ``down``, ``stale``,
``unknown``, or no condition evaluable), a panel that failed to read. A
source going dark is never an all-clear.
"""

from __future__ import annotations

from typing import NamedTuple

from opstui.config import Config
from opstui.config.load import DEFAULT_ENVIRONMENT
from opstui.store import status as st
from opstui.store.alerts import SEVERITIES, Wanted
from opstui.views.endpoints import EndpointReport
from opstui.views.snapshot import Snapshot
from opstui.views.urgency import DEPLOY, faults

#: Endpoint states whose burn cannot be judged.
UNJUDGED = frozenset({st.DOWN, st.STALE, st.UNKNOWN})


class Judgement(NamedTuple):
    wanted: list[Wanted]
    #: Key prefixes not judged this time (``burn:web-api:``, ``drift:``).
    undecided: list[str]


def judge(snap: Snapshot, config: Config) -> Judgement:
    wanted: list[Wanted] = []
    undecided: list[str] = []
    if "endpoints" in snap.problems:
        undecided.append("burn:")
    else:
        for e in snap.endpoints:
            _burns(e, wanted, undecided)
    if "pipelines" in snap.problems:
        undecided.append("deploy:")
    else:
        _deploys(snap, config, wanted)
    if "models" in snap.problems:
        undecided.append("drift:")
    else:
        for m in snap.models:
            if m.retrain_suggested:
                share = f"{m.drift_share:.0%} of features" if m.drift_share is not None else ""
                named = ", ".join(m.drifted[:3]) + (" ..." if len(m.drifted) > 3 else "")
                what = f": {share} drifted ({named})" if share and named else ""
                env = DEFAULT_ENVIRONMENT if DEFAULT_ENVIRONMENT in m.deployed else None
                wanted.append(Wanted(f"drift:{m.name}", "drift", m.name, "ticket", m.name, env,
                                     f"{m.name} drifting, retrain suggested{what}"))  # fmt: skip
    return Judgement(wanted, undecided)


def _burns(e: EndpointReport, wanted: list[Wanted], undecided: list[str]) -> None:
    if e.state in UNJUDGED:
        undecided.append(f"burn:{e.name}:")
        return
    service, env = (e.served[1], e.served[2]) if e.served else (None, None)
    for severity in SEVERITIES:
        rules = [a for a in e.alerts if a.severity == severity]
        firing = [a for a in rules if a.firing]
        key = f"burn:{e.name}:{severity}"
        if firing:
            worst = max(firing, key=lambda a: a.long_burn or 0.0)
            summary = (
                f"{e.name} burning its error budget: "
                f"{worst.long_burn or 0:.1f}x over {worst.long_window}, "
                f"{worst.short_burn or 0:.1f}x over {worst.short_window}"
            )
            wanted.append(Wanted(key, "burn", e.name, severity, service, env, summary))
        elif not any(a.evaluable for a in rules):
            undecided.append(key)


def _deploys(snap: Snapshot, config: Config, wanted: list[Wanted]) -> None:
    production = set(config.notify.production)
    for f in faults(snap, acknowledged=()):
        if f.rank != DEPLOY:
            continue
        name = f.key.partition(":")[2]
        pipeline = config.pipelines.get(name)
        env = (pipeline.environment if pipeline else None) or DEFAULT_ENVIRONMENT
        if env in production:
            wanted.append(Wanted(f"deploy:{name}:{env}", "deploy", name, "page", name, env,
                                 f"{f.what} in {env}"))  # fmt: skip
