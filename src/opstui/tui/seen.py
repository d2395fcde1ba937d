"""When this console last showed each store: so the next one can say what
changed since (the dashboard's headline).

One small JSON file, ``seen.json`` in opstui's state directory
(``paths.state_dir``), mapping a store's shown name to a time. Read before
the app's event loop starts and written after it ends (``OpstuiApp.run``),
never on it. It is a convenience: a file that cannot be read or written is
ignored, and a value that is not a time is dropped.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path

from opstui.paths import state_dir

#: At most this many stores remembered (the oldest forgotten first).
KEEP = 50


def _file() -> Path:
    return state_dir() / "seen.json"


def _read() -> dict[str, float]:
    try:
        data = json.loads(_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in data.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def last_seen(store: str) -> float | None:
    return _read().get(store)


def remember(store: str, at: float) -> None:
    """Record ``at`` for ``store``, atomically (a rename), never raising."""
    seen = _read()
    seen[store] = at
    kept = dict(sorted(seen.items(), key=lambda kv: kv[1])[-KEEP:])
    path = _file()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".seen.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(kept), encoding="utf-8")
        tmp.replace(path)
