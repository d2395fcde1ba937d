"""The real `opstui` in a real terminal: tmux at 80x24, keys pressed, screen read.

Pilot drives the app in-process; this runs the installed command the way an
operator does (over SSH, in tmux), so start-up, the terminal driver, key
decoding and quitting are what ship.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.tui_support import sample_config, sample_store

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)"
)


class Tmux:
    def __init__(self, socket: str) -> None:
        self.socket = socket
        self.session = "opstui"

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False
        )

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", self.session).stdout

    def keys(self, *keys: str) -> None:
        for key in keys:
            self("send-keys", "-t", self.session, key)
            time.sleep(0.15)  # a key at a time: ESC then a letter would read as alt+letter

    def wait_for(self, check: Callable[[str], bool], what: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if check(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{what} never showed; the screen was:\n{screen}")

    def alive(self) -> bool:
        return self("has-session", "-t", self.session).returncode == 0


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    t = Tmux(f"opstui-test-{uuid.uuid4().hex[:8]}")
    try:
        yield t
    finally:
        t("kill-server")


def test_opstui_in_tmux_opens_navigates_and_quits(tmp_path: Path, tmux: Tmux) -> None:
    store = sample_store(tmp_path)
    sample_config(tmp_path)
    command = (
        f"cd {tmp_path} && {sys.executable} -m opstui --store {store.name} "
        f"--config opstui.toml; echo OPSTUI-EXITED $? > exit.txt"
    )
    started = time.monotonic()
    tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", tmux.session, command)
    screen = tmux.wait_for(lambda s: "fraud-model" in s and "failing" in s, "the dashboard")
    first_frame = time.monotonic() - started
    lines = screen.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    assert "2 failing" in lines[0]
    assert "✓✗⊘⊘⊘⊘" in screen  # the stage bar, readable without colour
    assert "r Retry" in lines[-1]  # the footer names the keys

    tmux.keys("Down", "Enter")
    tmux.wait_for(lambda s: "Pipeline fraud-model" in s and "Log of validate" in s, "the pipeline")
    tmux.keys("Escape")
    tmux.wait_for(lambda s: "Pipelines (4)" in s, "the dashboard again")

    tmux.keys("?")
    tmux.wait_for(lambda s: "remap by id" in s, "the help screen")
    tmux.keys("Escape")
    tmux.wait_for(lambda s: "remap by id" not in s, "the help screen closing")

    tmux.keys("q")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (tmp_path / "exit.txt").exists():
        time.sleep(0.1)
    assert (tmp_path / "exit.txt").read_text().strip() == "OPSTUI-EXITED 0"
    # Not a timing test (bench/ measures start-up): a generous bound that
    # catches a console blocking on something at start.
    assert first_frame < 15, first_frame
