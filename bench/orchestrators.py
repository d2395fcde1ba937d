"""Airflow at scale: the first sync of 10,000 DAG runs, a poll with nothing new, the console.

Against a real Airflow 3 (``.venvs/airflow``), started as the tests start it
(``tests/airflow_server.running_airflow``: api-server, scheduler and
dag-processor on 127.0.0.1, SQLite metadata in a temp dir), with 10,000 runs
of a 20-task chain seeded into its metadata database
(``tests/airflow_seed.py``; this script puts the repository root on
``sys.path`` to import both from ``tests/``), all inside the endpoint's
``backfill``, mostly successes, some failed, a few running and queued:

  (a) the first sync: one ``Poller.poll_once()`` (what ``opstui poll --once``
      runs) into a fresh store, in a child process of its own: wall time,
      its CPU time (``time.process_time``: the poll, the mapping and the
      store writes, all threads; Airflow runs in other processes), the time
      spent in requests (``PacedRest._send``: from the request to the body
      read), the sync's own part (``sync_snapshot``: wall and thread CPU),
      requests made, rows written, peak memory (``ru_maxrss`` of that child,
      and in a second child the ``tracemalloc`` peak of the poll and sync,
      which tracing slows down). The endpoint's ``rate_limit`` is 10,000/s
      so pacing does not count; the time the default 20 req/s alone would
      take for as many requests is printed next to it. ``RUNS_PER_POLL`` is
      raised in that child so one poll reads the whole window; catching up
      as shipped (2,000 runs' task instances a poll, newest first, the
      watermark moved once all are stored) is timed too, poll by poll.
      Baseline: exactly the same requests (recorded by the child), sent
      again with plain ``httpx`` and ``json.loads``, without mapping or
      storing; the ratio says what opstui adds to downloading.
  (b) a poll when nothing changed (after (a)): requests made, CPU and wall
      of ``poll_once`` in this process, median of several, and whether it
      wrote (the store's revision; runs still running in Airflow are
      refreshed by every poll, by design, finished ones must not be).
  (c) the console with 2,000 pipelines: a store of 2,000 Airflow-mirrored
      pipelines (``orchestrator_sync.sync_runs``, 5 runs each with 20 stages,
      keys ``airflow:<endpoint>:<dag>:<run>``, ``params.source`` as
      ``sources/airflow/sync.py`` sets it; the endpoint is in the config)
      against the same shape recorded the native way (``opstui import`` of
      JSONL pipelines and runs): launch of the real ``python -m opstui`` in
      tmux at 80x24 until ``Pipelines (2000)`` shows (``tui.launch_once``),
      median of several, and one cold ``Dashboard.read()`` on each.

    .venv/bin/python bench/orchestrators.py            # ~7 minutes
    .venv/bin/python bench/orchestrators.py --quick    # 500 runs, 200 pipelines: < 60 s

Needs Airflow's venv (``.ci/run`` makes it) and tmux; every Airflow process
it starts is stopped at the end (also on an error or Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import re
import resource
import shutil
import sqlite3
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.airflow_server, tests.airflow_seed

import httpx  # noqa: E402
from _report import in_workdir, median, ms, table  # noqa: E402
from action_latency import child_env  # noqa: E402
from tests.airflow_seed import DAG_ID, plan_history, seed_history, task_ids  # noqa: E402
from tests.airflow_server import PASSWORD, USER, AirflowServer, running_airflow, venv  # noqa: E402
from tui import launch_once, opstui_command  # noqa: E402

DAY = 86_400.0
ENDPOINT = "orchestrator"
RATE = 10_000  # requests a second: pacing out of the way
DEFAULT_RATE = 20.0  # EndpointDef.rate_limit's default


# -- the endpoint ---------------------------------------------------------------------------------


def write_config(folder: Path, url: str, backfill: float, rate: float = RATE) -> Path:
    path = folder / "opstui.toml"
    lines = [
        'store = "ops.db"',
        f"[endpoints.{ENDPOINT}]",
        'kind = "airflow"',
        f'url = "{url}"',
        'username_env = "AF_USER"',
        'password_env = "AF_PASSWORD"',
        "timeout = 120",
        f"backfill = {backfill:.0f}",
        f"rate_limit = {rate:g}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def credentials() -> dict[str, str]:
    return {"AF_USER": USER, "AF_PASSWORD": PASSWORD}


# -- (a) one poll in a child process --------------------------------------------------------------


@dataclass
class PollFigures:
    wall: float = 0.0
    cpu: float = 0.0
    in_requests: float = 0.0
    sync_wall: float = 0.0
    sync_cpu: float = 0.0
    requests: int = 0
    by_call: dict[str, int] = field(default_factory=dict)
    runs: int = 0
    stages: int = 0
    added: int = 0
    maxrss_mb: float = 0.0
    traced_peak_mb: float = math.nan
    state: str = ""
    #: (method, url, JSON body) of every request, for the baseline.
    sent: list[tuple[str, str, Any]] = field(default_factory=list)


def _call_name(method: str, url: str, base: str) -> str:
    path = url.split("?", 1)[0].removeprefix(base).removeprefix("/api/v2")
    if path.startswith(f"/dags/{DAG_ID}/dagRuns/"):
        path = f"/dags/{DAG_ID}/dagRuns/ID"
    return f"{method} {path}"


def poll_child(config: str, runs_per_poll: int | None, trace: bool, out: str) -> None:
    """One ``poll_once`` into the store ``config`` names; its figures as JSON in ``out``."""
    from opstui.config import load_config
    from opstui.config.endpoints import EndpointDef
    from opstui.sources.airflow import poll as airflow_poll
    from opstui.sources.airflow import sync as airflow_sync
    from opstui.sources.orchestrator import PacedRest
    from opstui.sources.poller import Poller
    from opstui.store import Store
    from opstui.store.orchestrator_sync import SyncResult

    os.environ.update(credentials())
    if runs_per_poll is not None:
        airflow_poll.RUNS_PER_POLL = runs_per_poll
    cfg = load_config(Path(config))
    (ep,) = cfg.endpoints.values()
    fig = PollFigures()
    send = PacedRest._send

    async def counted(self: PacedRest, method: str, url: str, **kw: Any) -> Any:
        fig.sent.append((method, url, kw.get("body")))
        t0 = time.perf_counter()
        try:
            return await send(self, method, url, **kw)
        finally:
            fig.in_requests += time.perf_counter() - t0

    sync = airflow_sync.sync_snapshot

    def timed_sync(
        store: Store, ep: EndpointDef, snapshot: airflow_poll.AirflowSnapshot
    ) -> SyncResult:
        w0, c0 = time.perf_counter(), time.thread_time()
        result = sync(store, ep, snapshot)
        fig.sync_wall += time.perf_counter() - w0
        fig.sync_cpu += time.thread_time() - c0
        fig.added += result.added
        return result

    PacedRest._send = counted  # type: ignore[method-assign]
    airflow_sync.sync_snapshot = timed_sync
    if trace:
        tracemalloc.start()
    w0, c0 = time.perf_counter(), time.process_time()
    (ob,) = asyncio.run(Poller(Path(config).parent / "ops.db", [ep]).poll_once())
    fig.wall, fig.cpu = time.perf_counter() - w0, time.process_time() - c0
    if trace:
        fig.traced_peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    fig.maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fig.state = ob.state + (f" ({ob.reason})" if ob.reason else "")
    fig.requests = len(fig.sent)
    fig.by_call = dict(Counter(_call_name(m, u, ep.url) for m, u, _ in fig.sent))
    with sqlite3.connect(Path(config).parent / "ops.db") as db:
        fig.runs = db.execute("SELECT count(*) FROM runs").fetchone()[0]
        fig.stages = db.execute("SELECT count(*) FROM stage_runs").fetchone()[0]
    Path(out).write_text(json.dumps(asdict(fig)), encoding="utf-8")


def poll_in_child(
    folder: Path, url: str, backfill: float, runs_per_poll: int | None, trace: bool
) -> PollFigures:
    folder.mkdir(parents=True, exist_ok=True)
    config = write_config(folder, url, backfill)
    out = folder / "figures.json"
    child = mp.get_context("spawn").Process(
        target=poll_child, args=(str(config), runs_per_poll, trace, str(out))
    )
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"the polling child failed (exit code {child.exitcode})")
    return PollFigures(**json.loads(out.read_text(encoding="utf-8")))


ACCESS = re.compile(r"duration_us=(\d+) .*?method=(\w+) path=(\S+)")


def server_side(server: AirflowServer, since: int) -> tuple[dict[str, tuple[int, float]], int]:
    """Airflow's own time per call (its access log, ``duration_us``) after byte ``since``:
    {call: (requests, seconds)}, and where the log ends now."""
    log = server.home / "api-server.log"
    with log.open("rb") as f:
        f.seek(since)
        text = f.read().decode("utf-8", "replace")
        end = f.tell()
    out: dict[str, tuple[int, float]] = {}
    for m in ACCESS.finditer(text):
        call = _call_name(m.group(2), m.group(3), "")
        n, total = out.get(call, (0, 0.0))
        out[call] = (n + 1, total + int(m.group(1)) / 1e6)
    return out, end


def log_size(server: AirflowServer) -> int:
    return (server.home / "api-server.log").stat().st_size


def baseline(server: AirflowServer, sent: list[tuple[str, str, Any]]) -> tuple[float, float, int]:
    """The same requests with plain httpx and ``json.loads``: (wall, CPU, bytes)."""
    size = 0
    w0, c0 = time.perf_counter(), time.process_time()
    with httpx.Client(timeout=120) as client:
        token = None
        for method, url, body in sent:
            if url.endswith("/auth/token"):
                answer = client.post(url, json={"username": USER, "password": PASSWORD})
                token = answer.json()["access_token"]
                continue
            headers = {"Authorization": f"Bearer {token}"}
            answer = client.request(method, url, json=body, headers=headers)
            answer.raise_for_status()
            size += len(answer.content)
            json.loads(answer.content)
    return time.perf_counter() - w0, time.process_time() - c0, size


# -- (b) nothing changed -------------------------------------------------------------------------


@dataclass
class Quiet:
    walls: list[float]
    cpus: list[float]
    requests: list[int]
    revs: list[int]
    rewritten: list[int]
    active: int


def quiet_polls(folder: Path, n: int) -> Quiet:
    from opstui.config import load_config
    from opstui.sources.orchestrator import PacedRest
    from opstui.sources.poller import Poller
    from opstui.store import status as st

    os.environ.update(credentials())
    cfg = load_config(folder / "opstui.toml")
    store = folder / "ops.db"
    count = [0]
    send = PacedRest._send

    async def counted(self: PacedRest, method: str, url: str, **kw: Any) -> Any:
        count[0] += 1
        return await send(self, method, url, **kw)

    PacedRest._send = counted  # type: ignore[method-assign]
    got = Quiet([], [], [], [], [], 0)
    try:
        for _ in range(n):
            with sqlite3.connect(store) as db:
                before = dict(db.execute("SELECT key, rev FROM runs"))
                rev = db.execute("SELECT value FROM counters WHERE name = 'rev'").fetchone()[0]
                got.active = db.execute(
                    "SELECT count(*) FROM runs WHERE status IN (?, ?)", (st.RUNNING, st.QUEUED)
                ).fetchone()[0]
            count[0] = 0
            w0, c0 = time.perf_counter(), time.process_time()
            asyncio.run(Poller(store, list(cfg.endpoints.values())).poll_once())
            got.walls.append(time.perf_counter() - w0)
            got.cpus.append(time.process_time() - c0)
            got.requests.append(count[0])
            with sqlite3.connect(store) as db:
                after = dict(db.execute("SELECT key, rev FROM runs"))
                got.revs.append(
                    db.execute("SELECT value FROM counters WHERE name = 'rev'").fetchone()[0] - rev
                )
            got.rewritten.append(sum(1 for k, r in after.items() if before.get(k) != r))
    finally:
        PacedRest._send = send  # type: ignore[method-assign]
    return got


# -- (c) the console with 2,000 pipelines ---------------------------------------------------------


def mirrored_store(path: Path, pipelines: int, runs_each: int, stages: int, now: float) -> None:
    """Pipelines as Airflow's poll writes them: ``sync_runs`` with ``params.source``."""
    from opstui.store import Store
    from opstui.store import status as st
    from opstui.store.orchestrator_sync import OrchestratedRun, OrchestratedStage, sync_runs

    names = task_ids(stages)
    batch = []
    for p in range(pipelines):
        dag = f"dag_{p:04d}"
        for r in range(runs_each):
            start = now - (runs_each - r) * 3600 - p
            end = start + 600
            failed = (p * runs_each + r) % 17 == 0
            run_id = f"scheduled__{r:03d}"
            states = [st.SUCCEEDED] * stages
            if failed:
                states[stages // 2 :] = [st.FAILED] + [st.SKIPPED] * (stages - stages // 2 - 1)
            batch.append(
                OrchestratedRun(
                    key=f"airflow:{ENDPOINT}:{dag}:{run_id}",
                    pipeline=f"airflow/{dag}",
                    kind="mlops",
                    status=st.FAILED if failed else st.SUCCEEDED,
                    trigger="scheduled",
                    actor="airflow",
                    created_at=start - 1,
                    started_at=start,
                    finished_at=end,
                    message=f"task {names[stages // 2]} failed" if failed else None,
                    params={
                        "source": {
                            "kind": "airflow",
                            "endpoint": ENDPOINT,
                            "name": dag,
                            "id": run_id,
                        },
                        "run_type": "scheduled",
                        "logical_date": start - 1,
                        "conf": {},
                        "triggered_by": "timetable",
                    },
                    heartbeat_timeout=60.0,
                    stages=tuple(
                        OrchestratedStage(
                            name,
                            i,
                            s,
                            1,
                            start + i * 30,
                            start + i * 30 + 25,
                            "upstream failed" if s == st.SKIPPED else None,
                        )
                        for i, (name, s) in enumerate(zip(names, states, strict=True))
                    ),
                )
            )
    with Store(path) as store:
        for i in range(0, len(batch), 1000):
            sync_runs(store, batch[i : i + 1000], watermark=None, by="bench")


def native_store(path: Path, pipelines: int, runs_each: int, stages: int, now: float) -> None:
    """The same shape recorded the native way: ``opstui import`` of JSONL history."""
    from opstui.store import Store
    from opstui.store.importer import import_files

    names = task_ids(stages)
    iso: Callable[[float], str] = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    lines: list[dict[str, Any]] = []
    for p in range(pipelines):
        name = f"job-{p:04d}"
        lines.append({"type": "pipeline", "name": name, "kind": "mlops", "stages": names})
        for r in range(runs_each):
            start = now - (runs_each - r) * 3600 - p
            failed = (p * runs_each + r) % 17 == 0
            stage_list = []
            for i, stage in enumerate(names):
                status = "succeeded"
                if failed and i >= stages // 2:
                    status = "failed" if i == stages // 2 else "skipped"
                stage_list.append(
                    {"name": stage, "status": status, "started_at": iso(start + i * 30),
                     "finished_at": iso(start + i * 30 + 25)}
                )  # fmt: skip
            lines.append(
                {"type": "run", "key": f"{name}/{r:03d}", "pipeline": name,
                 "status": "failed" if failed else "succeeded", "created_at": iso(start - 1),
                 "started_at": iso(start), "finished_at": iso(start + 600),
                 "stages": stage_list}
            )  # fmt: skip
    history = path.with_suffix(".jsonl")
    history.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    with Store(path) as store:
        import_files(store, [history])


def cold_read(path: Path) -> tuple[float, float, int]:
    """One ``Dashboard.read()`` on a store just opened (the open not counted), then
    one by a second ``Dashboard`` on the same connection: (cold, warm, pipelines)."""
    from opstui.store import Store
    from opstui.store.dashboard import Dashboard

    with Store(path) as store:
        t0 = time.perf_counter()
        rows = Dashboard(store).read()
        t1 = time.perf_counter()
        Dashboard(store).read()
        return t1 - t0, time.perf_counter() - t1, len(rows)


def cold_reads(paths: list[Path], n: int) -> list[tuple[float, float, int]]:
    """Medians of ``n`` reads of each store, taken in turn (no order effect)."""
    cold: list[list[float]] = [[] for _ in paths]
    warm: list[list[float]] = [[] for _ in paths]
    counts = [0] * len(paths)
    for _ in range(n):
        for i, path in enumerate(paths):
            a, b, counts[i] = cold_read(path)
            cold[i].append(a)
            warm[i].append(b)
    return [(median(cold[i]), median(warm[i]), counts[i]) for i in range(len(paths))]


def launches(
    setups: list[tuple[Path, Path]], needle: str, n: int, env: dict[str, str]
) -> list[list[float]]:
    """``n`` launches of each (store, config), taken in turn so drift in the
    machine's load hits all alike; one untimed launch first (bytecode cache)."""
    commands = [opstui_command(sys.executable, store, config) for store, config in setups]
    launch_once(commands[0], needle, env, 60)
    out: list[list[float]] = [[] for _ in commands]
    for _ in range(n):
        for i, command in enumerate(commands):
            out[i].append(launch_once(command, needle, env, 60).data_frame)
    return out


# -- the run --------------------------------------------------------------------------------------


def run(args: argparse.Namespace, root: Path) -> int:
    rows: list[list[object]] = []

    def add(part: str, figure: str, value: str, note: str = "") -> None:
        rows.append([f"({part}) {figure}", value, note])
        print(f"   {figure}: {value}" + (f"  [{note}]" if note else ""), flush=True)

    print("load average at the start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    span = 6 * DAY
    backfill = 7 * DAY  # every seeded run is inside it
    with running_airflow(root / "airflow-root") as server:
        print(f"Airflow {server.url}, home {server.home}", flush=True)
        now = time.time()
        plan = plan_history(
            args.runs, args.tasks, now=now, backfill=span - 2 * 3600, span=span, older=0.0
        )
        seeded = seed_history(server, plan, tasks=args.tasks)
        states = Counter(r.state for r in plan)
        print(
            f"seeded {seeded.runs:,} runs, {seeded.task_instances:,} task instances in "
            f"{seeded.seconds:.1f} s ({dict(states)})",
            flush=True,
        )
        print(f"\n(a) first sync of {args.runs:,} runs x {args.tasks} tasks", flush=True)
        mark = log_size(server)
        first = poll_in_child(root / "first", server.url, backfill, 10**9, trace=False)
        airflow_side, _ = server_side(server, mark)
        if first.runs != args.runs or first.stages != args.runs * args.tasks:
            raise SystemExit(f"first sync stored {first.runs} runs, {first.stages} stages")
        add("a", "endpoint state after the poll", first.state)
        add("a", "wall time", f"{first.wall:.2f} s", "RUNS_PER_POLL raised: one poll reads all")
        add(
            "a",
            "opstui's CPU (process_time)",
            f"{first.cpu:.2f} s",
            f"{first.cpu / first.wall:.0%} of the wall; {first.cpu / args.runs * 1000:.2f} ms/run",
        )
        add(
            "a",
            "time in requests (send -> body read)",
            f"{first.in_requests:.2f} s",
            f"{first.in_requests / first.wall:.0%} of the wall; waiting on Airflow, with httpx",
        )
        inside = sum(t for _, t in airflow_side.values())
        add(
            "a",
            "  of which Airflow's own time (its access log)",
            f"{inside:.2f} s",
            "; ".join(
                f"{call} {n} x {t / n * 1000:.0f} ms"
                for call, (n, t) in sorted(airflow_side.items(), key=lambda kv: -kv[1][1])[:2]
            ),
        )
        add(
            "a",
            "sync_snapshot: mapping to rows, store writes",
            f"{first.sync_wall:.2f} s wall",
            f"{first.sync_cpu:.2f} s CPU in its thread",
        )
        top = sorted(first.by_call.items(), key=lambda kv: -kv[1])[:3]
        add("a", "requests made", f"{first.requests:,}", ", ".join(f"{k} {v}" for k, v in top))
        add("a", "rows written", f"{first.runs:,} runs, {first.stages:,} stages",
            f"{first.added:,} added")  # fmt: skip
        add("a", "peak RSS of the polling process (ru_maxrss)", f"{first.maxrss_mb:.0f} MB")
        traced = poll_in_child(root / "traced", server.url, backfill, 10**9, trace=True)
        add(
            "a",
            "tracemalloc peak of poll + sync",
            f"{traced.traced_peak_mb:.0f} MB",
            f"separate run, traced: wall {traced.wall:.1f} s",
        )
        wall, cpu, size = baseline(server, first.sent)
        add(
            "a",
            "baseline: same requests, plain httpx + json.loads",
            f"{wall:.2f} s wall",
            f"CPU {cpu:.2f} s; {size / 1e6:.0f} MB of JSON",
        )
        add(
            "a",
            "opstui / baseline",
            f"{first.wall / wall:.2f}x wall",
            f"{first.cpu / cpu:.2f}x CPU; +{first.wall - wall:.1f} s for mapping and storing",
        )
        add(
            "a",
            f"the default rate_limit ({DEFAULT_RATE:g} req/s) alone",
            f"{first.requests / DEFAULT_RATE:.1f} s",
            f"{first.requests:,} requests paced; this run used rate_limit {RATE:,}",
        )
        # As shipped: a poll stores 2,000 runs' task instances, newest
        # first, and the watermark moves once all are stored.
        polls: list[PollFigures] = []
        while not polls or polls[-1].runs < args.runs or polls[-1].stages < args.runs * args.tasks:
            if len(polls) == 2 + 2 * args.runs // 2000:
                raise SystemExit(f"not caught up after {len(polls)} polls: {polls[-1].runs} runs")
            polls.append(poll_in_child(root / "shipped", server.url, backfill, None, trace=False))
        add(
            "a",
            "caught up as shipped (RUNS_PER_POLL 2,000)",
            f"{sum(p.wall for p in polls):.2f} s wall",
            f"{len(polls)} polls ({', '.join(f'{p.wall:.1f}' for p in polls)} s), "
            f"{sum(p.requests for p in polls):,} requests, CPU {sum(p.cpu for p in polls):.2f} s, "
            f"peak RSS {max(p.maxrss_mb for p in polls):.0f} MB",
        )

        print(f"\n(b) a poll when nothing changed, x{args.quiet}", flush=True)
        quiet = quiet_polls(root / "first", args.quiet)
        add("b", "requests made", f"{median(quiet.requests):.0f}",
            f"{quiet.active} runs still running/queued in Airflow, re-read by id")  # fmt: skip
        add("b", "CPU: median", ms(statistics.median(quiet.cpus)),
            f"min {ms(min(quiet.cpus))}, max {ms(max(quiet.cpus))}")  # fmt: skip
        add("b", "wall: median", ms(statistics.median(quiet.walls)),
            f"min {ms(min(quiet.walls))}, max {ms(max(quiet.walls))}")  # fmt: skip
        add("b", "store revision moved", "yes" if max(quiet.revs) else "no",
            f"runs rewritten per poll: {sorted(set(quiet.rewritten))} (the active ones: "
            f"their heartbeat)")  # fmt: skip

    print(f"\n(c) the console with {args.pipelines:,} pipelines", flush=True)
    mirrored, native = root / "mirrored.db", root / "native.db"
    t0 = time.perf_counter()
    mirrored_store(mirrored, args.pipelines, 5, args.tasks, time.time())
    t1 = time.perf_counter()
    native_store(native, args.pipelines, 5, args.tasks, time.time())
    t2 = time.perf_counter()
    print(f"   built: mirrored {t1 - t0:.1f} s (sync_runs), native {t2 - t1:.1f} s (import)")
    (root / "console").mkdir()
    config = write_config(root / "console", "http://127.0.0.1:9", 7 * DAY)
    empty = root / "console" / "empty.toml"
    empty.write_text("# nothing configured\n", encoding="utf-8")
    needle = f"Pipelines ({args.pipelines})"
    env = child_env(root, True)
    (m_read, m_warm, m_rows), (n_read, n_warm, n_rows) = cold_reads([mirrored, native], 5)
    assert m_rows == n_rows == args.pipelines, (m_rows, n_rows)
    add("c", "Dashboard.read() cold: mirrored, median of 5", ms(m_read),
        f"{m_rows} pipelines; a second full read {ms(m_warm)}")  # fmt: skip
    add("c", "Dashboard.read() cold: native, median of 5", ms(n_read),
        f"mirrored / native {m_read / n_read:.2f}x; a second full read {ms(n_warm)}")  # fmt: skip
    m, me, n = launches(
        [(mirrored, empty), (mirrored, config), (native, empty)], needle, args.launches, env
    )
    add("c", f"launch -> {needle}: mirrored, median", ms(median(m)),
        f"max {ms(max(m))}; empty config")  # fmt: skip
    add("c", "launch: mirrored, the endpoint configured", ms(median(me)),
        f"max {ms(max(me))}; the console polls it (nothing listens: down)")  # fmt: skip
    add("c", f"launch -> {needle}: native, median", ms(median(n)), f"max {ms(max(n))}")
    add("c", "mirrored / native launch", f"{median(m) / median(n):.2f}x",
        f"{median(me) / median(n):.2f}x with the endpoint configured")  # fmt: skip

    print("\nAirflow at scale: results")
    print(table(["figure", "value", "note"], rows))
    print("load average at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 runs, 200 pipelines")
    parser.add_argument("--runs", type=int, default=10_000, help="DAG runs seeded")
    parser.add_argument("--tasks", type=int, default=20, help="tasks of the DAG")
    parser.add_argument("--quiet", type=int, default=7, help="polls with nothing changed")
    parser.add_argument("--pipelines", type=int, default=2_000, help="(c): pipelines a store")
    parser.add_argument("--launches", type=int, default=7, help="(c): timed launches a setup")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()
    if venv() is None:
        print("Airflow's venv is missing (.ci/run makes .venvs/airflow)", file=sys.stderr)
        return 2
    if shutil.which("tmux") is None:
        print("tmux is not installed (apt-get install tmux)", file=sys.stderr)
        return 2
    if args.quick:
        args.runs = min(args.runs, 500)
        args.pipelines = min(args.pipelines, 200)
        args.launches = min(args.launches, 2)
        args.quiet = min(args.quiet, 3)
    return in_workdir(args.keep, lambda root: run(args, root), prefix="opstui-bench-airflow-")


if __name__ == "__main__":
    sys.exit(main())
