"""opstui's alerts reach a real Alertmanager (the incident flow, part 4):
a paging burn is sent with its service, environment and severity, kept
firing while it burns (and while it cannot be judged), resolved there when
it clears; the store keeps both events for the timeline; an Alertmanager
that is down loses nothing."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from opstui.config import Config
from opstui.notify.judge import judge
from opstui.notify.send import Notifier
from opstui.sources.alertmanager import AlertmanagerError, firing_alerts
from opstui.store import Store
from opstui.store import status as st
from opstui.store.alerts import open_alerts
from opstui.store.timeline import timeline
from opstui.views.snapshot import Snapshot, SnapshotReader

from .alertmanager_server import unique
from .processes import free_port
from .test_burn_history import CONFIG, NOW, config
from .test_recovering import _record

SERVED = """
[pipelines.web-api]
kind = "devops"
environment = "production"
stages = [{ name = "deploy", run = ["true"] }]
"""


def _config(tmp_path: Path, url: str, run: str) -> Config:
    text = SERVED + CONFIG.format(interval=15) + 'service = "web-api"\n'
    text += f'[notify]\nalertmanager = "{url}"\n[notify.labels]\ntest_run = "{run}"\n'
    return config(tmp_path, text)


def _snapshot(tmp_path: Path, cfg: Config) -> Snapshot:
    reader = SnapshotReader(tmp_path / "ops.db", cfg, clock=lambda: NOW)
    try:
        return reader.snapshot()
    finally:
        reader.close()


def _ours(url: str, run: str) -> list[dict[str, Any]]:
    return [a for a in firing_alerts(url) if a["labels"].get("test_run") == run]


def _cleared(snap: Snapshot) -> Snapshot:
    """The same board with every burn condition evaluated and quiet."""
    (web,) = snap.endpoints
    quiet = tuple(dataclasses.replace(a, firing=False) for a in web.alerts)
    return snap._replace(endpoints=[dataclasses.replace(web, state=st.UP, alerts=quiet)])


def test_a_paging_burn_fires_in_alertmanager_and_resolves_there(
    tmp_path: Path, alertmanager: str
) -> None:
    run = unique()
    _record(tmp_path, clean_for=0)  # every request failing for seven hours
    cfg = _config(tmp_path, alertmanager, run)
    snap = _snapshot(tmp_path, cfg)
    notifier = Notifier(cfg, by="console-1")
    with Store(tmp_path / "ops.db", clock=lambda: NOW) as store:
        step = notifier.step(store, snap)
        # Seven hours of history: the ticket's 1-day window cannot be judged yet.
        assert [a.key for a in step.settled.fired] == ["burn:web:page"]
        assert "burn:web:ticket" in judge(snap, cfg).undecided
        sent = {a["labels"]["severity"]: a for a in _ours(alertmanager, run)}
        assert set(sent) == {"page"}
        labels = sent["page"]["labels"]
        assert labels["alertname"] == "OpstuiErrorBudgetBurn"
        assert (labels["service"], labels["environment"], labels["subject"]) == (
            "web-api", "production", "web"
        )  # fmt: skip
        assert sent["page"]["annotations"]["summary"].startswith("web burning its error budget: ")

        # The endpoint's source goes down: not judged, not resolved.
        (web,) = snap.endpoints
        dark = snap._replace(endpoints=[dataclasses.replace(web, state=st.DOWN)])
        assert notifier.step(store, dark).settled.resolved == []
        assert len(_ours(alertmanager, run)) == 1

        # Judged and quiet: resolved in the store and in Alertmanager.
        step = notifier.step(store, _cleared(snap))
        assert [a.key for a in step.settled.resolved] == ["burn:web:page"]
        assert _ours(alertmanager, run) == []
        assert open_alerts(store) == []
        whats = [(e.what, e.service) for e in timeline(store, since=NOW - 60, kinds=["alert"])]
        assert whats == [("resolved", "web-api"), ("firing", "web-api")]


def test_an_alertmanager_that_is_down_loses_no_alert(tmp_path: Path, alertmanager: str) -> None:
    run = unique()
    _record(tmp_path, clean_for=0)
    down = f"http://127.0.0.1:{free_port()}"
    cfg = _config(tmp_path, down, run)
    snap = _snapshot(tmp_path, cfg)
    with Store(tmp_path / "ops.db", clock=lambda: NOW) as store:
        failed = Notifier(cfg, by="c").step(store, snap)
        assert isinstance(failed.error, AlertmanagerError)
        assert "\n" not in str(failed.error) and "127.0.0.1" in str(failed.error)
        assert [a.key for a in failed.settled.fired] == ["burn:web:page"]
        assert len(open_alerts(store)) == 1  # the store settled first
        # Alertmanager back (another URL here): the next console's first step sends them.
        back = _config(tmp_path, alertmanager, run)
        Notifier(back, by="c").step(store, snap)
        assert len(_ours(alertmanager, run)) == 1


def test_without_alertmanager_the_store_still_keeps_the_alerts(tmp_path: Path) -> None:
    _record(tmp_path, clean_for=0)
    cfg = config(tmp_path, CONFIG.format(interval=15))
    snap = _snapshot(tmp_path, cfg)
    with Store(tmp_path / "ops.db", clock=lambda: NOW) as store:
        step = Notifier(cfg, by="c").step(store, snap)
        assert step.sent == 0 and len(step.settled.open) == 1


def test_a_panel_that_failed_to_read_resolves_nothing(tmp_path: Path) -> None:
    _record(tmp_path, clean_for=0)
    cfg = config(tmp_path, CONFIG.format(interval=15))
    snap = _snapshot(tmp_path, cfg)
    failed = _cleared(snap)._replace(problems={"endpoints": "database is locked"})
    assert judge(failed, cfg).undecided == ["burn:"]
    with Store(tmp_path / "ops.db", clock=lambda: NOW) as store:
        Notifier(cfg, by="c").step(store, snap)
        assert Notifier(cfg, by="c").step(store, failed).settled.resolved == []


async def test_the_console_judges_its_alerts_and_says_when_alertmanager_is_down(
    tmp_path: Path,
) -> None:
    from opstui.tui.app import OpstuiApp

    from .test_tui import settle

    _record(tmp_path, clean_for=0)
    down = f"http://127.0.0.1:{free_port()}"
    cfg = _config(tmp_path, down, unique())
    app = OpstuiApp(tmp_path / "ops.db", cfg, clock=lambda: NOW, poll=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app._poll = True  # judge, without starting a poller against 127.0.0.1:1
        app.refresh_now()
        for _ in range(100):
            await pilot.pause(0.05)
            if "notify" in app.failures:
                break
        assert "Alertmanager http://127.0.0.1" in app.failures["notify"].line
    with Store(tmp_path / "ops.db") as store:
        assert [a.key for a in open_alerts(store)] == ["burn:web:page"]


def test_the_headless_judge_says_each_change_and_a_failure_once(tmp_path: Path) -> None:
    import threading
    import time

    from opstui.notify.send import judge_loop
    from opstui.store.endpoints import Observation, record_observations

    now = time.time()
    requests = errors = 0.0
    obs = []
    for i in range(7 * 240, -1, -1):  # seven hours of a 15 s poll, every request failing
        requests += 10.0
        errors += 10.0
        counters: tuple[tuple[str, dict[str, str], float], ...] = (
            ("requests_total", {}, requests),
            ("errors_total", {}, errors),
        )
        obs.append(Observation("web", "prometheus", "u", now - 15 * i, "up", None, 1.0, counters))
    with Store(tmp_path / "ops.db") as store:
        record_observations(store, obs, holder="test")
    down = f"http://127.0.0.1:{free_port()}"
    cfg = _config(tmp_path, down, unique())
    said: list[str] = []
    stop = threading.Event()
    judge = threading.Thread(
        target=judge_loop, args=(tmp_path / "ops.db", cfg),
        kwargs={"by": "poller", "stop": stop, "every": 0.05, "say": said.append},
    )  # fmt: skip
    judge.start()
    # Until the failure is said, then a few steps more: it must not be said again.
    deadline = time.monotonic() + 10
    while not any(s.startswith("alerts: ") for s in said):
        assert time.monotonic() < deadline, said
        time.sleep(0.02)
    steps_after = time.monotonic() + 0.3  # six steps of 0.05 s
    while time.monotonic() < steps_after:
        time.sleep(0.02)
    stop.set()
    judge.join(5)
    assert said[0].startswith("alert firing: web burning its error budget: ")
    failures = [s for s in said if s.startswith("alerts: ")]
    assert len(failures) == 1 and "Alertmanager http://127.0.0.1:" in failures[0]
    with Store(tmp_path / "ops.db") as store:
        assert [a.key for a in open_alerts(store)] == ["burn:web:page"]
