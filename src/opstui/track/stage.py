"""A stage in progress (``ActiveStage``): its log lines, and its end as
succeeded, cancelled (Ctrl-C) or failed with the exception's message and
its traceback in the stage's log; the exception is re-raised, never
swallowed.
"""

from __future__ import annotations

import traceback
import types
from typing import TYPE_CHECKING

from opstui.errors import UsageError
from opstui.store import runs as store_runs
from opstui.store import status as st
from opstui.store.failures import FATAL_WRITE_ERRORS

if TYPE_CHECKING:
    from opstui.track.run import ActiveRun


class ActiveStage:
    """A stage in progress. Use it as a context manager."""

    def __init__(self, run: ActiveRun, name: str) -> None:
        self.run = run
        self.name = name
        self.id = 0

    def __enter__(self) -> ActiveStage:
        if self.run._stage is not None:
            raise UsageError(
                f"stage {self.name!r} started inside stage {self.run._stage.name!r}; "
                "stages of a run do not nest"
            )
        self.run.flush()
        self.id = store_runs.start_stage(self.run.store, self.run.id, self.name)
        self.run._stage = self
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        if isinstance(exc, FATAL_WRITE_ERRORS):
            self.run._stage = None
            return  # nothing more can be recorded: the error says so
        try:
            if exc is not None and not isinstance(exc, KeyboardInterrupt):
                for chunk in traceback.format_exception(exc_type, exc, tb):
                    for line in chunk.rstrip("\n").splitlines():
                        self.log(line, stream="stderr")
            self.run.flush()
        finally:
            self.run._stage = None
        if exc_type is None:
            store_runs.finish_stage(self.run.store, self.run.id, self.name, status=st.SUCCEEDED)
        elif issubclass(exc_type, KeyboardInterrupt):
            store_runs.finish_stage(
                self.run.store, self.run.id, self.name, status=st.CANCELLED, message="interrupted"
            )
        else:
            store_runs.finish_stage(
                self.run.store, self.run.id, self.name, status=st.FAILED, message=describe(exc)
            )

    def log(self, line: str, *, stream: str = "log") -> None:
        """Append one line (or several, split on newlines) to this stage's log."""
        now = self.run.store.clock()
        for part in str(line).splitlines() or [""]:
            self.run._buffer_log((self.id, now, stream, part))


def describe(exc: BaseException | None) -> str:
    if exc is None:
        return "failed"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
