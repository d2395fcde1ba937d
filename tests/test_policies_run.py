"""Policies acting for real: a failed run retried by `opstui policies run`
through the operator's path (audited as policy:NAME, the retry a real run),
one evaluator per store, the daily cap handing over, pause, approval."""

from __future__ import annotations

import json
import time
from contextlib import closing
from pathlib import Path

import pytest

from opstui.config import load_config
from opstui.policies.evaluate import Evaluator
from opstui.store import Store, history
from opstui.store import policies as sp
from opstui.store import status as st
from opstui.store.actions import list_actions
from opstui.views.snapshot import SnapshotReader

from .conftest import run_cli
from .test_actions import FLAKY, failed_run, trace
from .test_runner import write_config

RETRY = """
[policies.retry-web]
trigger = "run_failed"
pipeline = "web"
stages = ["test"]
action = "retry"
cooldown = "90s"
"""


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    write_config(tmp_path, FLAKY + RETRY)
    return tmp_path


def finished(folder: Path, run_id: int, deadline: float = 30.0) -> str:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with Store(folder / "ops.db") as store:
            run = history.get_run(store, run_id)
        if run.status not in st.ACTIVE:
            return run.status
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


def test_a_failed_run_is_retried_by_the_policy_through_the_audited_path(ops: Path) -> None:
    first = failed_run(ops)
    (ops / "pass").touch()
    result = run_cli("policies", "run", "--once", cwd=ops)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith(f"policy retry-web: acted: run {first} of web failed at test: retry web")
    retry_id = int(line.rsplit("run ", 1)[1])
    assert finished(ops, retry_id) == st.SUCCEEDED
    assert trace(ops) == ["test", "deploy production"]  # resumed at the failed stage
    with Store(ops / "ops.db") as store:
        retry = history.get_run(store, retry_id)
        action = list_actions(store, limit=1)[0]
        decision = sp.decisions(store, since=0)[-1]
    assert (retry.trigger, retry.parent_run_id) == ("retry", first)
    assert (action.actor, action.action, action.run_id) == ("policy:retry-web", "retry", retry_id)
    assert (decision.verdict, decision.run_id, decision.action_id) == ("acted", retry_id, action.id)
    # Evaluated again: the fault is settled, the run succeeded: nothing more.
    again = run_cli("policies", "run", "--once", cwd=ops)
    assert again.returncode == 0 and again.stdout == "", again.stdout
    log = run_cli("policies", "log", "--json", cwd=ops)
    assert [d["verdict"] for d in json.loads(log.stdout)] == ["acted"]


def test_one_evaluator_per_store_acts(ops: Path) -> None:
    failed_run(ops)
    config = load_config(ops / "opstui.toml")
    one = Evaluator(config, holder="host-a:1:policies")
    two = Evaluator(config, holder="host-b:2:policies")
    with Store(ops / "ops.db") as store, closing(SnapshotReader(ops / "ops.db", config)) as reader:
        snap = reader.snapshot()
        first = one.step(store, snap)
        second = two.step(store, snap)
    assert [d.verdict for d in first.decisions] == ["acted"]
    assert second.decisions == [] and second.held_by == "host-a:1:policies"
    with Store(ops / "ops.db") as store:
        assert [a.actor for a in list_actions(store, limit=5)].count("policy:retry-web") == 1


def test_cooldown_and_the_daily_cap_then_a_human(ops: Path) -> None:
    """Each retry fails again (no pass file): retried, held in its cooldown,
    retried until the cap of 3 a day, then held for a human."""
    write_config(ops, FLAKY + RETRY.replace('"90s"', '"1s"'))
    config = load_config(ops / "opstui.toml")
    failed_run(ops)
    evaluator = Evaluator(config, holder="h:1:policies")
    verdicts: list[str] = []
    for _ in range(12):
        with (
            Store(ops / "ops.db") as store,
            closing(SnapshotReader(ops / "ops.db", config)) as reader,
        ):
            step = evaluator.step(store, reader.snapshot())
        for d in step.decisions:
            verdicts.append(d.verdict)
            if d.verdict == "acted":
                assert finished(ops, int(d.why.rsplit("run ", 1)[1])) == st.FAILED
        if verdicts.count("held") and "a human decides" in step.decisions[-1].why:
            break
        time.sleep(1.1)
    assert verdicts.count("acted") == 3, verdicts
    with Store(ops / "ops.db") as store:
        last = sp.decisions(store, since=0)[-1]
        assert last.verdict == "held" and "acted 3 times in 24h (daily_cap): a human decides" in (
            last.why
        )


