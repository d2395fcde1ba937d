"""Many writers, one store: no "database is locked" reaches anyone, nothing is lost."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from opstui.store import Store
from opstui.store.dashboard import Dashboard

WRITER = textwrap.dedent(
    """
    import os, sys
    from opstui.track import Tracker
    store, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    # A small buffer forces many small transactions: the worst case for locking.
    tracker = Tracker(store, max_buffer=50, flush_interval=0.01, heartbeat_interval=0.05)
    with tracker.run(name, stages=["a", "b"]) as run:
        for stage in ("a", "b"):
            with run.stage(stage) as s:
                for i in range(n):
                    s.log(f"{name} {stage} {i}")
                    run.log_metric("i", i, step=i)
    """
)


def test_concurrent_writers_lose_nothing(store_where: Path | str) -> None:
    Store(store_where).close()
    n = 1500
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(store_where), f"w{i}", str(n)],
            stderr=subprocess.PIPE,
            text=True,
            # Each writer on a host of its own, as CI runners and training
            # boxes writing into one team store are.
            env={**os.environ, "OPSTUI_HOST": f"host-{i}"},
        )
        for i in range(4)
    ]
    # A reader polls the dashboard the whole time, as the TUI would.
    reader = Store(store_where)
    dash = Dashboard(reader)
    reads = 0
    while any(w.poll() is None for w in writers):
        dash.read()
        reads += 1
    errors = [w.stderr.read() for w in writers if w.stderr]
    assert [w.returncode for w in writers] == [0, 0, 0, 0], errors
    assert not any("locked" in e for e in errors)
    assert reads > 0
    rows = {p.name: p for p in dash.read()}
    assert sorted(rows) == ["w0", "w1", "w2", "w3"]
    assert all(p.status == "succeeded" for p in rows.values())
    (logs,) = reader.conn.execute("SELECT count(*) FROM log_lines").fetchone()
    (samples,) = reader.conn.execute("SELECT count(*) FROM metric_samples").fetchone()
    assert logs == 4 * 2 * n
    assert samples == 4 * 2 * n
    hosts = reader.conn.execute("SELECT DISTINCT host FROM runs ORDER BY host").fetchall()
    assert [h[0] for h in hosts] == ["host-0", "host-1", "host-2", "host-3"]
    reader.close()
