"""One stage as a subprocess: streamed output, timeout, a kill that reaches everything.

The command is an argument list; it is never given to a shell, so nothing in
a pipeline name, a version or a log line can become a command.

A stage runs under a small supervisor process (``supervise.py``): the
supervisor starts it in a session of its own, reports its exit status, and
stops it and everything it started (background children, daemons that
double-forked into other sessions) when the runner asks, or by itself when
the runner is gone, ``kill -9`` included. Nothing has to run in a killed
runner for its stages to be cleaned up.

A stage's outcome is its exit status, never the state of its pipes: a stage
may close or redirect its stdout/stderr (``exec >out.log 2>&1``) and keep
working; the runner waits for the process. Once the stage's own process has
exited, output that background children still write is drained for
``DRAIN_SECONDS``, then they are stopped.

Output is read in chunks from both pipes and written to the store in
batches (every ``FLUSH_SECONDS`` or ``FLUSH_LINES``), so memory stays flat
however much a stage prints, and a line without a newline is cut at
``MAX_LINE`` bytes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

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

#: Flush a batch once it holds this much text, whatever the line count: a
#: stage printing 16 KiB lines must not hold 2,000 of them (32 MB) at once,
#: and junk decoded to 4-byte characters costs 4 bytes a character.
FLUSH_CHARS = 250_000
SUPERVISOR = str(Path(__file__).with_name("supervise.py"))


@dataclass(frozen=True)
class StageOutcome:
    status: str
    exit_code: int | None
    message: str | None


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


def _start_error(where: str, errno_: int, argv0: str, workdir: Path) -> StageOutcome:
    """The outcome of a stage that never started, as the operator should read it."""
    if where == "cwd":
        why = {
            errno.ENOENT: "does not exist",
            errno.ENOTDIR: "is not a directory",
            errno.EACCES: "is not accessible",
        }.get(errno_, os.strerror(errno_))
        return StageOutcome(st.FAILED, 126, f"working directory {why}: {workdir}")
    if errno_ == errno.ENOENT:
        where_looked = "" if (workdir / argv0).exists() else f" (looked in PATH and {workdir})"
        return StageOutcome(st.FAILED, 127, f"command not found: {argv0}{where_looked}")
    if errno_ == errno.EACCES:
        return StageOutcome(st.FAILED, 126, f"command not executable: {argv0}")
    return StageOutcome(st.FAILED, 126, f"cannot start {argv0}: {os.strerror(errno_)}")


def _exit_outcome(wstatus: int) -> StageOutcome:
    code = os.waitstatus_to_exitcode(wstatus)
    if code == 0:
        return StageOutcome(st.SUCCEEDED, 0, None)
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return StageOutcome(st.FAILED, 128 - code, f"killed by signal {name}")
    return StageOutcome(st.FAILED, code, f"exited with code {code}")


class _Supervised:
    """The runner's end of one supervised stage: its output pipes and the supervisor's."""

    def __init__(self, argv: list[str], workdir: Path, env: Mapping[str, str]) -> None:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ctl_r, self.ctl = os.pipe()
        self.status_fd, status_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                # -I -S: no site-packages, no user paths, no PYTHON* variables:
                # the supervisor uses the standard library only, and starts in
                # ~10 ms (bench/runner_trust.py).
                [
                    *(sys.executable, "-I", "-S", SUPERVISOR, str(ctl_r), str(status_w)),
                    *(str(workdir), "--", *argv),
                ],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                pass_fds=(ctl_r, status_w),
                # Its own session: a Ctrl-C or a kill of the runner's process
                # group does not reach it, so it is there to clean up after.
                start_new_session=True,
            )
        except BaseException:
            for fd in (out_r, err_r, self.ctl, self.status_fd):
                os.close(fd)
            raise
        finally:
            for fd in (out_w, err_w, ctl_r, status_w):
                os.close(fd)
        self.out, self.err = out_r, err_r
        self.pending = b""
        self.wstatus: int | None = None
        self.error: tuple[str, int] | None = None
        self.done = False  # the supervisor said D, or its status pipe closed
        self.stopped = False  # the supervisor said D: everything it ran is gone
        self.pid: int | None = None  # the stage's own process (and group)

    def feed_status(self, data: bytes) -> None:
        if not data:
            self.done = True
            return
        self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        for raw in lines:
            kind, _, rest = raw.decode(errors="replace").partition(" ")
            if kind == "S":
                self.pid = int(rest)
            elif kind == "X":
                self.wstatus = int(rest)
            elif kind == "E":
                where, _, code = rest.partition(" ")
                self.error = (where, int(code or 0))
            elif kind == "D":
                self.done = self.stopped = True

    def stop(self, grace: float) -> None:
        """Ask the supervisor to stop the stage and everything it started."""
        if self.ctl < 0:
            return
        with contextlib.suppress(OSError):  # the supervisor is gone already
            os.write(self.ctl, f"T{grace:g}\n".encode())
        os.close(self.ctl)
        self.ctl = -1

    def orphaned(self) -> bool:
        """The supervisor ended without saying everything is stopped (it was killed)."""
        return self.done and not self.stopped

    def kill_group(self) -> None:
        # With the supervisor gone, the stage's process group at least goes;
        # daemons in other sessions were the supervisor's to find.
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)

    def close(self) -> None:
        self.stop(0.0)
        if not self.stopped:
            self.kill_group()
        for fd in (self.out, self.err, self.status_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


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
        stage = _Supervised(argv, command.workdir, env)
    except OSError as exc:
        return StageOutcome(st.FAILED, 126, f"cannot start {argv[0]}: {exc.strerror}")

    selector = selectors.DefaultSelector()
    streams = {stage.out: _Lines("stdout"), stage.err: _Lines("stderr")}
    for fd in streams:
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    selector.register(stage.status_fd, selectors.EVENT_READ)
    started = time.monotonic()
    deadline = started + command.timeout if command.timeout else None
    batch: list[store_runs.LogRow] = []
    batch_chars = 0
    last_flush = time.monotonic()
    exited_at: float | None = None
    outcome: StageOutcome | None = None

    def add(stream: str, lines: list[str]) -> None:
        nonlocal batch_chars
        now = time.time()
        for line in lines:
            batch.append((stage_id, now, stream, line))
            batch_chars += len(line)
            if echo is not None:
                echo(stream, line)

    def flush(force: bool = False) -> None:
        nonlocal batch, batch_chars, last_flush
        if batch and (
            force
            or len(batch) >= FLUSH_LINES
            or batch_chars >= FLUSH_CHARS
            or time.monotonic() - last_flush >= FLUSH_SECONDS
        ):
            store_runs.append_logs(store, batch, run_id=run_id)
            batch, batch_chars, last_flush = [], 0, time.monotonic()

    def pump(timeout: float) -> None:
        for key, _ in selector.select(timeout):
            fd = int(key.fd)
            try:
                data = os.read(fd, CHUNK)
            except BlockingIOError:
                continue
            if fd == stage.status_fd:
                stage.feed_status(data)
                if not data:
                    selector.unregister(fd)
            elif data:
                lines = streams[fd]
                add(lines.stream, lines.feed(data))
            else:
                lines = streams[fd]
                add(lines.stream, lines.close())
                selector.unregister(fd)

    def streams_open() -> bool:
        return any(fd in selector.get_map() for fd in streams)

    try:
        while True:
            now = time.monotonic()
            if stage.error is not None:
                break
            if stage.wstatus is not None:
                # The stage's own process has exited: its exit status is the
                # outcome. Background children may still hold the pipes.
                exited_at = exited_at or now
                if not streams_open() or now - exited_at > DRAIN_SECONDS:
                    break
            elif stage.done:
                outcome = StageOutcome(
                    st.FAILED, None, "the stage's supervisor died before the stage ended"
                )
                break
            if cancelled():
                outcome = StageOutcome(st.CANCELLED, None, "cancelled: the runner was stopped")
                break
            if deadline is not None and now >= deadline and stage.wstatus is None:
                outcome = StageOutcome(
                    st.TIMED_OUT,
                    None,
                    f"timed out after {command.timeout:g}s; its process group was stopped",
                )
                break
            timeout = FLUSH_SECONDS
            if deadline is not None:
                timeout = max(0.0, min(timeout, deadline - now))
            pump(timeout)
            flush()
        # Stop whatever is left (children of a finished stage; a cancelled or
        # timed-out stage whole), and keep reading its last words meanwhile.
        stage.stop(KILL_GRACE if outcome is not None else 0.5)
        until = time.monotonic() + KILL_GRACE + 10.0
        while (not stage.done or streams_open()) and time.monotonic() < until:
            if stage.orphaned():
                stage.kill_group()
            pump(FLUSH_SECONDS)
            flush()
    finally:
        for fd, lines in streams.items():
            if fd in selector.get_map():
                add(lines.stream, lines.close())
        selector.close()
        stage.close()
        flush(force=True)
    if outcome is not None:
        return outcome
    if stage.error is not None:
        return _start_error(*stage.error, argv[0], command.workdir)
    assert stage.wstatus is not None
    return _exit_outcome(stage.wstatus)
