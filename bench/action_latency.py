"""Action latency: ``opstui retry RUN --yes --detach`` until a reader sees the retry running.

A temp dir holds a store and an ``opstui.toml`` with pipeline ``p`` of three
stages: ``build`` (echo), ``test`` (``sh -c 'test -f "$0/pass"' {config_dir}``,
so it fails until a file named ``pass`` exists next to the config) and
``deploy`` (echo). Each iteration:

  1. removes ``pass`` and runs ``opstui run p --yes --json`` inline: that run
     fails at ``test`` (not timed);
  2. creates ``pass`` and starts ``opstui retry <failed run> --yes --detach``
     as a subprocess (the clock starts just before the launch);
  3. meanwhile this process, with its own ``Store``, polls
     ``SELECT id, status FROM runs WHERE parent_run_id = ?`` every 2 ms and
     notes when the retry run is first seen queued (the CLI's write), first
     seen running (the detached runner claimed it), and finished;
  4. waits for the CLI and the detached runner to exit (this process is a
     child subreaper on Linux, so it reaps the runner) before the next one.

The retry must reuse ``build`` and succeed; anything else is an error (exit 1).

Two processes start before the retry is running: the CLI, then the detached
runner (``python -m opstui.runner RUN``). To show what each costs on its own, it also
times ``python -c pass``, ``opstui --version``, ``opstui retry RUN --yes
--dry-run`` (the CLI's fixed cost: everything but the write and the spawn)
and ``python -m opstui.runner`` of a run that does not exist (the runner's fixed cost:
start-up, imports, config, store; it stops where it would claim the run),
and lists the slowest imports of the last two (``-X importtime``).

Child processes get a private bytecode cache (``PYTHONPYCACHEPREFIX`` in the
temp dir, ``PYTHONDONTWRITEBYTECODE`` unset), as an installed opstui has
compiled ``.pyc`` files; ``--no-bytecode-cache`` keeps the environment as is.

    .venv/bin/python bench/action_latency.py            # 30 iterations, about a minute
    .venv/bin/python bench/action_latency.py --quick    # 8 iterations, under 30 s
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _report import in_workdir, median, ms, percentile, table

from opstui.store import Store

CLI = [sys.executable, "-m", "opstui"]
PR_SET_CHILD_SUBREAPER = 36
TARGET_RUNNING = 0.300  # launch -> a reader sees the retry running: median
FINISHED = frozenset({"succeeded", "failed", "cancelled", "timed_out"})
# The start-up figures, by label.
FLOOR = "python -c pass (interpreter floor)"
VERSION = "opstui --version (start-up, imports)"
DRY_RUN = "opstui retry RUN --yes --dry-run (CLI fixed cost)"
NO_RUN = "python -m opstui.runner <no such run> (runner fixed cost)"
NO_PYC_NOTE = "; PYTHONDONTWRITEBYTECODE is set: opstui is compiled from source each time"

CONFIG = """\
[pipelines.p]
kind = "devops"
stages = [
  { name = "build", run = ["sh", "-c", "echo built"] },
  { name = "test", run = ["sh", "-c", "test -f \\"$0/pass\\"", "{config_dir}"] },
  { name = "deploy", run = ["sh", "-c", "echo deployed"] },
]
"""


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux): the detached runner becomes our child."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def wait_gone(pid: int, timeout: float) -> None:
    """Wait for process ``pid`` to exit; reap it if it is (now) our child."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got, _ = os.waitpid(pid, os.WNOHANG)
            if got == pid:
                return
        except ChildProcessError:  # not ours: poll for it instead
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.002)
    raise SystemExit(f"runner {pid} still running after {timeout:.0f}s")


@dataclass
class Iteration:
    failed_run: int
    retry_run: int = 0
    queued: float | None = None  # launch -> first seen (queued, or later)
    running: float | None = None  # launch -> first seen running
    cli_exit: float | None = None  # launch -> the retry CLI exited
    finished: float | None = None  # launch -> first seen finished
    status: str = "?"
    seen: str = ""  # the statuses seen, in order, e.g. "queued running succeeded"
    error: str | None = None


