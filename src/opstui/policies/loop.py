"""``opstui policies run``: the evaluator headless, one step every ``every`` seconds.

The same loop runs in the console (a worker) and in the demo's world. Each
step reads the board as the console does (``SnapshotReader``) and lets the
``Evaluator`` decide; each decision is said once, and a failing step is
said once until it changes (a store that is down every 15 s would drown
the lines that matter), then retried with a fresh connection.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path

from opstui.config import Config
from opstui.errors import OpstuiError
from opstui.policies.decide import Decision
from opstui.policies.evaluate import Evaluator, Step
from opstui.store import Store
from opstui.store.location import StoreLocation
from opstui.terminal import visible
from opstui.views.snapshot import SnapshotReader


def line_of(d: Decision) -> str:
    """A decision as one printable line: ``policy retry-flaky: acted: run 164 ...``."""
    return visible(f"policy {d.policy}: {d.verdict.replace('_', ' ')}: {d.why}", newline=" ")


def run_loop(
    where: str | Path | StoreLocation,
    config: Config,
    *,
    stop: threading.Event,
    every: float = 15.0,
    say: Callable[[str], None],
    holder: str | None = None,
    once: bool = False,
) -> None:
    evaluator = Evaluator(config, holder=holder, every=every)
    reader = SnapshotReader(where, config)
    told: str | None = None
    waiting_for: str | None = None
    store: Store | None = None
    try:
        while True:
            try:
                if store is None:
                    store = Store(where, create=False)
                step: Step = evaluator.step(store, reader.snapshot())
                if step.held_by is not None and step.held_by != waiting_for:
                    say(f"policies: {visible(step.held_by)} evaluates them now; standing by")
                waiting_for = step.held_by
                for d in step.decisions:
                    say(line_of(d))
                told = None
            except Exception as exc:  # the loop outlives any one step's failure
                why = (
                    exc.message if isinstance(exc, OpstuiError) else f"{type(exc).__name__}: {exc}"
                )
                line = " ".join(f"policies: {why}".split())
                if line != told:
                    say(visible(line))
                told = line
                if store is not None:
                    store.close()
                    store = None
            if once or stop.wait(every):
                return
    finally:
        reader.close()
        if store is not None:
            _release(store, evaluator.holder)
            store.close()


def _release(store: Store, holder: str) -> None:
    """Give the lease back on the way out, so another evaluator takes over at once."""
    from opstui.store.endpoints import release_leases

    with contextlib.suppress(Exception):  # leaving anyway: the lease expires by itself
        release_leases(store, holder=holder)
