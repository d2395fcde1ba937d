"""Log streaming: a stage prints N lines; the runner stores every one in flat memory.

A temp dir holds an ``opstui.toml`` whose pipeline ``stream`` has one stage,
``[python, -c, PRODUCER, N]``: N log lines of 90-120 characters (every tenth
on stderr). It is run through the real CLI as a subprocess, two ways:

  (a) inline: ``opstui run stream --yes``, stdout and stderr to /dev/null (the
      inline run echoes every line to the terminal; ``--json`` turns the echo
      off, measured once as (a'));
  (b) detached: ``opstui run stream --yes --detach``, then the ``opstui
      `` runner it starts (``python -m opstui.runner``), until that process exits.

For each, at N = 20,000, 200,000 and 1,000,000 (``--quick``: 20,000 and
200,000): wall time, lines stored (the stage's ``log_lines`` rows, compared
one by one with what was printed), lines/s, and the runner's peak RSS (its
``VmHWM``, polled). Memory must stay flat in N: RSS(largest N)/RSS(20,000)
close to 1. The runner is this process's child either way (a detached runner
is adopted: this process is a child subreaper), so it can be watched to the end.

Then stages that print what real stages sometimes do: a 50 MB line with no
newline, 50 MB of binary junk with no newline, 50 MB of ``os.urandom``-like
bytes (newlines at random), and 40 KB lines that do end in a newline. Lines
are capped at 16 KB; the output shows rows stored, the longest row and peak RSS.

Exits 1 if a run did not succeed or a line was lost or changed; missed
memory targets are printed, not failed. Linux only (``/proc``, ``prctl``).

    .venv/bin/python bench/log_streaming.py            # about 2 minutes
    .venv/bin/python bench/log_streaming.py --quick    # under 30 s
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import math
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _report import in_workdir, table

from opstui.config import PLACEHOLDER
from opstui.runner.process import MAX_LINE
from opstui.store import Store

PR_SET_CHILD_SUBREAPER = 36
CLI = [sys.executable, "-m", "opstui"]
TRUNCATED = " …[truncated]"  # what the store appends to a line it cut (runs._safe_line)
MB = 1 << 20
SEED = 7
#: Targets. Memory is "flat" if the largest run's peak is within 10% of the smallest's.
FLAT_RSS = 1.10

# The producer's line format, shared with the check that reads the rows back.
# No {braces}: opstui formats {lowercase} placeholders in every argument.
LINE_SOURCE = """
LEVELS = ("INFO", "INFO", "DEBUG", "INFO", "WARNING", "INFO", "INFO", "ERROR")
TAIL = "loaded shard from the object store; prefetch queue ok; grad norm ok; ckpt due"


def line(i):
    head = "2026-11-22T%02d:%02d:%02d.%03dZ %-7s worker[%d] step=%07d loss=%.6f lr=%.2e " % (
        i // 3600000 % 24,
        i // 60000 % 60,
        i // 1000 % 60,
        i % 1000,
        LEVELS[i % 8],
        i % 4,
        i,
        1.0 / (1 + i % 977),
        3e-4 * (1 - i % 1000 / 1000),
    )
    return head + TAIL[: i * 7 % 31]
"""

PRODUCER = (
    LINE_SOURCE
    + """
import sys

out, err = sys.stdout.write, sys.stderr.write
for i in range(int(sys.argv[1])):
    (err if i % 10 == 9 else out)(line(i) + "\\n")
"""
)

# N bytes of "x", no newline.
LONG_LINE = """
import sys

