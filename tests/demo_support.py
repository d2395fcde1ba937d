"""Running the real ``opstui demo`` for the tests, and reading what it left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 60) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s")
        time.sleep(0.25)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OPSTUI_")}


def start_demo(directory: Path, *args: str, cwd: Path) -> subprocess.Popen[str]:
    """``opstui demo --headless --dir DIRECTORY ARGS`` in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "opstui", "demo", "--headless", "--dir", str(directory), *args],
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def interrupt(demo: subprocess.Popen[str], timeout: float = 40) -> tuple[int, str]:
    """Ctrl-C (SIGINT) the demo and wait for it; its exit code and output."""
    demo.send_signal(signal.SIGINT)
    out, _ = demo.communicate(timeout=timeout)
    return demo.returncode, out


def integrity(store: Path) -> str:
    with contextlib.closing(sqlite3.connect(store)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def processes_of(directory: Path) -> list[str]:
    """Live processes that name ``directory`` in their command line or environment
    (runners get ``--store DIR/...``, stages ``OPSTUI_STORE=DIR/...``)."""
    needle = str(directory).encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if (proc / "stat").read_text().split(") ", 1)[1].startswith("Z"):
                continue  # a zombie has ended; only its parent's wait is missing
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if needle in cmdline or needle in environ:
            argv = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{proc.name}: {argv}")
    return found


def port_is_closed(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0
