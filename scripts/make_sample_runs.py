"""Generate the bundled sample history, ``sample_runs/*.jsonl``, deterministically.

A small simulation: each pipeline walks a clock forward day by day from START to
END (a fixed instant, never the current time), decides what every run does with
one seeded RNG, and the results are written in the importer's JSONL format
(``src/opstui/store/importer.py``): pipelines, runs with stages and log lines,
model versions, deployments, endpoint metrics and feature batches. Same seed,
same bytes: running it twice leaves the files unchanged.

    python scripts/make_sample_runs.py [--out DIR]
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

SEED = 20261115
START_DATE = date(2026, 10, 30)
START = datetime(2026, 10, 30, tzinfo=UTC).timestamp()
END = datetime(2026, 11, 15, 12, tzinfo=UTC).timestamp()  # the end of recorded history
N_DAYS = 17  # Oct 30 .. Nov 15; the last day stops at END (noon)
DAY, HOUR, MIN = 86400.0, 3600.0, 60.0
STEP = 300  # endpoint metric resolution, seconds
Record = dict[str, Any]  # one JSONL line; a Run inside one is written as its key
Columns = dict[str, list[Any]]
Rng = np.random.Generator

SERVICE_STAGES = ("plan", "build", "test", "release", "deploy", "monitor")
MODEL_STAGES = ("data", "validate", "train", "evaluate", "deploy", "monitor")
DURATION = dict(  # seconds, (shortest, longest)
    plan=(10, 30), build=(120, 360), test=(180, 600), release=(20, 45), deploy=(60, 180),
    monitor=(300, 900), data=(60, 300), validate=(20, 45), train=(600, 2400), evaluate=(60, 180),
)  # fmt: skip
FIRST_KEY = {"web-api": 412, "billing-worker": 187, "churn-model": 61, "fraud-model": 74}
AUTHORS = ("alice", "erin", "farid", "grace", "hiro", "ines")
SUBJECTS = ("fix: retry on 409 conflicts", "feat: paginate the history endpoint",
            "chore(deps): bump the HTTP client", "perf: batch the price lookups")  # fmt: skip

# Log lines per stage, looked up as "stage:pipeline", then "stage:kind", then "stage";
# {fields} come from the run's context.
TEMPLATES = {
    "plan": """$ ci plan --pipeline {pipeline} --ref {ref}
resolved {ref} -> {commit} ({author}: {subject})
changed files: {changed}; target {env}, version {version}
runner {host}: restored cache ({cache_mb} MiB)""",
    "build:web-api": """$ docker buildx build -t registry.internal/web-api:{version} .
#4 [base 1/4] FROM docker.io/library/python:3.12-slim
#7 [deps 2/4] RUN pip install --no-cache-dir -r requirements.lock
#7 Successfully installed 83 packages
#12 writing image sha256:{digest} done""",
    "build:billing-worker": """$ make build VERSION={version}
go: downloading github.com/acme/ledger-client v0.9.2
CGO_ENABLED=0 go build -trimpath -o bin/billing-worker ./cmd/worker
$ docker build -t registry.internal/billing-worker:{version} .
writing image sha256:{digest} done""",
    "test:billing-worker": """$ go test -race -count=1 ./...
ok  \tgithub.com/acme/billing-worker/internal/invoice\t3.871s
ok  \tgithub.com/acme/billing-worker/internal/ledger\t6.402s
ok  \tgithub.com/acme/billing-worker/internal/tax\t0.913s
coverage: {coverage}% of statements""",
    "release": """$ crane push image.tar registry.internal/{pipeline}:{version}
signed registry.internal/{pipeline}:{version} with cosign (kms://ci-signing)
release {version}: {changed} commits since {prev}""",
    "deploy:devops": """$ helm upgrade {pipeline} ./chart -n {pipeline}-{env} --set tag={version}
Release "{pipeline}" has been upgraded. REVISION: {revision}
rollout: 1 of {replicas} updated replicas available
rollout: {almost} of {replicas} updated replicas available
deployment "{pipeline}" successfully rolled out: {env} serves {version}""",
    "monitor:devops": """watching {pipeline}-{env} for {minutes}m: 5xx < 1%, p99 < 500ms
t+2m rps={rps} 5xx={err}% p99={p99}ms
t+{minutes}m 5xx and p99 within SLO
SLOs held; monitor done""",
    "data": """$ python -m pipelines.{model}.extract --date {day}
query warehouse.{model}_events for {window}
extracted {rows} rows, 8 features ({mb} MiB)
uploaded a 300-row sample for drift monitoring""",
    "validate": """$ great_expectations checkpoint run {model}_daily
running 24 expectations on {rows} rows
expect_column_values_to_be_in_set: passed
expect_column_values_to_not_be_null: passed (8 columns)
validation passed: 24 of 24 expectations""",
    "evaluate": """evaluating {model} v{version} on a holdout of {holdout} rows
candidate {scores}
{versus}
gate: {reason} -> passed""",
    "deploy:mlops": """$ kubectl -n ml-staging set image deploy/{model}-api model={model}:v{version}
deployment "{model}-api" successfully rolled out in staging
smoke test: 50/50 scoring requests ok
{promotion}""",
}
FLAKY = "tests/checkout/test_service.py::test_checkout_timeout - httpx.ReadTimeout: timed out"
FAILURES = {  # how a service run fails: stage, exit code, message, what it prints on stderr
    "web-api": [("test", 1, FLAKY, f"FAILED {FLAKY}\n!!!!!!!! stopping after 1 failures "
                 "!!!!!!!!\n1 failed, {passed} passed in {duration:.2f}s")],
    "billing-worker": [
        ("build", 2, "internal/invoice/render.go:88:14: undefined: money.RoundHalfEven",
         "internal/invoice/render.go:88:14: undefined: money.RoundHalfEven\n"
         "make: *** [Makefile:31: build] Error 1"),
        ("build", 2, "go: github.com/acme/ledger-client@v0.9.3: verifying module: checksum "
         "mismatch", "SECURITY ERROR: ledger-client@v0.9.3 does not match the checksum "
         "database\nmake: *** [Makefile:24: deps] Error 1"),
    ],
}  # fmt: skip