def test_pause_holds_and_is_audited_with_who(ops: Path) -> None:
    failed_run(ops)
    paused = run_cli("policies", "pause", "--reason", "incident 42", cwd=ops)
    assert (
        paused.returncode == 0 and "paused by" in paused.stdout and "incident 42" in paused.stdout
    )
    held = run_cli("policies", "run", "--once", cwd=ops)
    assert "held" in held.stdout and "policies are paused" in held.stdout
    listed = run_cli("policies", "list", cwd=ops)
    assert listed.stdout.startswith("PAUSED by ") and "incident 42" in listed.stdout
    assert run_cli("policies", "resume", cwd=ops).returncode == 0
    acted = run_cli("policies", "run", "--once", cwd=ops)
    assert "acted" in acted.stdout, acted.stdout


def test_approval_is_asked_once_answered_once_and_audited(ops: Path) -> None:
    write_config(
        ops, FLAKY + RETRY.replace('action = "retry"', 'action = "retry"\napproval = true')
    )
    first = failed_run(ops)
    asked = run_cli("policies", "run", "--once", cwd=ops)
    assert "awaiting approval" in asked.stdout
    assert run_cli("policies", "run", "--once", cwd=ops).stdout == ""  # asked once
    waiting = json.loads(run_cli("policies", "list", "--json", cwd=ops).stdout)["waiting"]
    assert len(waiting) == 1 and f"run {first}" in waiting[0]["why"]
    request = str(waiting[0]["id"])
    (ops / "pass").touch()
    approved = run_cli("policies", "approve", request, "--reason", "looks flaky", cwd=ops)
    assert approved.returncode == 0, approved.stderr
    assert "acted" in approved.stdout and "approved by" in approved.stdout
    again = run_cli("policies", "reject", request, cwd=ops)
    assert again.returncode == 2 and f"request {request} was answered already" in again.stderr
    with Store(ops / "ops.db") as store:
        verdicts = [d.verdict for d in sp.decisions(store, since=0)]
    assert verdicts == ["awaiting_approval", "approved", "acted"]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("enabled = false", "is disabled in the config"),
        ('mode = "shadow"', "is in shadow mode in the config"),
    ],
)
def test_a_request_the_config_no_longer_allows_is_not_approved(
    ops: Path, change: str, said: str
) -> None:
    """Asked, then the operator's config changed (shadow mode, disabled): an
    approval would act against it, so it is refused in one line; a rejection
    still closes the request."""
    asking = FLAKY + RETRY.replace('action = "retry"', 'action = "retry"\napproval = true')
    write_config(ops, asking)
    first = failed_run(ops)
    assert "awaiting approval" in run_cli("policies", "run", "--once", cwd=ops).stdout
    request = str(
        json.loads(run_cli("policies", "list", "--json", cwd=ops).stdout)["waiting"][0]["id"]
    )
    write_config(ops, asking + change + "\n")
    refused = run_cli("policies", "approve", request, cwd=ops)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"request {request} cannot be approved" in refused.stderr and said in refused.stderr
    assert f"opstui policies reject {request}" in refused.stderr
    with Store(ops / "ops.db") as store:
        assert [d.verdict for d in sp.pending(store)] == ["awaiting_approval"]
        assert history.run_history(store, "web", limit=1)[0].id == first  # nothing ran
    assert run_cli("policies", "reject", request, cwd=ops).returncode == 0