n, w = int(sys.argv[1]), sys.stdout.buffer.write
block = b"x" * 65536
for _ in range(n // 65536):
    w(block)
w(b"x" * (n % 65536))
"""

# N bytes of seeded random junk (NULs, ESC, invalid UTF-8); newlines dropped
# unless argv[3] is "keep"; argv[2] is the seed.
JUNK = """
import random, sys

n, rng, keep = int(sys.argv[1]), random.Random(int(sys.argv[2])), sys.argv[3] == "keep"
w = sys.stdout.buffer.write
while n > 0:
    chunk = rng.randbytes(min(n, 1 << 20))
    n -= len(chunk)
    w(chunk if keep else chunk.replace(b"\\n", b" "))
"""

# argv[1] lines of argv[2] bytes each, every one ending in a newline.
WIDE_LINES = """
import sys

w = sys.stdout.buffer.write
row = b"y" * (int(sys.argv[2]) - 1) + b"\\n"
for _ in range(int(sys.argv[1])):
    w(row)
"""

for _program in (PRODUCER, LONG_LINE, JUNK, WIDE_LINES):
    assert not PLACEHOLDER.search(_program), "a {placeholder} in a producer program"


def _line_fn() -> Any:
    namespace: dict[str, Any] = {}
    exec(LINE_SOURCE, namespace)
    return namespace["line"]


line = _line_fn()


def junk_bytes(n: int, seed: int) -> Iterator[bytes]:
    """The bytes JUNK prints with ``keep`` (the same generator, the same seed)."""
    rng = random.Random(seed)
    while n > 0:
        chunk = rng.randbytes(min(n, 1 << 20))
        n -= len(chunk)
        yield chunk


def expected_junk_rows(n: int, seed: int) -> int:
    """Rows the runner makes of JUNK with newlines kept.

    Each newline ends a row (an empty line is a row too); a line longer than
    16 KB, ended or not, is stored as ceil(len / 16 KB) rows.
    """
    rows, length = 0, 0  # rows so far; bytes of the line not yet ended
    for chunk in junk_bytes(n, seed):
        *ended, tail = chunk.split(b"\n")
        for part in ended:
            rows += max(1, math.ceil((length + len(part)) / MAX_LINE))
            length = 0
        length += len(tail)
    return rows + math.ceil(length / MAX_LINE)


# --- the runner as a child process --------------------------------------------------------


def become_subreaper() -> None:
    """Adopt orphaned descendants: a detached runner becomes this process's child."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def vm_hwm_kb(pid: int) -> int:
    """Peak RSS of ``pid`` so far (``VmHWM``), 0 once it has exited."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return 0
    for row in text.splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1])
    return 0


@dataclass
class Exited:
    seconds: float  # from the start of the measurement to the runner's exit
    exit_code: int
    runner_hwm_kb: int  # the runner's own peak RSS (VmHWM, polled until it exits)


def watch(pid: int, started: float, timeout: float, poll: float = 0.005) -> Exited:
    """Poll a child's VmHWM until it exits, then reap it.

    VmHWM only grows, so the last poll misses at most what the runner added
    in its last ``poll`` seconds. (``wait4``'s ``ru_maxrss`` is no substitute:
    it also counts the stage, and the copy of this process a child is forked
    from before it execs.)
    """
    hwm = 0
    deadline = time.monotonic() + timeout
    while True:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got == pid:
            return Exited(time.perf_counter() - started, os.waitstatus_to_exitcode(status), hwm)
        hwm = max(hwm, vm_hwm_kb(pid))
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            raise SystemExit(f"runner {pid} still running after {timeout:.0f}s; killed")
        time.sleep(poll)


# --- one measured run ---------------------------------------------------------------------


@dataclass
class Workspace:
    root: Path
    store: Path
    config: Path
    errors: Path  # the CLI's stderr (the echo of stderr lines lands here too)
    timeout: float

    def write_config(self, stages: dict[str, list[str]]) -> None:
        """One pipeline per entry, each with one stage ``emit``. JSON strings are TOML strings."""
        out = []
        for name, argv in stages.items():
            run = ", ".join(json.dumps(a) for a in argv)
            out += [
                f"[pipelines.{name}]",
                'kind = "devops"',
                f'stages = [{{ name = "emit", run = [{run}] }}]',
                "",
            ]
        self.config.write_text("\n".join(out), encoding="utf-8")

    def cli(self, *args: str) -> list[str]:
        return [*CLI, *args, "--store", str(self.store), "--config", str(self.config)]


@dataclass
class Result:
    label: str
    mode: str
    expected: int | None  # rows the stage's output must make, when exactly known
    run_id: int = 0
    run_status: str = "?"
    exited: Exited | None = None
    stage_seconds: float = math.nan
    rows: int = 0
    mismatched: int = 0  # rows (bytes, for odd text) that differ from what was printed
    longest: int = 0  # characters in the longest row
    truncated: int = 0  # rows the store cut (ending in " …[truncated]")
    stored_bytes: int = 0  # UTF-8 bytes of all rows
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.run_status == "succeeded"
            and self.mismatched == 0
            and (self.expected is None or self.rows == self.expected)
        )


def _single_run_id(store: Path, pipeline: str, after: int) -> int:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        ids = conn.execute(
            "SELECT r.id FROM runs r JOIN pipelines p ON p.id = r.pipeline_id"
            " WHERE p.name = ? AND r.id > ? ORDER BY r.id",
            (pipeline, after),
        ).fetchall()
    finally:
        conn.close()
    if len(ids) != 1:
        raise SystemExit(f"expected one new run of {pipeline}, found {len(ids)}")
    return int(ids[0][0])


def _max_run_id(store: Path) -> int:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT coalesce(max(id), 0) FROM runs").fetchone()[0])
    finally:
        conn.close()


def run_inline(ws: Workspace, pipeline: str, *, echo: bool) -> tuple[int, Exited]:
    before = _max_run_id(ws.store) if ws.store.exists() else 0
    argv = ws.cli("run", pipeline, "--yes", *([] if echo else ["--json"]))
    with ws.errors.open("ab") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
        )
        exited = watch(proc.pid, started, ws.timeout)
        proc.returncode = exited.exit_code  # reaped by watch(); Popen must not wait again
    return _single_run_id(ws.store, pipeline, before), exited


def run_detached(ws: Workspace, pipeline: str) -> tuple[int, Exited]:
    started = time.perf_counter()
    done = subprocess.run(
        ws.cli("run", pipeline, "--yes", "--detach", "--json"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=ws.timeout,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"opstui run --detach exited {done.returncode}:\n{done.stderr.decode()}")
    run_id = int(json.loads(done.stdout)["run_id"])
    # The runner records its pid when it claims the run. It is already our
    # child (the CLI that started it has exited), so it waits for us to reap it.
    deadline = time.monotonic() + ws.timeout
    with Store(ws.store, create=False) as store:
        while True:
            row = store.conn.execute("SELECT pid FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row[0] is not None:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"run {run_id} was never claimed by a runner")
            time.sleep(0.002)
    return run_id, watch(int(row[0]), started, ws.timeout)


def inspect(ws: Workspace, result: Result, *, check_lines: int | None = None) -> Result:
    """Read the run back: status, stage time, rows; compare them with what was printed."""
    conn = sqlite3.connect(f"file:{ws.store}?mode=ro", uri=True)
    try:
        stage_id, started, finished, status = conn.execute(
            "SELECT s.id, s.started_at, s.finished_at, r.status FROM stage_runs s"
            " JOIN runs r ON r.id = s.run_id WHERE r.id = ? AND s.name = 'emit'",
            (result.run_id,),
        ).fetchone()
        result.run_status = str(status)
        result.stage_seconds = (finished or math.nan) - (started or math.nan)
        rows, longest, truncated, stored = conn.execute(
            "SELECT count(*), coalesce(max(length(line)), 0),"
            " coalesce(sum(line LIKE ?), 0), coalesce(sum(length(CAST(line AS BLOB))), 0)"
            " FROM log_lines WHERE stage_run_id = ?",
            (f"%{TRUNCATED}", stage_id),
        ).fetchone()
        result.rows, result.longest, result.truncated = int(rows), int(longest), int(truncated)
        result.stored_bytes = int(stored)
        if check_lines is not None:
            result.mismatched = _compare(conn, stage_id, check_lines)
    finally:
        conn.close()
    return result


def _compare(conn: sqlite3.Connection, stage_id: int, n: int) -> int:
    """Rows that are not the next line printed on their stream (missing ones count too)."""
    want = {
        "stdout": (i for i in range(n) if i % 10 != 9),
        "stderr": (i for i in range(n) if i % 10 == 9),
    }
    bad = 0
    cur = conn.execute(
        "SELECT stream, line FROM log_lines WHERE stage_run_id = ? ORDER BY id", (stage_id,)
    )
    for stream, text in cur:
        i = next(want[stream], None)
        if i is None or text != line(i):
            bad += 1
    bad += sum(1 for rest in want.values() for _ in rest)
    return bad


# --- the benchmark ------------------------------------------------------------------------


def kb(value: int) -> str:
    return f"{value / 1024:.1f} MB" if value else "-"


def measure_lines(ws: Workspace, sizes: Sequence[int], headline: int) -> list[Result]:
    results: list[Result] = []
    for n in sizes:
        ws.write_config({"stream": [sys.executable, "-c", PRODUCER, str(n)]})
        modes = ["inline", "inline --json (no echo)", "detached"] if n == headline else []
        for mode in modes or ["inline", "detached"]:
            print(f"  {n:>9,} lines, {mode} ...", end="", flush=True)
            if mode == "detached":
                run_id, exited = run_detached(ws, "stream")
            else:
                run_id, exited = run_inline(ws, "stream", echo=mode == "inline")
            result = Result(f"{n:,} lines", mode, n, run_id=run_id, exited=exited)
            inspect(ws, result, check_lines=n)
            results.append(result)
            print(f" {exited.seconds:.2f} s, {result.rows:,} rows, {kb(exited.runner_hwm_kb)}")
    return results


def measure_odd_output(ws: Workspace, junk_mb: int) -> list[Result]:
    size = junk_mb * MB
    wide_size = 40 * 1024
    wide_n = max(1, size // wide_size)
    # (label, argv, rows expected, text bytes expected (None: binary), note)
    cases: list[tuple[str, list[str], int, int | None, str]] = [
        (
            f"{junk_mb} MB, one line, no newline",
            [sys.executable, "-c", LONG_LINE, str(size)],
            math.ceil(size / MAX_LINE),
            size,
            "cut into 16 KB rows",
        ),
        (
            f"{junk_mb} MB binary junk, no newline",
            [sys.executable, "-c", JUNK, str(size), str(SEED), "drop"],
            math.ceil(size / MAX_LINE),
            None,
            "NULs dropped, invalid UTF-8 -> U+FFFD",
        ),
        (
            f"{junk_mb} MB random bytes, newlines kept",
            [sys.executable, "-c", JUNK, str(size), str(SEED), "keep"],
            expected_junk_rows(size, SEED),
            None,
            "a line per newline",
        ),
        (
            f"{wide_n:,} lines of 40 KB, each ending in a newline",
            [sys.executable, "-c", WIDE_LINES, str(wide_n), str(wide_size)],
            wide_n * math.ceil((wide_size - 1) / MAX_LINE),
            wide_n * (wide_size - 1),
            "each cut into 16 KB rows",
        ),
    ]
    results = []
    for label, argv, expected, text_bytes, note in cases:
        ws.write_config({"odd": argv})
        print(f"  {label}, detached ...", end="", flush=True)
        run_id, exited = run_detached(ws, "odd")
        result = inspect(ws, Result(label, "detached", expected, run_id=run_id, exited=exited))
        result.notes.append(note)
        if result.truncated:
            result.notes.append(f"{result.truncated:,} rows cut by the store")
        if text_bytes is not None:
            # Text in, text out: every byte printed (newlines aside) must be stored.
            result.mismatched = abs(text_bytes - result.stored_bytes)
            result.notes.append(f"{result.stored_bytes:,} of {text_bytes:,} bytes stored")
        results.append(result)
        print(f" {exited.seconds:.2f} s, {result.rows:,} rows, {kb(exited.runner_hwm_kb)}")
    return results


def producer_floor(n: int) -> float:
    """The producer alone, unbuffered as opstui runs it, writing to /dev/null."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", PRODUCER, str(n)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        check=True,
    )
    return time.perf_counter() - started


