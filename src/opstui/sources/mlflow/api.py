"""What MLflow returns and the calls opstui makes, written once.

Requests and their parsing are written once (``_Op``: what to send and how
to read the answer); ``MlflowRest`` (sync, for actions) and
``AsyncMlflowRest`` (for the poller) in ``opstui.sources.mlflow.rest`` only
move bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

#: Most recent runs read per experiment by the first sync (no watermark yet).
RECENT_RUNS = 50
#: Runs per page of the incremental search (``AsyncMlflowRest.runs_since``
#: reads at most ``RUNS_PER_POLL`` runs newer than the watermark).
RUN_PAGE = 250

T = TypeVar("T")


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


def _runs_in(experiment: Experiment) -> Callable[[dict[str, Any]], list[MlflowRun]]:
    """How a /runs/search answer reads: the runs of ``experiment``."""
    return lambda doc: [_run(r, experiment.name) for r in doc.get("runs") or []]


def search_runs(experiment: Experiment, max_results: int = RECENT_RUNS) -> _Op[list[MlflowRun]]:
    return _Op(
        "POST",
        "/runs/search",
        f"runs of experiment {experiment.name}",
        _runs_in(experiment),
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
        _runs_in(experiment),
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
