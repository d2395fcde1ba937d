"""What moves in the demo, started together and stopped together.

Threads of the demo's own process: the HTTP service, the endpoint poller
(the console's own ``PollerThread``), serving traffic, the drift checks, the
alert judge (``opstui poll``'s) and the simulator. Pipeline runs are child
processes: ``python -m opstui.runner`` in a session of its own (the path
every action takes, so a run started from the console survives an SSH
drop). The demo does not let them outlive it: ``stop()`` asks every run of
the demo's store still in flight on this host to cancel (SIGTERM: the
runner stops its stage and records the run cancelled), and waits for them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable

from opstui.config import Config
from opstui.demo.layout import Layout
from opstui.demo.service import Service
from opstui.demo.simulator import Simulator
from opstui.demo.traffic import Traffic
from opstui.errors import OpstuiError
from opstui.sources.background import PollerThread
from opstui.store import Store, history
from opstui.store import models as store_models
from opstui.store import runs as store_runs
from opstui.store.dashboard import process_gone
from opstui.store.db import host_name

#: Seconds a queued run may take to be claimed by its runner at shutdown.
QUEUED_GRACE = 5.0
#: Demo seconds between drift checks (divided by --speed, at least 3 s); the
#: first one comes after DRIFT_FIRST seconds, once the console has drawn.
DRIFT_EVERY = 30.0
DRIFT_FIRST = 5.0
#: Demo seconds between alert judgements (divided by --speed, at least 1 s).
ALERTS_EVERY = 5.0
#: Demo seconds between evaluations of the policies (divided by --speed, at least 1 s).
POLICIES_EVERY = 5.0


class DriftChecks(threading.Thread):
    """Every model with serving data, checked as its batches arrive (as the console does)."""

    def __init__(self, layout: Layout, config: Config, *, every: float) -> None:
        super().__init__(name="opstui-demo-drift", daemon=True)
        self.layout = layout
        self.config = config
        self.every = every
        self.stopping = threading.Event()
        self.checks = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            self._checks()
        except Exception as exc:  # the store cannot be opened: said at the end
            self.error = f"{type(exc).__name__}: {exc}"[:300]

    def _checks(self) -> None:
        # scikit-learn and scipy load in this thread, off the start path.
        from opstui.drift.check import compute_drift

        with Store(self.layout.store) as store:
            # The first check comes soon (the tour starts with drift to see),
            # the rest every `every` seconds.
            wait = min(DRIFT_FIRST, self.every)
            while not self.stopping.wait(wait):
                wait = self.every
                for model in store_models.model_names(store):
                    try:
                        compute_drift(store, model, config=self.config)
                        self.checks += 1
                    except OpstuiError:
                        continue  # no reference or no serving data yet: nothing to check
                    except Exception as exc:  # said at the end; the next pass tries again
                        self.error = f"{type(exc).__name__}: {exc}"[:300]

    def stop(self) -> None:
        self.stopping.set()


class Loop(threading.Thread):
    """One of the headless loops of ``opstui poll`` and ``opstui policies run``
    on a thread of the world (the demo's console is built not to poll, so the
    world does it for it): a line starting with ``prefix`` is the loop's own
    failure, kept for the end (the next step tries again); the rest is echoed."""

    def __init__(
        self, name: str, prefix: str, *, echo: Callable[[str], None] | None,
        loop: Callable[[threading.Event, Callable[[str], None]], None],
    ) -> None:  # fmt: skip
        super().__init__(name=f"opstui-demo-{name}", daemon=True)
        self.prefix = prefix
        self.echo = echo
        self.loop = loop
        self.stopping = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        self.loop(self.stopping, self._say)

    def _say(self, line: str) -> None:
        if line.startswith(self.prefix):
            self.error = line[:300]
        elif self.echo is not None:
            self.echo(line)

    def stop(self) -> None:
        self.stopping.set()


def alerts(layout: Layout, config: Config, *, every: float,
           echo: Callable[[str], None] | None) -> Loop:  # fmt: skip
    """opstui's alerts judged as ``opstui poll`` does (``notify.send.judge_loop``)."""

    def loop(stop: threading.Event, say: Callable[[str], None]) -> None:
        from opstui.notify.send import judge_loop

        judge_loop(layout.store, config, by="opstui-demo", stop=stop, every=every, say=say)

    return Loop("alerts", "alerts: ", echo=echo, loop=loop)


def policies(layout: Layout, config: Config, *, every: float,
             echo: Callable[[str], None] | None) -> Loop:  # fmt: skip
    """The demo's policies evaluated as ``opstui policies run`` does
    (``policies.loop.run_loop``); what they decide shows in the console (P, the events)."""

    def loop(stop: threading.Event, say: Callable[[str], None]) -> None:
        from opstui.policies.loop import run_loop

        run_loop(layout.store, config, stop=stop, every=every, say=say,
                 holder="opstui-demo:policies")  # fmt: skip

    return Loop("policies", "policies: ", echo=echo, loop=loop)


