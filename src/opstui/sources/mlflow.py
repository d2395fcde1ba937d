"""MLflow's REST API: experiments, recent runs, registered models, aliases.

A small client on httpx rather than MLflow's own: ``mlflow`` is ~850 MB and
seconds to import, and we need six calls. Requests and their parsing are
written once (``_Op``: what to send and how to read the answer); ``MlflowRest``
(sync, for actions) and ``AsyncMlflowRest`` (for the poller) only move bytes.

Every failure, whatever its cause (connection refused, timeout, an HTML
page from a proxy, 401/403, MLflow's ``{"error_code", "message"}``), becomes
one ``MlflowError`` with a one-line operator message. Secret values are
never part of a message: they are masked (``http.mask``) even from text the
server echoes back. Redirects are followed as the poller's are
(``http.Redirects``): bounded, and no credentials to another origin.

``observe_mlflow`` turns one poll into an ``Observation`` (up, degraded with
the reason, down) and an ``MlflowSnapshot``; ``sync_snapshot`` writes the
snapshot into the run store (runs, model versions, alias moves as
deployments) through ``opstui.store.mlflow_sync``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from opstui.config.endpoints import EndpointDef
from opstui.errors import OpstuiError
from opstui.sources.http import (
    MissingSecret,
    RedirectRefused,
    Redirects,
    TooLarge,
    add_capped,
    auth_problem,
    connect_reason,
    looks_html,
    mask,
    secret_headers,
    shown_url,
)
from opstui.store import Store
from opstui.store import status as st
from opstui.store.db import local_actor
from opstui.store.endpoints import Observation
from opstui.store.mlflow_sync import (
    AliasState,
    ExternalRun,
    ExternalVersion,
    RunWatermark,
    read_run_progress,
    run_watermark_name,
    sync_registry,
)
from opstui.store.status import DEGRADED, DOWN, UP

API = "/api/2.0/mlflow"
#: Most recent runs read per experiment by the first sync (no watermark yet).
RECENT_RUNS = 50
#: Runs per page of the incremental search, and at most this many runs newer
#: than the watermark per experiment and poll (the next poll goes on from
#: the advanced watermark).
RUN_PAGE = 250
RUNS_PER_POLL = 1000
#: The incremental search starts this far before the watermark: MLflow's
#: start time is the client's clock, so a run created a little after a newer
#: one may start a little before it. Runs read twice are upserted by key.
OVERLAP = 2.0
#: Unfinished runs re-read by id per request, and per experiment and poll.
RECHECK_BATCH = 100
RECHECK_MAX = 1000
#: Metrics and params kept per finished run: enough to read a run, not a dump.
KEEP_PER_RUN = 20
#: MLflow run status -> run store status.
RUN_STATUS = {
    "RUNNING": st.RUNNING,
    "SCHEDULED": st.QUEUED,
    "FINISHED": st.SUCCEEDED,
    "FAILED": st.FAILED,
    "KILLED": st.CANCELLED,
}

T = TypeVar("T")


class MlflowError(OpstuiError):
    """A call to MLflow failed; ``str()`` is one line naming the endpoint and the call.

    ``problem`` is the cause alone (what an endpoint's status shows);
    ``missing`` is True when MLflow itself answered that the thing does not
    exist: the server is fine, the experiment or model is not.
    """

    def __init__(
        self,
        ep: EndpointDef,
        what: str,
        problem: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
    ) -> None:
        self.endpoint = ep.name
        self.what = what
        self.problem = _one_line(mask(problem, ep))
        self.status = status
        self.error_code = error_code
        self.missing = error_code == "RESOURCE_DOES_NOT_EXIST"
        super().__init__(f"MLflow endpoint {ep.name} ({_safe_url(ep)}): {what}: {self.problem}")


# --- what MLflow returns ------------------------------------------------------


@dataclass(frozen=True)
class Experiment:
    id: str
    name: str
    lifecycle: str  # active or deleted


@dataclass(frozen=True)
class MlflowRun:
    run_id: str
    experiment_id: str
    experiment: str
    name: str | None
    status: str  # RUNNING, SCHEDULED, FINISHED, FAILED, KILLED
    user: str | None
    start_time: float | None  # seconds (MLflow sends milliseconds)
    end_time: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: str
    run_id: str | None
    status: str  # READY, PENDING_REGISTRATION, FAILED_REGISTRATION
    created_at: float | None


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    #: alias -> version
    aliases: dict[str, str]
    versions: tuple[ModelVersion, ...] = ()


@dataclass(frozen=True)
class MlflowSnapshot:
    """What one poll saw: recent runs of the experiments, models with versions and aliases.

    Only what was fetched is in it: an experiment that could not be read
    has no runs here, and ``sync_snapshot`` then leaves its runs alone.
    """

    endpoint: str
    at: float
    runs: tuple[MlflowRun, ...] = ()
    models: tuple[RegisteredModel, ...] = ()
    #: (experiment id, start time in seconds) up to which every run was read.
    watermarks: tuple[tuple[str, float], ...] = ()


# --- requests and their parsing, written once ------------------------------


@dataclass(frozen=True)
class _Op(Generic[T]):
    method: str
    path: str
    what: str  # "experiment churn-train", for messages
    parse: Callable[[dict[str, Any]], T]
    params: Mapping[str, str] | None = None
    body: Mapping[str, Any] | None = None


def _seconds(millis: Any) -> float | None:
    return float(millis) / 1000.0 if isinstance(millis, int | float) else None


def _experiment(doc: dict[str, Any]) -> Experiment:
    e = doc["experiment"]
    return Experiment(str(e["experiment_id"]), str(e["name"]), str(e.get("lifecycle_stage", "")))


def _run(item: dict[str, Any], experiment: str) -> MlflowRun:
    info, data = item["info"], item.get("data") or {}
    return MlflowRun(
        run_id=str(info.get("run_id") or info["run_uuid"]),
        experiment_id=str(info["experiment_id"]),
        experiment=experiment,
        name=info.get("run_name"),
        status=str(info["status"]),
        user=info.get("user_id"),
        start_time=_seconds(info.get("start_time")),
        end_time=_seconds(info.get("end_time")),
        metrics={str(m["key"]): float(m["value"]) for m in data.get("metrics") or []},
        params={str(p["key"]): str(p["value"]) for p in data.get("params") or []},
    )


def _version(v: dict[str, Any]) -> ModelVersion:
    return ModelVersion(
        model=str(v["name"]),
        version=str(v["version"]),
        run_id=v.get("run_id") or None,
        status=str(v.get("status", "READY")),
        created_at=_seconds(v.get("creation_timestamp")),
    )


def _registered_model(doc: dict[str, Any]) -> RegisteredModel:
    m = doc["registered_model"]
    aliases = {str(a["alias"]): str(a["version"]) for a in m.get("aliases") or []}
    return RegisteredModel(str(m["name"]), aliases)


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (-1, version)


def get_experiment(name: str) -> _Op[Experiment]:
    return _Op(
        "GET",
        "/experiments/get-by-name",
        f"experiment {name}",
        _experiment,
        params={"experiment_name": name},
    )


def search_runs(experiment: Experiment, max_results: int = RECENT_RUNS) -> _Op[list[MlflowRun]]:
    return _Op(
        "POST",
        "/runs/search",
        f"runs of experiment {experiment.name}",
        lambda doc: [_run(r, experiment.name) for r in doc.get("runs") or []],
        body={
            "experiment_ids": [experiment.id],
            "max_results": max_results,
            "order_by": ["attributes.start_time DESC"],
        },
    )


def _runs_page(doc: dict[str, Any], experiment: str) -> tuple[list[MlflowRun], str | None]:
    token = doc.get("next_page_token")
    return [_run(r, experiment) for r in doc.get("runs") or []], token if token else None


def search_runs_since(
    experiment: Experiment, start_ms: int, page_token: str | None, max_results: int | None = None
) -> _Op[tuple[list[MlflowRun], str | None]]:
    """One page of the runs started at or after ``start_ms``, oldest first."""
    body: dict[str, Any] = {
        "experiment_ids": [experiment.id],
        "filter": f"attributes.start_time >= {start_ms}",
        "max_results": max_results or RUN_PAGE,
        "order_by": ["attributes.start_time ASC"],
    }
    if page_token:
        body["page_token"] = page_token
    return _Op(
        "POST",
        "/runs/search",
        f"runs of experiment {experiment.name}",
        lambda doc: _runs_page(doc, experiment.name),
        body=body,
    )


def search_runs_by_id(experiment: Experiment, run_ids: Iterable[str]) -> _Op[list[MlflowRun]]:
    """The runs of ``experiment`` among ``run_ids`` (a deleted run is not among them)."""
    ids = sorted(set(run_ids))
    quoted = ", ".join("'" + i.replace("\\", "\\\\").replace("'", "\\'") + "'" for i in ids)
    return _Op(
        "POST",
        "/runs/search",
        f"unfinished runs of experiment {experiment.name}",
        lambda doc: [_run(r, experiment.name) for r in doc.get("runs") or []],
        body={
            "experiment_ids": [experiment.id],
            "filter": f"attributes.run_id IN ({quoted})",
            "max_results": max(len(ids), 1),
        },
    )


def get_registered_model(name: str) -> _Op[RegisteredModel]:
    return _Op(
        "GET",
        "/registered-models/get",
        f"registered model {name}",
        _registered_model,
        params={"name": name},
    )


def search_versions(name: str) -> _Op[tuple[ModelVersion, ...]]:
    # One page: MLflow's default page of model versions is 10,000.
    quoted = name.replace("'", "\\'")
    return _Op(
        "GET",
        "/model-versions/search",
        f"versions of {name}",
        lambda doc: tuple(
            sorted(
                (_version(v) for v in doc.get("model_versions") or []),
                key=lambda v: _version_key(v.version),
            )
        ),
        params={"filter": f"name='{quoted}'"},
    )


def set_alias_op(name: str, alias: str, version: str) -> _Op[None]:
    return _Op(
        "POST",
        "/registered-models/alias",
        f"setting alias {alias} of {name} to version {version}",
        lambda doc: None,
        body={"name": name, "alias": alias, "version": version},
    )


# --- transport --------------------------------------------------------------


def _safe_url(ep: EndpointDef) -> str:
    """The endpoint URL without user info or query (either may hold a secret)."""
    url = httpx.URL(ep.url)
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{url.path.rstrip('/')}"


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def request_hops(ep: EndpointDef, op: _Op[Any]) -> Redirects:
    """The request for ``op`` and its redirects: configured headers, and secret
    ones read from the environment now (sent to the endpoint's origin only)."""
    try:
        secrets = secret_headers(ep)
    except MissingSecret as exc:
        raise MlflowError(ep, op.what, str(exc)) from None
    url = httpx.URL(_url(ep, op.path), params=op.params)
    return Redirects(url, ep.headers, secrets, op.method)


def _url(ep: EndpointDef, path: str) -> str:
    return ep.url.rstrip("/") + API + path


def _answer(ep: EndpointDef, op: _Op[T], response: httpx.Response, body: bytes) -> T:
    """Read MLflow's answer to ``op``; anything but the expected JSON raises ``MlflowError``."""
    code = response.status_code
    auth = auth_problem(ep, code)
    if auth:
        raise MlflowError(ep, op.what, auth, status=code)
    try:
        doc = json.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError):
        doc = None
    if 300 <= code < 400:
        # A redirect not followed (no Location, 300, 304): not MLflow's answer.
        raise MlflowError(
            ep, op.what, f"HTTP {code} {response.reason_phrase} (not followed)".strip(), status=code
        )
    if not isinstance(doc, dict):
        html = looks_html(response.headers.get("content-type", ""), body)
        got = "an HTML page" if html else "something else"
        # An HTML 404 is the usual sign of a URL that is not MLflow's root.
        hint = "; is url the MLflow server's root?" if code == 404 else ""
        raise MlflowError(ep, op.what, f"expected MLflow's JSON, got {got} (HTTP {code}){hint}")
    if code >= 400:
        error_code = doc.get("error_code")
        if isinstance(error_code, str):
            message = str(doc.get("message") or "")
            raise MlflowError(
                ep, op.what, f"{error_code}: {message}", status=code, error_code=error_code
            )
        raise MlflowError(ep, op.what, f"HTTP {code} {response.reason_phrase}".strip(), status=code)
    try:
        return op.parse(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MlflowError(
            ep, op.what, f"unexpected answer from MLflow ({type(exc).__name__}: {exc})"
        ) from None


def _transport(ep: EndpointDef, what: str, exc: Exception) -> MlflowError:
    if isinstance(exc, RedirectRefused):
        return MlflowError(ep, what, str(exc))
    if isinstance(exc, TooLarge):
        return MlflowError(ep, what, f"response larger than {ep.max_body:,} bytes (max_body)")
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return MlflowError(ep, what, f"no answer within {ep.timeout:g}s")
    if isinstance(exc, httpx.ConnectError):
        return MlflowError(ep, what, connect_reason(exc))
    return MlflowError(ep, what, f"{type(exc).__name__}: {exc}")


class MlflowRest:
    """Synchronous client (actions: plan and move an alias)."""

    def __init__(self, ep: EndpointDef, client: httpx.Client | None = None) -> None:
        self.ep = ep
        self._own = client is None
        self.client = client or httpx.Client(verify=ep.verify_tls, timeout=ep.timeout)

    def __enter__(self) -> MlflowRest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own:
            self.client.close()

    def call(self, op: _Op[T]) -> T:
        hops = request_hops(self.ep, op)
        try:
            while True:
                with self.client.stream(
                    op.method,
                    hops.url,
                    json=op.body,
                    headers=hops.headers(),
                    timeout=self.ep.timeout,
                ) as response:
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        add_capped(body, chunk, self.ep.max_body)
                if not hops.follow(response.status_code, response.headers.get("location")):
                    break
        except (httpx.HTTPError, TooLarge, RedirectRefused) as exc:
            raise _transport(self.ep, op.what, exc) from None
        return _answer(self.ep, op, response, bytes(body))

    def experiment(self, name: str) -> Experiment:
        return self.call(get_experiment(name))

    def recent_runs(self, experiment: Experiment) -> list[MlflowRun]:
        return self.call(search_runs(experiment))

    def registered_model(self, name: str, *, versions: bool = False) -> RegisteredModel:
        model = self.call(get_registered_model(name))
        if versions:
            model = RegisteredModel(model.name, model.aliases, self.call(search_versions(name)))
        return model

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.call(set_alias_op(name, alias, version))


class AsyncMlflowRest:
    """The same calls on an ``httpx.AsyncClient`` (the poller's, shared)."""

    def __init__(self, ep: EndpointDef, client: httpx.AsyncClient) -> None:
        self.ep = ep
        self.client = client

    async def call(self, op: _Op[T]) -> T:
        hops = request_hops(self.ep, op)
        try:
            # The deadline (every hop included) also bounds a server that
            # drips bytes slowly, which httpx's per-read timeout alone would not.
            async with asyncio.timeout(self.ep.timeout):
                while True:
                    async with self.client.stream(
                        op.method,
                        hops.url,
                        json=op.body,
                        headers=hops.headers(),
                        timeout=self.ep.timeout,
                    ) as response:
                        body = bytearray()
                        async for chunk in response.aiter_bytes():
                            add_capped(body, chunk, self.ep.max_body)
                    if not hops.follow(response.status_code, response.headers.get("location")):
                        break
        except (httpx.HTTPError, TimeoutError, TooLarge, RedirectRefused) as exc:
            raise _transport(self.ep, op.what, exc) from None
        return _answer(self.ep, op, response, bytes(body))

    async def experiment(self, name: str) -> Experiment:
        return await self.call(get_experiment(name))

    async def recent_runs(self, experiment: Experiment) -> list[MlflowRun]:
        return await self.call(search_runs(experiment))

    async def runs_since(
        self,
        experiment: Experiment,
        since: float,
        *,
        newer_than: float | None = None,
        limit: int | None = None,
    ) -> tuple[list[MlflowRun], bool]:
        """Runs started at or after ``since`` (seconds), oldest first, following
        page tokens until ``limit`` runs started after ``newer_than`` (the
        watermark; ``since`` by default) are read.

        Returns the runs and whether the search was read to its end.
        """
        out: list[MlflowRun] = []
        token: str | None = None
        start_ms = round(since * 1000)
        limit = limit or RUNS_PER_POLL
        after = since if newer_than is None else newer_than
        newer = 0
        while True:
            page, token = await self.call(search_runs_since(experiment, start_ms, token))
            out += page
            newer += sum(1 for r in page if (r.start_time or 0.0) > after)
            if token is None or not page:
                return out, True
            if newer >= limit:
                return out, False

    async def runs_by_id(self, experiment: Experiment, run_ids: list[str]) -> list[MlflowRun]:
        out: list[MlflowRun] = []
        for i in range(0, len(run_ids), RECHECK_BATCH):
            batch = search_runs_by_id(experiment, run_ids[i : i + RECHECK_BATCH])
            found: list[MlflowRun] = await self.call(batch)
            out += found
        return out

    async def registered_model(self, name: str, *, versions: bool = False) -> RegisteredModel:
        model = await self.call(get_registered_model(name))
        if versions:
            found = await self.call(search_versions(name))
            model = RegisteredModel(model.name, model.aliases, found)
        return model

    async def set_alias(self, name: str, alias: str, version: str) -> None:
        await self.call(set_alias_op(name, alias, version))


# --- one poll -----------------------------------------------------------------


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


def _source(ep: EndpointDef) -> str:
    return f"endpoint/{ep.name}"


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


# --- into the store -------------------------------------------------------------


def run_key(run_id: str) -> str:
    return f"mlflow:{run_id}"


def environment_of(ep: EndpointDef, alias: str) -> str:
    """The environment an alias serves: ``aliases`` of the endpoint, else the alias itself."""
    return ep.aliases.get(alias, alias)


def _external_run(ep: EndpointDef, run: MlflowRun, at: float) -> ExternalRun | None:
    status = RUN_STATUS.get(run.status)
    if status is None:
        return None  # a status this opstui does not know: leave the run alone
    info: dict[str, Any] = {
        "endpoint": ep.name,
        "run_id": run.run_id,
        "run_name": run.name,
        "experiment": run.experiment,
        "experiment_id": run.experiment_id,
    }
    finished = status not in (st.RUNNING, st.QUEUED)
    if finished:
        # Metrics of a running run change every poll; stored once it ends.
        info["metrics"] = dict(sorted(run.metrics.items())[:KEEP_PER_RUN])
        info["params"] = dict(sorted(run.params.items())[:KEEP_PER_RUN])
    message = None
    if run.status in ("FAILED", "KILLED"):
        message = f"MLflow run {run.name or run.run_id} ended {run.status}"
    return ExternalRun(
        key=run_key(run.run_id),
        pipeline=f"mlflow/{run.experiment}",
        kind="mlops",
        status=status,
        actor=run.user or f"mlflow/{ep.name}",
        created_at=run.start_time or at,
        started_at=run.start_time if status != st.QUEUED else None,
        finished_at=(run.end_time or at) if finished else None,
        message=message,
        params={"mlflow": info},
        # Without a sync the heartbeat goes stale: the run reads unknown while
        # this endpoint is down or unpolled, lost if MLflow answers without it
        # (store/status.py), instead of running forever.
        heartbeat_timeout=3 * ep.interval,
    )


def sync_snapshot(store: Store, ep: EndpointDef, snap: MlflowSnapshot) -> None:
    """Write what ``snap`` saw into the store; running it twice adds nothing.

    MLflow runs become runs of pipeline ``mlflow/<experiment>``; registered
    versions become model versions; each alias's version becomes the
    deployment of that model in ``environment_of(alias)`` when it differs
    from what the store last recorded there.
    """
    runs = [r for r in (_external_run(ep, run, snap.at) for run in snap.runs) if r is not None]
    metrics = {r.run_id: r.metrics for r in snap.runs if r.status == "FINISHED"}
    versions = [
        ExternalVersion(
            model=v.model,
            version=v.version,
            run_key=run_key(v.run_id) if v.run_id else None,
            metrics=metrics.get(v.run_id or "", {}),
            created_at=v.created_at or snap.at,
        )
        for m in snap.models
        for v in m.versions
    ]
    aliases = [
        AliasState(m.name, alias, environment_of(ep, alias), version, ep.name)
        for m in snap.models
        for alias, version in sorted(m.aliases.items())
        # An alias on a version that is not there is reported, not deployed.
        if version in {v.version for v in m.versions}
    ]
    by = f"{local_actor()}:{os.getpid()}"
    marks = [
        RunWatermark(_source(ep), run_watermark_name(experiment_id), through, by)
        for experiment_id, through in snap.watermarks
    ]
    sync_registry(
        store, runs=runs, versions=versions, aliases=aliases, watermarks=marks, now=snap.at
    )