@dataclass
class Bench:
    root: Path
    store_path: Path
    config: Path
    timeout: float
    poll: float
    env: dict[str, str]

    def cli(self, *args: str) -> list[str]:
        return [*CLI, *args, "--store", str(self.store_path), "--config", str(self.config)]

    def failed_run(self) -> int:
        """Run ``p`` inline with ``pass`` absent: it fails at ``test``."""
        (self.root / "pass").unlink(missing_ok=True)
        done = subprocess.run(
            self.cli("run", "p", "--yes", "--json"),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=self.env,
            timeout=self.timeout,
            check=False,
        )
        try:
            result = json.loads(done.stdout)
        except json.JSONDecodeError:
            raise SystemExit(
                f"opstui run exited {done.returncode}:\n{done.stderr.decode()[-2000:]}"
            ) from None
        if result.get("status") != "failed":
            raise SystemExit(f"the first run should fail at test; got {result}")
        return int(result["run_id"])

    def retry(self, store: Store, failed: int) -> Iteration:
        it = Iteration(failed)
        (self.root / "pass").touch()
        query = "SELECT id, status, pid FROM runs WHERE parent_run_id = ?"
        with (self.root / "retry-stderr.log").open("ab") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(
                self.cli("retry", str(failed), "--yes", "--detach"),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=self.env,
            )
            pid = None
            deadline = time.monotonic() + self.timeout
            while True:
                row = store.conn.execute(query, (failed,)).fetchone()
                now = time.perf_counter() - started
                if row is not None:
                    it.retry_run, status, pid = int(row[0]), str(row[1]), row[2]
                    if not it.seen.endswith(status):
                        it.seen = f"{it.seen} {status}".strip()
                    if it.queued is None:
                        it.queued = now
                    if status == "running" and it.running is None:
                        it.running = now
                    if status in FINISHED and it.finished is None:
                        it.finished, it.status = now, status
                if it.cli_exit is None and proc.poll() is not None:
                    it.cli_exit = now
                    if proc.returncode != 0:
                        it.error = f"opstui retry exited {proc.returncode}"
                if it.cli_exit is not None and (it.finished is not None or it.error):
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    it.error = f"no finished retry after {self.timeout:.0f}s (seen: {it.seen})"
                    break
                time.sleep(self.poll)
        if pid is not None:
            wait_gone(int(pid), self.timeout)  # the runner exits just after it finishes
        if it.error is None:
            it.error = self.check(store, it)
        return it

    def check(self, store: Store, it: Iteration) -> str | None:
        if it.status != "succeeded":
            return f"retry run {it.retry_run} {it.status}"
        stages = store.conn.execute(
            "SELECT name, status, reused_from_id FROM stage_runs"
            " WHERE run_id = ? ORDER BY position",
            (it.retry_run,),
        ).fetchall()
        shape = [(name, status, reused is not None) for name, status, reused in stages]
        want = [
            ("build", "succeeded", True),
            ("test", "succeeded", False),
            ("deploy", "succeeded", False),
        ]
        return None if shape == want else f"retry run {it.retry_run} stages: {shape}"


def subprocess_times(argv: Sequence[str], n: int, env: dict[str, str]) -> list[float]:
    """Wall times of ``n`` runs of ``argv`` (after one untimed warm-up)."""
    out = []
    for i in range(n + 1):
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, env=env, check=False)
        if i:
            out.append(time.perf_counter() - started)
        if done.returncode not in (0, 2):  # 2: the run that does not exist
            raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr!r}")
    return out


def import_times(argv: Sequence[str], env: dict[str, str]) -> dict[str, float]:
    """Top-level imports of ``argv`` by cumulative seconds (``-X importtime``).

    Imports done inside functions (a command's lazy imports) are top-level too.
    """
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    found: dict[str, float] = {}
    for row in done.stderr.splitlines():
        if not row.startswith("import time:") or "cumulative" in row:
            continue
        _, cumulative, name = row.split("|", 2)
        if not name.startswith("  ") and name.strip():  # nested imports are indented
            found[name.strip()] = found.get(name.strip(), 0.0) + int(cumulative) / 1e6
    return found


def stats_row(label: str, values: Sequence[float], target: float | None = None) -> list[str]:
    cells = [label, str(len(values))]
    cells += [ms(median(values)), ms(percentile(values, 90)), ms(percentile(values, 99))]
    cells.append(ms(max(values)) if values else "-")
    if target is None:
        return [*cells, "-", "-"]
    ratio = median(values) / target
    return [*cells, f"median < {ms(target)}", f"{ratio:.2f}" + ("  MISSED" if ratio >= 1 else "")]


def report(its: Sequence[Iteration], fixed: dict[str, list[float]]) -> int:
    good = [it for it in its if it.error is None]
    for it in its:
        if it.error:
            print(f"ERROR iteration retrying run {it.failed_run}: {it.error}", file=sys.stderr)

    def col(name: str) -> list[float]:
        return [v for it in good if (v := getattr(it, name)) is not None]

    running, queued, finished = col("running"), col("queued"), col("finished")
    claim = [
        it.running - it.queued for it in good if it.running is not None and it.queued is not None
    ]
    work = [
        it.finished - it.running
        for it in good
        if it.running is not None and it.finished is not None
    ]
    never_running = sum(it.running is None for it in good)

    print("\nAction latency: results (seconds from launching `opstui retry RUN --yes --detach`)")
    headers = ["figure", "n", "median", "p90", "p99", "max", "target", "median/target"]
    rows = [
        stats_row("launch -> reader sees the retry run running", running, TARGET_RUNNING),
        stats_row("  launch -> reader sees it queued (the CLI's write)", queued),
        stats_row("  queued -> running (runner start-up and claim)", claim),
        stats_row("launch -> the retry CLI exited", col("cli_exit")),
        stats_row("launch -> reader sees the retry run finished", finished),
        stats_row("  running -> finished (3 stages, 1 reused)", work),
        *(stats_row(label, times) for label, times in fixed.items()),
    ]
    print(table(headers, rows))
    if never_running:
        print(f"{never_running} retry run(s) finished before a poll saw them running")
    seen = sorted({it.seen for it in good})
    print(f"statuses seen by the reader: {'; '.join(seen) or '-'}")
    cli, runner = fixed.get(DRY_RUN, []), fixed.get(NO_RUN, [])
    if running and cli and runner:
        both = median(cli) + median(runner)
        print(
            f"\nThe CLI's and the runner's fixed costs (medians) add up to {ms(both)}, "
            f"{both / median(running):.0%} of the median launch -> running "
            f"({ms(median(running))});\nthe interpreter alone starts in "
            f"{ms(median(fixed[FLOOR]))}, twice that is {ms(2 * median(fixed[FLOOR]))}."
        )
    errors = len(its) - len(good)
    missed = bool(running) and median(running) >= TARGET_RUNNING
    print(f"\nerrors: {errors}; " + ("1 target missed" if missed else "all targets met"))
    return 1 if errors else 0


