"""Where opstui keeps its own files on this machine (not the run store).

``state_dir``: ``$XDG_STATE_HOME/opstui`` (``~/.local/state/opstui``):
the detached runner's log for a PostgreSQL store, and what each console
last showed of each store (``tui/seen.py``). A leaf: the standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path("~/.local/state").expanduser())
    return Path(state) / "opstui"
