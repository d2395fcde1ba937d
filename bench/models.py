"""``opstui models --json`` on a large store: the 1M-run store plus a model registry.

The runs come from ``bench/dashboard_read.py``'s store (200 pipelines, 1M runs,
6M stage rows, 10M samples, cached in ``bench/.cache/``; built first if
missing). A copy gets ``--models`` models, each with ``--versions`` versions
(metrics, params, gate, data hash, code version), ``--deployments``
deployments across three environments, and ``--checks`` drift checks of 20
features each. Then it measures:

  (a) ``model_reports()`` over every model, in process (what the console's
      models panel and the command both read);
  (b) ``opstui models --json`` and ``opstui models MODEL --json`` as
      subprocesses, next to ``opstui status --json`` and ``python -c pass``.

    .venv/bin/python bench/models.py            # reuses or builds the 1M-run store
    .venv/bin/python bench/models.py --quick    # the small store, seconds
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import shutil
import sys
import time
from pathlib import Path

from _report import median, ms, percentile, table
from dashboard_read import DEFAULT_CACHE, QUICK, Spec, build_store, subprocess_times, timed

from opstui.store import Store
from opstui.store.deployments import add_deployment
from opstui.store.drift import CheckRow, ResultRow, save_check
from opstui.store.models import add_model_version
from opstui.views.models import known_models, model_reports

ENVIRONMENTS = ("staging", "canary", "production")
FEATURES = tuple(f"f{i:02d}" for i in range(20))
DAY = 86_400.0


def add_registry(path: Path, models: int, versions: int, deployments: int, checks: int) -> None:
    rng = random.Random(11)
    start = time.time() - 180 * DAY
    with Store(path) as store:
        for m in range(models):
            name = f"model-{m:02d}"
            with store.write() as tx:
                for v in range(1, versions + 1):
                    auc = 0.8 + rng.random() * 0.1
                    add_model_version(
                        tx,
                        name,
                        version=str(v),
                        status="archived" if v < versions else "production",
                        data_hash=f"sha256:{rng.getrandbits(256):064x}",
                        code_version=f"git:{rng.getrandbits(28):07x}",
                        params={"max_depth": rng.randint(3, 9), "learning_rate": 0.05},
                        metrics={"auc": auc, "f1": auc - 0.2, "log_loss": 0.3},
                        gate={"passed": rng.random() > 0.1, "metric": "auc", "candidate": auc},
                        created_at=start + v * 180 * DAY / versions,
                    )
                for d in range(deployments):
                    add_deployment(
                        tx,
                        environment=ENVIRONMENTS[d % 3],
                        target=name,
                        target_kind="model",
                        version=str(1 + d * versions // deployments),
                        actor="bench",
                        deployed_at=start + d * 180 * DAY / deployments,
                    )
                for c in range(checks):
                    at = start + c * 180 * DAY / checks
                    drifted = sorted(rng.sample(FEATURES, rng.randint(0, 6)))
                    check = CheckRow(
                        0, name, str(versions), None, at, at - 3600, at, 5000,
                        f"bench:{c}", len(FEATURES), len(drifted), len(drifted) / len(FEATURES),
                        len(drifted) >= len(FEATURES) / 2, None, None, {}, {},
                    )  # fmt: skip
                    results = [
                        ResultRow(0, f, "psi", rng.random(), 0.1, f in drifted, True, {})
                        for f in FEATURES
                    ]
                    save_check(tx, check, results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--quick", action="store_true", help="the small store")
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--versions", type=int, default=200)
    parser.add_argument("--deployments", type=int, default=2_000)
    parser.add_argument("--checks", type=int, default=500)
    parser.add_argument("--iterations", type=int, default=20, help="per in-process figure")
    parser.add_argument("--cli-runs", type=int, default=9, help="per subprocess figure")
    args = parser.parse_args()
    spec = QUICK if args.quick else Spec()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    runs_store = args.cache_dir / spec.file_name()
    if not runs_store.exists():
        print(f"building {runs_store} ({spec.runs:,} runs) first", flush=True)
        child = mp.get_context("spawn").Process(target=build_store, args=(runs_store, spec))
        child.start()
        child.join()
        if child.exitcode != 0 or not runs_store.exists():
            raise SystemExit(f"building the store failed (exit code {child.exitcode})")
    shape = f"m{args.models}-v{args.versions}-d{args.deployments}-c{args.checks}"
    path = args.cache_dir / f"models-{shape}-{spec.file_name()}"
    if not path.exists():
        t0 = time.perf_counter()
        work = path.with_suffix(".building")
        shutil.copyfile(runs_store, work)
        add_registry(work, args.models, args.versions, args.deployments, args.checks)
        work.rename(path)
        print(f"added the registry in {time.perf_counter() - t0:.1f} s", flush=True)
    print(
        f"store: {spec.runs:,} runs; {args.models} models x {args.versions} versions, "
        f"{args.deployments} deployments, {args.checks} drift checks x {len(FEATURES)} features; "
        f"{path.stat().st_size / 1e9:.2f} GB",
        flush=True,
    )
    with Store(path) as store:
        names = known_models(store)
        in_process = timed(lambda: model_reports(store, names), args.iterations, warmup=2)
        one = timed(lambda: model_reports(store, names[:1]), args.iterations, warmup=2)
    opstui = [sys.executable, "-m", "opstui"]
    at = ["--store", str(path)]
    rows = []
    for label, values in (
        (f"model_reports(), all {len(names)} models, in process", in_process),
        ("model_reports(), one model, in process", one),
    ):
        rows.append((label, ms(median(values)), ms(percentile(values, 95))))
    for label, argv in (
        ("opstui models --json", [*opstui, "models", "--json", *at]),
        ("opstui models MODEL --json", [*opstui, "models", names[0], "--json", *at]),
        ("opstui status --json", [*opstui, "status", "--json", *at]),
        ("python -c pass", [sys.executable, "-c", "pass"]),
    ):
        values = subprocess_times(argv, args.cli_runs)
        rows.append((label, ms(median(values)), ms(percentile(values, 95))))
    size = len(json.dumps(model_reports_json(path, names)))
    print(table(("what", "median", "p95"), rows))
    print(f"opstui models --json prints {size / 1e6:.1f} MB for {len(names)} models")
    return 0


def model_reports_json(path: Path, names: list[str]) -> object:
    from opstui.cli.models import models_json

    with Store(path) as store:
        return models_json(model_reports(store, names), time.time(), str(path))


if __name__ == "__main__":
    raise SystemExit(main())