def _pytest(ctx: Record, rng: random.Random) -> list[str]:
    areas = ("api", "auth", "cart", "catalog", "checkout", "orders", "search", "users")
    topics = ("models", "routes", "service", "validation", "permissions")
    modules = [(f"tests/{a}/test_{t}.py", rng.randint(3, 12)) for a in areas for t in topics]
    total = sum(n for _, n in modules)
    lines = ["$ pytest -x -q -n 4 tests/", f"4 workers [{total} items]"]
    for i, (module, n) in enumerate(modules):
        lines.append(f"{module} {'.' * n} [{(i + 1) * 100 // len(modules):3d}%]")
    return [*lines, f"{total} passed in {ctx['duration']:.2f}s"]


def _train(ctx: Record, rng: random.Random) -> list[str]:
    p, auc = ctx["params"], ctx["metrics"]["auc"]
    lines = [
        f"$ python -m pipelines.{ctx['model']}.train --date {ctx['day']}",
        f"LightGBM n_estimators={p['n_estimators']} max_depth={p['max_depth']} "
        f"learning_rate={p['learning_rate']}",
    ]
    for i in range(50, p["n_estimators"] + 1, 50):
        a = auc - (auc - 0.7) * math.exp(-i / 60) + rng.uniform(-0.0005, 0.0005)
        lines.append(f"[{i}]\tvalid_0's auc: {a:.5f}\tvalid_0's binary_logloss: {0.7 - a / 2:.5f}")
    return [*lines, f"saved s3://ml-models/{ctx['model']}/v{ctx['version']}/model.txt"]


def _drift(ctx: Record, rng: random.Random) -> list[str]:
    lines = [f"drift check of the {ctx['day']} batch vs reference v{ctx['prod']} (PSI)"]
    drifted = []
    for name in ctx["features"]:
        psi = rng.uniform(0.005, 0.05) + ctx["drift"] * ctx["drift_weights"].get(name, 0.0)
        lines.append(f"  {name:<18} psi={psi:.3f}{'  DRIFT' if psi > 0.2 else ''}")
        drifted += [name] if psi > 0.2 else []
    if drifted:
        return [*lines, f"WARN drift in {len(drifted)} features: {', '.join(drifted)}"]
    return [*lines, "no feature drifted above 0.2"]


RENDERERS: dict[str, Callable[[Record, random.Random], list[str]]] = {
    "test:web-api": _pytest,
    "train": _train,
    "monitor:mlops": _drift,
}


def render(stage: str, ctx: Record, rng: random.Random) -> list[str]:
    for key in (f"{stage}:{ctx['pipeline']}", f"{stage}:{ctx['kind']}", stage):
        if key in RENDERERS:
            return RENDERERS[key](ctx, rng)
        if key in TEMPLATES:
            return TEMPLATES[key].format_map(ctx).splitlines()
    return []


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(round(ts), UTC).isoformat()[:19] + "Z"


def day_of(d: int) -> str:
    return (START_DATE + timedelta(days=d)).isoformat()


def weekday(d: int) -> int:
    return (START_DATE + timedelta(days=d)).weekday()


def drift_level(d: int) -> float:
    """0 until the last five days of history, then 0.2, 0.4, ... 1.0."""
    return max(0, d - (N_DAYS - 6)) / 5


@dataclass(frozen=True)
class Outcome:
    """How a stage ends when it does not simply succeed."""

    status: str  # failed, skipped or running
    message: str = ""
    exit_code: int = 1
    lines: str = ""  # what a failure prints on stderr; {fields} come from the context


@dataclass
class Stage:
    name: str
    status: str = "pending"
    started: float | None = None
    finished: float | None = None
    exit_code: int | None = None
    message: str | None = None
    logs: list[tuple[float, str, str]] = field(default_factory=list)  # ts, stream, line


@dataclass
class Run:
    pipeline: str
    created: float
    trigger: str
    actor: str
    params: Record
    stages: list[Stage]
    attempt: int = 1
    parent: Run | None = None
    status: str = "queued"
    started: float | None = None
    finished: float | None = None
    heartbeat: float | None = None
    message: str | None = None
    key: str = ""  # assigned once every run exists, in creation order

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


