"""The demo's DevOps pipelines (web-api, billing-worker), one stage per call.

    python -m opstui.demo.devops plan|build|test|release|deploy|monitor|rollback VERSION

The runner starts each stage as its own process with the run's context in
``OPSTUI_*`` variables. The work is small but real: ``build`` writes the
service's code from the commit the simulator pushed and byte-compiles it,
``test`` runs unit tests against the compiled module, ``deploy`` points
production at the build (the demo's HTTP service then runs that code, so a
bad commit really serves errors), and ``monitor`` reads the service's own
metrics to decide whether the release holds.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import py_compile
import random
import sys
import tarfile
import time
import unittest
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from opstui.demo.layout import Layout, read_json, speed, take_flag, write_json

#: The monitor fails a release whose 5xx share of requests exceeds this.
MAX_ERROR_RATIO = 0.01
#: billing-worker's ledger test is flaky: it fails a first attempt this
#: often; a retry runs on a warm runner and passes (retrying is the fix, as
#: with most flakes). web-api's tests are not flaky.
FLAKE_RATE = {"billing-worker": 0.3}

APP = '''"""{pipeline} {version}, built by the opstui demo from commit {sha}."""

VERSION = "{version}"
#: Database connections one worker holds. Requests beyond it wait for one.
POOL_SIZE = {pool_size}


def handle(in_flight: int, draw: float) -> tuple[int, float]:
    """Status code and seconds of one request, with ``in_flight`` in progress."""
    if in_flight > POOL_SIZE:
        # No connection free: the request waits for one, then gives up.
        return 503, 1.0 + 0.5 * draw
    return 200, 0.03 + 0.12 * draw**3
'''

TESTS = '''"""Unit tests of {pipeline} {version} (generated with the build)."""

import os
import time
import unittest


class AppTests(unittest.TestCase):
    app = None  # the compiled module, set by the test stage

    def test_version_matches_the_release(self):
        self.assertEqual(self.app.VERSION, "{version}")

    def test_answers_under_normal_load(self):
        for in_flight in (1, 4, 8, 16):
            self.assertEqual(self.app.handle(in_flight, 0.5)[0], 200)

    def test_latency_budget(self):
        self.assertLess(max(self.app.handle(8, d / 10)[1] for d in range(11)), 0.25)

    def test_ledger_roundtrip(self):
        # Talks to a mock ledger; on a cold CI runner it answers slowly.
        started = time.monotonic()
        time.sleep(float(os.environ.get("DEMO_LEDGER_DELAY", "0.05")))
        took = time.monotonic() - started
        self.assertLess(took, 0.5, f"ledger mock answered after {{took:.2f}}s (limit 0.50s)")
'''


class StageError(Exception):
    """The stage failed for a reason the operator reads: one line, exit 1."""


class Context:
    def __init__(self, version: str) -> None:
        self.layout = Layout.from_env()
        self.pipeline = os.environ.get("OPSTUI_PIPELINE", "web-api")
        self.version = version
        self.run_id = int(os.environ.get("OPSTUI_RUN_ID", "0"))
        self.attempt = int(os.environ.get("OPSTUI_ATTEMPT", "1"))
        self.speed = speed(self.layout)

    def pause(self, seconds: float) -> None:
        """Real pipelines take a while; the demo's take seconds, divided by --speed."""
        time.sleep(seconds / self.speed)

    @property
    def build(self) -> Path:
        return self.layout.build(self.pipeline, self.version)

    def commit(self) -> dict[str, Any]:
        found = read_json(self.layout.commit(self.pipeline, self.version))
        if isinstance(found, dict):
            return found
        # Not pushed by the simulator (`opstui run web-api --version X`): a clean commit.
        return default_commit(self.pipeline, self.version)

    def record_deployment(self, environment: str, action: str = "deploy") -> None:
        from opstui.track import Tracker

        with Tracker() as tracker, tracker.attach() as run:
            run.record_deployment(environment, self.version, target=self.pipeline, action=action)


def default_commit(pipeline: str, version: str) -> dict[str, Any]:
    return {
        "pipeline": pipeline,
        "version": version,
        "sha": hashlib.sha1(f"{pipeline} {version}".encode()).hexdigest()[:7],
        "author": "ops",
        "message": f"release {version}",
        "pool_size": 64,
    }


def plan(ctx: Context) -> None:
    commit = ctx.commit()
    print(f"$ ci plan --pipeline {ctx.pipeline} --ref refs/heads/main")
    print(f"resolved refs/heads/main -> {commit['sha']} ({commit['author']}: {commit['message']})")
    print(f"target production, version {ctx.version}")
    ctx.pause(1.0)


def write_build(layout: Layout, commit: dict[str, Any]) -> Path:
    """Write the service's code for ``commit`` and byte-compile it; return the build dir."""
    build = layout.build(commit["pipeline"], commit["version"])
    build.mkdir(parents=True, exist_ok=True)
    source = build / "app.py"
    source.write_text(APP.format(**commit), encoding="utf-8")
    py_compile.compile(str(source), cfile=str(build / "app.pyc"), doraise=True)
    write_json(build / "manifest.json", {**commit, "built_at": time.time()})
    return build


def build(ctx: Context) -> None:
    commit = ctx.commit()
    print(f"$ python -m py_compile {ctx.build.relative_to(ctx.layout.root)}/app.py")
    try:
        out = write_build(ctx.layout, commit)
    except py_compile.PyCompileError as exc:
        raise StageError(f"build failed: {exc.msg}") from None
    ctx.pause(1.5)
    print(f"built {ctx.pipeline} {ctx.version}: app.pyc ({(out / 'app.pyc').stat().st_size} bytes)")


