"""A real Alertmanager for the alert sender's tests, started once per session.

Debian's ``prometheus-alertmanager`` (0.25) on a free port of 127.0.0.1,
with its config and its storage in a temporary directory and clustering off
(its default listens on 0.0.0.0:9094). One route to a receiver with no
integrations: alerts are held and listed, never sent anywhere. It is ready in
~0.1 s and uses ~35 MB. Alerts outlive a test on a shared server: each test
gives its alerts labels of their own (``unique``).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .processes import free_port, stop_groups, wait_http

BINARY = "prometheus-alertmanager"
READY_TIMEOUT = 30.0
MISSING = (
    "Alertmanager is not installed (apt-get install -y prometheus-alertmanager; .ci/run does it)"
)

#: A route to a receiver with no integrations; groups flushed after 1 s.
CONFIG = """\
route:
  receiver: hold
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hold
"""


def binary() -> str | None:
    return shutil.which(BINARY)


def unique(prefix: str = "OpstuiTest") -> str:
    """An alert name no other test uses (the server is shared by the session)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    wait_http(f"{url}/-/ready", proc, log, what="alertmanager", timeout=READY_TIMEOUT, every=0.05)


def start(root: Path, port: int) -> subprocess.Popen[bytes]:
    """Alertmanager on 127.0.0.1:``port``, its config and storage in ``root``,
    in a process group of its own; ready when this returns."""
    path = binary()
    if path is None:
        raise RuntimeError(MISSING)
    (root / "alertmanager.yml").write_text(CONFIG)
    log = root / "alertmanager.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                path,
                f"--config.file={root / 'alertmanager.yml'}",
                f"--storage.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                # Empty: no cluster (its default listens on 0.0.0.0:9094).
                "--cluster.listen-address=",
            ],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc, log)
    except BaseException:
        stop_groups([proc], timeout=10)
        raise
    return proc


@contextlib.contextmanager
def running_alertmanager(root: Path) -> Iterator[str]:
    """A started Alertmanager's base URL; stopped for good on leaving.

    A free port can be taken between ``free_port`` and the bind: a server
    that exits at once is started again on another one (three tries)."""
    for attempt in range(3):
        try:
            proc = start(root, port := free_port())
            break
        except RuntimeError:
            if attempt == 2:
                raise
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_groups([proc], timeout=10)


def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start, yield the base URL, stop (a fixture's body); skips without the binary."""
    if binary() is None:
        pytest.skip(MISSING)
    with running_alertmanager(tmp_path_factory.mktemp("alertmanager")) as url:
        yield url
