"""What Airflow 3's REST API (v2) answers, read into opstui's terms.

Pure functions of the JSON Airflow sends, no IO: the DAGs, their tasks in
topological order, DAG runs, task instances, and how each Airflow state
reads as a run or stage status of the store (the table the README shows).

Every field is read as the server may send it wrong: a record missing a
field, or with one of the wrong type, is skipped and named (``Skipped``),
never a crash of the poll; the rest is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opstui.sources.records import Skipped, Stage, seconds
from opstui.sources.records import named as _name
from opstui.sources.records import text as _text
from opstui.store import status as st

#: DAG run state -> run status. ``None``: a state this opstui does not know.
RUN_STATE: Mapping[str, str] = {
    "queued": st.QUEUED,
    "running": st.RUNNING,
    "success": st.SUCCEEDED,
    "failed": st.FAILED,
}

#: Task instance state (None: not scheduled yet) -> (stage status, note shown with it).
TASK_STATE: Mapping[str | None, tuple[str, str | None]] = {
    None: (st.PENDING, None),
    "scheduled": (st.PENDING, "scheduled"),
    "queued": (st.PENDING, "queued"),
    "running": (st.RUNNING, None),
    "restarting": (st.RUNNING, "restarting"),
    "deferred": (st.RUNNING, "deferred (waiting on a trigger)"),
    "up_for_retry": (st.RUNNING, "up for retry"),
    "up_for_reschedule": (st.RUNNING, "up for reschedule (a sensor waiting)"),
    "success": (st.SUCCEEDED, None),
    "failed": (st.FAILED, None),
    # Not this task's failure: it never ran because one upstream failed.
    "upstream_failed": (st.SKIPPED, "upstream failed"),
    "skipped": (st.SKIPPED, None),
    "removed": (st.SKIPPED, "removed from the DAG"),
}

#: Stage statuses from the worst to the best, for a mapped task's instances.
_WORST_FIRST = (st.FAILED, st.RUNNING, st.PENDING, st.SKIPPED, st.SUCCEEDED)


@dataclass(frozen=True)
class AirflowDag:
    dag_id: str
    tags: tuple[str, ...] = ()
    is_paused: bool = False
    #: Airflow keeps a DAG whose file is gone as stale: its runs stay readable.
    is_stale: bool = False
    #: Its task ids in topological order (filled from ``/dags/ID/tasks``).
    tasks: tuple[str, ...] = ()

    def kind(self, default: str | None) -> str | None:
        """mlops or devops: the DAG's tags say it, else the endpoint's default."""
        for tag in self.tags:
            if tag.lower() in ("mlops", "devops"):
                return tag.lower()
        return default


@dataclass(frozen=True)
class AirflowRun:
    dag_id: str
    run_id: str
    run_type: str  # manual, scheduled, backfill, asset_triggered
    state: str
    queued_at: float | None
    start: float | None
    end: float | None
    logical_date: float | None
    conf: Mapping[str, Any] = field(default_factory=dict)
    triggered_by: str | None = None
    user: str | None = None
    note: str | None = None

    @property
    def status(self) -> str | None:
        return RUN_STATE.get(self.state)


@dataclass(frozen=True)
class TaskInstance:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int  # -1: not mapped
    state: str | None
    try_number: int
    start: float | None
    end: float | None


def _records(doc: Any, key: str) -> list[Any]:
    if not isinstance(doc, Mapping) or not isinstance(doc.get(key), list):
        raise ValueError(f"the answer has no list {key!r}")
    return list(doc[key])


def parse_dags(doc: Any) -> tuple[list[AirflowDag], list[Skipped], int | None]:
    """``GET /dags``: the DAGs, what was skipped, and ``total_entries``."""
    out, skipped = [], []
    for item in _records(doc, "dags"):
        try:
            if not isinstance(item, Mapping):
                raise ValueError("not an object")
            raw = item.get("tags")
            tags: list[Any] = raw if isinstance(raw, list) else []
            names = tuple(
                str(t.get("name")) if isinstance(t, Mapping) else str(t)
                for t in tags
                if isinstance(t, Mapping | str)
            )
            out.append(
                AirflowDag(
                    dag_id=str(_text(item, "dag_id")),
                    tags=names,
                    is_paused=bool(item.get("is_paused", False)),
                    is_stale=item.get("is_stale") is True,
                )
            )
        except (ValueError, TypeError, OverflowError) as exc:
            skipped.append(Skipped(f"a DAG ({_name(item, 'dag_id')})", str(exc)))
    return out, skipped, _total(doc)


def parse_tasks(doc: Any) -> list[str]:
    """``GET /dags/ID/tasks``: task ids in topological order (upstream first,
    ties in the order Airflow lists them)."""
    edges: dict[str, list[str]] = {}
    for item in _records(doc, "tasks"):
        if not isinstance(item, Mapping) or not isinstance(item.get("task_id"), str):
            continue
        down = item.get("downstream_task_ids")
        edges[item["task_id"]] = (
            [d for d in down if isinstance(d, str)] if isinstance(down, list) else []
        )
    return topological(edges)


def topological(edges: Mapping[str, Sequence[str]]) -> list[str]:
    """Kahn's order of ``task -> downstream tasks``; a cycle (Airflow refuses
    them, a hand-made answer may not) leaves its tasks at the end as listed."""
    order = list(edges)
    indegree = dict.fromkeys(order, 0)
    for down in edges.values():
        for d in down:
            if d in indegree:
                indegree[d] += 1
    ready = [t for t in order if indegree[t] == 0]
    out: list[str] = []
    while ready:
        task = ready.pop(0)
        out.append(task)
        for d in edges[task]:
            if d in indegree:
                indegree[d] -= 1
                if indegree[d] == 0:
                    ready.append(d)
    placed = set(out)
    return out + [t for t in order if t not in placed]


def parse_runs(doc: Any) -> tuple[list[AirflowRun], list[Skipped], int | None]:
    """``GET /dags/ID/dagRuns``: the runs, what was skipped, and ``total_entries``."""
    out, skipped = [], []
    for item in _records(doc, "dag_runs"):
        try:
            if not isinstance(item, Mapping):
                raise ValueError("not an object")
            conf = item.get("conf")
            out.append(
                AirflowRun(
                    dag_id=str(_text(item, "dag_id")),
                    run_id=str(_text(item, "dag_run_id")),
                    run_type=_text(item, "run_type", required=False) or "manual",
                    state=str(_text(item, "state")),
                    queued_at=seconds(item.get("queued_at")),
                    start=seconds(item.get("start_date")),
                    end=seconds(item.get("end_date")),
                    logical_date=seconds(item.get("logical_date")),
                    conf=dict(conf) if isinstance(conf, Mapping) else {},
                    triggered_by=_text(item, "triggered_by", required=False),
                    user=_text(item, "triggering_user_name", required=False),
                    note=_text(item, "note", required=False),
                )
            )
        except (ValueError, TypeError, OverflowError) as exc:
            what = f"DAG run {_name(item, 'dag_run_id')} of {_name(item, 'dag_id')}"
            skipped.append(Skipped(what, str(exc)))
    return out, skipped, _total(doc)


def parse_task_instances(doc: Any) -> tuple[list[TaskInstance], list[Skipped], int | None]:
    """``taskInstances`` (one run's, or the batch endpoint's)."""
    out, skipped = [], []
    for item in _records(doc, "task_instances"):
        try:
            if not isinstance(item, Mapping):
                raise ValueError("not an object")
            index = item.get("map_index", -1)
            tries = item.get("try_number", 0)
            if not isinstance(index, int) or not isinstance(tries, int) or tries < 0:
                raise ValueError("map_index or try_number is not a number")
            state = item.get("state")
            if state is not None and not isinstance(state, str):
                raise ValueError("state is not text")
            out.append(
                TaskInstance(
                    dag_id=str(_text(item, "dag_id")),
                    run_id=str(_text(item, "dag_run_id")),
                    task_id=str(_text(item, "task_id")),
                    map_index=index,
                    state=state,
                    try_number=tries,
                    start=seconds(item.get("start_date")),
                    end=seconds(item.get("end_date")),
                )
            )
        except (ValueError, TypeError, OverflowError) as exc:
            what = f"task {_name(item, 'task_id')} of run {_name(item, 'dag_run_id')}"
            skipped.append(Skipped(what, str(exc)))
    return out, skipped, _total(doc)


def stages(order: Sequence[str], instances: Iterable[TaskInstance]) -> list[Stage]:
    """A run's task instances as stages, in the DAG's order.

    A mapped task (``map_index >= 0``) is one stage: the worst status of its
    instances, the most tries, ``xN`` in its message. Tasks Airflow has not
    made instances for yet are pending; instances of tasks the DAG no longer
    lists come after, in the order met.
    """
    by_task: dict[str, list[TaskInstance]] = {}
    for ti in instances:
        by_task.setdefault(ti.task_id, []).append(ti)
    names = list(order) + [t for t in by_task if t not in set(order)]
    out = []
    for position, name in enumerate(names):
        tis = by_task.get(name, [])
        if not tis:
            out.append(Stage(name, position, st.PENDING, 1, None, None, None))
            continue
        mapped = sum(1 for ti in tis if ti.map_index >= 0)
        states = [_stage_state(ti.state) for ti in tis]
        status = min((s for s, _ in states), key=_WORST_FIRST.index)
        notes = sorted({note for s, note in states if note and s == status})
        message = "; ".join(notes) or None
        if mapped:
            counted = f"x{mapped}"
            failed = sum(1 for s, _ in states if s == st.FAILED)
            if failed:
                counted += f", {failed} failed"
            message = f"{counted}: {message}" if message else counted
        starts = [ti.start for ti in tis if ti.start is not None]
        ends = [ti.end for ti in tis if ti.end is not None]
        done = status in (st.SUCCEEDED, st.FAILED, st.SKIPPED)
        out.append(
            Stage(
                name=name,
                position=position,
                status=status,
                attempt=max(1, *(ti.try_number for ti in tis)),
                started_at=min(starts) if starts else None,
                finished_at=max(ends) if ends and done else None,
                message=message,
                mapped=mapped,
            )
        )
    return out


def _stage_state(state: str | None) -> tuple[str, str | None]:
    # A state a newer Airflow added: shown as pending, and named.
    return TASK_STATE.get(state, (st.PENDING, f"Airflow state {state!r}"))


def _total(doc: Any) -> int | None:
    total = doc.get("total_entries") if isinstance(doc, Mapping) else None
    return total if isinstance(total, int) else None
