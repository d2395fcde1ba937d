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


def _log_rows(screen: str) -> list[str]:
    """The log panel's rows as shown (between its title and its bottom border)."""
    lines = screen.splitlines()
    top = next(i for i, line in enumerate(lines) if "Log of" in line)
    bottom = next(i for i in range(top + 1, len(lines)) if lines[i].startswith("╰"))
    return [line.strip("│ ") for line in lines[top + 1 : bottom]]


def test_log_viewer_follows_a_long_log_pages_and_searches_in_tmux(
    tmp_path: Path, tmux: Tmux
) -> None:
    """A 50,001-line log: following shows its last line under its true count;
    20 PageDowns sent at once move 20 pages; what is typed in the search shows."""
    from tests.test_logview import long_log

    long_log(tmp_path / "long.db", 50_001)
    sample_config(tmp_path, '[pipelines.longlog]\nkind = "mlops"\n')
    command = (
        f"cd {tmp_path} && {sys.executable} -m opstui --store long.db "
        f"--config opstui.toml; echo OPSTUI-EXITED $? > exit.txt"
    )
    tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", tmux.session, command)
    tmux.wait_for(lambda s: "longlog" in s, "the dashboard")
    tmux.keys("Enter")  # its only pipeline, selected
    screen = tmux.wait_for(lambda s: "FATAL line 50001" in s, "the log's last line")
    assert "Log of train · 50,001 lines · following" in screen
    assert _log_rows(screen)[-1].endswith("50001 FATAL line 50001: out of memory")

    tmux.keys("Tab", "Tab", "g")
    screen = tmux.wait_for(lambda s: "INFO line 1" in s and "paused" in s, "the first line")
    page = len(_log_rows(screen))
    tmux("send-keys", "-t", tmux.session, *["PageDown"] * 20)  # one write: as fast as it gets
    first = 1 + 20 * page
    screen = tmux.wait_for(
        lambda s: _log_rows(s)[0].endswith(f"{first} INFO line {first}"), f"line {first} on top"
    )

    tmux.keys("/", *"ERROR line 4")
    screen = tmux.wait_for(lambda s: "ERROR line 4" in s.splitlines()[-2], "the typed search")
    tmux.keys("Enter")
    tmux.wait_for(lambda s: "ERROR line 4000: retrying" in s and "1/11" in s, "the first match")
    tmux.keys("q")


def test_following_a_million_line_log_shows_its_last_line_in_tmux(
    tmp_path: Path, tmux: Tmux
) -> None:
    """The real program on a 1,000,000-line log: the last line, under its true
    count, and the line numbers of the end of the log, not of a first chunk."""
    from tests.test_logview import long_log

    long_log(tmp_path / "long.db", 1_000_000)
    sample_config(tmp_path, '[pipelines.longlog]\nkind = "mlops"\n')
    command = (
        f"cd {tmp_path} && {sys.executable} -m opstui --store long.db "
        f"--config opstui.toml; echo OPSTUI-EXITED $? > exit.txt"
    )
    tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", tmux.session, command)
    tmux.wait_for(lambda s: "longlog" in s, "the dashboard")
    tmux.keys("Enter")
    screen = tmux.wait_for(lambda s: "FATAL line 1000000" in s, "the log's last line")
    assert "1,000,000 lines · following" in screen
    rows = _log_rows(screen)
    assert rows[-1].endswith("1000000 FATAL line 1000000: out of memory")
    assert rows[-2].endswith("999999 WARNING line 999999: slow"), rows[-2:]
    tmux.keys("q")
