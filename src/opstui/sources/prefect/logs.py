"""A task's log, or a flow run's own, fetched from Prefect when an operator opens it (never stored).

``POST /logs/filter`` with ``{"logs": {"flow_run_id": {"any_": [ID]},
"task_run_id": {"any_": [...]}}, "sort": "TIMESTAMP_ASC"}``, paged by
``limit`` (Prefect's largest, 200) and ``offset`` up to ``MAX_LINES``; a
flow run's own lines are those of no task run (``"is_null_": true``). Each
record (``timestamp``, ``level``, a number as in Python's logging, and
``message``) becomes one ``(time, level name, text)`` per line of its
message, so a traceback reads as lines.

The store knows a stage by its task's name, not a task run id: the flow
run's task runs are read (``POST /task_runs/filter``) and grouped by name as
``api.stages`` does (``transform-715`` is ``transform``); a stage's log is
that of the task runs of the flow run attempt its ``attempt`` says (the
latest one when none matches), several when the task ran several times in it.

Prefect records logs from events, in batches a second or two after they
are written: a log read just after its task ended may still miss its last
lines (``SETTLE``). Text is returned as Prefect sent it: whoever shows it
escapes it (``terminal.visible``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from opstui.config.endpoints import EndpointDef
from opstui.sources.prefect import api
from opstui.sources.prefect.rest import AsyncPrefectRest, PrefectError
from opstui.sources.prefect.retry import call_once, flow_run
from opstui.sources.records import seconds

#: Lines read at most for one log (the viewer keeps fewer).
MAX_LINES = 20_000
#: Prefect's largest ``limit`` (``PREFECT_SERVER_API_DEFAULT_LIMIT``, 200 by default).
PAGE = 200
#: Seconds after a task ended by which Prefect has its last log lines (its
#: client sends them every 2 s, the server writes them a moment later).
SETTLE = 30.0
#: Python's logging levels by number; another number reads ``level N``.
LEVELS = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "critical"}

LogEntry = tuple[float | None, str, str]  # time, stream (the level), text


def level_name(level: Any) -> str:
    if isinstance(level, int) and not isinstance(level, bool):
        return LEVELS.get(level, f"level {level}")
    return "log"


def entries(doc: Any) -> list[LogEntry]:
    """The lines of one page of ``POST /logs/filter``'s answer (records that
    do not read are left out)."""
    out: list[LogEntry] = []
    for item in doc if isinstance(doc, list) else []:
        if not isinstance(item, Mapping):
            continue
        message = item.get("message")
        if not isinstance(message, str):
            continue
        try:
            when = seconds(item.get("timestamp"))
        except ValueError:
            when = None
        level = level_name(item.get("level"))
        out += [(when, level, line) for line in re.split(r"\r?\n", message)]
    return out


def chosen(task_runs: list[api.TaskRun], task: str, attempt: int | None) -> list[api.TaskRun]:
    """The task runs of ``task`` that make its stage of ``attempt``: those of one
    flow run attempt (as ``api.stages`` counts a stage's attempt), the latest
    when ``attempt`` is None or no attempt matches; [] when the task never ran."""
    groups: dict[int, list[api.TaskRun]] = {}
    for tr in task_runs:
        if tr.task == task:
            groups.setdefault(max(1, tr.flow_run_run_count), []).append(tr)
    if not groups:
        return []
    for flow_attempt in sorted(groups, reverse=True):
        trs = groups[flow_attempt]
        if attempt == flow_attempt + max(0, max(tr.run_count for tr in trs) - 1):
            return trs
    return groups[max(groups)]


async def task_runs(rest: AsyncPrefectRest, flow_run_id: str) -> list[api.TaskRun]:
    """The flow run's task runs, of every attempt (what the poller reads for it)."""
    out: list[api.TaskRun] = []
    offset = 0
    while True:
        body = {
            "flow_runs": {"id": {"any_": [flow_run_id]}},
            "sort": "EXPECTED_START_TIME_ASC",
            "limit": PAGE,
            "offset": offset,
        }
        doc = await rest.call("POST", "/task_runs/filter", "task runs", body=body)
        try:
            read, skipped = api.parse_task_runs(doc)
        except ValueError as exc:
            raise PrefectError(rest.ep, "task runs", f"unexpected answer ({exc})") from None
        out += read
        offset += PAGE
        if len(read) + len(skipped) < PAGE:
            return out


async def _lines(rest: AsyncPrefectRest, what: str, where: dict[str, Any]) -> list[LogEntry]:
    out: list[LogEntry] = []
    seen: set[str] = set()
    offset = 0
    while len(out) < MAX_LINES:
        body = {"logs": where, "sort": "TIMESTAMP_ASC", "limit": PAGE, "offset": offset}
        doc = await rest.call("POST", "/logs/filter", what, body=body)
        if not isinstance(doc, list):
            raise PrefectError(rest.ep, what, "unexpected answer (the answer is not a list)")
        # Sorted by time alone: a page may begin with a line the last one ended
        # with (two at the same microsecond); it is shown once.
        fresh = []
        for item in doc:
            key = item.get("id") if isinstance(item, Mapping) else None
            if isinstance(key, str):
                if key in seen:
                    continue
                seen.add(key)
            fresh.append(item)
        out += entries(fresh)
        offset += PAGE
        if len(doc) < PAGE:
            break
    return out[:MAX_LINES]


async def log(
    rest: AsyncPrefectRest, flow_run_id: str, task: str | None = None, attempt: int | None = None
) -> list[LogEntry]:
    """The log of the stage ``task`` (its task runs of ``attempt``) of the flow run,
    or with no ``task`` the flow run's own lines (of no task run)."""
    what = f"log of {task}" if task else "log of the flow run"
    try:
        uuid.UUID(flow_run_id)
    except ValueError:
        raise PrefectError(
            rest.ep, what, f"flow run id {flow_run_id[:80]!r} is not a UUID"
        ) from None
    where: dict[str, Any] = {"flow_run_id": {"any_": [flow_run_id]}}
    if task is None:
        where["task_run_id"] = {"is_null_": True}
        lines = await _lines(rest, what, where)
        if not lines:  # not begun yet, or gone (a 404 says so)
            await flow_run(rest, flow_run_id)
        return lines
    found = chosen(await task_runs(rest, flow_run_id), task, attempt)
    if not found:
        # The flow run gone (a 404 says so), or it never ran this task.
        await flow_run(rest, flow_run_id)
        raise PrefectError(rest.ep, what, f"flow run {flow_run_id} has no task run of {task}")
    where["task_run_id"] = {"any_": [tr.id for tr in found]}
    return await _lines(rest, what, where)


def fetch_log(
    ep: EndpointDef, flow_run_id: str, task: str | None = None, attempt: int | None = None
) -> list[LogEntry]:
    """``log`` from synchronous code (the console's worker thread)."""
    return call_once(ep, lambda rest: log(rest, flow_run_id, task, attempt))
