"""What Prefect 3's REST API answers, read into opstui's terms.

Pure functions of the JSON Prefect sends, no IO: flows, deployments, flow
runs, task runs, and how each Prefect state reads as a run or stage status
of the store (the tables the README shows).

Prefect knows no task list before a flow runs (a flow is Python, not a
DAG): a run's stages are the tasks it has run so far, in the order they
first started. A retried flow run keeps its id (its ``run_count`` goes up)
and gets new task runs (``flow_run_run_count`` is the flow run's attempt
they belong to); the failed ones stay. So a task's stage is its latest task
run: the one of the latest attempt, and of those the one that started last.

Every field is read as the server may send it wrong: a record missing a
field, or with one of the wrong type, is skipped and named (``Skipped``),
never a crash of the poll; the rest is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opstui.sources.records import Skipped, Stage, seconds
from opstui.sources.records import named as _name
from opstui.sources.records import text as _text
from opstui.store import status as st

#: Flow run state type -> (run status, note shown with it).
RUN_STATE: Mapping[str, tuple[str, str | None]] = {
    "SCHEDULED": (st.QUEUED, None),
    "PENDING": (st.QUEUED, None),
    "RUNNING": (st.RUNNING, None),
    "COMPLETED": (st.SUCCEEDED, None),
    "FAILED": (st.FAILED, None),
    "CRASHED": (st.FAILED, "crashed"),
    "CANCELLING": (st.RUNNING, "cancelling"),
    "CANCELLED": (st.CANCELLED, None),
    "PAUSED": (st.RUNNING, "paused"),
}

#: Task run state type -> (stage status, note shown with it).
TASK_STATE: Mapping[str, tuple[str, str | None]] = {
    **RUN_STATE,
    "SCHEDULED": (st.PENDING, None),
    "PENDING": (st.PENDING, None),
}

#: States Prefect tells apart by name within a type: (type, name) -> (run
#: status, stage status, note). Late: scheduled, its start time passed,
#: nothing picked it up. AwaitingRetry: failed, to be retried by Prefect.
NAMED_STATE: Mapping[tuple[str, str], tuple[str, str, str]] = {
    ("SCHEDULED", "Late"): (st.QUEUED, st.PENDING, "late"),
    ("SCHEDULED", "AwaitingRetry"): (st.RUNNING, st.RUNNING, "awaiting retry"),
}

#: Flow run states Prefect does not leave by itself (what a retry starts from).
TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")

#: Stage statuses from the worst to the best, for a task run several times in one attempt.
_WORST_FIRST = (st.FAILED, st.CANCELLED, st.RUNNING, st.PENDING, st.SKIPPED, st.SUCCEEDED)


@dataclass(frozen=True)
class Deployment:
    id: str
    name: str
    flow_id: str
    tags: tuple[str, ...] = ()

    def kind(self, default: str | None) -> str | None:
        """mlops or devops: the deployment's tags say it, else the endpoint's default."""
        return _kind(self.tags, default)


@dataclass(frozen=True)
class FlowRun:
    id: str
    name: str
    flow_id: str
    deployment_id: str | None
    state_type: str
    state_name: str
    state_message: str | None
    run_count: int
    created: float | None
    expected_start: float | None
    start: float | None
    end: float | None
    auto_scheduled: bool = False
    #: ``created_by``'s type (SCHEDULE, AUTOMATION, ...) and what Prefect shows for it.
    created_by_type: str | None = None
    created_by: str | None = None
    tags: tuple[str, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def _mapped(self) -> tuple[str, str | None] | None:
        """(run status, note) of its state; None for a type this opstui does not know."""
        named = NAMED_STATE.get((self.state_type, self.state_name))
        if named is not None:
            return named[0], named[2]
        return RUN_STATE.get(self.state_type)

    @property
    def status(self) -> str | None:
        """The run's status; None for a state type this opstui does not know."""
        mapped = self._mapped
        return mapped[0] if mapped else None

    @property
    def note(self) -> str | None:
        mapped = self._mapped
        return mapped[1] if mapped else None

    @property
    def trigger(self) -> str:
        """schedule (Prefect's scheduler made it), deployment (a run of a
        deployment made by hand, the API or an automation), or manual (a
        flow called outside any deployment)."""
        if self.auto_scheduled or (self.created_by_type or "").upper() == "SCHEDULE":
            return "schedule"
        return "deployment" if self.deployment_id else "manual"

    def kind(self, default: str | None) -> str | None:
        """mlops or devops: the run's tags say it (a deployment's are copied to
        its runs), else the endpoint's default."""
        return _kind(self.tags, default)