def child_env(root: Path, bytecode_cache: bool) -> dict[str, str]:
    env = dict(os.environ)
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    return env


def run_benchmark(args: argparse.Namespace, root: Path) -> int:
    env = child_env(root, not args.no_bytecode_cache)
    bench = Bench(root, root / "store.db", root / "opstui.toml", args.timeout, args.poll, env)
    bench.config.write_text(CONFIG, encoding="utf-8")
    adopted = become_subreaper()
    print(f"workspace: {root}" + ("" if adopted else " (not a subreaper: runners polled)"))
    if args.no_bytecode_cache:
        no_pyc = bool(env.get("PYTHONDONTWRITEBYTECODE"))
        print("child processes: environment as is" + (no_pyc * NO_PYC_NOTE))
    else:
        print(f"child processes: bytecode cached in {env['PYTHONPYCACHEPREFIX']}")
    first = bench.failed_run()  # creates and migrates the store (not timed)
    print(f"run {first} failed at test, as it should; {args.iterations} retries follow")
    its: list[Iteration] = []
    with Store(bench.store_path, create=False) as store:
        for i in range(args.iterations):
            failed = first if i == 0 else bench.failed_run()
            it = bench.retry(store, failed)
            its.append(it)
            cell = "-" if it.running is None else f"{it.running * 1000:.0f} ms"
            print(f"  {i + 1:>3}: retry of run {failed} running after {cell}", flush=True)
    dry_run = bench.cli("retry", str(first), "--yes", "--dry-run")
    # The detached runner's own entry point (what --detach starts).
    no_run = [
        sys.executable,
        "-m",
        "opstui.runner",
        "999999999",
        "--store",
        str(bench.store_path),
        "--config",
        str(bench.config),
    ]
    fixed = {
        FLOOR: subprocess_times([sys.executable, "-c", "pass"], args.floor_runs, env),
        VERSION: subprocess_times([*CLI, "--version"], args.floor_runs, env),
        DRY_RUN: subprocess_times(dry_run, args.floor_runs, env),
        NO_RUN: subprocess_times(no_run, args.floor_runs, env),
    }
    code = report(its, fixed)
    cli_imports, runner_imports = import_times(dry_run, env), import_times(no_run, env)
    slowest = sorted(
        set(cli_imports) | set(runner_imports),
        key=lambda m: -max(cli_imports.get(m, 0), runner_imports.get(m, 0)),
    )[: args.top_imports]
    print("\nslowest top-level imports (-X importtime, cumulative; one run each, noisy):")
    print(
        table(
            ["module", "retry --dry-run", "opstui.runner"],
            [
                [m, ms(cli_imports.get(m, math.nan)), ms(runner_imports.get(m, math.nan))]
                for m in slowest
            ],
        )
    )
    log = Path(f"{bench.store_path}.runner.log")
    for path in (log, root / "retry-stderr.log"):
        if path.exists() and path.stat().st_size:
            print(f"\n{path.name}:\n{path.read_text(errors='replace')[-2000:]}")
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=30, help="retries to time (>= 20)")
    parser.add_argument("--poll", type=float, default=0.002, help="reader poll interval, s")
    parser.add_argument("--floor-runs", type=int, default=15, help="runs per start-up figure")
    parser.add_argument("--top-imports", type=int, default=10)
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="run the CLI with the environment as is (PYTHONDONTWRITEBYTECODE honoured)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="per retry, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with the store")
    parser.add_argument("--quick", action="store_true", help="8 iterations, 7 start-up runs")
    args = parser.parse_args()
    if args.quick:
        args.iterations = min(args.iterations, 8)
        args.floor_runs = min(args.floor_runs, 7)
    return in_workdir(args.keep, lambda root: run_benchmark(args, root), prefix="opstui-bench-")


if __name__ == "__main__":
    sys.exit(main())
