"""Notices that keep up with what they announce, and stay off what is being read.

``run 168 started`` stayed on screen after run 168 had succeeded: a notice
about a run now lasts until the run ends (at most ``HOLD`` seconds) and is
then replaced by how it ended (``retry fraud-model: run 168 succeeded in
41s``, ``... failed at validate``). ``ending`` finds those ends in a
snapshot; the app swaps the notices (no Textual here).

Where notices appear is the app's CSS: at the bottom right, unless what has
the focus (the log being searched, a table low on the screen) is in the
lower half; then at the top right (``reading_low``).
"""

from __future__ import annotations

from collections.abc import Mapping

from opstui.store import status as st
from opstui.timeutil import human_duration
from opstui.views.snapshot import Snapshot

#: The longest a "started" notice waits for its run to end.
HOLD = 600.0


def ending(announced: Mapping[int, str], snap: Snapshot) -> list[tuple[int, str, bool]]:
    """(run id, the line that says how it ended, whether it went wrong) for each
    announced run the snapshot shows finished. ``announced``: run id -> what
    started it (``retry fraud-model``)."""
    latest = {p.latest.id: p.latest for p in snap.pipelines if p.latest is not None}
    out = []
    for run_id, what in announced.items():
        run = latest.get(run_id)
        if run is None or run.status in st.ACTIVE:
            continue
        line = f"{what}: run {run_id} {run.status}"
        failed = run.failed_stage
        if failed is not None:
            line += f" at {failed.name}"
        else:
            line += f" in {human_duration(run.duration(snap.at))}"
        out.append((run_id, line, run.status != st.SUCCEEDED))
    return out


def reading_low(top: int, height: int, screen_height: int) -> bool:
    """Whether a widget from row ``top``, ``height`` rows tall, sits mostly in
    the lower half of the screen (notices then go to the top)."""
    return top + height / 2 > screen_height / 2
