"""How ``opstui status`` prints: a rich table, or a stable JSON document.

The JSON shape is a public interface (cron jobs and scripts parse it); it is
documented in the README and versioned by its ``schema`` field. Add fields
freely; never rename or remove one without bumping ``schema``.
"""

from __future__ import annotations

from typing import Any

from opstui.store import status as st
from opstui.store.rows import PipelineRow, RunRow
from opstui.timeutil import human_age, human_duration, iso

JSON_SCHEMA = 1
#: Cells of the STAGES column, as the console's: a DAG of 200 tasks keeps its
#: first fault in view instead of pushing every other column off the line.
STAGE_CELLS = 12

_STYLE = {
    st.FAILED: "bold red",
    st.TIMED_OUT: "bold red",
    st.LOST: "bold magenta",
    st.UNKNOWN: "cyan",
    st.RUNNING: "bold yellow",
    st.QUEUED: "yellow",
    st.SUCCEEDED: "green",
    st.CANCELLED: "dim",
}


def _run_json(run: RunRow, now: float) -> dict[str, Any]:
    failed = run.failed_stage
    return {
        "id": run.id,
        "status": run.status,
        "recorded_status": run.recorded_status,
        "trigger": run.trigger,
        "actor": run.actor,
        "attempt": run.attempt,
        "parent_run_id": run.parent_run_id,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "heartbeat_at": iso(run.heartbeat_at),
        "age_seconds": round(now - (run.finished_at or run.started_at or run.created_at), 3),
        "duration_seconds": _round(run.duration(now)),
        "failed_stage": failed.name if failed else None,
        "message": run.message,
        # Why ``status`` is ``unknown`` (the source is down), else null.
        "status_reason": run.status_reason,
        # The host that recorded it (a team store holds runs of many).
        "host": run.host,
        # A run mirrored from another system: which one, and its name and id
        # there; null for runs recorded by opstui.
        "external": None
        if run.source is None
        else {
            "source": run.source_kind or run.trigger,
            "endpoint": run.source,
            "name": run.source_name,
            "id": run.source_id,
        },
        "stages": [
            {
                "name": s.name,
                "status": s.status,
                "exit_code": s.exit_code,
                "attempt": s.attempt,
                "started_at": iso(s.started_at),
                "finished_at": iso(s.finished_at),
                "duration_seconds": _round(s.duration(now)),
                "message": s.message,
            }
            for s in run.stages
        ],
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def status_json(pipelines: list[PipelineRow], now: float, store: str) -> dict[str, Any]:
    return {
        "schema": JSON_SCHEMA,
        "generated_at": iso(now),
        "store": store,
        "failing": sum(1 for p in pipelines if p.failing),
        # Latest runs whose source cannot be reached: not failing, not known.
        "unknown": sum(1 for p in pipelines if p.status == st.UNKNOWN),
        "pipelines": [
            {
                "name": p.name,
                "kind": p.kind,
                "status": p.status,
                # Its source no longer has it (a DAG deleted in Airflow): since
                # when and why; null while it does. Such a pipeline is not
                # counted in "failing".
                "removed": None
                if p.removed_note is None
                else {"at": iso(p.removed_at), "note": p.removed_note},
                "latest_run": _run_json(p.latest, now) if p.latest else None,
            }
            for p in pipelines
        ],
    }


def render_status(pipelines: list[PipelineRow], now: float, store: str) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from opstui.cli.output import cell

    console = Console()
    if not pipelines:
        console.print(
            cell(
                f"No pipelines in {store} yet. Record a run (opstui record start ...) "
                "or load the sample history: opstui import sample_runs/"
            ),
            soft_wrap=True,
        )
        return
    table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
    table.add_column("PIPELINE", no_wrap=True, overflow="ellipsis", max_width=24)
    table.add_column("STAGES", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("FAILED AT", no_wrap=True, overflow="ellipsis", max_width=12)
    table.add_column("AGE", justify="right", no_wrap=True)
    table.add_column("TOOK", justify="right", no_wrap=True)
    table.add_column("TRIGGER", no_wrap=True, overflow="ellipsis", max_width=10)
    for p in pipelines:
        run = p.latest
        name = cell(p.name)
        if p.removed_label:
            name.append(f" ({p.removed_label})", style="dim")
        if run is None:
            table.add_row(name, "", Text("never run", style="dim"), "", "", "", "")
            continue
        failed = run.failed_stage
        ended = run.finished_at or run.started_at or run.created_at
        # Names, statuses and triggers are data: cells escape them (and keep
        # Rich from reading "[bold]" in a name as markup).
        table.add_row(
            name,
            run.stage_bar(width=STAGE_CELLS),
            cell(run.status.replace("_", " "), _STYLE.get(run.status, "")),
            cell(failed.name if failed else ""),
            human_age(now - ended),
            human_duration(run.duration(now)),
            cell(run.trigger),
        )
    console.print(table)
    failing = [p for p in pipelines if p.failing]
    if failing:
        console.print(
            Text(f"{len(failing)} of {len(pipelines)} pipelines failing", style="bold red")
        )
    for p in pipelines:
        if p.removed_note is not None:
            since = f" since {iso(p.removed_at)}" if p.removed_at is not None else ""
            console.print(cell(f"{p.name}: {p.removed_note}{since}", "dim"))
        elif p.latest is not None and p.latest.status_reason:
            # The table's STATUS cell says "unknown"; the line says why.
            console.print(cell(f"{p.name}: unknown ({p.latest.status_reason})", "cyan"))
