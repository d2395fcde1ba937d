"""The console's background jobs: which panels each one feeds, and how its failure reads.

Every blocking call of the console runs on a worker thread, one group per
job. A job that raises never ends the session: the app's one
``Worker.StateChanged`` handler turns the exception into a one-line
notification (``drift check of fraud failed: ValueError: ...``) and marks
the panels the job feeds stale with the same line, until the job succeeds
again. No Textual here, so the wording is tested without an app.
"""

from __future__ import annotations

from typing import NamedTuple

from opstui.errors import OpstuiError
from opstui.tui.render import safe
from opstui.views.snapshot import PANELS

#: Worker groups, one per job.
REFRESH = "refresh"  # the active screen's store read (dashboard, log, model, endpoint)
DRIFT = "drift"  # the background drift pass
POLLER = "poller"  # starting the endpoint poller's thread (and that thread's death)
ACTION = "action"  # planning, auditing and starting an operator action
NOTIFY = "notify"  # judging opstui's alerts into the store, sending them to Alertmanager
POLICY = "policy"  # evaluating the automation policies (and acting through the action path)

#: Dashboard panels whose data each job feeds. An action feeds none: its
#: failure is told, and the runs it wrote show on the next read.
FEEDS: dict[str, tuple[str, ...]] = {
    REFRESH: PANELS,
    DRIFT: ("models",),
    POLLER: ("endpoints",),
    ACTION: (),
    NOTIFY: (),
    POLICY: (),
}

#: Longest failure line: a toast at 80 columns shows about three lines of it,
#: and a panel's border cuts it shorter still.
LINE_MAX = 160


class Failure(NamedTuple):
    """Why a job failed, as shown, and the dashboard panels it leaves stale."""

    line: str
    panels: tuple[str, ...]


class JobFailed(Exception):
    """Raised by a worker to name the part of its job that failed (``drift check of fraud``)."""

    def __init__(self, what: str, cause: BaseException) -> None:
        super().__init__(f"{what}: {cause!r}")
        self.what = what
        self.cause = cause


def failure_line(what: str, error: BaseException | None) -> str:
    """One line, escaped for the terminal: ``drift check failed: ValueError: bad input``.

    An ``OpstuiError`` already names the thing, the cause and the fix, so it
    is shown as it is (``fraud-model has never run; nothing to retry``).
    """
    if isinstance(error, JobFailed):
        what, error = error.what, error.cause
    if error is None:
        text = f"{what} stopped without an error"
    elif isinstance(error, OpstuiError):
        text = str(error)
    else:
        detail = str(error)
        text = f"{what} failed: {type(error).__name__}" + (f": {detail}" if detail else "")
    text = safe(text)
    return text if len(text) <= LINE_MAX else text[: LINE_MAX - 1] + "…"
