"""``Tracker``: the entry point of the tracking API (see the package's
docstring): opens the store and starts runs, or attaches to one a runner
started.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from opstui.errors import UsageError
from opstui.store import Store
from opstui.track.run import ActiveRun, AttachedRun


class Tracker:
    """Entry point: opens the store and starts runs."""

    def __init__(
        self,
        store: str | os.PathLike[str] | Store | None = None,
        *,
        actor: str | None = None,
        heartbeat_interval: float = 10.0,
        flush_interval: float = 0.5,
        max_buffer: int = 1000,
    ) -> None:
        if isinstance(store, Store):
            self.store = store
        else:
            from opstui.config import resolve_store_path

            self.store = Store(resolve_store_path(store))
        self.actor = actor
        self.heartbeat_interval = heartbeat_interval
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer

    def run(
        self,
        pipeline: str,
        *,
        stages: Sequence[str] | None = None,
        kind: str | None = None,
        trigger: str = "manual",
        parent: int | None = None,
        key: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> ActiveRun:
        """A run of ``pipeline``, started when its ``with`` block is entered."""
        return ActiveRun(
            self,
            pipeline,
            stages=stages,
            kind=kind,
            trigger=trigger,
            parent=parent,
            key=key,
            params=params,
        )

    def attach(self, run_id: int | None = None) -> AttachedRun:
        """Record into a run someone else started, e.g. the stage of a run that
        ``opstui run`` executes (it sets ``OPSTUI_RUN_ID`` for its stages).

        The run's lifecycle stays with its runner: an attached run only adds
        metrics, model versions, features and deployments to it.
        """
        if run_id is None:
            raw = os.environ.get("OPSTUI_RUN_ID")
            if not raw or not raw.isdigit():
                raise UsageError(
                    "no run to attach to: OPSTUI_RUN_ID is not set",
                    hint="run this under `opstui run`, or pass run_id",
                )
            run_id = int(raw)
        from opstui.store import history

        pipeline = history.get_run(self.store, run_id).pipeline
        return AttachedRun(self, pipeline, run_id)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
