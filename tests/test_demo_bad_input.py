"""``opstui demo`` given what goes wrong: a taken port, a directory it cannot
use, a second demo on the same directory, Ctrl-C while seeding and twice
while runs are in flight."""

from __future__ import annotations

import re
import signal
import socket
from pathlib import Path

import pytest

from opstui.config import load_config
from opstui.store import Store, history
from tests.conftest import run_cli
from tests.demo_support import (
    integrity,
    interrupt,
    port_is_closed,
    processes_of,
    start_demo,
    wait_for,
)

pytestmark = pytest.mark.slow


def service_port(directory: Path) -> int:
    url = load_config(directory / "opstui.toml").endpoints["web-api"].url
    return int(url.split(":")[2].split("/")[0])


def test_a_port_in_use_is_replaced_by_a_free_one_and_said(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("demo", "--headless", "--dir", tmp_path / "d", "--port", port,
                         "--duration", "2", "--speed", "5", cwd=tmp_path, timeout=90)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    got = service_port(tmp_path / "d")
    assert got != port
    assert f"port {port} is in use; the demo service listens on 127.0.0.1:{got}" in result.stderr
    assert f"web-api serves on http://127.0.0.1:{got}" in result.stdout


def test_a_directory_it_cannot_write_is_one_line_and_exit_2(tmp_path: Path) -> None:
    # Root ignores permission bits: a path below a regular file fails for everyone.
    (tmp_path / "file").write_text("not a directory\n")
    result = run_cli("demo", "--headless", "--dir", tmp_path / "file" / "sub", "--duration", "1")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"opstui: cannot use {tmp_path / 'file' / 'sub'} as the demo dir")
    assert "Not a directory" in lines[0] and "--dir" in lines[0]


def test_a_directory_that_is_not_a_demos_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "opstui.toml").write_text("# my own config\n")
    result = run_cli("demo", "--headless", "--dir", tmp_path / "mine", "--duration", "1")
    assert result.returncode == 2
    assert "is not empty and is not a demo directory" in result.stderr
    assert (tmp_path / "mine" / "opstui.toml").read_text() == "# my own config\n"
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["opstui.toml"]


def test_a_second_demo_on_a_directory_is_refused_and_ctrl_c_twice_still_stops_cleanly(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "d"
    first = start_demo(directory, "--speed", "10", cwd=tmp_path)
    try:
        wait_for((directory / "opstui.toml").exists, "the first demo's config")
        second = run_cli("demo", "--headless", "--dir", directory, "--duration", "1")
        assert second.returncode == 2
        assert re.fullmatch(
            rf"opstui: a demo is already running on {re.escape(str(directory))} "
            rf"\(pid {first.pid}, started \d\d:\d\d:\d\d\): look at it with `opstui --store .*",
            second.stderr.strip(),
        ), second.stderr
        assert first.poll() is None  # the first one is untouched

        def running() -> bool:
            with Store(directory / "opstui.db", create=False) as store:
                return any(s == "running" for _, s, _, _ in history.runs_in_flight(store))

        wait_for(running, "a run in flight")
        port = service_port(directory)
        first.send_signal(signal.SIGINT)  # the second Ctrl-C lands during the shutdown
        code, out = interrupt(first)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert code == 130, out
    assert integrity(directory / "opstui.db") == "ok"
    assert processes_of(directory) == []
    assert port_is_closed(port)
    with Store(directory / "opstui.db", create=False) as store:
        assert [r for r in history.runs_in_flight(store) if r[2] == socket.gethostname()] == []


def test_ctrl_c_while_seeding_leaves_a_store_the_next_start_completes(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    demo = start_demo(directory, "--speed", "5", cwd=tmp_path)
    wait_for((directory / "opstui.db").exists, "the store to be created", timeout=30)
    code, out = interrupt(demo)
    assert code == 130, out
    assert integrity(directory / "opstui.db") == "ok"
    assert processes_of(directory) == []
    again = run_cli("demo", "--headless", "--dir", directory, "--duration", "3", "--speed", "5",
                    cwd=tmp_path, timeout=90)  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    with Store(directory / "opstui.db", create=False) as store:
        runs = history.run_history(store, "web-api", limit=500)
    assert len([r for r in runs if r.actor is not None and r.actor.endswith("@demo")]) >= 1
    assert len(runs) > 80  # the bundled history, imported once