def test_bad_input_is_one_line_exit_2(ops: Path) -> None:
    failed_run(ops)
    for args, words in [
        (["policies", "approve", "999"], "no request for approval with id 999"),
        (["policies", "log", "--since", "soon"], "is not a span"),
    ]:
        result = run_cli(*args, cwd=ops)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert words in result.stderr and "Traceback" not in result.stderr
    write_config(ops, FLAKY)
    none = run_cli("policies", "run", "--once", cwd=ops)
    assert none.returncode == 2 and "no policies are configured" in none.stderr


def test_a_rejected_request_does_nothing_and_is_not_asked_again(ops: Path) -> None:
    write_config(
        ops, FLAKY + RETRY.replace('action = "retry"', 'action = "retry"\napproval = true')
    )
    first = failed_run(ops)
    assert "awaiting approval" in run_cli("policies", "run", "--once", cwd=ops).stdout
    request = str(
        json.loads(run_cli("policies", "list", "--json", cwd=ops).stdout)["waiting"][0]["id"]
    )
    rejected = run_cli("policies", "reject", request, "--reason", "real bug, not a flake", cwd=ops)
    assert rejected.returncode == 0 and "rejected by" in rejected.stdout
    assert "real bug, not a flake" in rejected.stdout
    assert run_cli("policies", "run", "--once", cwd=ops).stdout == ""  # the fault stays settled
    with Store(ops / "ops.db") as store:
        assert [d.verdict for d in sp.decisions(store, since=0)] == [
            "awaiting_approval", "rejected",
        ]  # fmt: skip
        assert history.run_history(store, "web", limit=1)[0].id == first  # no retry ran
        assert sp.pending(store) == []


def test_an_act_that_cannot_start_is_refused_in_the_trail_not_acted(
    ops: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim is written before acting; if the action then fails to start
    (the runner cannot be spawned), the trail says refused, with why."""
    import opstui.policies.evaluate as ev

    def no_fork(*_args: object, **_kw: object) -> object:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(ev, "act", no_fork)
    failed_run(ops)
    config = load_config(ops / "opstui.toml")
    with Store(ops / "ops.db") as store, closing(SnapshotReader(ops / "ops.db", config)) as reader:
        step = Evaluator(config, holder="h:1:policies").step(store, reader.snapshot())
        rows = sp.decisions(store, since=0)
    assert [d.verdict for d in step.decisions] == ["refused"]
    assert [r.verdict for r in rows] == ["refused"]
    assert "failed to start: OSError: [Errno 12] Cannot allocate memory" in rows[0].why


NOTIFY = """
[policies.tell-web]
trigger = "run_failed"
pipeline = "web"
action = "notify"
"""


def test_a_notify_policy_sends_to_alertmanager(ops: Path, alertmanager: str) -> None:
    """With [notify] alertmanager the notice goes there, labelled; down, the
    decision says it was not sent (and nothing else is pretended)."""
    import uuid

    from opstui.sources.alertmanager import firing_alerts
    from tests.processes import free_port

    run = uuid.uuid4().hex[:8]
    notify = f'[notify]\nalertmanager = "{alertmanager}"\n[notify.labels]\ntest_run = "{run}"\n'
    write_config(ops, FLAKY + NOTIFY + notify)
    first = failed_run(ops)
    said = run_cli("policies", "run", "--once", cwd=ops)
    assert said.returncode == 0 and "policy tell-web: acted" in said.stdout, said.stdout
    ours = [a for a in firing_alerts(alertmanager) if a["labels"].get("test_run") == run]
    assert len(ours) == 1
    labels = ours[0]["labels"]
    assert (labels["alertname"], labels["policy"], labels["subject"]) == (
        "OpstuiPolicy", "tell-web", "web",
    )  # fmt: skip
    assert f"run {first} of web failed at test" in ours[0]["annotations"]["summary"]

    down = f"http://127.0.0.1:{free_port()}"
    write_config(ops, FLAKY + NOTIFY.replace("tell-web", "tell-again") +
                 notify.replace(alertmanager, down))  # fmt: skip
    refused = run_cli("policies", "run", "--once", cwd=ops)
    assert "policy tell-again: refused" in refused.stdout, refused.stdout
