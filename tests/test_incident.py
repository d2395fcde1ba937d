"""``opstui incident`` (the incident flow, part 7): the timeline of a window
with the actions taken and their outcomes, oldest first, cut to a service;
Markdown for the postmortem that no data can break; bad input one line,
exit 2."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from opstui.store import Store
from opstui.store import status as st
from opstui.store.actions import record_action
from opstui.store.alerts import Wanted, settle
from opstui.store.deployments import add_deployment
from opstui.store.runs import create_run, finish_run

from .conftest import run_cli


def _incident(path: Path) -> None:
    now = time.time()
    clock = [now - 3600]

    def at() -> float:
        return clock[0]

    with Store(path, clock=at) as store:
        run, _ = create_run(store, "web-api", stages=["deploy"])
        finish_run(store, run, status=st.FAILED, message="rollout failed | 5xx <b>8%</b>\x1b[2J")
        clock[0] += 60
        page = Wanted("burn:web:page", "burn", "web", "page", "web-api", "production",
                      "web burning its error budget")  # fmt: skip
        settle(store, [page], by="console")
        clock[0] += 120
        record_action(store, actor="dana@ops", action="rollback", target="web-api", plan={},
                      environment="production", status="succeeded",
                      outcome="run 9 succeeded")  # fmt: skip
        with store.write() as tx:
            add_deployment(tx, environment="production", target="web-api", version="41",
                           action="rollback", deployed_at=at(), actor="dana@ops")  # fmt: skip
        clock[0] += 600
        settle(store, [], by="console")
        other, _ = create_run(store, "etl", stages=["load"])
        finish_run(store, other, status=st.FAILED, message="disk full")


def test_the_postmortem_timeline_reads_forward_with_actions_and_alerts(tmp_path: Path) -> None:
    _incident(tmp_path / "ops.db")
    result = run_cli("incident", "--since", "2h", "--store", str(tmp_path / "ops.db"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Incident timeline: every service, ")
    assert "1 alert fired, 1 resolved; 2 runs failed, 0 recovered" in lines[1]
    body = "\n".join(lines[3:])
    order = ["web-api #", "[page] firing", "dana@ops rollback web-api", "rolled back",
             "[page] resolved after 12m", "etl #"]  # fmt: skip
    positions = [body.index(s) for s in order]
    assert positions == sorted(positions)  # oldest first
    assert "\x1b" not in result.stdout  # escaped, not obeyed
    assert "fired for 12m" in result.stdout


def test_a_service_cuts_it_and_markdown_cannot_be_broken(tmp_path: Path) -> None:
    _incident(tmp_path / "ops.db")
    result = run_cli("incident", "--service", "web-api", "--markdown",
                     "--store", str(tmp_path / "ops.db"), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("## Incident timeline: web-api, ")
    assert "etl" not in out
    rows = [line for line in out.splitlines() if line.startswith("| 20")]
    assert len(rows) == 5
    for row in rows:  # six cells in every row, whatever the data held
        assert row.replace("\\|", "").count("|") == 7
    assert "\\<b>8%\\</b>" in out  # no raw HTML reaches a rendered postmortem
    assert not re.search(r"(?<!\\)<", out)
    assert "### Actions taken" in out and "dana@ops rollback web-api in production succeeded" in out


def test_json_carries_events_and_alerts(tmp_path: Path) -> None:
    _incident(tmp_path / "ops.db")
    result = run_cli("incident", "--json", "--store", str(tmp_path / "ops.db"), cwd=tmp_path)
    doc = json.loads(result.stdout)
    assert [e["kind"] for e in doc["events"]][:2] == ["run", "alert"]
    (alert,) = doc["alerts"]
    assert alert["service"] == "web-api" and alert["resolved_at"] is not None


def test_bad_windows_are_one_line_and_exit_2(tmp_path: Path) -> None:
    _incident(tmp_path / "ops.db")
    store = ["--store", str(tmp_path / "ops.db")]
    for args, words in [
        (["--since", "3x"], "--since '3x' is neither a span nor a time"),
        (["--since", "99d"], "at most 35d"),
        (["--since", "2026-12-05T06:00:00"], "neither a span nor a time"),
        (["--since", "1h", "--until", "2h"], "--until is not after --since"),
    ]:
        result = run_cli("incident", *args, *store, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and words in result.stderr, result.stderr


def test_an_empty_window_says_so(tmp_path: Path) -> None:
    _incident(tmp_path / "ops.db")
    window = ["--since", "2026-01-01T00:00:00Z", "--until", "2026-01-02T00:00:00Z"]
    result = run_cli("incident", *window, "--store", str(tmp_path / "ops.db"), cwd=tmp_path)
    assert result.returncode == 0
    assert "Nothing happened in this window." in result.stdout
