"""Runner trust: false failures over many fast stages, and what a SIGKILLed runner leaves.

Part 1, false failures. ``--stages`` stages (default 1,000) through the real
stage path (``run_stage``: supervisor, pipes, store writes), cycling over
fast commands that used to race the old runner: ``printf``, ``true``,
``touch``, a stage that redirects its own output (``exec >/dev/null 2>&1``)
and one that closes it (``exec 1>&- 2>&-``). Every one exits 0, so every
outcome other than ``succeeded`` is a false failure (target 0). The same
commands are also run with ``subprocess.run`` (no store, no supervisor): the
floor a stage can cost, and the ratio says what the runner adds.

Part 2, orphans. ``--kills`` times (default 5): ``opstui run`` inline with a
stage that starts a background sleep, a foreground sleep and a daemon that
double-forks into its own session and ignores SIGTERM; once all three are
up, the runner gets SIGKILL. Counted: processes of the stage still alive
5 s later (target 0), and how long the last one took to go.

    .venv/bin/python bench/runner_trust.py              # about 40 s
    .venv/bin/python bench/runner_trust.py --stages 200 --kills 2
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from _processes import DAEMON, marked, unique_seconds
from _report import in_workdir, median, ms, percentile, table

from opstui.config import CommandDef
from opstui.runner.process import run_stage
from opstui.store import Store
from opstui.store import runs as store_runs
from opstui.store import status as st

COMMANDS = [
    ["printf", "x\\n"],
    ["true"],
    ["touch", "f"],
    ["sh", "-c", "exec >/dev/null 2>&1; touch g"],
    ["sh", "-c", "exec 1>&- 2>&-; true"],
]


def false_failures(root: Path, count: int) -> tuple[int, list[float], list[float]]:
    """``(false failures, seconds per stage via run_stage, seconds per bare subprocess)``."""
    opstui: list[float] = []
    bare: list[float] = []
    failures = 0
    with Store(root / "trust.db") as store:
        run_id, _ = store_runs.create_run(store, "many", stages=["s"])
        for i in range(count):
            argv = COMMANDS[i % len(COMMANDS)]
            started = time.perf_counter()
            stage_id = store_runs.start_stage(store, run_id, "s")
            outcome = run_stage(
                store,
                run_id,
                stage_id,
                CommandDef(tuple(argv), root, {}, None),
                argv=argv,
                env=os.environ,
            )
            store_runs.finish_stage(
                store, run_id, "s", status=outcome.status, exit_code=outcome.exit_code
            )
            opstui.append(time.perf_counter() - started)
            if outcome.status != st.SUCCEEDED:
                failures += 1
                print(f"  false failure: {argv}: {outcome.message}", file=sys.stderr)
            started = time.perf_counter()
            subprocess.run(argv, cwd=root, capture_output=True, check=False)
            bare.append(time.perf_counter() - started)
    return failures, opstui, bare


def orphans(root: Path) -> tuple[int, float]:
    """``(processes left 5 s after the SIGKILL, seconds until none was left)``."""
    mark = unique_seconds()
    (root / "daemon.py").write_text(DAEMON)
    py = sys.executable
    (root / "opstui.toml").write_text(
        textwrap.dedent(
            f"""\
            store = "kill.db"
            [pipelines.p]
            kind = "devops"
            [[pipelines.p.stages]]
            name = "s"
            run = ["sh", "-c", "sleep {mark} & {py} daemon.py {mark} & sleep {mark}; wait"]
            """
        )
    )
    (root / "kill.db").unlink(missing_ok=True)
    runner = subprocess.Popen(
        [sys.executable, "-m", "opstui", "run", "p", "--yes"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert runner.stdout is not None
    for line in runner.stdout:
        if line.strip() == "working":
            break
    deadline = time.monotonic() + 10
    while len(marked(mark)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    killed = time.monotonic()
    gone_after: float | None = None
    while time.monotonic() - killed < 5.0:
        if gone_after is None and not marked(mark):
            gone_after = time.monotonic() - killed
        time.sleep(0.02)
    left = len(marked(mark))
    # Whatever is left (only if the target is missed) must not outlive the bench.
    if left:
        subprocess.run(["pkill", "-KILL", "-f", mark], check=False)
    return left, float("nan") if gone_after is None else gone_after


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stages", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    def run(root: Path) -> int:
        failures, opstui, bare = false_failures(root, args.stages)
        print(f"false failures: {failures} per {args.stages} stages (target 0)")
        print(
            table(
                ["per stage", "median", "p99"],
                [
                    [
                        "opstui run_stage (supervisor + store)",
                        ms(median(opstui)),
                        ms(percentile(opstui, 99)),
                    ],
                    ["subprocess.run (floor)", ms(median(bare)), ms(percentile(bare, 99))],
                ],
            )
        )
        print(f"ratio opstui / floor (medians): {median(opstui) / median(bare):.1f}x")
        print()
        rows = []
        total_left = 0
        for i in range(args.kills):
            left, gone = orphans(root)
            total_left += left
            rows.append([f"kill {i + 1}", left, ms(gone)])
        print(table(["SIGKILLed runner", "left after 5 s", "all gone after"], rows))
        print(f"processes left 5 s after a SIGKILLed runner: {total_left} (target 0)")
        return 0 if failures == 0 and total_left == 0 else 1

    return in_workdir(args.keep, run, prefix="opstui-trust-")


if __name__ == "__main__":
    sys.exit(main())
