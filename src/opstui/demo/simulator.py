"""The demo's CI and scheduler: pushes and schedules that start pipeline runs.

Runs go through the same path as an operator's (``runner.actions``: plan,
audit row, detached ``python -m opstui.runner``), so what the console shows
is what the runner really did. The schedule is in demo seconds, divided by
``--speed``. Each start of the demo opens with the three faults of the
tour, then lets things happen by chance (seeded):

- billing-worker's first run hits a flaky test (a retry passes);
- web-api's first release exhausts its database pool in production: its
  monitor fails, the endpoint's error rate climbs and burns the SLO until
  someone rolls back (no new release is pushed while production fails);
- fraud-model's first scheduled run gets a broken extract and fails its
  validation (a retrain, which takes a fresh extract, passes).
"""

from __future__ import annotations

import dataclasses
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from opstui.config import Config
from opstui.demo import devops
from opstui.demo.layout import Layout, raise_flag, read_json, write_json
from opstui.errors import OpstuiError
from opstui.runner.actions import perform, propose
from opstui.runner.planning import plan_run
from opstui.store import Store, history
from opstui.store import models as store_models
from opstui.store import status as st

#: After a failed run a pipeline waits this many periods for its next run,
#: so the operator has time to act on the failure (retry it) before it scrolls away.
HOLD_AFTER_FAILURE = 4
#: A build whose pool is smaller than this fails under the demo's load.
SAFE_POOL = 40
BAD_COMMIT = ("perf: share one DB connection pool across workers", 22)
COMMITS = (
    "fix: retry idempotent GETs once on a reset connection",
    "feat: paginate /v2/orders",
    "chore(deps): bump the HTTP client",
    "fix: cache the price lookup for 30s",
    "refactor: move auth middleware to its own module",
    "feat: add the request id to every log line",
)
AUTHORS = ("alice", "bob", "carol", "dan", "erin")


@dataclass
class Job:
    pipeline: str
    first: float  # demo seconds after the start
    every: float
    trigger: str
    actor: str
    due: float = 0.0
    count: int = 0


def _version(text: str) -> tuple[int, ...] | None:
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(g) for g in match.groups()) if match else None


class Simulator(threading.Thread):
    def __init__(
        self,
        layout: Layout,
        config: Config,
        *,
        speed: float = 1.0,
        seed: int = 42,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(name="opstui-demo-simulator", daemon=True)
        self.layout = layout
        self.config = config
        self.speed = speed
        self.rng = random.Random(seed)
        self.echo = echo or (lambda line: None)
        self.stopping = threading.Event()
        self.started_runs: list[int] = []
        self.error: str | None = None
        self.jobs = [
            Job("billing-worker", 1, 90, "push", "ci@demo"),
            Job("web-api", 3, 60, "push", "ci@demo"),
            Job("fraud-model", 6, 900, "schedule", "scheduler@demo"),
        ]

    def run(self) -> None:
        try:
            self._schedule()
        except Exception as exc:  # the store cannot be opened: said at the end
            self.error = f"{type(exc).__name__}: {exc}"[:300]

    def _schedule(self) -> None:
        begin = time.monotonic()
        for job in self.jobs:
            job.due = begin + job.first / self.speed
        with Store(self.layout.store) as store:
            while not self.stopping.is_set():
                now = time.monotonic()
                for job in self.jobs:
                    if now >= job.due:
                        try:
                            job.due = now + self.tick(store, job)
                        except Exception as exc:  # said at the end; tried again next period
                            self.error = f"{job.pipeline}: {type(exc).__name__}: {exc}"[:300]
                            job.due = now + job.every / self.speed
                wake = min(job.due for job in self.jobs)
                self.stopping.wait(max(0.05, min(wake - time.monotonic(), 1.0)))

    def tick(self, store: Store, job: Job) -> float:
        """Start ``job``'s next run if it can; return seconds until it is due again."""
        latest = history.run_history(store, job.pipeline, limit=1)
        if latest and latest[0].status in (st.QUEUED, st.RUNNING):
            return 2.0  # one run of a pipeline at a time, as a CI queue would
        if latest and latest[0].status in st.FAULTS and latest[0].finished_at is not None:
            hold = latest[0].finished_at + HOLD_AFTER_FAILURE * job.every / self.speed
            if (wait := hold - store.clock()) > 0:
                return wait
        version = None
        if job.pipeline == "fraud-model":
            if job.count == 0 or self.rng.random() < 1 / 3:
                raise_flag(self.layout.flag("bad-extract"), "upstream extract 0422 has broken rows")
        else:
            if job.pipeline == "web-api" and not self._serving_is_healthy():
                return 5.0  # nobody ships while production fails: waiting for a rollback
            version = self._push(store, job)
        try:
            plan = plan_run(self.config, job.pipeline, version=version)
            plan = dataclasses.replace(plan, trigger=job.trigger)
            proposal = propose(self.config, plan, read_only=False)
            started = perform(store, self.config, proposal, actor=job.actor,
                              declined=None, detach=True)  # fmt: skip
        except OpstuiError as exc:
            self.echo(f"could not start {job.pipeline}: {exc}")
            return job.every / self.speed
        job.count += 1
        self.started_runs.append(started.run_id)
        what = f" {version}" if version else ""
        self.echo(f"{job.pipeline}{what}: run {started.run_id} started ({job.trigger})")
        return job.every / self.speed

    def _serving_is_healthy(self) -> bool:
        manifest = read_json(self.layout.serving("web-api.json"), {})
        return int(manifest.get("pool_size", SAFE_POOL)) >= SAFE_POOL

    def _push(self, store: Store, job: Job) -> str:
        """A commit on main: write it where the pipeline's plan stage reads it."""
        version = self._next_version(store, job.pipeline)
        commit = devops.default_commit(job.pipeline, version)
        message, pool = self.rng.choice(COMMITS), 64
        if job.pipeline == "web-api":
            last = store_models.deployment_history(store, "web-api", "production", limit=1)
            # The first release of each demo is bad, then about one in six; but
            # after a rollback the team ships the fix, and that one is good.
            if job.count == 0:
                message, pool = BAD_COMMIT
            elif last and last[0].action == "rollback":
                message = f"fix: size the DB pool per worker ({last[0].replaced_version} "
                message += "was rolled back)"
            elif self.rng.random() < 1 / 6:
                message, pool = BAD_COMMIT
        if job.pipeline == "billing-worker" and job.count == 0:
            raise_flag(self.layout.flag("flaky-billing-worker"), "cold CI runner")
        commit.update(author=self.rng.choice(AUTHORS), message=message, pool_size=pool)
        write_json(self.layout.commit(job.pipeline, version), commit)
        return version

    def _next_version(self, store: Store, pipeline: str) -> str:
        state = read_json(self.layout.state, {})
        released = state.setdefault("released", {})
        seen = [d.version for d in store_models.deployment_history(store, pipeline, limit=1000)]
        seen.append(released.get(pipeline, "0.0.0"))
        highest = max((v for v in map(_version, seen) if v is not None), default=(0, 0, 0))
        version = f"{highest[0]}.{highest[1]}.{highest[2] + 1}"
        released[pipeline] = version
        write_json(self.layout.state, state)
        return version

    def stop(self) -> None:
        self.stopping.set()
