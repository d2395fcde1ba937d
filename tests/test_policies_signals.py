"""What each trigger sees: a burn after a deploy of the served service (and
not without one, nor with its source dark), a drift streak (and a model never
checked), a schedule's slot, a failure's freshness and stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from opstui.analysis.rates import BurnAlert
from opstui.config.load import parse_config
from opstui.policies.decide import CLEAR, INCONCLUSIVE, MET
from opstui.policies.signals import Facts, Streak, gather, readings
from opstui.store import Store
from opstui.store.rows import DeploymentRow
from opstui.views.endpoints import EndpointReport
from opstui.views.snapshot import Snapshot

NOW = 1_800_000_000.0
CONFIG = parse_config(
    """
[pipelines.web-api]
kind = "devops"
environment = "production"
stages = [{ name = "test", run = ["true"] }]
[pipelines.fraud-model]
kind = "mlops"
environment = "production"
stages = [{ name = "train", run = ["true"] }]
[models.fraud]
pipeline = "fraud-model"
[endpoints.web]
url = "http://127.0.0.1:9/metrics"
kind = "health"
service = "web-api"
[policies.rb]
trigger = "burn"
endpoint = "web"
within = "30m"
action = "rollback"
[policies.rt]
trigger = "drift"
model = "fraud"
windows = 3
action = "retrain"
[policies.nightly]
trigger = "schedule"
every = "24h"
model = "fraud"
action = "retrain"
"""
)
PAGE = BurnAlert("page", "1h", "5m", 14.4, 20.1, 150.0, True, 3600, 300, True)
QUIET = BurnAlert("page", "1h", "5m", 14.4, 0.5, 0.2, False, 3600, 300, True)


def report(state: str, *alerts: BurnAlert) -> EndpointReport:
    return EndpointReport("web", "health", "http://127.0.0.1:9/metrics", state, None, NOW, NOW,
                          None, None, 0.999, alerts=alerts,
                          served=("service", "web-api", "production"))  # fmt: skip


def snap(*endpoints: EndpointReport, problems: dict[str, str] | None = None) -> Snapshot:
    return Snapshot(NOW, [], list(endpoints), [], [], problems or {}, {})


def deploy(at: float) -> DeploymentRow:
    return DeploymentRow(57, "production", "service", "web-api", "1.15.1", "succeeded", "deploy",
                         "ci", at, None, None, "1.14.10", None)  # fmt: skip


def see(name: str, s: Snapshot, facts: Facts) -> tuple[str, str | None, str]:
    (r,) = readings(CONFIG.policies[name], s, facts, CONFIG)
    return r.state, r.fault, r.why


NO_FACTS = Facts({}, {}, frozenset())


def test_a_burn_soon_after_a_deploy_of_what_the_endpoint_serves() -> None:
    recent = Facts({("web-api", "production"): deploy(NOW - 240)}, {}, frozenset())
    state, fault, why = see("rb", snap(report("burning", PAGE)), recent)
    assert (state, fault) == (MET, "burn:web:deploy:57")
    assert why == "web burning 20.1x over 1h after deploy of web-api 1.15.1 in production"
    # The same burn, the deploy long before: not a bad release.
    old = Facts({("web-api", "production"): deploy(NOW - 7200)}, {}, frozenset())
    assert see("rb", snap(report("burning", PAGE)), old)[0] == CLEAR
    assert see("rb", snap(report("burning", PAGE)), NO_FACTS)[0] == CLEAR
    assert see("rb", snap(report("up", QUIET)), recent)[0] == CLEAR


def test_a_dark_source_or_an_uncovered_window_is_inconclusive() -> None:
    recent = Facts({("web-api", "production"): deploy(NOW - 240)}, {}, frozenset())
    for state in ("down", "stale", "unknown"):
        got = see("rb", snap(report(state, PAGE)), recent)
        assert got[0] == INCONCLUSIVE and f"web is {state}" in got[2]
    partial = BurnAlert("page", "1h", "5m", 14.4, None, None, False, 600, 300, False)
    assert see("rb", snap(report("up", partial)), recent)[0] == INCONCLUSIVE
    assert see("rb", snap(), recent)[0] == INCONCLUSIVE  # never polled
    failed = snap(report("burning", PAGE), problems={"endpoints": "the store is locked"})
    assert see("rb", failed, recent)[0] == INCONCLUSIVE


def test_a_drift_streak_is_one_fault_and_a_model_never_checked_is_inconclusive() -> None:
    streak = Facts({}, {"fraud": Streak(4, NOW - 3600)}, frozenset())
    state, fault, why = see("rt", snap(), streak)
    assert (state, fault) == (MET, f"drift:fraud:{NOW - 3600:.0f}")
    assert why == "fraud's dataset drifted in 4 checks in a row"
    assert see("rt", snap(), Facts({}, {"fraud": None}, frozenset()))[0] == CLEAR
    assert see("rt", snap(), NO_FACTS)[0] == INCONCLUSIVE


def test_a_schedule_is_met_once_a_slot() -> None:
    one = see("nightly", snap(), NO_FACTS)
    later = readings(CONFIG.policies["nightly"], snap()._replace(at=NOW + 3600), NO_FACTS, CONFIG)
    next_day = readings(CONFIG.policies["nightly"], snap()._replace(at=NOW + 86400), NO_FACTS,
                        CONFIG)  # fmt: skip
    assert one[0] == MET and one[1] == f"schedule:{int(NOW // 86400)}"
    assert later[0].fault == one[1] and next_day[0].fault != one[1]


def test_the_flake_ledger_is_read_once_a_step_even_when_nothing_is_flaky(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every flaky_only policy needs the same ledger (a store-wide read): read
    once, also when it came back empty (an empty set once meant "not read yet")."""
    from opstui.policies import flaky

    config = parse_config(
        "".join(
            f'[policies.r{i}]\ntrigger = "run_failed"\npipeline = "p{i}"\naction = "retry"\n'
            "flaky_only = true\n"
            for i in range(3)
        )
    )
    reads: list[float] = []

    def counted(store: Store, *, now: float) -> frozenset[tuple[str, str]]:
        reads.append(now)
        return frozenset()

    monkeypatch.setattr(flaky, "flaky_stages", counted)
    with Store(tmp_path / "s.db") as store:
        facts = gather(store, config, config.policies.values(), snap())
    assert reads == [NOW] and facts.flaky == frozenset()
