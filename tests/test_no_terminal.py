"""Without a terminal, the console and the demo's console say they need one
and exit 2 (piped, from cron, from CI they would wait for keys for ever);
the commands meant for scripts are named."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import run_cli


def test_the_console_without_a_terminal_says_so_and_exits_2(tmp_path: Path) -> None:
    for args in ([], ["tui"], ["--read-only"]):
        result = run_cli(*args, cwd=tmp_path, timeout=30)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1
        assert "the console needs a terminal" in result.stderr
        assert "opstui status" in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing made on the way out


def test_the_demo_without_a_terminal_points_at_headless(tmp_path: Path) -> None:
    result = run_cli("demo", "--dir", str(tmp_path / "demo"), cwd=tmp_path, timeout=30)
    assert result.returncode == 2
    assert "opstui demo --headless" in result.stderr
    assert not (tmp_path / "demo").exists()


def test_in_a_terminal_it_still_opens(tmp_path: Path) -> None:
    """Under `script` (a pty) the same command draws the console; q quits."""
    script = shutil.which("script")
    if script is None:
        pytest.skip("util-linux's script is not installed")
    exe = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "opstui"
    proc = subprocess.run(
        [script, "-qec", f"{exe} --store {tmp_path / 'x.db'}", "/dev/null"],
        input=b"q", capture_output=True, timeout=60, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert b"needs a terminal" not in proc.stdout + proc.stderr
    assert b"Pipelines" in proc.stdout  # the dashboard was drawn
