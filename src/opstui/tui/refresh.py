"""When the console reads the store: one read at a time, ticks skipped, asks remembered.

Reads share one SQLite connection and a screen's incremental state (a log's
last line id), so two never run at once. Two kinds of reason to read meet
here, and they are not equal:

- the interval's tick: if a read is in flight, the tick is skipped (a slow
  read skips ticks rather than piling them up behind it);
- a request (a screen opened, an action started, a drift pass stored its
  checks): if a read is in flight, one more read is owed, and runs once
  right after it, when that read's state has been applied. Any number of
  requests during one read still owe one read.

No Textual here: the rule is tested without an app.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class State(Enum):
    IDLE = "idle"
    READING = "reading"
    OWED = "reading, one more owed"


class RefreshGate:
    """The refresh worker's one state; the app asks it whether to start a read."""

    def __init__(self) -> None:
        self.state = State.IDLE
        #: The screen the read in flight is for (its failure is told on it).
        self.target: Any = None

    @property
    def busy(self) -> bool:
        return self.state is not State.IDLE

    def tick(self) -> bool:
        """The interval: start a read only if none is in flight."""
        if self.busy:
            return False
        self.state = State.READING
        return True

    def request(self) -> bool:
        """Asked for: start a read now, or owe one after the read in flight."""
        if self.busy:
            self.state = State.OWED
            return False
        self.state = State.READING
        return True

    def done(self) -> bool:
        """The read in flight reached the screen; True if one more is owed (start it now)."""
        owed = self.state is State.OWED
        self.state = State.IDLE
        return owed

    def failed(self) -> None:
        """The read in flight failed: nothing is owed (the next tick tries again, a
        failing read is not retried back to back)."""
        self.state = State.IDLE
