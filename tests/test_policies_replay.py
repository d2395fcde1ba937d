"""Replay over the bundled sample history: the decisions the policies would
have made, and what the guard rails held back, with nothing written."""

from __future__ import annotations

from pathlib import Path

from opstui.config.load import parse_config
from opstui.policies import replay as rp
from opstui.store import Store
from opstui.store import policies as sp
from tests.tui_support import FROZEN, sample_store

CONFIG = """
[pipelines.web-api]
kind = "devops"
environment = "production"
stages = [{ name = "test", run = ["true"] }]

[policies.retry-web-tests]
trigger = "run_failed"
pipeline = "web-api"
stages = ["test"]
action = "retry"

[policies.retry-flaky-only]
trigger = "run_failed"
flaky_only = true
action = "retry"
mode = "shadow"

[policies.retry-anything]
trigger = "run_failed"
action = "retry"
m_of_n = [3, 5]
daily_cap = 1
"""
DAY = 86400.0


def test_replay_over_the_sample_history(tmp_path: Path) -> None:
    config = parse_config(CONFIG)
    path = sample_store(tmp_path)
    with Store(path, clock=lambda: FROZEN) as store:
        history = rp.load(store, config, list(config.policies.values()), FROZEN - 15 * DAY, FROZEN)
        report = rp.replay(config, config.policies.values(), history,
                           since=FROZEN - 15 * DAY, until=FROZEN)  # fmt: skip
        assert sp.decisions(store, since=0) == []  # nothing written
    acted = [(d.policy, d.fault) for d in report.decisions if d.verdict in ("acted", "would_act")]
    web_tests = [f for p, f in acted if p == "retry-web-tests"]
    # Every failure of web-api at its test stage in the sample, each once.
    assert web_tests == ["run:29", "run:41", "run:53", "run:68", "run:85", "run:111",
                         "run:125", "run:144"]  # fmt: skip
    # Only web-api's test stage passes on retry in the sample (7 of 7): the
    # flaky-only policy would retry exactly those, in shadow mode.
    assert [f for p, f in acted if p == "retry-flaky-only"] == web_tests
    assert {d.verdict for d in report.decisions if d.policy == "retry-flaky-only"} <= {"would_act"}
    # retry-anything: every pipeline, 3 of 5 evaluations, once a day per pipeline.
    anything = report.summary("retry-anything")
    assert anything["acted"] == len([1 for p, _ in acted if p == "retry-anything"]) == 13
    assert anything["daily cap"] == 2 and anything["flap avoided (M of N)"] == 2
    first = next(d for d in report.decisions if d.policy == "retry-anything")
    # Held until 3 of the last 5 evaluations saw it.
    assert first.verdict == "held" and "seen in 1 of the last 5" in first.why


def test_replay_from_the_command_line(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    (tmp_path / "opstui.toml").write_text('store = "demo.db"\n' + CONFIG)
    assert run_cli("import", Path(__file__).parent.parent / "sample_runs", "--shift-to-now",
                   "--store", tmp_path / "demo.db").returncode == 0  # fmt: skip
    out = run_cli("policies", "replay", "--since", "15d", "--policy", "retry-web-tests",
                  cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("replay of the last 15d")
    assert sum("retry-web-tests  would act: run " in line for line in lines) == 8
    assert lines[-1] == "retry-web-tests: 8 would act"
    bad = run_cli("policies", "replay", "--policy", "nope", cwd=tmp_path)
    assert bad.returncode == 2 and "no policy 'nope' to replay" in bad.stderr
