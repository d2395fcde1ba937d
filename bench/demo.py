"""``opstui demo``: time to the first frame with data, and its CPU idle in the background.

1. launch -> first frame with data: the real ``python -m opstui demo --dir D``
   in tmux at 80x24, ``tmux capture-pane`` polled every 10 ms from just
   before ``tmux new-session`` until the dashboard shows the four pipelines
   with their rows (``Pipelines (4)`` and a ``web-api`` row). Twice over:
   on a new directory (the store is seeded from ``sample_runs/`` first) and
   on the directory an earlier launch left (``warm``: what the target is
   about). Each launch is quit with ``q`` and waited for (the demo's
   shutdown is not timed).
2. CPU of the whole demo idle in the background: ``opstui demo --headless
   --speed 1`` left alone (nobody presses anything; the simulator, traffic,
   poller and drift checks go on), after a warm-up; CPU seconds of the whole
   process tree (the demo, its runners and their stages) from ``/proc``:
   ``utime + stime + cutime + cstime`` of every process descending from the
   demo, zombies included, at the start and the end of the window, so a
   stage that starts and ends inside the window is counted once (in its
   parent's ``cutime`` once reaped, else as a zombie). Also its peak RSS
   (``VmHWM`` of the demo process).

Child processes get a private bytecode cache (``PYTHONPYCACHEPREFIX`` in the
temp dir), as an installed opstui has compiled ``.pyc`` files; one untimed
launch fills it. Linux only (``/proc``); needs tmux for (1).

    .venv/bin/python bench/demo.py            # 5 + 5 launches, 30 s warm-up, 60 s of CPU
    .venv/bin/python bench/demo.py --quick    # 2 + 2 launches, 5 s warm-up, 15 s: under a minute
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from _processes import tree
from _report import in_workdir, median, table

TARGET_FRAME = 2.0  # seconds, warm
TARGET_CPU = 15.0  # % of one core
TICK = os.sysconf("SC_CLK_TCK")


def env(root: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("OPSTUI_")}
    out["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    out.pop("PYTHONDONTWRITEBYTECODE", None)
    return out


def tmux(socket: str, *args: str) -> str:
    argv = ["tmux", "-L", socket, *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.stdout


def first_frame(root: Path, directory: Path) -> float:
    """Seconds from launch to a dashboard with the demo's rows; the demo is quit after."""
    socket = f"opstui-bench-{uuid.uuid4().hex[:8]}"
    done = root / "exited"
    done.unlink(missing_ok=True)
    command = f"cd {root} && {sys.executable} -m opstui demo --dir {directory}; touch {done}"
    # The tmux server has its own environment: unset and set what env() does.
    environment = "-u PYTHONDONTWRITEBYTECODE " + " ".join(
        f"{k}={v}" for k, v in env(root).items() if k.startswith("PYTHON")
    )
    started = time.perf_counter()
    tmux(socket, "new-session", "-d", "-x", "80", "-y", "24", "-s", "d",
         f"env {environment} sh -c '{command}'")  # fmt: skip
    try:
        while True:
            screen = tmux(socket, "capture-pane", "-p", "-t", "d")
            if "Pipelines (4)" in screen and "│ web-api " in screen:
                took = time.perf_counter() - started
                break
            if time.perf_counter() - started > 60:
                raise SystemExit(f"no dashboard after 60 s; the screen was:\n{screen}")
            time.sleep(0.01)
        # A key pressed while the console is still starting can be lost: press again.
        for _ in range(12):
            tmux(socket, "send-keys", "-t", "d", "q")
            deadline = time.monotonic() + 5
            while not done.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            if done.exists():
                break
        else:
            raise SystemExit(f"the demo in {directory} did not quit on q")
    finally:
        tmux(socket, "kill-server")
    return took


def cpu_ticks(root_pid: int) -> int:
    """CPU of the tree under ``root_pid``, in clock ticks (see the module docstring)."""
    total = 0
    for pid in tree(root_pid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def idle_cpu(root: Path, warmup: float, window: float) -> tuple[float, float, str]:
    directory = root / "idle"
    demo = subprocess.Popen(
        [sys.executable, "-m", "opstui", "demo", "--headless", "--dir", str(directory)],
        cwd=root, env=env(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        time.sleep(warmup)
        before, t0 = cpu_ticks(demo.pid), time.monotonic()
        time.sleep(window)
        after, t1 = cpu_ticks(demo.pid), time.monotonic()
        rss = peak_rss_mb(demo.pid)
    finally:
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=60)
    percent = (after - before) / TICK / (t1 - t0) * 100
    last = out.strip().splitlines()[-1] if out.strip() else ""
    return percent, rss, last


def run(root: Path, launches: int, warmup: float, window: float) -> int:
    rows: list[list[object]] = []
    if shutil.which("tmux") is None:
        print("tmux is not installed: skipping the first-frame figures")
    else:
        first_frame(root, root / "fill-cache")  # untimed: fills the bytecode cache
        fresh = [first_frame(root, root / f"fresh-{i}") for i in range(launches)]
        warm = [first_frame(root, root / "warm") for _ in range(launches + 1)][1:]
        cases = (("new directory (seeds the store)", fresh, "-"),
                 ("reused directory (warm)", warm, f"<= {TARGET_FRAME} s"))  # fmt: skip
        for label, values, target in cases:
            rows.append([f"first frame with data, {label}", target,
                         f"median {median(values):.2f} s, max {max(values):.2f} s "
                         f"({len(values)} launches)"])  # fmt: skip
    percent, rss, last = idle_cpu(root, warmup, window)
    rows.append([f"CPU of the demo's process tree, headless, idle {window:.0f} s after a "
                 f"{warmup:.0f} s warm-up", f"<= {TARGET_CPU:.0f}% of a core",
                 f"{percent:.1f}% (peak RSS of the demo process {rss:.0f} MB)"])  # fmt: skip
    print(table(["figure", "target", "result"], rows))
    print(f"the idle demo said at the end: {last}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2 launches, 5 s + 15 s of CPU")
    parser.add_argument("--launches", type=int, default=5)
    parser.add_argument("--warmup", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()
    if args.quick:
        args.launches, args.warmup, args.window = 2, 5.0, 15.0
    return in_workdir(args.keep, lambda root: run(root, args.launches, args.warmup, args.window))


if __name__ == "__main__":
    sys.exit(main())
