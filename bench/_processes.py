"""Hostile stages shared by tests/test_runner_trust.py and bench/runner_trust.py.

A stage's processes are found by a marker in their command line: a sleep
length no other process on the machine uses.
"""

from __future__ import annotations

import random
from pathlib import Path

#: A script that double-forks into a session of its own (what ``daemon(3)``
#: does), leaves a shell that ignores SIGTERM sleeping ``argv[1]`` seconds,
#: prints "working" and sleeps.
DAEMON = """\
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sh", ["sh", "-c", "trap '' TERM; sleep " + sys.argv[1]])
    os._exit(0)
os.wait()
print("working", flush=True)
time.sleep(600)
"""


def unique_seconds() -> str:
    """A sleep length no other process on the machine uses: its marker."""
    return f"{random.randint(1000, 9999)}.{random.randint(100000, 999999)}"


def marked(marker: str) -> list[int]:
    """PIDs of live (not zombie) processes whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != b"Z":
            found.append(int(entry.name))
    return found


def tree(root_pid: int) -> list[int]:
    """``root_pid`` and every process below it (from ``/proc``: Linux only)."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(") ", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(proc.name))
    out, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out
