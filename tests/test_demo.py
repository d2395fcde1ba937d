"""``opstui demo --headless`` end to end: the world moves, and actions on it work.

One demo runs for the module at 20x (its schedule compressed; error-rate
windows stay wall-clock), and each test waits for what it checks: runs the
simulator started and their faults, the endpoint polled and burning its
SLO, drift detected, then a retry, a rollback and a retrain performed
through the action path the console uses (``runner.actions.perform``,
detached) and what each recorded. The last test stops the demo with Ctrl-C.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from opstui.analysis.rates import error_ratio
from opstui.config import Config, load_config
from opstui.drift.records import DriftCheck, latest
from opstui.errors import UsageError
from opstui.runner.actions import perform, propose
from opstui.runner.plan import Plan
from opstui.runner.planning import plan_retrain, plan_retry, plan_rollback
from opstui.store import Store, history
from opstui.store import models as store_models
from opstui.store import status as st
from opstui.store.actions import ActionRow
from opstui.store.endpoints import endpoint_statuses
from opstui.store.metrics import points
from opstui.store.rows import RunRow
from opstui.views.endpoints import endpoint_reports
from tests.demo_support import (
    integrity,
    interrupt,
    port_is_closed,
    processes_of,
    start_demo,
    wait_for,
)

pytestmark = pytest.mark.slow
SPEED = "20"


@dataclass
class Demo:
    directory: Path
    process: subprocess.Popen[str]

    @property
    def store_path(self) -> Path:
        return self.directory / "opstui.db"

    def config(self) -> Config:
        return load_config(self.directory / "opstui.toml")

    def store(self) -> Store:
        return Store(self.store_path, create=False)

    def live_runs(self, pipeline: str) -> list[RunRow]:
        """The pipeline's runs of this demo (the seeded history has no local actor)."""
        with self.store() as store:
            try:
                runs = history.run_history(store, pipeline, limit=50)
            except UsageError:  # still being seeded
                return []
        return [r for r in runs if r.actor in ("ci@demo", "scheduler@demo", "tester@demo")]

    def act(self, plan: Plan) -> RunRow:
        """Perform ``plan`` as the console does (detached) and wait for its run to end."""
        with self.store() as store:
            proposal = propose(self.config(), plan, read_only=False)
            started = perform(store, self.config(), proposal, actor="tester@demo",
                              declined=None, detach=True)  # fmt: skip

        def finished() -> RunRow | None:
            with self.store() as store:
                run = history.get_run(store, started.run_id)
            return run if run.status not in (st.QUEUED, st.RUNNING) else None

        return wait_for(finished, f"{plan.action} run {started.run_id} to finish", timeout=90)

    def error_ratio(self, start: float, end: float) -> float | None:
        """web-api's 5xx share between ``start`` and ``end``, from the polled samples."""
        with self.store() as store:
            total = points(store, "endpoint/web-api", "requests_total", start=start, end=end)
            bad = points(store, "endpoint/web-api", "errors_total", start=start, end=end)
        return error_ratio(total, bad, start, end)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    base = tmp_path_factory.mktemp("demo")
    process = start_demo(base / "world", "--speed", SPEED, cwd=base)
    demo = Demo(base / "world", process)
    try:
        wait_for(lambda: demo.store_path.exists() and demo.live_runs("web-api"), "a web-api run")
        yield demo
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def failed_run(demo: Demo, pipeline: str, stage: str) -> RunRow:
    def find() -> RunRow | None:
        runs = demo.live_runs(pipeline)
        return next((r for r in runs if r.failed_stage and r.failed_stage.name == stage), None)

    return wait_for(find, f"a {pipeline} run failing at {stage}")


def test_the_simulator_starts_runs_with_the_tours_faults(demo: Demo) -> None:
    flaky = failed_run(demo, "billing-worker", "test")
    assert flaky.trigger == "push"
    bad_release = failed_run(demo, "web-api", "monitor")
    assert [s.status for s in bad_release.stages][:5] == [st.SUCCEEDED] * 5
    bad_data = failed_run(demo, "fraud-model", "validate")
    assert bad_data.trigger == "schedule"
    with demo.store() as store:
        flake_log = history.stage_logs(store, flaky.stages[2].id)
        validate_log = history.stage_logs(store, bad_data.stages[1].id)
    assert any("test_ledger_roundtrip" in line.line for line in flake_log)
    assert any("amount is missing" in line.line for line in validate_log)


def test_the_endpoint_is_polled_and_burns_its_slo(demo: Demo) -> None:
    def burning() -> bool:
        with demo.store() as store:
            reports = endpoint_reports(store, demo.config(), time.time())
        return any(r.name == "web-api" and r.state == "burning" for r in reports)

    wait_for(burning, "web-api burning its error budget")

    def health_degraded() -> bool:
        # The health check waits on the exhausted pool only when the pool is
        # busy at that moment: judged over its polls, not at one instant.
        with demo.store() as store:
            statuses = {s.name: s for s in endpoint_statuses(store)}
        assert statuses["web-api"].last_success_at is not None
        return statuses["web-api-health"].state == "degraded"

    wait_for(health_degraded, "web-api-health degraded while the bad release serves")


def test_drift_is_detected(demo: Demo) -> None:
    def drifted() -> bool:
        with demo.store() as store:
            check = latest(store, "fraud")
        return bool(check and check.reference.version == "5" and check.dataset.drifted)

    wait_for(drifted, "a drift check of fraud against v5 that drifts")


