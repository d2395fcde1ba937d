"""Serving traffic of the fraud model: feature batches whose distribution drifts.

Every ``BATCH_SECONDS`` (divided by ``--speed``) the transactions the model
scored are recorded as a current feature batch. A fraud ring grows over a
minute and a half (``fraud.transactions`` at a rising level, from where
the bundled history left off to a plateau), so the model's inputs drift away
from the training features of the version in production; a retrain trains
on the ring's current level and, promoted, its training features become the
reference, and the drift clears. The level is kept in ``world/traffic.json``
(the training pipeline reads it, and a restarted demo continues from it).
"""

from __future__ import annotations

import threading
import time

import numpy as np

from opstui.demo import fraud
from opstui.demo.layout import Layout, read_json, write_json
from opstui.store import Store
from opstui.store import models as store_models

MODEL = "fraud"
BATCH_ROWS = 100
BATCH_SECONDS = 10.0
#: Where the ring starts (the dataset already drifts from level 0.6) and how
#: fast it grows, in level per demo second: the plateau comes after 90 s, so a
#: retrain in the tour trains on the ring at its height and the drift stays cleared.
START_LEVEL, PLATEAU, GROWTH = 0.6, 1.0, 0.4 / 90


def batch_seconds(speed: float) -> float:
    return max(1.0, BATCH_SECONDS / speed)


class Traffic(threading.Thread):
    def __init__(self, layout: Layout, *, speed: float = 1.0, seed: int = 11) -> None:
        super().__init__(name="opstui-demo-traffic", daemon=True)
        self.layout = layout
        self.speed = speed
        self.rng = np.random.default_rng(seed)
        self.stopping = threading.Event()
        self.batches = 0
        self.error: str | None = None
        saved = read_json(layout.traffic, {}).get("level")
        self.level = float(saved) if isinstance(saved, int | float) else START_LEVEL

    def run(self) -> None:
        try:
            self._batches()
        except Exception as exc:  # the store cannot be opened: said at the end
            self.error = f"{type(exc).__name__}: {exc}"[:300]

    def _batches(self) -> None:
        with Store(self.layout.store) as store:
            last = time.monotonic()
            while True:
                now = time.monotonic()
                self.level = min(PLATEAU, self.level + GROWTH * (now - last) * self.speed)
                last = now
                try:
                    self.record(store)
                except Exception as exc:  # said at the end; the next batch tries again
                    self.error = f"{type(exc).__name__}: {exc}"[:300]
                if self.stopping.wait(batch_seconds(self.speed)):
                    return

    def record(self, store: Store) -> None:
        columns = fraud.transactions(self.rng, BATCH_ROWS, self.level)
        with store.write() as tx:
            store_models.add_feature_batch(
                tx, MODEL, columns, kind="current", created_at=store.clock()
            )
        self.batches += 1
        write_json(self.layout.traffic, {"level": round(self.level, 4), "at": time.time()})

    def stop(self) -> None:
        self.stopping.set()