def report(
    lines: Sequence[Result], odd: Sequence[Result], baseline_kb: int, floor: float, headline: int
) -> int:
    print("\nEvery run")
    rows = []
    for r in [*lines, *odd]:
        assert r.exited is not None
        per_s = r.rows / r.stage_seconds if r.stage_seconds > 0 else math.nan
        rows.append(
            [
                r.label,
                r.mode,
                r.run_status,
                f"{r.exited.seconds:.2f} s",
                f"{r.stage_seconds:.2f} s",
                f"{r.rows:,}" + ("" if r.expected is None else f" / {r.expected:,}"),
                f"{r.mismatched:,}",
                f"{per_s:,.0f}",
                kb(r.exited.runner_hwm_kb),
                f"{r.longest:,}",
                "; ".join(r.notes),
            ]
        )
    print(
        table(
            [
                "case",
                "mode",
                "run",
                "wall",
                "stage",
                "rows / expected",
                "wrong",
                "rows/s (stage)",
                "runner peak RSS",
                "longest row",
                "note",
            ],
            rows,
        )
    )
    print(
        "\nwall: CLI launch to the runner's exit; stage: the stage's started_at..finished_at"
        " in the store;\nrunner peak RSS: the VmHWM of the process that runs the stage"
        " (the CLI inline, `python -m opstui.runner` detached)"
        f"\nproducer alone, {headline:,} lines to /dev/null:"
        f" {floor:.2f} s ({headline / floor:,.0f} lines/s)"
    )

    figures: list[list[str]] = []
    missed = 0

    def figure(label: str, value: str, target: str, ratio: float | None, ok: bool) -> None:
        nonlocal missed
        cell = "-" if ratio is None else f"{ratio:.3f}" + ("" if ok else "  MISSED")
        missed += not ok
        figures.append([label, value, target, cell])

    for tag, mode in (("a", "inline"), ("b", "detached")):
        runs = [r for r in lines if r.mode == mode]
        for r in runs:
            assert r.exited is not None and r.expected is not None
            figure(
                f"({tag}) {mode}, {r.expected:,} lines: rows stored",
                f"{r.rows:,}",
                f"= {r.expected:,}",
                r.rows / r.expected,
                r.ok,
            )
        head = next(r for r in runs if r.expected == headline)
        assert head.exited is not None
        figure(
            f"({tag}) {mode}, {headline:,} lines: lines/s, wall",
            f"{headline / head.exited.seconds:,.0f}",
            "-",
            None,
            True,
        )
        small, large = runs[0], runs[-1]
        assert small.exited is not None and large.exited is not None
        flat = large.exited.runner_hwm_kb / max(small.exited.runner_hwm_kb, 1)
        figure(
            f"({tag}) {mode}: runner peak RSS {large.label} / {small.label}",
            f"{kb(large.exited.runner_hwm_kb)} / {kb(small.exited.runner_hwm_kb)}",
            f"<= {FLAT_RSS:.2f}",
            flat,
            flat <= FLAT_RSS,
        )
    quiet = next((r for r in lines if r.mode.startswith("inline --json")), None)
    loud = next((r for r in lines if r.mode == "inline" and r.expected == headline), None)
    if quiet and loud and quiet.exited and loud.exited:
        figure(
            f"(a') inline wall with echo / without, {headline:,} lines",
            f"{loud.exited.seconds:.2f} s / {quiet.exited.seconds:.2f} s",
            "-",
            loud.exited.seconds / quiet.exited.seconds,
            True,
        )
    new = next((r for r in lines if r.mode == "inline, new store"), None)
    old = next((r for r in lines if r.mode == "inline"), None)
    if new and old and new.exited and old.exited:
        figure(
            f"(a) inline, {new.label}: runner peak RSS, new store / existing store",
            f"{kb(new.exited.runner_hwm_kb)} / {kb(old.exited.runner_hwm_kb)}",
            "-",
            new.exited.runner_hwm_kb / max(old.exited.runner_hwm_kb, 1),
            True,
        )
    for r in odd:
        assert r.exited is not None
        cap = MAX_LINE
        figure(
            f"{r.label}: longest row (chars)",
            f"{r.longest:,}",
            f"<= {cap:,}",
            r.longest / cap,
            r.longest <= cap and r.ok,
        )
        rss = r.exited.runner_hwm_kb / max(baseline_kb, 1)
        figure(
            f"{r.label}: runner peak RSS / 20,000 lines'",
            kb(r.exited.runner_hwm_kb),
            f"<= {FLAT_RSS:.2f}",
            rss,
            rss <= FLAT_RSS,
        )
    print("\nLog streaming: results")
    print(table(["figure", "value", "target", "value/target"], figures))
    failed = [r for r in [*lines, *odd] if not r.ok]
    for r in failed:
        print(
            f"FAILED {r.label} ({r.mode}): run {r.run_id} {r.run_status}, {r.rows:,} rows, "
            f"{r.mismatched:,} wrong"
        )
    print(f"\n{missed} target(s) missed" if missed else "\nall targets met")
    return 1 if failed else 0


