"""The stage supervisor: a small process between the runner and one stage.

It exists so that nothing a stage started outlives a runner that was killed
(``kill -9`` included), with no code having to run in the killed process:

- it makes itself a *child subreaper* (Linux ``PR_SET_CHILD_SUBREAPER``), so
  a stage's background and double-forked ("daemonised") descendants are
  re-parented to it, not to PID 1, and stay within reach;
- it starts the stage in a session of its own and reports its PID and its
  exit status to the runner on a status pipe;
- it reads a control pipe whose only writer is the runner: a line
  ``T<seconds>`` asks it to stop everything with that grace, and end of
  file means the runner is gone, which stops everything with
  ``DEATH_GRACE``. Stopping is SIGTERM to the stage's process group and to
  every descendant, then SIGKILL until it has no child left: as a subreaper,
  "no child" means "no descendant", exactly.

The stage's stdout and stderr go straight to the runner's pipes; the
supervisor keeps no copy of them, so the runner sees end of file when the
stage (and whatever it left running) closes them.

Run as ``python -I -S supervise.py CTL_FD STATUS_FD WORKDIR -- ARGV...``. It
imports only modules built into the interpreter: its start-up is paid once
per stage (bench/runner_trust.py measures it).

Status lines: ``S <pid>`` started, ``E <where> <errno>`` could not start
(``where`` is ``cwd`` or ``exec``), ``X <wait status>`` the stage's own
process exited, ``D`` everything is stopped and the supervisor exits.
"""

from __future__ import annotations

# The C module under `signal`: the same functions and constants without the
# enum wrappers, whose import (enum, functools) was half of a supervisor's
# start-up (bench/runner_trust.py). Untyped in typeshed, hence the ignore.
import _signal as signal  # type: ignore[import-not-found]
import os
import select
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
#: Grace between SIGTERM and SIGKILL when the runner died under the stage.
DEATH_GRACE = 2.0
#: However a descendant resists (a fork loop), give up this long after SIGKILL
#: began: the supervisor must end, and what is left is reported.
KILL_ROUNDS_SECONDS = 5.0


def _become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes  # only here: ~4 ms of a supervisor's start

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


class Supervisor:
    def __init__(self, ctl: int, status: int) -> None:
        self.ctl = ctl
        self.status = status
        self.stage_pid: int | None = None
        self.exited = False
        self.terminated = False
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        # SIGCHLD (a child to reap) and SIGTERM wake the select loop.
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._on_term)
        # Ctrl-C and a hang-up are the runner's to handle (it cancels the run
        # and then asks us to stop); the supervisor never decides alone.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    def _on_term(self, *_: object) -> None:
        self.terminated = True

    def report(self, line: str) -> None:
        try:
            os.write(self.status, (line + "\n").encode())
        except OSError:
            pass  # the runner is gone: end of file on ctl says so too

    def start(self, workdir: str, argv: list[str]) -> bool:
        try:
            os.chdir(workdir)
        except OSError as exc:
            self.report(f"E cwd {exc.errno or 0}")
            return False
        try:
            pid = os.posix_spawnp(
                argv[0],
                argv,
                dict(os.environ),
                setsid=True,
                # What this process ignores or handles, the stage gets as default.
                setsigdef=(
                    signal.SIGINT,
                    signal.SIGHUP,
                    signal.SIGTERM,
                    signal.SIGPIPE,
                    signal.SIGCHLD,
                    signal.SIGXFSZ,
                ),
                setsigmask=(),
            )
        except OSError as exc:
            self.report(f"E exec {exc.errno or 0}")
            return False
        self.stage_pid = pid
        self.report(f"S {pid}")
        # The stage holds stdout/stderr now; drop our copies so the runner
        # sees end of file when the stage's side closes.
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)
        return True

    def reap(self) -> bool:
        """Reap every finished child; False once no child (so no descendant) is left."""
        while True:
            try:
                pid, wstatus = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True
            if pid == self.stage_pid and not self.exited:
                self.exited = True
                self.report(f"X {wstatus}")

    def wait(self, timeout: float | None) -> bytes | None:
        """Sleep until a signal, a control line or ``timeout``; the control bytes if any."""
        ready, _, _ = select.select([self.ctl, self.wake_r], [], [], timeout)
        if self.wake_r in ready:
            try:
                while os.read(self.wake_r, 512):
                    pass
            except BlockingIOError:
                pass
        if self.ctl in ready:
            return os.read(self.ctl, 64)
        return None

    def serve(self) -> float:
        """Run until the runner asks to stop or is gone; the grace to stop with."""
        while True:
            self.reap()
            if self.terminated:
                return DEATH_GRACE
            data = self.wait(None)
            if data is None:
                continue
            if not data:
                return DEATH_GRACE  # end of file: the runner is gone
            text = data.decode(errors="replace").strip()
            if text.startswith("T"):
                try:
                    return max(0.0, float(text[1:].split()[0]))
                except (ValueError, IndexError):
                    return DEATH_GRACE
            return DEATH_GRACE

    def signal_all(self, sig: int) -> None:
        if self.stage_pid is not None:
            try:
                os.killpg(self.stage_pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in descendants(os.getpid()):
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def stop(self, grace: float) -> None:
        if not self.reap() and not self._group_alive():
            return
        if grace > 0:
            self.signal_all(signal.SIGTERM)
            deadline = time.monotonic() + grace
            while self.reap() or self._group_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.wait(min(left, 0.05))
            else:
                return
        deadline = time.monotonic() + KILL_ROUNDS_SECONDS
        while self.reap() or self._group_alive():
            self.signal_all(signal.SIGKILL)
            if time.monotonic() > deadline:
                break
            self.wait(0.01)

    def _group_alive(self) -> bool:
        # Without a subreaper (not Linux) a group member may not be our
        # descendant any more; the group itself is still ours to stop.
        if self.stage_pid is None:
            return False
        try:
            os.killpg(self.stage_pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True


def descendants(root: int) -> list[int]:
    """PIDs below ``root``, from /proc (empty where there is no /proc)."""
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields follow the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(name))
    out: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            out.append(child)
            todo.append(child)
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 6 or argv[4] != "--":
        print("usage: supervise.py CTL_FD STATUS_FD WORKDIR -- ARGV...", file=sys.stderr)
        return 2
    ctl, status = int(argv[1]), int(argv[2])
    os.set_inheritable(ctl, False)
    os.set_inheritable(status, False)
    _become_subreaper()
    sup = Supervisor(ctl, status)
    if sup.start(argv[3], argv[5:]):
        sup.stop(sup.serve())
    sup.report("D")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
