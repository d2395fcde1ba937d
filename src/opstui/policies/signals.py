"""What each policy sees now: one ``Reading`` per target, from the board and the store.

The board is the console's own snapshot (``views.snapshot``), so a policy
judges what an operator sees; what the snapshot does not hold is read once
per evaluation (``gather``): the latest deploy of each served service, each
drift streak, the stages the flake ledger marks flaky.

- run_failed: the pipeline's latest run failed or timed out (at one of
  ``stages``; at a flaky stage with ``flaky_only``) within ``FRESH`` seconds;
  its outcome ``unknown`` (its source down) is inconclusive;
- burn: the endpoint's multiwindow burn fires at ``severity`` within
  ``within`` of the last deploy of what it serves; its source down, stale or
  never polled, or no condition covered by history: inconclusive;
- drift: the model drifted in its last ``windows`` checks (against one
  reference); no check at all: inconclusive;
- schedule: met once per ``every`` (the slot is the fault).

A reason never holds an age ("3m ago"): a reading that does not change says
the same words, and the trail records it once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from opstui.config import Config
from opstui.config.load import DEFAULT_ENVIRONMENT
from opstui.config.policies import PolicyDef
from opstui.policies.decide import CLEAR, INCONCLUSIVE, MET, Reading
from opstui.store import Store
from opstui.store import status as st
from opstui.store.deployments import deployment_history
from opstui.store.drift import checks, retrain_suggestion
from opstui.store.rows import DeploymentRow
from opstui.views.snapshot import Snapshot

#: A failure older than this is history, not a trigger: a policy turned on
#: does not retry last week's failures.
FRESH = 3600.0
#: Endpoint states whose burn cannot be judged (notify/judge.py's rule).
DARK = frozenset({st.DOWN, st.STALE, st.UNKNOWN})
FAILED = frozenset({st.FAILED, st.TIMED_OUT})


class Streak(NamedTuple):
    checks: int  # how many checks in a row drifted
    since: float  # when the streak began (its first window's end): the fault


class Facts(NamedTuple):
    """What the snapshot does not hold, read once per evaluation."""

    #: (service or model, environment) -> its latest deploy (not a rollback).
    deploys: Mapping[tuple[str, str], DeploymentRow]
    #: model -> its drift streak (None: not drifting; absent: never checked).
    drift: Mapping[str, Streak | None]
    #: (pipeline, stage) pairs the flake ledger marks flaky.
    flaky: frozenset[tuple[str, str]]


def gather(store: Store, config: Config, policies: Iterable[PolicyDef], snap: Snapshot) -> Facts:
    """The reads the policies need (on a worker thread, never the event loop)."""
    from opstui.policies.flaky import flaky_stages

    deploys: dict[tuple[str, str], DeploymentRow] = {}
    drift: dict[str, Streak | None] = {}
    flaky: frozenset[tuple[str, str]] | None = None  # read once, if any policy needs it
    wanted = [p for p in policies if p.enabled]
    for p in wanted:
        if p.trigger == "burn" and p.endpoint is not None:
            ep = config.endpoints.get(p.endpoint)
            served = config.served(ep) if ep is not None else None
            if served is not None and (served[1], served[2]) not in deploys:
                latest = _latest_deploy(store, served[1], served[2])
                if latest is not None:
                    deploys[(served[1], served[2])] = latest
        elif p.trigger == "drift" and p.model is not None and p.model not in drift:
            recent = checks(store, p.model, limit=1)
            if recent:
                found = retrain_suggestion(store, p.model, after=p.windows)
                drift[p.model] = None if found is None else Streak(found.windows, found.since)
        elif p.trigger == "run_failed" and p.flaky_only and flaky is None:
            flaky = flaky_stages(store, now=snap.at)
    return Facts(deploys, drift, flaky or frozenset())


def _latest_deploy(store: Store, target: str, environment: str) -> DeploymentRow | None:
    for d in deployment_history(store, target, environment, limit=10):
        if d.action == "deploy" and d.status == "succeeded":
            return d
    return None


def readings(policy: PolicyDef, snap: Snapshot, facts: Facts, config: Config) -> list[Reading]:
    """What ``policy`` sees of each of its targets in ``snap``."""
    if policy.trigger == "run_failed":
        return _runs(policy, snap, facts, config)
    if policy.trigger == "burn":
        return _burn(policy, snap, facts, config)
    if policy.trigger == "drift":
        return _drift(policy, snap, facts, config)
    return [slot_reading(policy, snap.at, config)]


def environment(config: Config, pipeline: str | None) -> str:
    """Where a pipeline (and the model it trains) runs: its own, else production."""
    p = config.pipelines.get(pipeline or "")
    return (p.environment if p else None) or DEFAULT_ENVIRONMENT


def _runs(policy: PolicyDef, snap: Snapshot, facts: Facts, config: Config) -> list[Reading]:
    if "pipelines" in snap.problems:
        why = f"the pipelines could not be read: {snap.problems['pipelines']}"
        return [Reading(f"pipeline:{policy.pipeline or '*'}", INCONCLUSIVE, why)]
    out = []
    for p in snap.pipelines:
        if policy.pipeline is not None and p.name != policy.pipeline:
            continue
        target, run = f"pipeline:{p.name}", p.latest
        env = environment(config, p.name)
        if run is None:
            out.append(Reading(target, CLEAR, "never ran", None, env, p.name))
            continue
        if run.status == st.UNKNOWN:
            why = f"run {run.id}'s outcome is unknown (its source cannot be reached)"
            out.append(Reading(target, INCONCLUSIVE, why, None, env, p.name))
            continue
        stage = run.failed_stage
        ended = run.finished_at or run.started_at or run.created_at
        out.append(run_reading(policy, facts.flaky, pipeline=p.name, env=env, run_id=run.id,
                               status=run.status, stage=stage.name if stage else None,
                               ago=snap.at - ended))  # fmt: skip
    return out


def run_reading(
    policy: PolicyDef,
    flaky: frozenset[tuple[str, str]],
    *,
    pipeline: str,
    env: str,
    run_id: int,
    status: str,
    stage: str | None,
    ago: float,
) -> Reading:
    """A run_failed policy's reading of a pipeline's latest ended run, ``ago``
    seconds after it ended: live (``readings``) and in a replay alike."""
    target = f"pipeline:{pipeline}"
    if status not in FAILED or stage is None or ago > FRESH:
        return Reading(target, CLEAR, f"run {run_id} {status}", None, env, pipeline)
    if policy.stages and stage not in policy.stages:
        why = f"run {run_id} failed at {stage}, not at {', '.join(policy.stages)}"
        return Reading(target, CLEAR, why, None, env, pipeline)
    if policy.flaky_only and (pipeline, stage) not in flaky:
        why = f"run {run_id} failed at {stage}, which is not marked flaky"
        return Reading(target, CLEAR, why, None, env, pipeline)
    why = f"run {run_id} of {pipeline} {status} at {stage}"
    return Reading(target, MET, why, f"run:{run_id}", env, pipeline)


def _burn(policy: PolicyDef, snap: Snapshot, facts: Facts, config: Config) -> list[Reading]:
    name = policy.endpoint or ""
    target = f"endpoint:{name}"
    ep = config.endpoints.get(name)
    served = config.served(ep) if ep is not None else None
    env = served[2] if served else None
    service = served[1] if served else None
    if "endpoints" in snap.problems:
        why = f"the endpoints could not be read: {snap.problems['endpoints']}"
        return [Reading(target, INCONCLUSIVE, why, None, env, service)]
    report = next((e for e in snap.endpoints if e.name == name), None)
    if report is None or report.state in DARK:
        state = report.state if report is not None else "not polled"
        why = f"{name} is {state}: its burn cannot be judged"
        return [Reading(target, INCONCLUSIVE, why, None, env, service)]
    rules = [a for a in report.alerts if a.severity == policy.severity]
    firing = [a for a in rules if a.firing]
    if not firing:
        if not any(a.covered for a in rules):
            why = f"{name}'s burn windows are not covered by history yet"
            return [Reading(target, INCONCLUSIVE, why, None, env, service)]
        return [Reading(target, CLEAR, f"{name} not burning at {policy.severity}", None, env,
                        service)]  # fmt: skip
    worst = max(firing, key=lambda a: a.long_burn or 0.0)
    burning = f"{name} burning {worst.long_burn or 0:.1f}x over {worst.long_window}"
    deploy = facts.deploys.get((service, env)) if service and env else None
    if served is None or deploy is None or snap.at - deploy.deployed_at > policy.within:
        return [Reading(target, CLEAR, f"{burning}, but not within {_span(policy.within)} of a "
                        "deploy", None, env, service)]  # fmt: skip
    why = f"{burning} after deploy of {service} {deploy.version} in {env}"
    return [Reading(target, MET, why, f"burn:{name}:deploy:{deploy.id}", env, service)]


def _drift(policy: PolicyDef, snap: Snapshot, facts: Facts, config: Config) -> list[Reading]:
    model = policy.model or ""
    if "models" in snap.problems:
        why = f"the models could not be read: {snap.problems['models']}"
        reading = drift_reading(policy, config, None, checked=False)
        return [reading._replace(why=why)]
    return [drift_reading(policy, config, facts.drift.get(model), checked=model in facts.drift)]


def drift_reading(
    policy: PolicyDef, config: Config, streak: Streak | None, *, checked: bool
) -> Reading:
    """A drift policy's reading of its model's streak (None: not drifting long
    enough; ``checked`` False: never checked): live and in a replay alike."""
    model = policy.model or ""
    target = f"model:{model}"
    m = config.models.get(model)
    env = environment(config, m.pipeline if m else None)
    if not checked:
        return Reading(target, INCONCLUSIVE, f"{model} has no drift check yet", None, env, model)
    if streak is None:
        return Reading(target, CLEAR, f"{model} not drifting", None, env, model)
    why = f"{model}'s dataset drifted in {streak.checks} checks in a row"
    return Reading(target, MET, why, f"drift:{model}:{streak.since:.0f}", env, model)


def slot_reading(policy: PolicyDef, now: float, config: Config) -> Reading:
    """A schedule's reading: met once a slot of ``every`` (live and replayed)."""
    every = policy.every or 86400.0
    slot = int(now // every)
    if policy.model is not None:
        m = config.models.get(policy.model)
        target, env = f"model:{policy.model}", environment(config, m.pipeline if m else None)
    else:
        target, env = f"pipeline:{policy.pipeline}", environment(config, policy.pipeline)
    why = f"scheduled every {_span(every)}"
    return Reading(target, MET, why, f"schedule:{slot}", env, target.partition(":")[2])


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