def run_benchmark(args: argparse.Namespace, root: Path) -> int:
    ws = Workspace(
        root, root / "store.db", root / "opstui.toml", root / "cli-stderr.log", args.timeout
    )
    sizes = sorted({20_000, args.lines, *(() if args.quick else (1_000_000,))})
    print(f"workspace: {root}\nsample line ({len(line(12345))} chars): {line(12345)}")
    lengths = [len(line(i)) for i in range(10_000)]
    print(f"line length: {min(lengths)}-{max(lengths)} chars, mean {sum(lengths) / 1e4:.0f}")

    # A store created by the run itself costs the runner the migration's imports.
    fresh = Workspace(root, root / "fresh.db", ws.config, ws.errors, ws.timeout)
    ws.write_config({"stream": [sys.executable, "-c", PRODUCER, str(sizes[0])]})
    print("runs (stage output checked line by line afterwards):")
    print(f"  {sizes[0]:>9,} lines, inline into a new store ...", end="", flush=True)
    run_id, exited = run_inline(fresh, "stream", echo=True)
    created = Result(f"{sizes[0]:,} lines", "inline, new store", sizes[0], run_id, exited=exited)
    inspect(fresh, created, check_lines=sizes[0])
    created.notes.append("the run created the store")
    print(f" {exited.seconds:.2f} s, {kb(exited.runner_hwm_kb)}")

    # The other runs write to an existing store, created in a child process:
    # the migration's imports (sqlite_utils) are not the runs' to pay.
    create = "import sys; from opstui.store import Store; Store(sys.argv[1]).close()"
    subprocess.run([sys.executable, "-c", create, str(ws.store)], check=True)
    lines = measure_lines(ws, sizes, args.lines)
    odd = measure_odd_output(ws, args.junk_mb)
    floor = producer_floor(args.lines)
    errors = ws.errors.read_text(encoding="utf-8", errors="replace") if ws.errors.exists() else ""
    runner_log = Path(f"{ws.store}.runner.log")
    if runner_log.exists() and runner_log.stat().st_size:
        print(f"\nrunner log ({runner_log}):\n{runner_log.read_text(errors='replace')[-2000:]}")
    opstui_errors = [e for e in errors.splitlines() if e.startswith(("opstui:", "Traceback"))]
    for e in opstui_errors:
        print(f"CLI: {e}")
    small = next(r for r in lines if r.mode == "detached")
    assert small.exited is not None
    return report([created, *lines], odd, small.exited.runner_hwm_kb, floor, args.lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=200_000, help="the headline N (200,000)")
    parser.add_argument("--junk-mb", type=int, default=50, help="MB of odd output per case")
    parser.add_argument("--timeout", type=float, default=300.0, help="per run, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with the store")
    parser.add_argument("--quick", action="store_true", help="20,000 and 200,000 lines only")
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        print("log_streaming.py needs Linux (/proc, prctl)", file=sys.stderr)
        return 2
    become_subreaper()
    return in_workdir(args.keep, lambda root: run_benchmark(args, root), prefix="opstui-bench-")


if __name__ == "__main__":
    sys.exit(main())