def load_build(build: Path) -> ModuleType:
    """The compiled module of a build (what the tests and the service run)."""
    name = f"demo_app_{build.parent.name}_{build.name}".replace(".", "_").replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, build / "app.pyc")
    if spec is None or spec.loader is None:
        raise StageError(f"no compiled app in {build}: did the build stage run?")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test(ctx: Context) -> None:
    if not (ctx.build / "app.pyc").is_file():
        raise StageError(f"no build of {ctx.pipeline} {ctx.version}: run the build stage")
    tests = ctx.build / "test_app.py"
    tests.write_text(TESTS.format(pipeline=ctx.pipeline, version=ctx.version), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("test_app", tests)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.AppTests.app = load_build(ctx.build)
    forced = take_flag(ctx.layout.flag(f"flaky-{ctx.pipeline}")) is not None
    # Seeded by the run: the same run always flakes the same way.
    rate = FLAKE_RATE.get(ctx.pipeline, 0.0)
    flaky = ctx.attempt == 1 and (forced or random.Random(ctx.run_id).random() < rate)
    os.environ["DEMO_LEDGER_DELAY"] = "0.6" if flaky else "0.05"
    print(f"$ python -m unittest -v {tests.relative_to(ctx.layout.root)}")
    ctx.pause(1.5)
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    if not result.wasSuccessful():
        failed = [test.id().rsplit(".", 1)[-1] for test, _ in result.failures + result.errors]
        raise StageError(f"{len(failed)} of {result.testsRun} tests failed: {', '.join(failed)}")


def release(ctx: Context) -> None:
    archive = ctx.layout.root / "releases" / ctx.pipeline / f"{ctx.version}.tar.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(ctx.build, arcname=f"{ctx.pipeline}-{ctx.version}")
    print(f"packed {archive.relative_to(ctx.layout.root)} ({archive.stat().st_size} bytes)")
    ctx.pause(0.5)
    ctx.record_deployment("staging")
    print(f"staging now runs {ctx.pipeline} {ctx.version}")


def serve(layout: Layout, pipeline: str, version: str) -> None:
    """Point production at a build: the demo's HTTP service picks it up at once."""
    manifest = read_json(layout.build(pipeline, version) / "manifest.json")
    if not isinstance(manifest, dict):
        raise StageError(f"{pipeline} {version} has no build to serve")
    write_json(layout.serving(f"{pipeline}.json"), {**manifest, "served_at": time.time()})


def deploy(ctx: Context) -> None:
    print(f"$ deploy {ctx.pipeline} {ctx.version} --env production")
    serve(ctx.layout, ctx.pipeline, ctx.version)
    ctx.pause(1.0)
    ctx.record_deployment("production")
    print(f"production now runs {ctx.pipeline} {ctx.version}")


def scrape(url: str) -> tuple[float, float]:
    """(requests, 5xx responses) counted by the service so far."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    total = errors = 0.0
    for line in text.splitlines():
        if line.startswith("http_requests_total{"):
            value = float(line.rsplit(" ", 1)[1])
            total += value
            if 'code="5' in line:
                errors += value
    return total, errors


def monitor(ctx: Context) -> None:
    url = read_json(ctx.layout.state, {}).get("service")
    if ctx.pipeline != "web-api" or not url:
        print(f"watching {ctx.pipeline} in production: queue lag steady")
        ctx.pause(2.0)
        print("monitor done")
        return
    window = max(3.0, 8.0 / ctx.speed)
    print(f"watching {url}/metrics for {window:.0f}s: 5xx < {MAX_ERROR_RATIO:.0%}")
    try:
        before = scrape(url)
        time.sleep(window)
        after = scrape(url)
    except OSError as exc:
        raise StageError(f"cannot read the service's metrics at {url}: {exc}") from None
    requests, errors = after[0] - before[0], after[1] - before[1]
    ratio = errors / requests if requests > 0 else 0.0
    print(f"t+{window:.0f}s requests={requests:.0f} 5xx={errors:.0f} ({ratio:.1%})")
    if ratio > MAX_ERROR_RATIO:
        raise StageError(
            f"release {ctx.version} is failing: 5xx {ratio:.1%} > {MAX_ERROR_RATIO:.0%} "
            f"of requests; roll back (b)"
        )
    print("error rate within SLO; monitor done")


def rollback(ctx: Context) -> None:
    """Serve an earlier version again (``opstui rollback production --pipeline P``).

    opstui records the deployment once this succeeds. A version from before
    the demo (the bundled history) has no build here: it is rebuilt from its
    tag, as a CD system would.
    """
    if not (ctx.build / "manifest.json").is_file():
        print(f"no build of {ctx.version} here: rebuilding it from its tag")
        write_build(ctx.layout, default_commit(ctx.pipeline, ctx.version))
    serve(ctx.layout, ctx.pipeline, ctx.version)
    ctx.pause(1.0)
    print(f"production now runs {ctx.pipeline} {ctx.version}")


STAGES: dict[str, Callable[[Context], None]] = {
    f.__name__: f for f in (plan, build, test, release, deploy, monitor, rollback)
}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in STAGES or not argv[1]:
        print(f"usage: python -m opstui.demo.devops {'|'.join(STAGES)} VERSION", file=sys.stderr)
        return 2
    try:
        STAGES[argv[0]](Context(argv[1]))
    except StageError as exc:
        print(f"{argv[0]}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
