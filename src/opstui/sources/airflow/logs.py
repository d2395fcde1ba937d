"""A task's log, fetched from Airflow when an operator opens it (never stored).

``GET .../taskInstances/TASK/logs/TRY`` answers structured records
(``event``, ``timestamp``, ``level``, an exception's ``error_detail``);
each becomes a line ``HH:MM:SS level event``; Airflow's ``::group::``
markers become a heading. Pages are followed by ``continuation_token`` up
to ``MAX_LINES``. Text is returned as Airflow sent it: whoever shows it
escapes it (``terminal.visible``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from opstui.config.endpoints import EndpointDef
from opstui.sources.airflow.clear import call_once
from opstui.sources.airflow.rest import AsyncAirflowRest
from opstui.sources.records import seconds

#: Lines read at most for one task log (the viewer keeps fewer).
MAX_LINES = 20_000

LogEntry = tuple[float | None, str, str]  # time, stream (the level), text


def entries(doc: Any) -> list[LogEntry]:
    """The lines of one page of Airflow's answer."""
    content = doc.get("content") if isinstance(doc, Mapping) else None
    out: list[LogEntry] = []
    for item in content if isinstance(content, list) else []:
        if isinstance(item, str):
            out += [(None, "log", line) for line in item.splitlines()]
            continue
        if not isinstance(item, Mapping):
            continue
        event = str(item.get("event", ""))
        if event == "::endgroup::":
            continue
        if event.startswith("::group::"):
            out.append((None, "log", f"── {event.removeprefix('::group::')} ──"))
            continue
        try:
            when = seconds(item.get("timestamp"))
        except ValueError:
            when = None
        level = str(item.get("level") or "log")
        out.append((when, level, event))
        for detail in item.get("error_detail") or []:
            if isinstance(detail, Mapping):
                out.append((when, level, f"{detail.get('exc_type')}: {detail.get('exc_value')}"))
    return out


async def task_log(
    rest: AsyncAirflowRest, dag_id: str, run_id: str, task_id: str, try_number: int
) -> list[LogEntry]:
    path = (
        f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
        f"{quote(task_id, safe='')}/logs/{max(1, try_number)}"
    )
    out: list[LogEntry] = []
    token: str | None = None
    while len(out) < MAX_LINES:
        params = {"full_content": "false", **({"token": token} if token else {})}
        doc = await rest.call("GET", path, f"log of {task_id}", params=params)
        out += entries(doc)
        token = doc.get("continuation_token") if isinstance(doc, Mapping) else None
        if not token or not doc.get("content"):
            break
    return out[:MAX_LINES]


def fetch_task_log(
    ep: EndpointDef, dag_id: str, run_id: str, task_id: str, try_number: int
) -> list[LogEntry]:
    """``task_log`` from synchronous code (the console's worker thread)."""
    return call_once(ep, lambda rest: task_log(rest, dag_id, run_id, task_id, try_number))