class Sim:
    """The RNGs and every record the pipelines produce."""

    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.np = np.random.default_rng(SEED)
        self.runs: list[Run] = []
        self.deploys: list[Record] = []
        self.versions: list[Record] = []
        self.batches: list[tuple[str, int, Run]] = []  # model, day, the run that extracted it
        self.spike = [0.0, 0.0]  # when web-api production served the bad release

    def hex(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def deploy(self, target: str, env: str, version: str, at: float, actor: str, **kw: Any) -> None:
        kind = "service" if target in FIRST_KEY else "model"
        rec: Record = {"type": "deployment", "target": target, "target_kind": kind, "actor": actor}
        rec |= {"environment": env, "version": version, "deployed_at": iso(at), "at": at}
        self.deploys.append(
            rec | {"status": "succeeded", "action": "deploy", "replaces": None} | kw
        )

    def execute(self, run: Run, ctx: Record, special: dict[str, Outcome]) -> Run:
        """Walk the run's stages on a clock; ``special`` names the stages that do not succeed."""
        rng = self.rng
        clock = float(round(run.created + rng.uniform(3, 40)))
        run.started, run.status = clock, "running"
        self.runs.append(run)
        for stage in run.stages:
            out = special.get(stage.name)
            if run.status == "failed" or (out and out.status == "skipped"):
                stage.status = "skipped"
                stage.message = out.message if out and run.status != "failed" else None
                continue
            ctx["duration"] = duration = float(rng.randint(*DURATION[stage.name]))
            ctx["minutes"] = round(duration / MIN)
            lines = [("stdout", line) for line in render(stage.name, ctx, rng)]
            stage.started = clock
            if out is None:
                stage.status, stage.exit_code = "succeeded", 0
            elif out.status == "failed":  # the output stops early and ends in errors
                duration = float(round(duration * rng.uniform(0.3, 0.9)))
                cut = rng.randint(max(1, (len(lines) - 2) // 2), max(1, len(lines) - 2))
                errors = out.lines.format_map(ctx).splitlines()
                lines = lines[:cut] + [("stderr", line) for line in errors]
                stage.status, stage.exit_code, stage.message = "failed", out.exit_code, out.message
                run.status, run.message = "failed", f"stage {stage.name} failed: {out.message}"
            else:  # still running at the end of history: its logs so far, the rest pending
                stage.status, run.heartbeat = "running", float(round(END - rng.uniform(20, 50)))
                logs = self.stamp(lines, clock, max(clock + duration, END + 600))
                stage.logs = [log for log in logs if log[0] <= run.heartbeat]
                return run
            stage.finished = clock + duration
            stage.logs = self.stamp(lines, clock, stage.finished)
            clock = stage.finished + rng.randint(1, 4)
        run.status = "failed" if run.status == "failed" else "succeeded"
        run.finished = max(s.finished for s in run.stages if s.finished is not None)
        return run

    def stamp(self, lines: list[tuple[str, str]], start: float, end: float) -> list[Any]:
        """Timestamps for a stage's lines: the command at once, the rest spread to its end."""
        times = [start, *sorted(self.rng.uniform(start, end) for _ in lines[1:])]
        return [(t, stream, line) for t, (stream, line) in zip(times, lines, strict=True)]


class Service:
    """A DevOps pipeline: pushes ship release candidates to staging, releases go to production."""

    def __init__(self, sim: Sim, name: str, pushes: tuple[int, int, int, int]) -> None:
        self.sim, self.name, self.pushes = sim, name, pushes  # weekday lo, hi; weekend lo, hi
        web = name == "web-api"
        self.release_days = (0, 1, 2, 3, 4) if web else (1, 3)  # Monday is 0
        self.fail_rate, self.retry_rate = (0.10, 0.85) if web else (0.07, 0.0)
        self.debt = 0.5  # failures come at fail_rate, spread at random (see run)
        self.bad_release = "2026-11-13" if web else ""  # breaks production; rolled back
        self.prod = "1.14.0" if web else "2.7.3"  # what production ran before START
        self.next, self.rc = [*map(int, self.prod.split("."))], 1
        self.next[2] += 1
        self.revision = {"staging": 310, "production": 120}
        self.queue: list[tuple[float, int, str, Run | None]] = []
        self.seq = itertools.count()

    def push(self, t: float, kind: str, parent: Run | None = None) -> None:
        heapq.heappush(self.queue, (float(round(t)), next(self.seq), kind, parent))

    def simulate(self) -> None:
        rng = self.sim.rng
        for d in range(N_DAYS):
            day, weekend = START + d * DAY, weekday(d) >= 5
            for _ in range(rng.randint(*(self.pushes[2:] if weekend else self.pushes[:2]))):
                self.push(rng.uniform(day + 8.5 * HOUR, min(day + 18.5 * HOUR, END - HOUR)), "push")
            if self.name == "billing-worker":
                self.push(day + 2 * HOUR + rng.uniform(0, 300), "schedule")  # a nightly build
            if weekday(d) in self.release_days:
                self.push(day + rng.uniform(15, 17) * HOUR, "release")
        while self.queue:  # in time order, so retries interleave with later pushes
            t, _, kind, parent = heapq.heappop(self.queue)
            if kind == "rollback" and parent is not None:
                self.rollback(t, parent)
            elif t < END - 45 * MIN:  # every run finishes before the end of history
                self.run(t, kind, parent)

    def run(self, t: float, kind: str, parent: Run | None) -> None:
        sim, rng = self.sim, self.sim.rng
        bad = kind == "release" and day_of(int((t - START) // DAY)) == self.bad_release
        if bad:
            self.next = [self.next[0], self.next[1] + 1, 0]  # a minor release
        nxt, env = ".".join(map(str, self.next)), "production" if kind == "release" else "staging"
        version = nxt if env == "production" else f"{nxt}-rc.{self.rc}"
        ref = f"refs/tags/v{version}" if env == "production" else "refs/heads/main"
        params = {"commit": sim.hex(7), "environment": env, "ref": ref, "version": version}
        trigger, actor = (
            "schedule" if kind == "schedule" else "push",
            f"ci@build-0{rng.randint(1, 4)}",
        )
        if parent is not None:  # a retry runs the same commit and version again
            params, trigger = dict(parent.params), "retry"
            actor = rng.choice(("ci@build-02", "erin@dev-laptop", "ci@build-03"))
        self.rc += parent is None and env == "staging"
        env, version = params["environment"], params["version"]
        special: dict[str, Outcome] = {}
        self.debt += rng.uniform(0, 2 * self.fail_rate)
        if not bad and t < END - 12 * HOUR and self.debt >= 1:  # and Sunday morning stays calm
            self.debt -= 1
            stage, code, message, lines = rng.choice(FAILURES[self.name])
            special[stage] = Outcome("failed", message, code, lines)
        if bad:
            message = f"rollout verification failed: 5xx rate 8.1% > 1% on web-api:{version}"
            lines = f"health check: 5xx 8.1% over 2m (threshold 1.0%)\nERROR {message}; roll back"
            special["deploy"] = Outcome("failed", message, 1, lines)
        run = Run(self.name, t, trigger, actor, params, [Stage(n) for n in SERVICE_STAGES])
        run.attempt, run.parent = (parent.attempt + 1, parent) if parent else (1, None)
        deploy = sim.execute(run, self.context(params), special).stage("deploy")
        if deploy.finished and (deploy.status == "succeeded" or bad):
            # The bad release did roll out (it served 5xx until the rollback);
            # only its verification failed, so the run fails, not the rollout.
            kw = {"run": run, "status": "succeeded", "message": deploy.message}
            sim.deploy(self.name, env, version, deploy.finished, actor, **kw)
        if bad and deploy.started and deploy.finished:
            sim.spike[0] = deploy.started + 40
            self.push(deploy.finished + rng.uniform(20, 30) * MIN, "rollback", run)
            self.next, self.rc = [self.next[0], self.next[1], 1], 1
        elif run.status == "succeeded" and env == "production":
            major, minor, patch = map(int, version.split("."))
            self.prod, self.next, self.rc = version, [major, minor, patch + 1], 1
        elif run.status == "failed" and run.finished and rng.random() < self.retry_rate:
            self.push(run.finished + rng.uniform(5, 20) * MIN, "retry", run)

    def rollback(self, t: float, bad_run: Run) -> None:
        """An operator puts the last good version back; build, test and release are reused."""
        sim, actor, good = self.sim, "alice@ops-laptop", self.prod
        bad = next(d for d in sim.deploys if d.get("run") is bad_run)
        params = {"environment": "production", "ref": f"refs/tags/v{good}", "version": good}
        params |= {"rolled_back": bad["version"], "commit": bad_run.params["commit"]}
        reuse = Outcome("skipped", f"rollback: reusing registry.internal/{self.name}:{good}")
        run = Run(self.name, t, "rollback", actor, params, [Stage(n) for n in SERVICE_STAGES])
        sim.execute(run, self.context(params), dict.fromkeys(("build", "test", "release"), reuse))
        sim.spike[1] = at = run.stage("deploy").finished or t
        sim.deploy(self.name, "production", good, at, actor, run=run, action="rollback")
        sim.deploys[-1]["replaces"] = bad

    def context(self, params: Record) -> Record:
        rng, env = self.sim.rng, params["environment"]
        self.revision[env] += 1
        replicas = 6 if env == "production" else 2
        return params | {
            "pipeline": self.name, "kind": "devops", "env": env, "prev": self.prod,
            "author": rng.choice(AUTHORS), "subject": rng.choice(SUBJECTS),
            "changed": rng.randint(1, 14), "host": f"build-0{rng.randint(1, 4)}",
            "cache_mb": rng.randint(180, 900), "digest": self.sim.hex(64),
            "revision": self.revision[env], "replicas": replicas, "almost": replicas - 1,
            "passed": rng.randint(180, 330), "coverage": round(rng.uniform(74, 82), 1),
            "rps": round(rng.uniform(40, 130) if replicas > 2 else rng.uniform(1, 6), 1),
            "err": round(rng.uniform(0.02, 0.2), 2), "p99": rng.randint(150, 260),
        }  # fmt: skip


@dataclass(frozen=True)
class ModelSpec:
    pipeline: str
    model: str
    hour: float  # of the daily scheduled run, UTC
    cadence: int  # a scheduled run retrains every `cadence` days
    base_auc: float
    features: tuple[str, ...]
    drift_weights: dict[str, float]  # PSI each feature gains at full drift
    retrains: tuple[tuple[str, float, str, bool], ...] = ()  # day, hour, actor, fails the gate
    bad_data: tuple[tuple[str, str, float], ...] = ()  # day, column, share of nulls
    running_last: bool = False  # the last run is still training at END


class Model:
    """An MLOps pipeline: daily data checks, gated retrains, promotion after a review."""

    MIN_IMPROVEMENT = 0.002

    def __init__(self, sim: Sim, spec: ModelSpec) -> None:
        self.sim, self.spec, self.code = sim, spec, "git:" + sim.hex(7)
        self.production: Record | None = None
        self.staged: list[tuple[float, Record]] = []  # candidates in staging, oldest first
        self.count = 0

    def simulate(self) -> None:
        rng, spec = self.sim.rng, self.spec
        for d in range(N_DAYS):
            day = START + d * DAY
            events = [
                (day + spec.hour * HOUR + rng.uniform(0, 90), "schedule", "scheduler@airflow")
            ]
            events += [(day + h * HOUR, "retrain", who) for on, h, who, _ in spec.retrains
                       if on == day_of(d)]  # fmt: skip
            if weekday(d) in (0, 3):  # model reviews happen on Mondays and Thursdays
                events.append((day + 15 * HOUR + rng.uniform(0, 1800), "review", "dana@ml-laptop"))
            for t, kind, actor in sorted(events):
                if t < END and kind == "review":
                    self.review(t, actor)
                elif t < END:
                    self.run(d, float(round(t)), kind, actor)

    def run(self, d: int, t: float, trigger: str, actor: str) -> None:
        sim, spec, rng, day = self.sim, self.spec, self.sim.rng, day_of(d)
        retrain = (
            trigger == "retrain" or not self.production or (N_DAYS - 1 - d) % spec.cadence == 0
        )
        ctx: Record = {
            "pipeline": spec.pipeline, "kind": "mlops", "model": spec.model, "day": day,
            "rows": rng.randint(180_000, 240_000), "window": f"{day_of(d - 90)}..{day}",
            "mb": rng.randint(40, 90), "features": spec.features, "drift": drift_level(d),
            "drift_weights": spec.drift_weights, "prod": (self.production or {}).get("version"),
        }  # fmt: skip
        special: dict[str, Outcome] = {}
        for column, share in [(c, s) for on, c, s in spec.bad_data if on == day]:
            message = f"null share {share:.2f} in column '{column}' exceeds 0.05"
            lines = f"expect_column_values_to_not_be_null({column}, mostly=0.95): FAILED\n{message}"
            special["validate"] = Outcome("failed", message, 1, lines + "\n1 of 24 failed; stop")
        fails = trigger == "retrain" and any(on == day and f for on, *_, f in spec.retrains)
        version = self.train(ctx, fails) if retrain and not special else None
        if version is None:
            skip = Outcome("skipped", f"retrain not due (every {spec.cadence} days)")
            special = dict.fromkeys(("train", "evaluate", "deploy"), skip) | special
        elif d == N_DAYS - 1 and spec.running_last:
            special["train"] = Outcome("running")
        elif not version["gate"]["passed"]:
            message = f"gate failed: {version['gate']['reason']}"
            lines = f"{message}\nv{{version}} registered as rejected; production stays v{{prod}}"
            special["evaluate"] = Outcome("failed", message, 3, lines)
        params = {"date": day, "retrain": retrain, "window_days": 90}
        run = Run(spec.pipeline, t, trigger, actor, params, [Stage(n) for n in MODEL_STAGES])
        evaluate, deploy = sim.execute(run, ctx, special).stage("evaluate"), run.stage("deploy")
        if trigger == "schedule" and run.stage("data").status == "succeeded":
            sim.batches.append((spec.model, d, run))
        if version is None or evaluate.finished is None:
            return
        self.count += 1
        status = "candidate" if evaluate.status == "succeeded" else "rejected"
        version |= {"run": run, "status": status, "created_at": iso(evaluate.finished)}
        sim.versions.append(version)
        if deploy.finished:
            sim.deploy(spec.model, "staging", version["version"], deploy.finished, actor, run=run)
            if self.production is None:  # the first model goes straight to production
                self.promote(version, deploy.finished + 60, actor, run)
            else:
                self.staged.append((deploy.finished, version))

    def train(self, ctx: Record, fails_gate: bool) -> Record:
        """The version a retrain produces, with the gate's verdict; its details go to ``ctx``."""
        rng, prod = self.sim.rng, self.production
        base = prod["metrics"]["auc"] if prod else self.spec.base_auc
        step = -rng.uniform(0.003, 0.008) if fails_gate else rng.uniform(0.003, 0.009)
        auc = round(min(0.92, base + step) if prod else base, 4)
        precision, recall = rng.uniform(0.58, 0.7) + auc - 0.85, rng.uniform(0.5, 0.64) + auc - 0.85
        f1, log_loss = 2 * precision * recall / (precision + recall), 0.7 - auc / 2
        metrics = {"auc": auc, "precision": precision, "recall": recall, "f1": f1}
        metrics = {k: round(v, 4) for k, v in metrics.items()}
        metrics["log_loss"] = round(log_loss + rng.uniform(-0.01, 0.01), 4)
        params = {"n_estimators": rng.randrange(300, 801, 50), "subsample": 0.8}
        params["learning_rate"] = round(rng.uniform(0.03, 0.1), 3)
        params["max_depth"] = 12 if fails_gate else rng.randint(4, 8)  # 12: an experiment overfits
        if rng.random() < 0.4:
            self.code = "git:" + self.sim.hex(7)
        number, passed = str(self.count + 1), prod is None or auc - base >= self.MIN_IMPROVEMENT
        verb = "improves on" if passed else "does not improve enough on"
        reason = f"auc {auc:.4f} {verb} production v{ctx['prod']} ({base:.4f}): {auc - base:+.4f}"
        reason = reason if prod else "no production version to compare against"
        ctx |= {"version": number, "params": params, "metrics": metrics, "reason": reason,
                "scores": " ".join(f"{k}={v}" for k, v in sorted(metrics.items())),
                "versus": f"production v{ctx['prod']} auc={base}" if prod else "no production yet",
                "promotion": f"v{number} awaits review" if prod else f"v{number} goes live now",
                "holdout": ctx["rows"] // 20}  # fmt: skip
        gate = {"metric": "auc", "candidate": auc, "production": prod and base, "passed": passed}
        gate |= {"min_improvement": self.MIN_IMPROVEMENT, "reason": reason}
        return {"type": "model_version", "model": self.spec.model, "version": number, "gate": gate,
                "params": params, "metrics": metrics, "code_version": self.code,
                "data_hash": "sha256:" + self.sim.hex(64)}  # fmt: skip

    def review(self, t: float, actor: str) -> None:
        """Promote the newest candidate that soaked in staging for a day; archive older ones."""
        ready = [v for at, v in self.staged if at <= t - DAY]
        self.staged = self.staged[len(ready) :]
        for older in ready[:-1]:
            older["status"] = "archived"
        if ready:
            self.promote(ready[-1], t, actor, None)

    def promote(self, version: Record, t: float, actor: str, run: Run | None) -> None:
        if self.production is not None:
            self.production["status"] = "archived"
        version["status"], self.production = "production", version
        self.sim.deploy(self.spec.model, "production", version["version"], t, actor, run=run)


MODELS = (
    ModelSpec("churn-model", "churn", 11.5, 3, 0.842,
              ("tenure_months", "monthly_charges", "total_charges", "support_calls",
               "num_services", "contract", "payment_method", "internet_service"),
              {"monthly_charges": 0.08}, running_last=True),
    ModelSpec("fraud-model", "fraud", 4.0, 4, 0.884,
              ("amount", "hour_of_day", "distance_km", "account_age_days", "n_tx_24h",
               "merchant_category", "country", "device"),
              {"amount": 0.42, "merchant_category": 0.3, "n_tx_24h": 0.05},
              retrains=(("2026-11-09", 10.25, "bob@ml-laptop", True),
                        ("2026-11-13", 7.5, "scheduler@airflow", False)),
              bad_data=(("2026-11-04", "device", 0.18), ("2026-11-15", "merchant_category", 0.31))),
)  # fmt: skip


def cumulative(ts: npt.NDArray[Any], inc: npt.NDArray[Any], restarts: list[float]) -> list[int]:
    """A counter that starts near 0 again when its process restarts (at each deploy)."""
    out, value, pending = [], int(inc.sum() // 5), sorted(restarts)  # up for a while at START
    for t, x in zip(ts.tolist(), inc.tolist(), strict=True):
        value = int(x * (t - pending[0]) / STEP) if pending and pending[0] <= t else value + x
        pending = [r for r in pending if r > t]
        out.append(value)
    return out


def metric_records(sim: Sim) -> list[Record]:
    """Counters per status class and a p99 gauge for three endpoints, every 5 minutes."""
    g, ts = sim.np, np.arange(START, END + 1, STEP)
    days = ((ts - START) // DAY).astype(int)
    weekend = np.array([weekday(d) >= 5 for d in days.tolist()])
    hours = (ts - START) % DAY / HOUR  # traffic peaks at 15:00 UTC, 35% lower at weekends
    load = (0.55 + 0.45 * np.sin(2 * np.pi * (hours - 9) / 24)) * np.where(weekend, 0.65, 1.0)
    records: list[Record] = []
    for source, target, peak_rps, p99 in (
        ("endpoint/web-api-prod", "web-api", 120.0, 0.18),
        ("endpoint/churn-api", "churn", 6.0, 0.06),
        ("endpoint/fraud-api", "fraud", 45.0, 0.035),
    ):
        deploys = [
            d for d in sim.deploys if (d["target"], d["environment"]) == (target, "production")
        ]
        spike = (ts >= sim.spike[0]) & (ts <= sim.spike[1]) & (target == "web-api")
        total = g.poisson(peak_rps * STEP * load)
        c5 = g.binomial(total, np.where(spike, g.uniform(0.075, 0.087, ts.shape), 0.001))
        c4 = g.binomial(total - c5, g.uniform(0.018, 0.03, ts.shape))
        latency = p99 * (0.8 + 0.4 * load) * g.lognormal(0, 0.08, ts.shape)
        latency = np.where(spike, g.uniform(1.1, 1.6, ts.shape), latency)
        series = [
            ("http_requests_total", {"code": code}, cumulative(ts, n, [d["at"] for d in deploys]))
            for code, n in (("2xx", total - c5 - c4), ("4xx", c4), ("5xx", c5))
        ]
        series.append(("http_request_duration_p99_seconds", {}, np.round(latency, 4).tolist()))
        for name, labels, values in series:
            for d in range(N_DAYS):
                key = "/".join([source, name, *labels.values(), day_of(d)])
                points = [[int(ts[i]), values[i]] for i in np.flatnonzero(days == d).tolist()]
                rec = {"type": "metrics", "key": key, "source": source, "name": name}
                records.append(rec | {"labels": labels or None, "points": points})
    return records


def categorical(g: Rng, n: int, levels: Mapping[str, float]) -> list[Any]:
    weights = np.array(list(levels.values()))
    return [list(levels)[i] for i in g.choice(len(levels), n, p=weights / weights.sum())]


def churn_batch(g: Rng, n: int, level: float) -> Columns:
    """Customers; their only drift is a small rise of monthly charges (prices went up)."""
    tenure, monthly = g.integers(1, 73, n), np.clip(g.normal(65 + 5 * level, 24, n), 18, 120)
    payment = {"electronic-check": 34, "mailed-check": 23, "bank-transfer": 22, "card": 21}
    return {
        "tenure_months": tenure.tolist(),
        "monthly_charges": np.round(monthly, 3).tolist(),
        "total_charges": np.round(tenure * monthly * g.uniform(0.92, 1.03, n), 3).tolist(),
        "support_calls": g.poisson(1.3, n).tolist(),
        "num_services": g.integers(1, 7, n).tolist(),
        "contract": categorical(g, n, {"month-to-month": 55, "one-year": 24, "two-year": 21}),
        "payment_method": categorical(g, n, payment),
        "internet_service": categorical(g, n, {"fiber": 44, "dsl": 34, "none": 22}),
    }


def fraud_batch(g: Rng, n: int, level: float) -> Columns:
    """Card transactions. Drift (a fraud ring at work) raises amounts by 0.5 to 1 sd,
    shifts the merchant mix, and brings younger accounts and night-time traffic, so
    from level 0.6 most features drift and the dataset does (`opstui drift fraud`)."""
    mu, sigma = 3.6, 0.9  # of the log-normal amount, whose sd / mean is sqrt(e^sigma^2 - 1)
    scale = 1 + (0.375 + 0.625 * level) * math.sqrt(math.exp(sigma**2) - 1) if level else 1.0
    hours = np.array([2, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 7, 8, 7, 6, 6, 7, 8, 9, 9, 8, 6, 4, 3])
    hours = hours + level * np.array([5, 6, 6, 6, 5, 3] + [0] * 16 + [2, 4])
    merchants = {"grocery": 28 - 10 * level, "restaurants": 18.0, "fuel": 12 - 4 * level,
                 "online_retail": 22 + 8 * level, "electronics": 10 + 4 * level, "travel": 7.0,
                 "gaming": 3 + 3 * level,  # and a category the model never saw appears:
                 "crypto_exchange": 6 * level if level >= 0.6 else 0.0}  # fmt: skip
    return {
        "amount": np.round(g.lognormal(mu, sigma, n) * scale, 3).tolist(),
        "hour_of_day": g.choice(24, n, p=hours / hours.sum()).tolist(),
        "distance_km": np.round(g.lognormal(1.5, 1.2, n), 3).tolist(),
        "account_age_days": (g.exponential(700 * (1 - 0.5 * level), n).astype(int) + 1).tolist(),
        "n_tx_24h": g.poisson(2.5 + level, n).tolist(),
        "merchant_category": categorical(g, n, merchants),
        "country": categorical(g, n, dict(US=62, GB=10, DE=8, FR=6, BR=5, IN=5, MX=4)),
        "device": categorical(g, n, {"mobile": 58, "desktop": 34, "tablet": 8}),
    }


def with_nulls(g: Rng, cols: Columns, column: str, share: float) -> Columns:
    for i in g.choice(len(cols[column]), round(share * len(cols[column])), replace=False).tolist():
        cols[column][i] = None
    return cols


def feature_records(sim: Sim) -> list[Record]:
    """Reference batches of the production and newest candidate versions; 14 daily batches."""
    g, records = sim.np, []
    make = {"churn": churn_batch, "fraud": fraud_batch}
    usual_nulls = {"churn": ("total_charges", 0.005), "fraud": ("distance_km", 0.01)}
    bad_data = {(m.model, on): (col, share) for m in MODELS for on, col, share in m.bad_data}
    newest = {v["model"]: v for v in sim.versions if v["status"] == "candidate"}
    for v in sim.versions:
        if v["status"] == "production" or newest.get(v["model"]) is v:
            cols = with_nulls(g, make[v["model"]](g, 2000, 0.0), *usual_nulls[v["model"]])
            rec = {"key": f"{v['model']}/reference/v{v['version']}", "kind": "reference"}
            records.append(rec | {k: v[k] for k in ("model", "version", "run", "created_at")})
            records[-1]["columns"] = cols
    for model, d, run in sim.batches:
        if d >= N_DAYS - 14:
            cols = with_nulls(g, make[model](g, 300, drift_level(d)), *usual_nulls[model])
            if (model, day_of(d)) in bad_data:  # the batch that failed validation
                cols = with_nulls(g, cols, *bad_data[model, day_of(d)])
            rec = {"key": f"{model}/current/{day_of(d)}", "kind": "current", "model": model}
            at = iso(run.stage("data").finished)
            records.append(rec | {"run": run, "created_at": at, "columns": cols})
    return [{"type": "features"} | r for r in records]


def assign_keys(sim: Sim) -> None:
    """Keys in creation order, and what each deployment replaced (the last one serving)."""
    count: dict[str, int] = {}
    for run in sorted(sim.runs, key=lambda r: r.created):
        count[run.pipeline] = count.get(run.pipeline, FIRST_KEY[run.pipeline] - 1) + 1
        run.key = f"{run.pipeline}/{count[run.pipeline]:04d}"
    serving: dict[str, Record] = {}
    for dep in sorted(sim.deploys, key=lambda d: float(d["at"])):
        slot = f"deploy/{dep['target']}/{dep['environment']}"
        count[slot] = count.get(slot, 0) + 1
        dep["key"], dep["replaces"] = (
            f"{slot}/{count[slot]:04d}",
            dep["replaces"] or serving.get(slot),
        )
        if dep["status"] == "succeeded":
            serving[slot] = dep
    for dep in sim.deploys:
        dep["replaces"] = dep["replaces"] and dep["replaces"]["key"]


def run_record(run: Run) -> Record:
    stages = [
        {"name": s.name, "status": s.status, "exit_code": s.exit_code, "message": s.message,
         "started_at": iso(s.started), "finished_at": iso(s.finished),
         "logs": [{"ts": iso(t), "stream": stream, "line": line} for t, stream, line in s.logs]}
        for s in run.stages
    ]  # fmt: skip
    return {
        "type": "run", "key": run.key, "pipeline": run.pipeline, "status": run.status,
        "trigger": run.trigger, "actor": run.actor, "host": run.actor.split("@")[1],
        "attempt": run.attempt, "parent": run.parent, "params": run.params,
        "created_at": iso(run.created), "started_at": iso(run.started),
        "finished_at": iso(run.finished), "heartbeat_at": iso(run.heartbeat),
        "message": run.message, "stages": [clean(s) for s in stages],
    }  # fmt: skip


def build() -> dict[str, list[Record]]:
    sim = Sim()
    Service(sim, "web-api", (4, 7, 1, 2)).simulate()
    Service(sim, "billing-worker", (1, 3, 0, 0)).simulate()
    for spec in MODELS:
        Model(sim, spec).simulate()
    assign_keys(sim)
    kinds = [("web-api", "devops"), ("billing-worker", "devops")]
    kinds += [(m.pipeline, "mlops") for m in MODELS]
    stages = {"devops": SERVICE_STAGES, "mlops": MODEL_STAGES}
    return {
        "pipelines.jsonl": [
            {"type": "pipeline", "name": name, "kind": kind, "stages": stages[kind]}
            for name, kind in kinds
        ],
        "runs.jsonl": [run_record(r) for r in sorted(sim.runs, key=lambda r: r.created)],
        "models.jsonl": sorted(sim.versions, key=lambda v: (v["model"], v["created_at"])),
        "deployments.jsonl": sorted(sim.deploys, key=lambda d: float(d["at"])),
        "metrics.jsonl": metric_records(sim),
        "features.jsonl": feature_records(sim),
    }


def clean(rec: Record) -> Record:
    """Drop empty fields and the simulation's own ones (a leading "at")."""
    return {k: v for k, v in rec.items() if v not in (None, []) and k != "at"}


def to_json(value: object) -> str:
    """How json.dumps writes a run inside a record: as its key."""
    if isinstance(value, Run):
        return value.key
    raise TypeError(f"cannot write {value!r}")


def main(argv: list[str] | None = None) -> None:
    default = Path(__file__).resolve().parent.parent / "sample_runs"
    parser = argparse.ArgumentParser(description="Write the sample history as JSONL files.")
    parser.add_argument("--out", type=Path, default=default, help=f"folder (default {default})")
    out = parser.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    for name, records in build().items():
        path = out / name
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            for rec in records:
                line = json.dumps(
                    clean(rec), default=to_json, sort_keys=True, separators=(",", ":")
                )
                fh.write(line + "\n")
        print(f"{path}: {len(records)} records, {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