class World:
    def __init__(
        self,
        layout: Layout,
        config: Config,
        service: Service,
        *,
        speed: float = 1.0,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.layout = layout
        self.config = config
        self.service = service
        self.poller = PollerThread(layout.store, list(config.endpoints.values()))
        self.traffic = Traffic(layout, speed=speed)
        self.drift = DriftChecks(layout, config, every=max(3.0, DRIFT_EVERY / speed))
        self.alerts = alerts(layout, config, every=max(1.0, ALERTS_EVERY / speed), echo=echo)
        self.policies = policies(layout, config, every=max(1.0, POLICIES_EVERY / speed), echo=echo)
        self.simulator = Simulator(layout, config, speed=speed, echo=echo)
        self.started = False

    def start(self) -> None:
        from opstui.demo.backfill import backfill_endpoint

        self.started = True
        self.service.start()
        # Before the poller: its first poll must come after the seeded ones.
        backfill_endpoint(self.layout.store, self.config, time.time())
        self.poller.start()
        self.traffic.start()
        self.drift.start()
        self.alerts.start()
        self.policies.start()
        self.simulator.start()

    def problems(self) -> list[str]:
        """The last error of each part (a part keeps going after one)."""
        parts = {"simulator": self.simulator.error, "traffic": self.traffic.error,
                 "drift": self.drift.error, "poller": self.poller.error,
                 "alerts": self.alerts.error, "policies": self.policies.error}  # fmt: skip
        return [f"{name}: {error}" for name, error in parts.items() if error]

    def stop(self, *, timeout: float = 20.0) -> list[int]:
        """Stop everything; return the runs that had to be cancelled."""
        # No new runs first; then the runs in flight (their monitor stage may
        # still read the service); then the readers and the service.
        self.simulator.stop()
        self.policies.stop()  # a policy starts runs too
        self.traffic.stop()
        self.drift.stop()
        self.alerts.stop()
        _join(self.simulator, timeout)
        _join(self.policies, timeout)
        cancelled = stop_runs(self.layout, timeout=timeout) if self.started else []
        self.poller.stop()
        _join(self.traffic, timeout)
        _join(self.drift, timeout)  # a drift check in progress ends first (about a second)
        _join(self.alerts, timeout)
        self.service.stop()
        return cancelled


def _join(thread: threading.Thread, timeout: float) -> None:
    if thread.ident is not None:  # started (start() may have failed halfway)
        thread.join(timeout)


def _in_flight(store: Store) -> tuple[list[tuple[int, int]], list[int]]:
    """Runs of this host running (run id, runner pid), and the ids of queued runs."""
    running, queued = [], []
    for run_id, status, host, pid in history.runs_in_flight(store):
        if status == "queued":
            queued.append(run_id)
        elif host == host_name() and pid is not None and not process_gone(host, pid):
            running.append((run_id, pid))
    return running, queued


def stop_runs(layout: Layout, *, timeout: float) -> list[int]:
    """Cancel the demo's runs in flight on this host and wait for them (bounded).

    A queued run's runner is starting: it is signalled once it has claimed
    the run (a few hundred ms); one that never claims it (its runner died)
    is not waited for past ``QUEUED_GRACE``.
    """
    if not isinstance(layout.store, str) and not layout.store.exists():
        return []
    signalled: set[int] = set()
    cancelled: list[int] = []
    begin = time.monotonic()
    with Store(layout.store) as store:
        while time.monotonic() - begin < timeout:
            running, queued = _in_flight(store)
            if not running and (not queued or time.monotonic() - begin > QUEUED_GRACE):
                break
            for run_id, pid in running:
                if pid not in signalled and pid != os.getpid():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGTERM)
                    signalled.add(pid)
                    cancelled.append(run_id)
            time.sleep(0.2)
        else:  # a runner that would not stop: its stage dies with it (PDEATHSIG)
            for _, pid in _in_flight(store)[0]:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        # A runner that died before it could record the cancel (signalled as it
        # started, or killed above) leaves its run "running" with a dead pid;
        # readers would show it lost. The demo stopped it: say so.
        for run_id, status, host, runner in history.runs_in_flight(store):
            gone = runner is None or process_gone(host, runner)
            if status == "running" and host == host_name() and gone:
                store_runs.finish_run(
                    store, run_id, status="cancelled", message="stopped with the demo"
                )
                if run_id not in cancelled:
                    cancelled.append(run_id)
    return cancelled
