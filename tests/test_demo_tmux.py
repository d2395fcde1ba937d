"""The README's tour of ``opstui demo``, pressed in a real terminal (tmux, 80x24).

The demo runs at 10x; each step waits for the screen to show what the
operator would look for, presses the keys, and checks the screen and the
store: retry the flaky pipeline (``r``), roll web-api back (``b``),
retrain the drifting model (``t``), then quit (``q``) and find nothing left
running.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from opstui.config import load_config
from opstui.demo.layout import read_json
from opstui.store import Store, history
from opstui.store import models as store_models
from opstui.store import status as st
from opstui.store.rows import RunRow
from tests.demo_support import integrity, port_is_closed, processes_of, wait_for
from tests.test_tui_tmux import Tmux

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)"
    ),
]


@pytest.fixture
def term() -> Iterator[Tmux]:
    t = Tmux(f"opstui-demo-{uuid.uuid4().hex[:8]}")
    try:
        yield t
    finally:
        t("kill-server")


def row(screen: str, name: str, pattern: str) -> bool:
    """A row of ``name`` (in any panel) matches ``pattern``."""
    rows = (line.split(f"│ {name} ", 1)[1] for line in screen.splitlines() if f"│ {name} " in line)
    return any(re.match(pattern, r.lstrip()) for r in rows)


def select(term: Tmux, name: str) -> None:
    """Put the cursor on ``name`` with ``:`` (rows move as their status changes)."""
    term.keys(":")
    term("send-keys", "-t", term.session, "-l", name)
    time.sleep(0.3)
    term.keys("Enter")


def latest(store_path: Path, pipeline: str) -> RunRow:
    with Store(store_path, create=False) as store:
        return history.run_history(store, pipeline, limit=1)[0]


def test_the_tour_in_tmux(tmp_path: Path, term: Tmux) -> None:
    world = tmp_path / "world"
    store = world / "opstui.db"
    command = (
        f"cd {tmp_path} && {sys.executable} -m opstui demo --dir {world} --speed 10; "
        f"echo OPSTUI-EXITED $? > exit.txt"
    )
    term("new-session", "-d", "-x", "80", "-y", "24", "-s", term.session, command)
    screen = term.wait_for(lambda s: "Pipelines (4)" in s and "web-api" in s, "the dashboard")
    assert all(len(line) <= 80 for line in screen.splitlines())

    # 1. The flaky test: billing-worker's test fails, and the demo's policy
    #    (retry-billing-tests) retries it by itself, through the action path.
    def flaky_failed() -> RunRow | None:
        with Store(store, create=False) as db:
            runs = history.run_history(db, "billing-worker", limit=10)
        return next((r for r in runs if r.failed_stage is not None
                     and r.failed_stage.name == "test"), None)  # fmt: skip

    flaky = wait_for(flaky_failed, "the flaky test to fail")

    def retried() -> RunRow | None:
        with Store(store, create=False) as db:
            runs = history.run_history(db, "billing-worker", limit=10)
        return next((r for r in runs if r.parent_run_id == flaky.id and r.status == st.SUCCEEDED),
                    None)  # fmt: skip

    retry = wait_for(retried, "the policy's retry to pass")
    assert (retry.trigger, retry.attempt, retry.actor) == (
        "retry", 2, "policy:retry-billing-tests",
    )  # fmt: skip
    term.wait_for(lambda s: row(s, "billing-worker", r"\S+ +succeeded "), "billing-worker green")

    # 2. The error-rate spike: web-api's release burns the SLO. Roll it back.
    term.wait_for(lambda s: row(s, "web-api", "burning "), "web-api burning")
    select(term, "web-api")
    term.keys("b")
    term.wait_for(lambda s: "production: web-api 1.15.1 -> 1.14.10" in s, "the rollback's plan")
    term.keys("y")
    term.wait_for(lambda s: "rollback web-api: run" in s, "the rollback starting")

    def rolled_back() -> bool:
        with Store(store, create=False) as db:
            deployments = store_models.deployment_history(db, "web-api", "production", limit=20)
        return any(d.action == "rollback" and d.version == "1.14.10" for d in deployments)

    wait_for(rolled_back, "the rollback deployment")

    # 3. The drift: fraud's serving data moved away from v5's training data. Retrain.
    term.wait_for(lambda s: row(s, "fraud", r"prod:5 +stag:6 +[5-9]\d% "), "drift")
    # The ring grows for 90 demo seconds; trained before its height, the new
    # version would see some drift come back, as it would in production.
    wait_for(lambda: read_json(world / "world" / "traffic.json", {}).get("level") == 1.0,
             "the fraud ring at its height")  # fmt: skip
    select(term, "fraud")  # the first match is the pipeline that trains it
    term.keys("t")
    term.wait_for(lambda s: "Retrain fraud in PRODUCTION?" in s, "the retrain's plan")
    term.keys("y")
    screen = term.wait_for(
        lambda s: row(s, "fraud", r"prod:7 +stag:6 +0% "), "v7 promoted, no drift",
        timeout=60,
    )  # fmt: skip
    with Store(store, create=False) as db:
        v7 = next(v for v in store_models.model_versions(db, "fraud") if v.version == "7")
    assert v7.status == "production" and v7.gate is not None and v7.gate["passed"]

    # 4. Quit: everything the demo started stops.
    port = int(load_config(world / "opstui.toml").endpoints["web-api"].url.split(":")[2][:-8])
    term.keys("q")
    exit_file = tmp_path / "exit.txt"
    wait_for(exit_file.exists, "the demo to exit", timeout=40)
    assert exit_file.read_text().strip() == "OPSTUI-EXITED 0"
    assert processes_of(world) == []
    assert port_is_closed(port)
    assert integrity(store) == "ok"


def test_a_hangup_ends_the_demo_through_its_cleanup(tmp_path: Path, term: Tmux) -> None:
    """The terminal goes away (an SSH session dropped, the tmux pane killed):
    the demo stops its world, cancels its runs and closes its service, and
    nothing stays behind writing into the store (``tui/driver.py``)."""
    world = tmp_path / "world"
    command = f"cd {tmp_path} && exec {sys.executable} -m opstui demo --dir {world} --speed 10"
    started = time.time()
    term("new-session", "-d", "-x", "80", "-y", "24", "-s", term.session, command)
    term.wait_for(lambda s: "Pipelines (4)" in s, "the dashboard")
    port = int(load_config(world / "opstui.toml").endpoints["web-api"].url.split(":")[2][:-8])
    assert processes_of(world)
    term("kill-server")  # SIGHUP to the pane's process, its terminal gone
    wait_for(lambda: processes_of(world) == [], "every process of the demo to end", timeout=30)
    assert port_is_closed(port)
    assert integrity(world / "opstui.db") == "ok"
    with Store(world / "opstui.db", create=False) as db:
        pipelines = ("web-api", "billing-worker", "fraud-model", "churn-model")
        runs = [r for p in pipelines for r in history.run_history(db, p, limit=5)]
    # What the world started (the seeded history has a run whose host went quiet).
    running = [r for r in runs if r.status in st.ACTIVE and r.created_at >= started]
    assert running == []  # cancelled by its cleanup, not left running