def _kind(tags: tuple[str, ...], default: str | None) -> str | None:
    for tag in tags:
        if tag.lower() in ("mlops", "devops"):
            return tag.lower()
    return default


@dataclass(frozen=True)
class TaskRun:
    id: str
    flow_run_id: str
    #: The task's name as its runs are grouped: ``name`` less Prefect's
    #: suffix (the first characters of ``dynamic_key``), else ``task_key``
    #: less its code hash.
    task: str
    task_key: str
    state_type: str | None
    state_name: str | None
    state_message: str | None
    run_count: int
    flow_run_run_count: int
    expected_start: float | None
    start: float | None
    end: float | None


def _count(doc: Mapping[str, Any], key: str) -> int:
    value = doc.get(key, 0)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{key} is not a count")
    return value


def _list(doc: Any) -> list[Any]:
    if not isinstance(doc, list):
        raise ValueError("the answer is not a list")
    return doc


def _state(item: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(type, name, message): the top-level ``state_type``/``state_name``, else ``state``'s."""
    state = item.get("state")
    state = state if isinstance(state, Mapping) else {}
    kind = item.get("state_type") or state.get("type")
    name = item.get("state_name") or state.get("name")
    message = state.get("message")
    if kind is not None and not isinstance(kind, str):
        raise ValueError("state_type is not text")
    if name is not None and not isinstance(name, str):
        raise ValueError("state_name is not text")
    return kind, name, message if isinstance(message, str) and message else None


def parse_names(doc: Any) -> dict[str, str]:
    """``POST /flows/filter``: flow id -> name (records that do not read are left out)."""
    out = {}
    for item in _list(doc):
        if isinstance(item, Mapping):
            fid, name = item.get("id"), item.get("name")
            if isinstance(fid, str) and isinstance(name, str) and name:
                out[fid] = name
    return out


def parse_deployments(doc: Any) -> list[Deployment]:
    """``POST /deployments/filter``: the deployments (records that do not read are left out)."""
    out = []
    for item in _list(doc):
        if not isinstance(item, Mapping):
            continue
        values = [item.get("id"), item.get("name"), item.get("flow_id")]
        if all(isinstance(v, str) and v for v in values):
            tags = item.get("tags")
            named = tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else ()
            out.append(Deployment(str(values[0]), str(values[1]), str(values[2]), named))
    return out


def parse_flow_runs(doc: Any) -> tuple[list[FlowRun], list[Skipped]]:
    """``POST /flow_runs/filter`` (or one ``GET /flow_runs/ID`` in a list)."""
    out, skipped = [], []
    for item in _list(doc):
        try:
            if not isinstance(item, Mapping):
                raise ValueError("not an object")
            kind, name, message = _state(item)
            if kind is None:
                raise ValueError("it has no state")
            by = item.get("created_by")
            by = by if isinstance(by, Mapping) else {}
            tags = item.get("tags")
            params = item.get("parameters")
            out.append(
                FlowRun(
                    id=str(_text(item, "id")),
                    name=_text(item, "name", required=False) or str(item["id"]),
                    flow_id=str(_text(item, "flow_id")),
                    deployment_id=_text(item, "deployment_id", required=False),
                    state_type=kind,
                    state_name=name or kind.capitalize(),
                    state_message=message,
                    run_count=_count(item, "run_count"),
                    created=seconds(item.get("created")),
                    expected_start=seconds(item.get("expected_start_time")),
                    start=seconds(item.get("start_time")),
                    end=seconds(item.get("end_time")),
                    auto_scheduled=item.get("auto_scheduled") is True,
                    created_by_type=by.get("type") if isinstance(by.get("type"), str) else None,
                    created_by=by.get("display_value")
                    if isinstance(by.get("display_value"), str) and by.get("display_value")
                    else None,
                    tags=tuple(t for t in tags if isinstance(t, str))
                    if isinstance(tags, list)
                    else (),
                    parameters=dict(params) if isinstance(params, Mapping) else {},
                )
            )
        except (ValueError, TypeError, OverflowError) as exc:
            skipped.append(Skipped(f"flow run {_name(item, 'id')}", str(exc)))
    return out, skipped


def task_name(item: Mapping[str, Any]) -> str:
    """``transform`` for the task run named ``transform-e3d`` whose ``dynamic_key``
    starts ``e3d``; a name Prefect did not suffix (``task_run_name=``) is
    replaced by ``task_key`` less its code hash."""
    name, dynamic, key = item.get("name"), item.get("dynamic_key"), item.get("task_key")
    if isinstance(name, str) and isinstance(dynamic, str) and dynamic:
        suffix = f"-{dynamic[:3]}"
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    if isinstance(key, str) and key:
        return key.rsplit("-", 1)[0] or key
    if isinstance(name, str) and name:
        return name
    raise ValueError("it has no name or task_key")


def parse_task_runs(doc: Any) -> tuple[list[TaskRun], list[Skipped]]:
    """``POST /task_runs/filter``."""
    out, skipped = [], []
    for item in _list(doc):
        try:
            if not isinstance(item, Mapping):
                raise ValueError("not an object")
            kind, name, message = _state(item)
            out.append(
                TaskRun(
                    id=str(_text(item, "id")),
                    flow_run_id=str(_text(item, "flow_run_id")),
                    task=task_name(item),
                    task_key=_text(item, "task_key", required=False) or "",
                    state_type=kind,
                    state_name=name,
                    state_message=message,
                    run_count=_count(item, "run_count"),
                    flow_run_run_count=_count(item, "flow_run_run_count"),
                    expected_start=seconds(item.get("expected_start_time")),
                    start=seconds(item.get("start_time")),
                    end=seconds(item.get("end_time")),
                )
            )
        except (ValueError, TypeError, OverflowError) as exc:
            skipped.append(Skipped(f"task run {_name(item, 'name')}", str(exc)))
    return out, skipped


def stage_state(kind: str | None, name: str | None) -> tuple[str, str | None]:
    """A task run's (stage status, note)."""
    named = NAMED_STATE.get((kind or "", name or ""))
    if named is not None:
        return named[1], named[2]
    if kind is None:
        return st.PENDING, None
    # A state a newer Prefect added: shown as pending, and named.
    return TASK_STATE.get(kind, (st.PENDING, f"Prefect state {kind!r}"))


def stages(run: FlowRun, task_runs: Iterable[TaskRun]) -> list[Stage]:
    """A flow run's task runs as stages, in the order each task first started.

    Of a task's runs only those of the latest flow run attempt that ran it
    count (a task called several times in it, as in a loop or a map, is one
    stage: the worst status, ``xN`` in its message). Its attempt is the flow
    run's attempt it ran in plus its own retries in it (``run_count - 1``).
    While the flow run is in a later attempt that has not run the task yet,
    the stage is pending again, its message saying what the earlier attempt did.
    """
    by_task: dict[str, list[TaskRun]] = {}
    for tr in task_runs:
        by_task.setdefault(tr.task, []).append(tr)

    def first(trs: list[TaskRun]) -> float:
        times = [t for tr in trs for t in (tr.start, tr.expected_start) if t is not None]
        return min(times) if times else float("inf")

    names = sorted(by_task, key=lambda n: first(by_task[n]))  # stable: ties as met
    current = max(1, run.run_count)
    active = run.status in st.ACTIVE
    out = []
    for position, name in enumerate(names):
        latest = max(max(1, tr.flow_run_run_count) for tr in by_task[name])
        trs = [tr for tr in by_task[name] if max(1, tr.flow_run_run_count) == latest]
        states = [stage_state(tr.state_type, tr.state_name) for tr in trs]
        status = min((s for s, _ in states), key=_rank)
        notes = sorted({note for s, note in states if note and s == status})
        if status == st.FAILED:
            said = next(
                (tr.state_message for tr, (s, _) in zip(trs, states, strict=True)
                 if s == st.FAILED and tr.state_message),
                None,
            )  # fmt: skip
            notes += [said] if said else []
        message = "; ".join(notes) or None
        if len(trs) > 1:
            counted = f"x{len(trs)}"
            failed = sum(1 for s, _ in states if s == st.FAILED)
            counted += f", {failed} failed" if failed else ""
            message = f"{counted}: {message}" if message else counted
        attempt = latest + max(0, max(tr.run_count for tr in trs) - 1)
        starts = [tr.start for tr in trs if tr.start is not None]
        ends = [tr.end for tr in trs if tr.end is not None]
        done = status in st.FINISHED
        if active and latest < current:
            # The flow run's new attempt has not reached this task yet.
            out.append(
                Stage(name, position, st.PENDING, current, None, None,
                      f"attempt {latest}: {status}")
            )  # fmt: skip
            continue
        out.append(
            Stage(
                name=name,
                position=position,
                status=status,
                attempt=attempt,
                started_at=min(starts) if starts else None,
                finished_at=max(ends) if ends and done else None,
                message=message,
            )
        )
    return out


def _rank(status: str) -> int:
    return _WORST_FIRST.index(status) if status in _WORST_FIRST else len(_WORST_FIRST)
