"""The console's side of the policies: it evaluates them (a worker), tells
what acts or waits, and the Policies screen (P) approves, rejects and pauses,
each audited as the operator."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Static

from opstui.config import load_config
from opstui.policies.evaluate import LEASE
from opstui.store import Store
from opstui.store import policies as sp
from opstui.store.actions import list_actions
from opstui.store.endpoints import acquire_leases
from opstui.tui.app import OpstuiApp
from opstui.tui.screens.modals import ApproveScreen
from opstui.tui.screens.policies import PoliciesScreen
from tests.test_actions import FLAKY, failed_run
from tests.test_policies_run import RETRY
from tests.test_runner import write_config
from tests.test_tui import settle, text_of, until_modal


def _said(app: OpstuiApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def _until(
    pilot: Pilot[None], check: Callable[[], object], what: str, deadline: float = 20.0
) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"never: {what}")


async def test_the_console_asks_and_the_operator_approves(tmp_path: Path) -> None:
    write_config(tmp_path, FLAKY + RETRY + "approval = true\n")
    failed = failed_run(tmp_path)
    (tmp_path / "pass").touch()
    config = load_config(tmp_path / "opstui.toml")
    app = OpstuiApp(tmp_path / "ops.db", config, poll=True, refresh=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await _until(pilot, lambda: any("awaiting approval" in s for s in _said(app)),
                     "the request told")  # fmt: skip
        await pilot.press("P")
        await _until(pilot, lambda: isinstance(app.screen, PoliciesScreen), "the screen")
        screen = app.screen
        assert isinstance(screen, PoliciesScreen)
        await _until(pilot, lambda: screen.approvals.keys and screen.approvals.keys[0] != "none",
                     "the request listed")  # fmt: skip
        assert f"run {failed} of web failed at test" in text_of(app)
        screen.approvals.focus()
        await pilot.press("y")
        await until_modal(pilot, ApproveScreen)
        assert "Approve policy retry-web?" in text_of(app)
        await pilot.press("y")
        await _until(pilot, lambda: any("acted" in s and "approved by" in s for s in _said(app)),
                     "the approval acted on")  # fmt: skip
        await pilot.press("X")
        await _until(pilot, lambda: any("policies paused by" in s for s in _said(app)), "paused")
    with Store(tmp_path / "ops.db") as store:
        rows = sp.decisions(store, since=0)
        action = list_actions(store, limit=1)[0]
    assert [r.verdict for r in rows] == ["awaiting_approval", "approved", "acted", "paused"]
    assert rows[1].decided_by == app.actor  # approved by the operator, acted as the policy
    assert action.actor == "policy:retry-web" and action.action == "retry"


async def test_a_read_only_console_evaluates_nothing_and_answers_nothing(tmp_path: Path) -> None:
    write_config(tmp_path, FLAKY + RETRY)
    failed_run(tmp_path)
    config = load_config(tmp_path / "opstui.toml")
    app = OpstuiApp(tmp_path / "ops.db", config, poll=True, read_only=True, refresh=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, ticks=3)
        await pilot.press("P")
        await _until(pilot, lambda: isinstance(app.screen, PoliciesScreen), "the screen")
        await settle(pilot)
        # Nobody else evaluates either: said, since nothing else shows it.
        note = app.screen.query_one("#note", Static)
        await _until(pilot, lambda: "NOT EVALUATED" in str(note.render()), "nobody evaluates")
        said = str(note.render())
        assert "not here (read-only)" in said and "opstui policies run" in said
        assert "y, n and X are writes" in said
        await pilot.press("X")
        await _until(pilot, lambda: any("read-only session" in s for s in _said(app)), "refused")
        # An evaluator elsewhere takes the store's lease: named instead.
        with Store(tmp_path / "ops.db") as store:
            acquire_leases(store, [LEASE], holder="ci-runner-3:4211:policies", ttl=60)
        await _until(pilot, lambda: "evaluated by ci-runner-3:4211" in str(note.render()),
                     "the other evaluator named")  # fmt: skip
    with Store(tmp_path / "ops.db") as store:
        assert sp.decisions(store, since=0) == []


async def test_a_console_that_evaluates_says_so(tmp_path: Path) -> None:
    write_config(tmp_path, FLAKY + RETRY)
    failed_run(tmp_path)
    config = load_config(tmp_path / "opstui.toml")
    app = OpstuiApp(tmp_path / "ops.db", config, poll=True, refresh=0.5)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, ticks=3)
        await pilot.press("P")
        await _until(pilot, lambda: isinstance(app.screen, PoliciesScreen), "the screen")
        note = app.screen.query_one("#note", Static)
        await _until(pilot, lambda: "evaluated by this console" in str(note.render()), "said")
        assert "y approves" in str(note.render())


async def test_the_audit_trail_holds_the_decisions_not_to_act(tmp_path: Path) -> None:
    write_config(tmp_path, FLAKY + RETRY + "approval = true\n")
    failed_run(tmp_path)
    config = load_config(tmp_path / "opstui.toml")
    with Store(tmp_path / "ops.db") as store:
        sp.record(store, {"policy": "*", "target": "*", "verdict": "paused",
                          "why": "paused by alice: incident 42"}, by="alice")  # fmt: skip
        sp.record(store, {"policy": "retry-web", "target": "pipeline:web", "fault": "run:1",
                          "verdict": "awaiting_approval", "action": "retry",
                          "environment": "production",
                          "why": "run 1 of web failed at test: retry web waits for an "
                                 "operator's approval"}, by="h:1:policies")  # fmt: skip
    app = OpstuiApp(tmp_path / "ops.db", config, poll=False)
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        shown = text_of(app)
        assert "policy:retry-web" in shown and "awaiting approval" in shown
        assert "alice" in shown and "every policy" in shown and "paused" in shown
