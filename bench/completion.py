"""How long a Tab and `opstui --version` take, as a shell runs them.

Each figure is the median wall time of ``--runs`` subprocesses (the first
one, which warms the OS cache, not counted): `python -c pass` (the
interpreter's floor), `opstui --version`, `opstui --help`, and Typer's bash
completion protocol (``_OPSTUI_COMPLETE=complete_bash``) for a command
name, pipeline names from the config (`run `) and model names from the
store (`--store S models `), on the bundled sample history. Targets: 0.2 s
for `--version` and for a completion (issue: a well-behaved command).

    .venv/bin/python bench/completion.py [--runs 21] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from _report import in_workdir, median, ms, table

ROOT = Path(__file__).resolve().parents[1]
#: `opstui` as its console script runs it, but without the completion fast path.
KEPT = (
    "import sys; sys.argv = ['opstui']; import opstui.cli as cli; "
    "cli._lean_completion = lambda: None; cli.main()"
)
TARGET = 0.2
CONFIG = """
[pipelines.web-api]
kind = "devops"
stages = [{ name = "deploy", run = ["true"] }]
[pipelines.etl]
kind = "devops"
stages = [{ name = "load", run = ["true"] }]
[models.churn]
pipeline = "etl"
"""


def timed(argv: list[str], env: dict[str, str], cwd: Path, runs: int) -> tuple[float, str]:
    times, out = [], ""
    for i in range(runs + 1):
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
        if i:
            times.append(time.perf_counter() - started)
        out = done.stdout
    return median(times), out


def run(work: Path, runs: int) -> int:
    exe = str(Path(sys.executable).with_name("opstui"))
    store = work / "sample.db"
    subprocess.run([exe, "import", str(ROOT / "sample_runs"), "--store", str(store)],
                   check=True, capture_output=True)  # fmt: skip
    (work / "opstui.toml").write_text(CONFIG)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPSTUI_", "_OPSTUI"))}
    base |= {"XDG_STATE_HOME": str(work / "state"), "XDG_CONFIG_HOME": str(work / "config")}

    def tab(line: str) -> dict[str, str]:
        words = line.split(" ")
        return base | {"_OPSTUI_COMPLETE": "complete_bash", "COMP_WORDS": line,
                       "COMP_CWORD": str(len(words) - 1)}  # fmt: skip

    cases = [
        ("python -c pass (floor)", [sys.executable, "-c", "pass"], base, None),
        ("opstui --version", [exe, "--version"], base, TARGET),
        ("opstui --help", [exe, "--help"], base, None),
        ("Tab: a command name (ru)", [exe], tab("opstui ru"), TARGET),
        ("Tab: pipelines from the config (run )", [exe], tab("opstui run "), TARGET),
        ("Tab: models from the store", [exe], tab(f"opstui --store {store} models "), TARGET),
        # The same Tab with Typer's per-option coercion kept (cli._lean_completion off).
        (
            "  the same, coercion kept (before)",
            [sys.executable, "-c", KEPT],
            tab(f"opstui --store {store} models "),
            None,
        ),
    ]
    rows, floor, missed = [], 0.0, 0
    for label, argv, env, target in cases:
        took, out = timed(argv, env, work, runs)
        floor = floor or took
        offered = " ".join(out.split())[:30]
        verdict = "-" if target is None else ("met" if took <= target else "MISSED")
        missed += verdict == "MISSED"
        rows.append((label, ms(took), f"{took / floor:.1f}x", verdict, offered))
    print(f"median of {runs} runs each (after one warm-up), cwd {work}")
    print(table(["what", "median", "vs floor", "<= 0.2 s", "printed"], rows))
    return 1 if missed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--quick", action="store_true", help="5 runs each")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    runs = 5 if args.quick else args.runs
    return in_workdir(args.keep, lambda work: run(work, runs), prefix="opstui-completion-")


if __name__ == "__main__":
    raise SystemExit(main())
