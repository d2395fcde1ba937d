"""The demo's web-api has been serving for an hour before the demo starts.

Burn alerts are judged only where history covers their long window (a fresh
endpoint's minutes say nothing of an hour), so a demo that starts with an
empty store could not page for an hour. The demo seeds its runs from the
bundled history; this seeds the endpoint: polls of healthy traffic, every
interval, over the hour and five minutes before now (or since the newest
poll a previous demo stored), written as the poller would have written them.
The live service's counters start at zero after them: a counter reset,
which the rate arithmetic counts as Prometheus does.
"""

from __future__ import annotations

from pathlib import Path

from opstui.analysis.rates import WINDOWS
from opstui.config import Config
from opstui.demo.service import RATE
from opstui.store import Store
from opstui.store.endpoints import Observation, record_observations
from opstui.store.metrics import points

ENDPOINT = "web-api"
#: How far back the seeded polls reach: the 1h page's window and its 5m.
SPAN = WINDOWS["1h"] + WINDOWS["5m"]


def backfill_endpoint(store_path: Path | str, config: Config, now: float) -> int:
    """Write the missing part of web-api's last ``SPAN`` seconds; how many polls."""
    ep = config.endpoints.get(ENDPOINT)
    if ep is None or ep.kind != "prometheus":
        return 0
    with Store(store_path) as store:
        stored = points(store, ep.source, "requests_total", start=now - SPAN, end=now)
        start = stored[-1][0] + ep.interval if stored else now - SPAN
        count = int((now - start) // ep.interval)
        observations = [
            Observation(
                ENDPOINT,
                ep.kind,
                ep.url,
                start + i * ep.interval,
                "up",
                None,
                1.0,
                (
                    ("up", {}, 1.0),
                    ("requests_total", {}, RATE * ep.interval * i),
                    ("errors_total", {}, 0.0),
                ),
            )
            for i in range(count)
        ]
        record_observations(store, observations, holder="demo-backfill")
    return count
