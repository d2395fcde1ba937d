"""Fuzz every door into the store for longer than the test run does.

    .venv/bin/python bench/fuzz.py                 # 60 s per target
    .venv/bin/python bench/fuzz.py --seconds 10 --target import

The targets and their contract are in ``bench/_fuzz.py`` (``tests/test_fuzz.py``
runs them with a small budget): hostile ``opstui import`` lines, ``record``
arguments, feature CSVs and ``opstui.toml`` files; no traceback, one
``opstui:`` line for a refusal, nothing changed by a refused input, and the
readers (``status``, ``status --json``, ``drift``, the console's snapshot)
still reading the store after an accepted one. Prints, per target, fuzz cases
per second and tracebacks (and other broken promises) found; target 0.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fuzz import TARGETS, Target, workdir


def fuzz(target: Target, seconds: float) -> tuple[int, float, list[str]]:
    """Run ``target`` for about ``seconds``; return (cases, elapsed, problems)."""
    work = workdir(target)
    found: list[str] = []
    cases = 0
    deadline = time.monotonic() + seconds

    @settings(
        max_examples=10**9,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy)
    def one(example: object) -> None:
        nonlocal cases
        if time.monotonic() > deadline:
            raise _Done
        cases += 1
        found.extend(target.check(work, example))

    started = time.monotonic()
    try:
        one()
    except _Done:
        pass
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return cases, time.monotonic() - started, found


class _Done(Exception):
    """The time budget is spent (raised through hypothesis to stop it)."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per target")
    parser.add_argument("--target", choices=sorted(TARGETS), action="append")
    parser.add_argument("--quick", action="store_true", help="10 s per target")
    parser.add_argument("--show", type=int, default=3, help="problems printed per target")
    args = parser.parse_args()
    seconds = 10.0 if args.quick else args.seconds
    rows = []
    for name in args.target or list(TARGETS):
        cases, elapsed, found = fuzz(TARGETS[name], seconds)
        crashes = sum(1 for f in found if "traceback" in f.split("\n", 1)[0])
        rows.append((name, cases, cases / elapsed, crashes, len(found) - crashes))
        for problem in found[: args.show]:
            print(f"--- {name}: {problem}\n", file=sys.stderr)
    print(f"{'target':<10} {'cases':>7} {'cases/s':>8} {'tracebacks found':>17} {'other':>6}")
    for name, cases, rate, crashes, other in rows:
        print(f"{name:<10} {cases:>7} {rate:>8.1f} {crashes:>17} {other:>6}")
    print("target: 0 tracebacks, 0 other broken promises")
    return 1 if any(r[3] or r[4] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
