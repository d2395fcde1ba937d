"""Automation policies: what an evaluation costs, what a replay costs, how soon a policy acts.

1. the evaluator's cost per tick with 50 policies on the 1M-run store
   ``dashboard_read.py`` builds and caches (200 pipelines): ``Evaluator.step``
   (lease, the day's decisions, the readings, the rails, any writes), the
   snapshot given (the console reads it anyway); next to the
   ``SnapshotReader.snapshot()`` of the same store it sits beside, in the same
   run (the ratio). The policies are in shadow mode: their decisions are
   written (would-act once per fault), nothing runs; the decisions are
   deleted from the cached store afterwards;
2. a replay of 14 days of the bundled sample history (``sample_runs/``
   imported into a temp store) with three policies: ``load`` and
   ``replay``, and the days replayed per second of it;
3. from a fault to the policy's action: ``opstui policies run --every E``
   running headless on a temp store, a failing run recorded by
   ``opstui run`` at a random phase of the evaluation interval, the time
   from the failed run's end to the creation of the retry run it started
   (both from the store), over several faults; next to E (target: at most
   one interval plus the action's own start, ~0.2 s).

  .venv/bin/python bench/policies.py            # about 2 minutes (the 1M store cached)
  .venv/bin/python bench/policies.py --quick    # a small store
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from _report import median, ms, percentile, table
from dashboard_read import DEFAULT_CACHE, QUICK, Spec
from tui import cached_store

from opstui.config.load import parse_config
from opstui.policies import replay as rp
from opstui.policies.evaluate import Evaluator
from opstui.store import Store, history
from opstui.store import status as st
from opstui.views.snapshot import SnapshotReader

ROOT = Path(__file__).resolve().parent.parent
TARGET_TICK = 0.020  # one evaluation, 50 policies, 1M runs
DAY = 86400.0


def policies_config(names: list[str], count: int) -> str:
    """``count`` shadow policies: run_failed on as many pipelines (retry), round robin."""
    out = []
    for i in range(count):
        pipeline = names[i % len(names)]
        stage = "" if i % 3 else '\nstages = ["test", "train", "build"]'
        out.append(
            f'[policies.p{i}]\ntrigger = "run_failed"\npipeline = "{pipeline}"{stage}\n'
            f'action = "retry"\nmode = "shadow"\nm_of_n = [{1 + i % 2}, 3]\n'
        )
    return "\n".join(out)


def part1(store_path: Path, ticks: int) -> list[list[object]]:
    with Store(store_path, create=False) as store:
        names = [r[0] for r in store.query("SELECT name FROM pipelines ORDER BY id")]
    config = parse_config(policies_config(names, 50))
    evaluator = Evaluator(config, holder="bench:policies", every=15.0)
    reader = SnapshotReader(store_path, config)
    steps: list[float] = []
    reads: list[float] = []
    written = 0
    try:
        with Store(store_path, create=False) as store:
            for i in range(ticks + 2):
                t0 = time.perf_counter()
                snap = reader.snapshot()
                t1 = time.perf_counter()
                step = evaluator.step(store, snap)
                t2 = time.perf_counter()
                written += len(step.decisions)
                if i >= 2:  # the first ticks write each fault's would-act once
                    reads.append(t1 - t0)
                    steps.append(t2 - t1)
    finally:
        reader.close()
        with Store(store_path, create=False) as store, store.write() as tx:
            tx.execute("DELETE FROM policy_decisions WHERE decided_by = 'bench:policies'")
            tx.execute("DELETE FROM leases WHERE holder = 'bench:policies'")
    return [
        ["1. Evaluator.step, 50 policies, 1M runs: median", ms(median(steps)),
         ms(TARGET_TICK), f"{median(steps) / TARGET_TICK:.2f}",
         f"p99 {ms(percentile(steps, 99))}; {written} decisions written in all"],
        ["1. SnapshotReader.snapshot() beside it (the peer): median", ms(median(reads)), "-",
         "-", f"step / snapshot = {median(steps) / median(reads):.2f}x"],
    ]  # fmt: skip


REPLAY_CONFIG = """
[policies.retry-web-tests]
trigger = "run_failed"
pipeline = "web-api"
stages = ["test"]
action = "retry"

[policies.retry-flaky-only]
trigger = "run_failed"
flaky_only = true
action = "retry"
mode = "shadow"

