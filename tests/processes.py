"""What the test servers share: a free port on 127.0.0.1, waiting until one
answers, and stopping a server's process group for good (MLflow, Airflow,
Prefect, Prometheus, Alertmanager)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop_groups(
    procs: Iterable[subprocess.Popen[bytes]], timeout: float = 20.0, *, one_by_one: bool = False
) -> None:
    """Stop each process's group (started with ``start_new_session``): SIGTERM
    (and SIGCONT: a server a test paused takes it too), up to ``timeout``
    seconds, then SIGKILL; then SIGKILL what the leader left behind in its
    group (a child still running a task). All at once, or ``one_by_one``
    (a client that tells its server it leaves goes before the server)."""
    procs = list(procs)
    for batch in [[p] for p in procs] if one_by_one else [procs]:
        for proc in batch:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
                os.killpg(proc.pid, signal.SIGCONT)
        for proc in batch:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def wait_http(
    url: str, proc: subprocess.Popen[bytes], log: Path, *, what: str, timeout: float,
    every: float = 0.1,
) -> None:  # fmt: skip
    """Until ``url`` answers 200; a server that exits first, or never
    answers, raises with the tail of its ``log``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(every)
    raise RuntimeError(f"{what} not ready after {timeout:.0f}s; see {log}")
