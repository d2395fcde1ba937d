"""Typed, immutable rows returned by the read models.

Widgets and commands receive these, never cursors: a worker thread can build
them and hand them to the UI thread without sharing anything mutable.

They are ``NamedTuple``s rather than frozen dataclasses on purpose: a frozen
dataclass costs ~2.3 us to build against ~0.3 us for a tuple, and a full
dashboard read builds 1,200 stage rows (bench/dashboard_read.py measured the
difference at 1.4 ms of an 8 ms read).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from opstui.store import status as st


class StageRow(NamedTuple):
    """One stage of a run, as the dashboard shows it."""

    id: int
    name: str
    position: int
    status: str
    attempt: int
    exit_code: int | None
    started_at: float | None
    finished_at: float | None
    message: str | None
    reused_from_id: int | None

    def duration(self, now: float) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else now
        return max(0.0, end - self.started_at)


class RunRow(NamedTuple):
    """A run with its stages in pipeline order.

    ``status`` is what a reader should show (``lost`` derived from a stale
    heartbeat, ``unknown`` when the source of an external run is down);
    ``recorded_status`` is what the writer last recorded.
    """

    id: int
    pipeline: str
    kind: str | None
    status: str
    recorded_status: str
    trigger: str
    actor: str | None
    attempt: int
    parent_run_id: int | None
    key: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    message: str | None
    stages: tuple[StageRow, ...] = ()
    #: A run mirrored from another system (``trigger`` names it, e.g. mlflow):
    #: the endpoint it is read from, and the run's name and id there.
    source: str | None = None
    source_name: str | None = None
    source_id: str | None = None
    #: Why ``status`` is ``unknown`` ("source registry down since 14:03:07Z").
    status_reason: str | None = None
    #: The host that recorded the run (``OPSTUI_HOST``, else the machine's name).
    host: str | None = None
    #: The kind of system a mirrored run comes from (mlflow, airflow).
    source_kind: str | None = None

    @property
    def failed_stage(self) -> StageRow | None:
        """The first stage that failed, timed out or was lost."""
        for stage in self.stages:
            if stage.status in st.FAULTS:
                return stage
        return None

    @property
    def running_stage(self) -> StageRow | None:
        for stage in self.stages:
            if stage.status == st.RUNNING:
                return stage
        return None

    def duration(self, now: float) -> float | None:
        if self.started_at is None:
            return None
        if self.finished_at is not None:
            end = self.finished_at
        elif self.status == st.LOST and self.heartbeat_at is not None:
            end = self.heartbeat_at  # the last moment it was known alive
        else:
            end = now
        return max(0.0, end - self.started_at)

    def stage_window(self, width: int | None) -> tuple[bool, tuple[StageRow, ...], bool]:
        """The stages a bar of ``width`` cells shows, and whether some were left
        out before and after them (one ``…`` cell each). A DAG of 200 tasks
        in 12 cells keeps its first fault, else its running stage, else its
        last, in view."""
        stages = self.stages
        if width is None or len(stages) <= width:
            return False, stages, False
        focus = next(
            (i for i, s in enumerate(stages) if s.status in st.FAULTS or s.status == st.RUNNING),
            len(stages) - 1,
        )
        start = max(0, min(focus - width // 2, len(stages) - width + 1))
        shown = stages[start : start + width - 1]
        if start:
            shown = shown[1:]
        return bool(start), shown, start + len(shown) + (1 if start else 0) < len(stages)

    def stage_bar(self, width: int | None = None) -> str:
        """``✓✓✗○○○``: one glyph per stage, readable without colour; at most
        ``width`` cells (``stage_window``)."""
        before, shown, after = self.stage_window(width)
        bar = "".join(st.GLYPHS.get(s.status, "·") for s in shown)
        return ("…" if before else "") + bar + ("…" if after else "")


class PipelineRow(NamedTuple):
    """A pipeline with its latest run (``None`` if it never ran)."""

    id: int
    name: str
    kind: str | None
    stages: tuple[str, ...]
    latest: RunRow | None
    #: Since when and why the pipeline's source no longer has it (``deleted
    #: in Airflow``): kept with its runs, marked, never dropped.
    removed_at: float | None = None
    removed_note: str | None = None

    @property
    def status(self) -> str:
        return self.latest.status if self.latest else "never_run"

    @property
    def failing(self) -> bool:
        """Its latest run failed and its source still has it: a DAG deleted in
        Airflow keeps its history, shown and marked, but pages no one."""
        return self.status in st.FAULTS and self.removed_note is None

    @property
    def removed_label(self) -> str | None:
        """One word for the mark (``deleted``, ``stale``): the note's first."""
        return self.removed_note.split(" ", 1)[0] if self.removed_note else None


class LogLine(NamedTuple):
    id: int
    ts: float
    stream: str
    line: str


class Sample(NamedTuple):
    ts: float
    value: float
    run_id: int | None = None
    step: int | None = None


class Series(NamedTuple):
    id: int
    source: str
    name: str
    labels: dict[str, str]


class ModelVersionRow(NamedTuple):
    id: int
    model: str
    version: str
    status: str
    run_id: int | None
    data_hash: str | None
    code_version: str | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    gate: dict[str, Any] | None
    created_at: float


class DeploymentRow(NamedTuple):
    id: int
    environment: str
    target_kind: str
    target: str
    version: str
    status: str
    action: str
    actor: str | None
    deployed_at: float
    run_id: int | None
    replaces_id: int | None
    replaced_version: str | None
    message: str | None
