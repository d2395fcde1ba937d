"""A new fault rings the terminal's bell (the incident flow, part 4): not on
the first frame (what a console finds is not news), once per new fault
(another failed run of a failing pipeline is one), never when ``[tui] bell
= false``; a desktop notification through the terminal when asked."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from opstui.config import parse_config
from opstui.store import Store
from opstui.tui.app import OpstuiApp
from opstui.tui.live import desktop_notice

from .test_tui import settle
from .test_tui_tmux import Tmux, tmux  # noqa: F401  (the fixture)
from .test_worst_first import _fail
from .tui_support import FROZEN, config_text, make_app, sample_store


def _app(tmp_path: Path, extra: str = "") -> tuple[Path, OpstuiApp]:
    path = tmp_path / "opstui.toml"
    path.write_text(config_text() + extra)
    store = sample_store(tmp_path)
    return store, make_app(tmp_path, store=store, config=parse_config(path.read_text(), path))


async def test_a_new_failure_rings_once_and_what_was_there_at_launch_never(
    tmp_path: Path,
) -> None:
    store, app = _app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.rings == 0  # churn-model lost, fraud-model failed: found, not news
        with Store(store, clock=lambda: FROZEN) as db:
            _fail(db, "billing-worker")
        await settle(pilot)
        assert app.rings == 1
        await settle(pilot, ticks=2)
        assert app.rings == 1  # still the same fault
        with Store(store, clock=lambda: FROZEN + 5) as db:
            _fail(db, "billing-worker")  # failed again: a new run, a new fault
        await settle(pilot)
        assert app.rings == 2


async def test_no_bell_when_the_config_says_so(tmp_path: Path) -> None:
    store, app = _app(tmp_path, "[tui]\nbell = false\n")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        with Store(store, clock=lambda: FROZEN) as db:
            _fail(db, "billing-worker")
        await settle(pilot)
        assert app.rings == 0


def test_a_desktop_notice_carries_the_fault_escaped() -> None:
    assert desktop_notice("osc9", "web-api burning (page)") == (
        "\x1b]9;opstui: web-api burning (page)\x07"
    )
    assert desktop_notice("osc777", "x") == "\x1b]777;notify;opstui;x\x07"
    assert desktop_notice("none", "x") is None
    hostile = desktop_notice("osc9", "a\x07\x1b]0;pwned\x1b\\b\nc")
    assert hostile is not None
    body = hostile[len("\x1b]9;") : -1]
    assert not any(c in body for c in "\x07\x1b\n")  # one sequence, ended where we end it


def test_the_real_console_in_tmux_writes_a_bel_for_a_new_failure(
    tmp_path: Path,
    tmux: Tmux,  # noqa: F811
) -> None:
    store = sample_store(tmp_path)
    (tmp_path / "opstui.toml").write_text(config_text())
    raw = tmp_path / "pane.out"
    command = f"cd {tmp_path} && {sys.executable} -m opstui --store {store.name} --refresh 0.5"
    tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", tmux.session, command)
    tmux("pipe-pane", "-o", "-t", tmux.session, f"cat >> {raw}")
    tmux.wait_for(lambda s: "fraud-model" in s and "failing" in s, "the dashboard")
    time.sleep(1.5)  # a few refreshes: nothing new, no bell
    assert bells(raw) == 0
    with Store(store) as db:
        _fail(db, "billing-worker")  # from another process's point of view: the store
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not bells(raw):
        time.sleep(0.1)
    assert bells(raw) == 1, "no BEL reached the terminal"


#: An OSC sequence (Textual's terminal queries end theirs with BEL too).
OSC = re.compile(rb"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def bells(raw: Path) -> int:
    """BEL bytes the terminal got that ring: those outside OSC sequences."""
    return OSC.sub(b"", raw.read_bytes()).count(b"\x07")
