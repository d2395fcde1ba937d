"""One stage as a subprocess: streamed output, timeout, process-group kill.

The command is an argument list; it is never given to a shell, so nothing in
a pipeline name, a version or a log line can become a command. Each stage
runs in its own session (process group): a timeout or a cancel stops the
stage and everything it started, and on Linux the stage is told to die with
the runner (``PR_SET_PDEATHSIG``) so a ``kill -9`` of the runner leaves no
stage behind.

Output is read in chunks from both pipes and written to the store in
batches (every ``FLUSH_SECONDS`` or ``FLUSH_LINES``), so memory stays flat
however much a stage prints, and a line without a newline is cut at
``MAX_LINE`` bytes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from opstui.config import CommandDef
from opstui.store import Store
from opstui.store import runs as store_runs
from opstui.store import status as st

FLUSH_SECONDS = 0.25
FLUSH_LINES = 2000
MAX_LINE = 16_384
CHUNK = 65_536
#: Seconds between SIGTERM and SIGKILL when a stage is stopped.
KILL_GRACE = 5.0
#: After the stage's main process exits, how long to drain output that
#: background children still write before their group is stopped.
DRAIN_SECONDS = 1.0

PR_SET_PDEATHSIG = 1
# CDLL(None) is the running process, libc included: no ldconfig lookup (3 ms).
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
#: Flush a batch once it holds this much text, whatever the line count: a
#: stage printing 16 KiB lines must not hold 2,000 of them (32 MB) at once,
#: and junk decoded to 4-byte characters costs 4 bytes a character.
FLUSH_CHARS = 250_000


def _die_with_runner() -> None:  # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass(frozen=True)
class StageOutcome:
    status: str
    exit_code: int | None
    message: str | None


class Cancelled(Exception):
    """The runner was asked to stop (SIGTERM / SIGINT)."""


class _Lines:
    """Splits a byte stream into lines, bounded in memory."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.partial = b""

    def feed(self, data: bytes) -> list[str]:
        self.partial += data
        *complete, self.partial = self.partial.split(b"\n")
        out = [_decode(piece) for line in complete for piece in _cut(line)]
        while len(self.partial) > MAX_LINE:
            out.append(_decode(self.partial[:MAX_LINE]))
            self.partial = self.partial[MAX_LINE:]
        return out

    def close(self) -> list[str]:
        rest, self.partial = self.partial, b""
        return [_decode(rest)] if rest else []


def _cut(line: bytes) -> list[bytes]:
    # An overlong line is kept whole, as several stored lines of MAX_LINE bytes.
    if len(line) <= MAX_LINE:
        return [line]
    return [line[i : i + MAX_LINE] for i in range(0, len(line), MAX_LINE)]


def _decode(raw: bytes) -> str:
    # Binary junk becomes U+FFFD and NULs are dropped: the line is stored as
    # text, and a viewer decides how to show escapes safely.
    return raw.rstrip(b"\r").decode("utf-8", errors="replace").replace("\x00", "")


def stop_group(proc: subprocess.Popen[bytes], grace: float = KILL_GRACE) -> None:
    """SIGTERM the stage's process group, then SIGKILL whatever is left."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            # The main process is gone; make sure the group is too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            return
        except subprocess.TimeoutExpired:
            continue


def run_stage(
    store: Store,
    run_id: int,
    stage_id: int,
    command: CommandDef,
    *,
    argv: list[str],
    env: Mapping[str, str],
    cancelled: Callable[[], bool] = lambda: False,
    echo: Callable[[str, str], None] | None = None,
) -> StageOutcome:
    """Run one stage to completion; stream its output into the stage's log."""
    try:
        proc = subprocess.Popen(
            argv,
            cwd=command.workdir,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_runner,  # noqa: PLW1509 - only calls prctl(2)
        )
    except FileNotFoundError:
        where = (
            ""
            if (command.workdir / argv[0]).exists()
            else f" (looked in PATH and {command.workdir})"
        )
        return StageOutcome(st.FAILED, 127, f"command not found: {argv[0]}{where}")
    except PermissionError:
        return StageOutcome(st.FAILED, 126, f"command not executable: {argv[0]}")
    except NotADirectoryError:
        return StageOutcome(
            st.FAILED, 126, f"working directory is not a directory: {command.workdir}"
        )
    except OSError as exc:
        return StageOutcome(st.FAILED, 126, f"cannot start {argv[0]}: {exc.strerror}")

    assert proc.stdout is not None and proc.stderr is not None
    selector = selectors.DefaultSelector()
    for pipe, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr")):
        os.set_blocking(pipe.fileno(), False)
        selector.register(pipe, selectors.EVENT_READ, _Lines(name))
    started = time.monotonic()
    deadline = started + command.timeout if command.timeout else None
    batch: list[store_runs.LogRow] = []
    last_flush = time.monotonic()
    exited_at: float | None = None
    outcome: StageOutcome | None = None

    batch_chars = 0

    def add(stream: str, lines: list[str]) -> None:
        nonlocal batch_chars
        now = time.time()
        for line in lines:
            batch.append((stage_id, now, stream, line))
            batch_chars += len(line)
            if echo is not None:
                echo(stream, line)

    try:
        while selector.get_map():
            now = time.monotonic()
            if cancelled():
                outcome = StageOutcome(st.CANCELLED, None, "cancelled: the runner was stopped")
                break
            if deadline is not None and now >= deadline and proc.poll() is None:
                outcome = StageOutcome(
                    st.TIMED_OUT,
                    None,
                    f"timed out after {command.timeout:g}s; its process group was stopped",
                )
                break
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > DRAIN_SECONDS:
                break  # background children keep the pipes open; stop waiting
            timeout = FLUSH_SECONDS
            if deadline is not None:
                timeout = max(0.0, min(timeout, deadline - now))
            for key, _ in selector.select(timeout):
                lines: _Lines = key.data
                try:
                    data = os.read(key.fd, CHUNK)
                except BlockingIOError:
                    continue
                if data:
                    add(lines.stream, lines.feed(data))
                else:
                    add(lines.stream, lines.close())
                    selector.unregister(key.fileobj)
            if batch and (
                len(batch) >= FLUSH_LINES
                or batch_chars >= FLUSH_CHARS
                or time.monotonic() - last_flush >= FLUSH_SECONDS
            ):
                store_runs.append_logs(store, batch, run_id=run_id)
                batch = []
                batch_chars = 0
                last_flush = time.monotonic()
    finally:
        for key in list(selector.get_map().values()):
            add(key.data.stream, key.data.close())
        selector.close()
        # Whatever happened, nothing the stage started outlives it.
        if proc.poll() is None or outcome is not None:
            stop_group(proc)
        else:
            stop_group(proc, grace=0.5)
        proc.stdout.close()
        proc.stderr.close()
        if batch:
            store_runs.append_logs(store, batch, run_id=run_id)
    if outcome is not None:
        return outcome
    code = proc.wait()
    if code == 0:
        return StageOutcome(st.SUCCEEDED, 0, None)
    if code < 0:
        return StageOutcome(st.FAILED, 128 - code, f"killed by signal {signal.Signals(-code).name}")
    return StageOutcome(st.FAILED, code, f"exited with code {code}")