def test_retry_reruns_the_flaky_stage_and_passes(demo: Demo) -> None:
    flaky = failed_run(demo, "billing-worker", "test")
    with demo.store() as store:
        plan = plan_retry(demo.config(), store, flaky.id)
    run = demo.act(plan)
    assert (run.status, run.trigger, run.parent_run_id, run.attempt) == (
        st.SUCCEEDED, "retry", flaky.id, flaky.attempt + 1,
    )  # fmt: skip
    reused = [s.name for s in run.stages if s.reused_from_id is not None]
    assert reused == ["plan", "build"]


def test_the_demo_policy_retries_the_flaky_test_by_itself_audited(demo: Demo) -> None:
    """The demo ships policies: billing-worker's flaky test is retried with no
    key pressed, through the action path, as policy:retry-billing-tests."""
    from opstui.store import policies as sp
    from opstui.store.actions import list_actions

    def policy_retry() -> tuple[ActionRow, RunRow] | None:
        with demo.store() as store:
            acts = [
                a
                for a in list_actions(store, limit=200)
                if a.actor == "policy:retry-billing-tests" and a.run_id is not None
            ]
            if not acts:
                return None
            run = history.get_run(store, acts[-1].run_id or 0)
        return (acts[-1], run) if run.status not in (st.QUEUED, st.RUNNING) else None

    action, run = wait_for(policy_retry, "the policy's retry of billing-worker", timeout=90)
    assert (action.action, action.target, run.trigger) == ("retry", "billing-worker", "retry")
    assert run.parent_run_id is not None
    with demo.store() as store:
        acted = [d for d in sp.decisions(store, since=0) if d.verdict == "acted"]
        parent = history.get_run(store, run.parent_run_id)
    assert any(d.run_id == run.id and d.policy == "retry-billing-tests" for d in acted)
    assert parent.failed_stage is not None and parent.failed_stage.name == "test"


def test_rollback_brings_the_error_rate_down(demo: Demo) -> None:
    bad_release = failed_run(demo, "web-api", "monitor")
    wait_for(lambda: (demo.error_ratio(time.time() - 6, time.time()) or 0) > 0.02,
             "web-api's errors in the polled samples")  # fmt: skip
    with demo.store() as store:
        plan = plan_rollback(demo.config(), store, "production", pipeline="web-api")
    assert plan.changes == ("production: web-api 1.15.1 -> 1.14.10",)
    run = demo.act(plan)
    assert run.status == st.SUCCEEDED
    with demo.store() as store:
        deployed = store_models.deployment_history(store, "web-api", "production", limit=1)[0]
    assert (deployed.action, deployed.version, deployed.run_id) == ("rollback", "1.14.10", run.id)
    assert bad_release.id != run.id
    # The polls of the next 6 s (every 2 s): only the rolled-back build answers.
    # (The simulator's next release, the fix, is good; the one after it comes
    # later than that, and could be bad again.)
    assert run.finished_at is not None
    time.sleep(max(0.0, run.finished_at + 6.5 - time.time()))
    assert demo.error_ratio(run.finished_at + 0.5, run.finished_at + 6) == 0.0


def test_retrain_promotes_a_better_model_and_the_drift_clears(demo: Demo) -> None:
    from opstui.demo.layout import read_json

    # The ring grows for 90 demo seconds; trained before its height, the new
    # version sees some drift come back, as it would in production (the tour
    # in tmux waits the same way). How long the tests before this one took
    # must not decide it.
    wait_for(lambda: read_json(demo.directory / "world" / "traffic.json", {}).get("level") == 1.0,
             "the fraud ring at its height")  # fmt: skip
    with demo.store() as store:
        before = {v.version for v in store_models.model_versions(store, "fraud")}
        plan = plan_retrain(demo.config(), store, "fraud")
    run = demo.act(plan)
    assert run.status == st.SUCCEEDED, run.message
    with demo.store() as store:
        new = [v for v in store_models.model_versions(store, "fraud") if v.version not in before]
        deployed = store_models.deployment_history(store, "fraud", "production", limit=1)[0]
    assert len(new) == 1 and new[0].run_id == run.id
    version = new[0]
    assert version.gate is not None and version.gate["against_version"] == "5"
    # Trained on the fraud ring's traffic, it beats v5 (refitted as it was trained).
    assert version.gate["passed"], version.gate["reason"]
    assert (version.status, deployed.version) == ("production", version.version)

    def against_new() -> DriftCheck | None:
        with demo.store() as store:
            check = latest(store, "fraud")
        return check if check and check.reference.version == version.version else None

    check = wait_for(against_new, f"a drift check against v{version.version}")
    assert not check.dataset.drifted, check.dataset


def test_ctrl_c_stops_everything_and_leaves_a_consistent_store(demo: Demo) -> None:
    port = int(demo.config().endpoints["web-api"].url.split(":")[2].split("/")[0])
    # A run in flight, started as the console starts one (detached, its own session).
    with demo.store() as store:
        plan = plan_retrain(demo.config(), store, "fraud")
        proposal = propose(demo.config(), plan, read_only=False)
        started = perform(store, demo.config(), proposal, actor="tester@demo",
                          declined=None, detach=True)  # fmt: skip

    def running() -> bool:
        with demo.store() as store:
            return history.get_run(store, started.run_id).status == st.RUNNING

    wait_for(running, "the retrain to run")
    code, out = interrupt(demo.process)
    assert code == 130, out
    cancelled = re.search(r"cancelled runs? ([\d, ]+);", out)
    assert cancelled and str(started.run_id) in cancelled[1].split(", "), out
    assert f"127.0.0.1:{port} is closed" in out
    with demo.store() as store:
        assert history.get_run(store, started.run_id).status == st.CANCELLED
    assert integrity(demo.store_path) == "ok"
    assert processes_of(demo.directory) == []
    assert port_is_closed(port)
    with demo.store() as store:
        in_flight = history.runs_in_flight(store)
    assert [r for r in in_flight if r[2] == socket.gethostname()] == []