[policies.retry-anything]
trigger = "run_failed"
action = "retry"
m_of_n = [3, 5]
daily_cap = 1
"""


def part2(work: Path, repeats: int) -> list[list[object]]:
    store_path = work / "sample.db"
    done = subprocess.run(
        [sys.executable, "-m", "opstui", "import", str(ROOT / "sample_runs"), "--shift-to-now",
         "--store", str(store_path)], capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    config = parse_config(REPLAY_CONFIG)
    chosen = list(config.policies.values())
    loads, replays, decisions = [], [], 0
    for _ in range(repeats):
        with Store(store_path, create=False) as store:
            until = store.clock()
            t0 = time.perf_counter()
            h = rp.load(store, config, chosen, until - 14 * DAY, until)
            t1 = time.perf_counter()
        report = rp.replay(config, chosen, h, since=until - 14 * DAY, until=until)
        t2 = time.perf_counter()
        loads.append(t1 - t0)
        replays.append(t2 - t1)
        decisions = len(report.decisions)
    total = median(loads) + median(replays)
    return [
        ["2. replay of 14 days of sample_runs/, 3 policies: load + replay, median", ms(total),
         "-", "-", f"load {ms(median(loads))} + decide {ms(median(replays))}; "
         f"{decisions} decisions; {14 / total:,.0f} days replayed a second"],
    ]  # fmt: skip


FAILING = """
[pipelines.web]
kind = "devops"
stages = [{ name = "test", run = ["sh", "-c", "test -f pass"] }]

[policies.retry-web]
trigger = "run_failed"
pipeline = "web"
action = "retry"
cooldown = "1s"
daily_cap = 100
"""


def part3(work: Path, faults: int, every: float) -> list[list[object]]:
    folder = work / "latency"
    folder.mkdir()
    (folder / "opstui.toml").write_text('store = "ops.db"\n' + FAILING, encoding="utf-8")
    opstui = [sys.executable, "-m", "opstui"]
    subprocess.run([*opstui, "store", "init"], cwd=folder, capture_output=True, check=False)
    evaluator = subprocess.Popen(
        [*opstui, "policies", "run", "--every", str(every)], cwd=folder,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    waits: list[float] = []
    rng = random.Random(7)
    try:
        for _ in range(faults):
            time.sleep(rng.uniform(0, every))  # a random phase of the interval
            subprocess.run([*opstui, "run", "web", "--yes"], cwd=folder, capture_output=True,
                           check=False)  # fmt: skip
            with closing(Store(folder / "ops.db", create=False)) as store:
                failed = history.run_history(store, "web", limit=1)[0]
            assert failed.status == st.FAILED and failed.finished_at is not None
            deadline = time.monotonic() + every * 3 + 10
            retry = None
            while time.monotonic() < deadline and retry is None:
                time.sleep(0.05)
                with closing(Store(folder / "ops.db", create=False)) as store:
                    retry = next((r for r in history.run_history(store, "web", limit=5)
                                  if r.parent_run_id == failed.id), None)  # fmt: skip
            if retry is None:
                raise SystemExit(f"no retry of run {failed.id} within {every * 3 + 10:.0f} s")
            waits.append(retry.created_at - failed.finished_at)
            # Let the retry end (it fails too: no pass file) before the next fault.
            time.sleep(1.0)
    finally:
        evaluator.terminate()
        evaluator.wait(10)
    worst = max(waits)
    return [
        [f"3. fault -> the policy's retry created, every {every:g} s: median",
         f"{median(waits):.2f} s", f"{every:g} s", f"{median(waits) / every:.2f}",
         f"max {worst:.2f} s ({worst / every:.2f} of the interval); {len(waits)} faults"],
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--ticks", type=int, default=30)
    parser.add_argument("--faults", type=int, default=6)
    parser.add_argument("--every", type=float, default=5.0, help="part 3's interval, seconds")
    args = parser.parse_args()
    spec = QUICK if args.quick else Spec()
    store_path = cached_store(spec, args.cache_dir)
    rows = part1(store_path, 10 if args.quick else args.ticks)
    work = Path(tempfile.mkdtemp(prefix="opstui-bench-policies-"))
    try:
        rows += part2(work, 3 if args.quick else 5)
        rows += part3(work, 3 if args.quick else args.faults, args.every)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(["figure", "value", "target", "ratio", "note"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
