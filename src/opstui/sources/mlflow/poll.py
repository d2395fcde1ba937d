"""One poll of an MLflow endpoint: an ``Observation`` and an ``MlflowSnapshot``.

``observe_mlflow`` turns one poll into an ``Observation`` (up, degraded with
the reason, down) and an ``MlflowSnapshot``; ``opstui.sources.mlflow.sync``
writes the snapshot into the run store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping

import httpx

from opstui.config.endpoints import EndpointDef
from opstui.sources.http import mask, shown_url
from opstui.sources.mlflow.api import Experiment, MlflowRun, MlflowSnapshot, RegisteredModel
from opstui.sources.mlflow.rest import AsyncMlflowRest, MlflowError
from opstui.sources.mlflow.sync import _source
from opstui.store import Store
from opstui.store.endpoints import Observation
from opstui.store.mlflow_sync import read_run_progress
from opstui.store.status import DEGRADED, DOWN, UP

#: The incremental search starts this far before the watermark: MLflow's
#: start time is the client's clock, so a run created a little after a newer
#: one may start a little before it. Runs read twice are upserted by key.
OVERLAP = 2.0
#: Unfinished runs re-read by id per experiment and poll.
RECHECK_MAX = 1000


def alias_problems(model: RegisteredModel, expected: Iterable[str] = ()) -> list[str]:
    """Why the aliases of ``model`` cannot be served, one line each.

    MLflow removes an alias when its version is deleted, so an alias
    pointing at a missing version is rare (another registry, a race); an
    expected alias that is not set at all is the usual sign of that delete.
    """
    versions = {v.version: v for v in model.versions}
    problems = []
    for alias, version in sorted(model.aliases.items()):
        found = versions.get(version)
        if found is None:
            problems.append(
                f"alias {alias} of {model.name} points at version {version}, which does not exist"
            )
        elif found.status != "READY":
            problems.append(
                f"alias {alias} of {model.name} points at version {version}, "
                f"whose registration is {found.status}"
            )
    for alias in expected:
        if alias not in model.aliases:
            problems.append(
                f"alias {alias} of {model.name} is not set on any version "
                "(deleting a version removes its aliases)"
            )
    return problems


async def _experiment_runs(
    rest: AsyncMlflowRest, store: Store | None, ep: EndpointDef, experiment: Experiment, at: float
) -> tuple[list[MlflowRun], float | None]:
    """The runs of ``experiment`` this poll reads, and the new watermark (if any).

    Without a store: the most recent runs, as a one-off look. With one: from
    the store's watermark (less ``OVERLAP``), oldest first, page after page,
    up to ``RUNS_PER_POLL`` newer runs; before the first watermark, the most
    recent ``RECENT_RUNS`` (older runs are not backfilled). Then the runs the
    store holds as unfinished and this read did not return, by id.
    """
    if store is None:
        return await rest.recent_runs(experiment), None
    pipeline = f"mlflow/{experiment.name}"
    mark, unfinished = await asyncio.to_thread(
        read_run_progress, store, _source(ep), ep.name, experiment.id, pipeline, limit=RECHECK_MAX
    )
    if mark is None:
        runs = await rest.recent_runs(experiment)
        complete = True
    else:
        since = max(mark - OVERLAP, 0.0)
        runs, complete = await rest.runs_since(experiment, since, newer_than=mark)
    starts = [r.start_time for r in runs if r.start_time is not None]
    through = max(starts) if starts else None
    if through is not None:
        # A client whose clock runs ahead must not move the watermark past
        # runs that have not started yet: at most this poll's time.
        through = min(through, max(at, mark or 0.0))
        if not complete and mark is not None and through <= mark:
            # A whole poll's worth of runs in one millisecond: step past it.
            through = mark + 0.001
    seen = {r.run_id for r in runs}
    missing = [i for i in unfinished if i not in seen]
    if missing:
        runs += await rest.runs_by_id(experiment, missing)
    return runs, through


async def observe_mlflow(
    client: httpx.AsyncClient, ep: EndpointDef, store: Store | None = None
) -> tuple[Observation, MlflowSnapshot]:
    """Poll an MLflow endpoint once: the endpoint's state and what it holds.

    Calls run one after another: an MLflow poll is a handful of small
    requests, and sequential calls keep one endpoint to one request in
    flight (the poller's concurrency bound counts polls, not requests).
    Down: the server cannot be asked (refused, timeout, auth, not MLflow).
    Degraded: it answers, but something configured is missing or an alias
    points nowhere. With ``store``, runs are read incrementally from each
    experiment's watermark there (``_experiment_runs``); the snapshot carries
    the advanced watermarks, which ``sync_snapshot`` stores with the runs.
    """
    at = time.time()
    started = time.perf_counter()
    rest = AsyncMlflowRest(ep, client)
    problems: list[str] = []
    runs: list[MlflowRun] = []
    marks: list[tuple[str, float]] = []
    models: list[RegisteredModel] = []
    try:
        for name in ep.experiments:
            try:
                experiment = await rest.experiment(name)
            except MlflowError as exc:
                if not exc.missing:
                    raise
                problems.append(f"experiment {name} does not exist")
                continue
            if experiment.lifecycle == "deleted":
                problems.append(f"experiment {name} is deleted")
                continue
            found, through = await _experiment_runs(rest, store, ep, experiment, at)
            runs += found
            if through is not None:
                marks.append((experiment.id, through))
        for name in ep.models:
            try:
                model = await rest.registered_model(name, versions=True)
            except MlflowError as exc:
                if not exc.missing:
                    raise
                problems.append(f"registered model {name} does not exist")
                continue
            models.append(model)
            problems += alias_problems(model, ep.aliases)
    except MlflowError as exc:
        answered = exc.status is not None
        latency = (time.perf_counter() - started) * 1000 if answered else None
        ob = Observation(
            ep.name,
            ep.kind,
            shown_url(ep.url),
            at,
            DOWN,
            exc.problem,
            latency,
            (("up", {}, 0.0),) if answered else (),
        )
        return ob, MlflowSnapshot(ep.name, at)
    latency = (time.perf_counter() - started) * 1000
    samples: list[tuple[str, Mapping[str, str], float]] = [
        ("up", {}, 1.0),
        ("latency_ms", {}, latency),
        ("runs_running", {}, float(sum(r.status == "RUNNING" for r in runs))),
        ("runs_failed_recent", {}, float(sum(r.status == "FAILED" for r in runs))),
    ]
    for model in models:
        samples.append(("model_versions", {"model": model.name}, float(len(model.versions))))
        for alias, version in sorted(model.aliases.items()):
            if version.isdigit():  # a number a chart can show moving
                labels = {"model": model.name, "alias": alias}
                samples.append(("alias_version", labels, float(version)))
    ob = Observation(
        ep.name,
        ep.kind,
        shown_url(ep.url),
        at,
        DEGRADED if problems else UP,
        # Names and statuses come from the server: masked before the cut.
        mask("; ".join(problems), ep)[:500] if problems else None,
        latency,
        tuple(samples),
    )
    return ob, MlflowSnapshot(ep.name, at, tuple(runs), tuple(models), tuple(marks))
