"""The console on a large store: launch, one refresh, event-loop lag, memory over time.

On the store ``dashboard_read.py`` builds and caches (200 pipelines, 1,000,000
runs, 6,000,000 stage rows, 10,000,000 metric samples; built here the same
way if it is not cached yet), with an ``opstui.toml`` that configures nothing
(no endpoints, no models), it measures, at each terminal size of ``--sizes``
(80x24 and 200x50):

  1. launch -> the first frame showing data: the real ``python -m opstui`` in
     tmux, ``tmux capture-pane`` polled every 10 ms until the dashboard says
     ``Pipelines (200)``, alternating with the peer, a bare Textual app that
     shows the same text at once (the ratio printed); next to ``python -c
     pass``, ``import textual.app`` and ``import opstui.tui.app``
     (subprocess wall times), and tmux's own floor (a pane that prints the
     same text at once);
  2. one refresh: ``SnapshotReader.snapshot()`` (the worker thread's store read),
     cold and then with one run changed by another connection between calls
     (its heartbeat and the store's ``rev``, as ``dashboard_read.py`` (c)
     does) or nothing changed; and ``DashboardScreen.show(snapshot)`` (the
     UI thread's part) inside ``run_test``, with a snapshot that changed each
     time (one run / every row's cells / the rows' order), also counted with
     the repaint it causes (main-thread CPU time); the rows' order also with
     the pipelines' table rebuilt as ``LiveTable.show`` did before it
     rearranged rows in place (the ratio printed);
  3. event-loop lag while refreshing every 0.25 s (one run changed every
     0.25 s by another process): a task that sleeps 10 ms, over and over,
     and records how late it wakes; next to the same with refresh paused.
     The longest wake-ups are printed with what overlapped them (``_show``
     calls, garbage-collector passes, the loop thread's CPU). Once per
     garbage-collector setting of ``--gc``, each in an app of its own:
     Python's defaults, ``gc.freeze()`` after the first frame, and the
     console's own ``LiveApp.settle_gc`` (what a terminal gets); a full
     collection's CPU at the end of each;
  4. resident memory of the real command in tmux (``--refresh 1``, one run
     changed per second by another process), sampled every 30 s for 10
     minutes (``VmRSS`` in ``/proc``), at 80x24 only;
  5. the log viewer on a 1,000,000-line log (a store of its own).

    .venv/bin/python bench/tui.py            # about 16 minutes (10 of them memory)
    .venv/bin/python bench/tui.py --parts launch refresh lag logview   # ~8 minutes
    .venv/bin/python bench/tui.py --quick    # a small store, short runs: ~3 minutes

Child processes get a private bytecode cache (``PYTHONPYCACHEPREFIX`` in a
temp dir, ``PYTHONDONTWRITEBYTECODE`` unset), as an installed opstui has
compiled ``.pyc`` files; one untimed launch fills it. Measuring writes
heartbeats of one run into the cached store, which no other figure depends on.
Linux only (``/proc``); needs tmux.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import multiprocessing as mp
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

from _report import in_workdir, median, ms, percentile, table
from action_latency import child_env, subprocess_times
from dashboard_read import DEFAULT_CACHE, QUICK, Spec, build_store, evict_from_page_cache

from opstui.config import Config, load_config
from opstui.store import Store
from opstui.store import runs as store_runs
from opstui.views.snapshot import Snapshot, SnapshotReader

DAY = 86_400.0
TARGET_LAUNCH = 1.0  # launch -> first frame with data
TARGET_REFRESH = 0.050  # one refresh (store read + show)
TARGET_REORDER = 0.025  # UI CPU (show + repaint) of a refresh in which rows reorder
TARGET_LAG = 0.050  # event-loop lag p99 while refreshing
TARGET_LAG_MAX = 0.060  # event-loop lag max while refreshing
#: The lag part's garbage-collector settings (``--gc``), compared in one run.
GC_MODES = {
    "default": "Python's own, as before LiveApp.settle_gc",
    "app": "the console's own LiveApp.settle_gc after its first snapshot: "
    "gc.collect() + gc.freeze()",
}
TARGET_RSS_MB = 200.0  # resident memory after 10 minutes
#: "Flat": the RSS slope over the second half of the samples, MB per minute.
TARGET_SLOPE = 0.5
POLL = 0.010  # capture-pane polling interval
LAG_SLEEP = 0.010
#: The start-up figure with every module a launch imports (the CLI, the app, the first screen).
ALL_IMPORTS = "python -c 'import opstui.cli, opstui.tui.app, opstui.tui.screens.dashboard'"


# -- the store ------------------------------------------------------------------------------------


def cached_store(spec: Spec, cache_dir: Path) -> Path:
    """The cached store for ``spec``, built first (in a child process) when missing."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / spec.file_name()
    if path.exists():
        print(f"reusing cached store {path}")
        return path
    print(
        f"building {path}: {spec.pipelines} pipelines, {spec.runs:,} runs, "
        f"{spec.samples:,} samples (dashboard_read.build_store; cached afterwards)",
        flush=True,
    )
    child = mp.get_context("spawn").Process(target=build_store, args=(path, spec))
    child.start()
    child.join()
    if child.exitcode != 0 or not path.exists():
        raise SystemExit(f"building the store failed (exit code {child.exitcode})")
    meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    print(f"build time: {meta['build_seconds']} s")
    return path


def store_counts(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        counts = {
            name: conn.execute(f"SELECT max(rowid) FROM {name}").fetchone()[0] or 0
            for name in ("pipelines", "runs", "stage_runs", "metric_samples")
        }
    finally:
        conn.close()
    size = path.stat().st_size / 1e9
    return ", ".join(f"{v:,} {k}" for k, v in counts.items()) + f"; {size:.2f} GB"


def pick_run(snap: Snapshot) -> int:
    """A pipeline's latest run to beat: a running one if any (as dashboard_read (c))."""
    running = [p for p in snap.pipelines if p.latest and p.latest.recorded_status == "running"]
    chosen = (running or [p for p in snap.pipelines if p.latest])[0]
    assert chosen.latest is not None
    return chosen.latest.id


def beat(path: str, run_id: int, every: float, stop: MpEvent) -> None:
    """Another process: heartbeat ``run_id`` every ``every`` seconds until ``stop``."""
    writer = Store(path, create=False)
    next_at = time.monotonic()
    while not stop.is_set():
        store_runs.heartbeat(writer, run_id)
        next_at += every
        stop.wait(max(0.0, next_at - time.monotonic()))
    writer.close()


class Beater:
    """``beat`` in a spawned process, for the length of a ``with`` block."""

    def __init__(self, path: Path, run_id: int, every: float) -> None:
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.proc = ctx.Process(target=beat, args=(str(path), run_id, every, self.stop))

    def __enter__(self) -> Beater:
        self.proc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


# -- figures --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    label: str
    value: float
    unit: str = "s"  # s, MB, MB/min, x (a ratio)
    target: float | None = None
    note: str = ""

    def shown(self, value: float | None = None) -> str:
        v = self.value if value is None else value
        if math.isnan(v):
            return "-"
        if self.unit == "s":
            return ms(v)
        if self.unit == "x":
            return f"{v:.2f}x"
        return f"{v:.1f} {self.unit}" if self.unit == "MB" else f"{v:+.2f} {self.unit}"


def spread(values: Sequence[float]) -> str:
    return f"p99 {ms(percentile(values, 99))}, max {ms(max(values))}" if values else ""


# -- 1. launch --------------------------------------------------------------------------------


class Tmux:
    """One tmux server on a socket of its own, killed by ``close``."""

    def __init__(self, env: dict[str, str]) -> None:
        self.socket = f"opstui-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.env = env

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
        )

    def start(self, command: str, size: tuple[int, int] = (80, 24)) -> None:
        width, height = (str(n) for n in size)
        done = self("new-session", "-d", "-x", width, "-y", height, "-s", "bench", command)
        if done.returncode:
            raise SystemExit(f"tmux new-session failed: {done.stderr.strip()}")

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "bench").stdout

    def pane_pid(self) -> int:
        return int(self("list-panes", "-t", "bench", "-F", "#{pane_pid}").stdout.split()[0])

    def close(self) -> None:
        self("kill-server")


@dataclass(frozen=True)
class Launch:
    first_frame: float  # the pane showed anything
    data_frame: float  # the pane showed "Pipelines (N)"
    screen: str
    cpu: float  # user + system CPU seconds of the pane's process when data showed


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` so far, all threads (``/proc/PID/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def launch_once(
    command: str,
    needle: str,
    env: dict[str, str],
    timeout: float,
    size: tuple[int, int] = (80, 24),
) -> Launch:
    tmux = Tmux(env)
    try:
        started = time.perf_counter()
        tmux.start(command, size)
        pid = tmux.pane_pid()
        first = math.nan
        screen = ""
        while True:
            screen = tmux.screen()
            seen = time.perf_counter() - started
            if math.isnan(first) and screen.strip():
                first = seen
            if needle in screen:
                return Launch(first, seen, screen, cpu_seconds(pid))
            if seen > timeout:
                raise SystemExit(f"{needle!r} never showed in {timeout} s; the pane:\n{screen}")
            time.sleep(POLL)
    finally:
        tmux.close()


def opstui_command(python: str, store: Path, config: Path, *extra: str) -> str:
    argv = [python, "-m", "opstui", "--store", str(store), "--config", str(config), *extra]
    return "exec " + shlex.join(argv)


#: The peer: a bare Textual app that shows the same text at once (no store, no
#: widgets of ours), started the same way. What any Textual console pays.
BARE_APP = """\
import sys

from textual.app import App, ComposeResult
from textual.widgets import Static


class Bare(App[None]):
    def compose(self) -> ComposeResult:
        yield Static(sys.argv[1])


Bare().run()
"""


def size_name(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


def measure_launch(
    store: Path,
    config: Path,
    pipelines: int,
    env: dict[str, str],
    args: argparse.Namespace,
    *,
    root: Path,
) -> list[Figure]:
    needle = f"Pipelines ({pipelines})"
    command = opstui_command(sys.executable, store, config)
    bare_py = root / "bare_textual.py"
    bare_py.write_text(BARE_APP, encoding="utf-8")
    bare = "exec " + shlex.join([sys.executable, str(bare_py), needle])
    out: list[Figure] = []
    for size in args.sizes:
        at = size_name(size)
        print(
            f"\n1. launch -> first frame with data, in tmux {at}, x{args.launches} each, "
            f"alternating with the peer (a bare Textual app showing the text):\n   {command}"
            f"\n   {bare}",
            flush=True,
        )
        warm = launch_once(command, needle, env, args.timeout, size)  # fills the bytecode cache
        warm_bare = launch_once(bare, needle, env, args.timeout, size)
        print(
            f"   untimed warm-up launches: {ms(warm.data_frame)}, bare {ms(warm_bare.data_frame)} "
            "(compile the bytecode cache)"
        )
        launches, peers = [], []
        for _ in range(args.launches):
            launches.append(launch_once(command, needle, env, args.timeout, size))
            peers.append(launch_once(bare, needle, env, args.timeout, size))
            got, peer = launches[-1], peers[-1]
            print(
                f"   first frame {ms(got.first_frame)}, data {ms(got.data_frame)}; "
                f"the process had used {ms(got.cpu)} of CPU; bare Textual "
                f"{ms(peer.data_frame)} ({ms(peer.cpu)} CPU)"
            )
        print(f"   the first frame with data at {at}, as tmux showed it:")
        print("\n".join("   | " + line for line in launches[-1].screen.rstrip("\n").splitlines()))
        data = [x.data_frame for x in launches]
        first = [x.first_frame for x in launches]
        bare_data = [x.data_frame for x in peers]
        ratio = median(data) / median(bare_data)
        out += [
            Figure(
                f"1. [{at}] launch -> first frame with data ({needle}): median of {len(data)}",
                median(data),
                target=TARGET_LAUNCH,
                note=f"max {ms(max(data))}; {ratio:.2f}x the bare Textual app",
            ),
            Figure(
                f"1. [{at}] launch -> first frame with data: max", max(data), target=TARGET_LAUNCH
            ),
            Figure(
                f"1. [{at}] peer: a bare Textual app showing the text: median",
                median(bare_data),
                note=f"max {ms(max(bare_data))}; CPU by then {ms(median([x.cpu for x in peers]))}",
            ),
            Figure(
                f"1. [{at}] launch / the bare Textual app (medians)",
                ratio,
                unit="x",
                note="the same run, launches alternating",
            ),
            Figure(
                f"1. [{at}] CPU the console had used by then (user + sys, all threads): median",
                median([x.cpu for x in launches]),
                note="less sensitive to a busy machine than the wall time; 10 ms ticks",
            ),
            Figure(
                f"1. [{at}] launch -> first frame of any kind: median",
                median(first),
                note="the dashboard before its first read landed, if tmux caught it",
            ),
        ]
    floor_cmd = f"printf '%s\\n' {shlex.quote(needle)}; exec sleep 60"
    floor = [launch_once(floor_cmd, needle, env, 10).data_frame for _ in range(args.launches)]

    py = sys.executable
    print(f"\n   subprocess wall times, median of {args.cli_runs} (after one warm-up)", flush=True)
    starts = {
        "python -c pass": subprocess_times([py, "-c", "pass"], args.cli_runs, env),
        "python -c 'import textual.app'": subprocess_times(
            [py, "-c", "import textual.app"], args.cli_runs, env
        ),
        "python -c 'import opstui.tui.app'": subprocess_times(
            [py, "-c", "import opstui.tui.app"], args.cli_runs, env
        ),
        ALL_IMPORTS: subprocess_times(
            [py, "-c", ALL_IMPORTS.removeprefix("python -c '").removesuffix("'")],
            args.cli_runs,
            env,
        ),
        "python -m opstui --version": subprocess_times(
            [py, "-m", "opstui", "--version"], args.cli_runs, env
        ),
    }
    launch = out[0].value  # the first size's median
    out.append(
        Figure(
            "1. tmux floor: a pane that prints the text at once (80x24): median",
            median(floor),
            note="tmux server + shell + capture-pane polling",
        )
    )
    base = median(starts["python -c pass"])
    for label, times in starts.items():
        share = median(times) / launch
        out.append(
            Figure(
                f"1. {label}: median",
                median(times),
                note=f"{share:.0%} of the launch at {size_name(args.sizes[0])}; "
                f"+{ms(median(times) - base)} over python -c pass",
            )
        )
    imports = median(starts[ALL_IMPORTS])
    out.append(
        Figure(
            "1. the rest: app start, first read, first paint, tmux (launch - imports)",
            launch - imports,
            note=f"{(launch - imports) / launch:.0%} of the launch at {size_name(args.sizes[0])}",
        )
    )
    return out


# -- 2. one refresh ---------------------------------------------------------------------------


def measure_snapshot(
    store: Path, config: Config, n: int, cold_opens: int
) -> tuple[list[Figure], dict[str, list[float]]]:
    print(f"\n2. one refresh: SnapshotReader.snapshot(), x{n}", flush=True)
    cold, evicted = [], []
    for _ in range(cold_opens):
        t0 = time.perf_counter()
        c = SnapshotReader(store, config)
        c.snapshot()
        cold.append(time.perf_counter() - t0)
        c.close()
    for _ in range(cold_opens):
        evict_from_page_cache(store)
        t0 = time.perf_counter()
        c = SnapshotReader(store, config)
        c.snapshot()
        evicted.append(time.perf_counter() - t0)
        c.close()
    console = SnapshotReader(store, config)
    snap = console.snapshot()
    run_id = pick_run(snap)
    writer = Store(store, create=False)
    changed: list[float] = []
    for _ in range(3 + n):
        store_runs.heartbeat(writer, run_id)
        t0 = time.perf_counter()
        snap = console.snapshot()
        changed.append(time.perf_counter() - t0)
        assert not snap.problems, snap.problems
    changed = changed[3:]
    writer.close()
    unchanged = []
    for _ in range(3 + n):
        t0 = time.perf_counter()
        console.snapshot()
        unchanged.append(time.perf_counter() - t0)
    unchanged = unchanged[3:]
    console.close()
    figures = [
        Figure(
            f"2. snapshot(), cold: new SnapshotReader, first call (mean of {cold_opens})",
            sum(cold) / len(cold),
            note="opens the store; reads every pipeline",
        ),
        Figure(
            "2. snapshot(), cold, file evicted from the page cache (mean)",
            sum(evicted) / len(evicted),
        ),
        Figure(
            f"2. snapshot(), 1 run changed (run {run_id}): median",
            median(changed),
            note=spread(changed),
        ),
        Figure("2. snapshot(), nothing changed: median", median(unchanged), note=spread(unchanged)),
    ]
    return figures, {"changed": changed, "unchanged": unchanged, "run": [float(run_id)]}


async def wait_refresh(app: Any, pilot: Any) -> None:
    """Ask for a read and wait until it reached the screen (tests/test_tui.py ``settle``)."""
    app.refresh_now()
    for _ in range(1000):
        await pilot.pause(0.01)
        if app.snapshot is not None and not app.reading:
            return
    raise SystemExit("a refresh never reached the screen")


#: The kinds of change ``show_times`` measures (``REORDERED`` against ``REBUILT``).
ONE_RUN = "1 run changed (a real read)"
REORDERED = "rows reordered"
REBUILT = "rows reordered, rebuilt (clear + add_row: the path before, forced)"


async def show_times(
    store: Path, config: Config, n: int, run_id: int, size: tuple[int, int]
) -> dict[str, tuple[list[float], list[float]]]:
    """(show() wall times, main-thread CPU of show() + the repaint) per kind of change."""
    from opstui.tui.app import OpstuiApp
    from opstui.tui.table import LiveTable

    app = OpstuiApp(store, config, refresh=3600.0, poll=False)
    out: dict[str, tuple[list[float], list[float]]] = {}
    reader = SnapshotReader(store, config)
    writer = Store(store, create=False)
    async with app.run_test(size=size) as pilot:
        await wait_refresh(app, pilot)
        screen = app.dashboard()
        snap0: Snapshot | None = app.snapshot
        assert screen is not None and snap0 is not None
        base = snap0

        async def cpu(fn: Callable[[], None]) -> tuple[float, float]:
            c0 = time.thread_time()
            t0 = time.perf_counter()
            fn()
            wall = time.perf_counter() - t0
            await pilot.pause(0.05)  # the update timer repaints meanwhile
            return wall, time.thread_time() - c0

        idle = [(await cpu(lambda: None))[1] for _ in range(max(10, n // 2))]
        out["nothing (the pause alone)"] = ([], idle)

        def one_run() -> Snapshot:
            store_runs.heartbeat(writer, run_id)
            return reader.snapshot()

        def rebuilt(snap: Snapshot) -> None:
            """``show`` as it was before the reorder path: the pipelines' table (the
            one whose rows moved) cleared and filled again, as it still is when
            rows come or go, the cursor carried by key."""
            table: LiveTable = screen.pipelines
            key = table.selected_key
            table._rows = []  # no row matches: show() clears it and adds every row
            screen.show(snap)
            if key is not None:
                table.select_key(key)

        reversed_ = base._replace(pipelines=base.pipelines[::-1])
        kinds: dict[str, Callable[[int], Snapshot]] = {
            ONE_RUN: lambda _k: one_run(),
            "every row's cells changed (+1 day)": lambda k: base._replace(at=base.at + k * DAY),
            REORDERED: lambda k: reversed_ if k % 2 else base,
            REBUILT: lambda k: reversed_ if k % 2 else base,
        }
        for kind, make in kinds.items():
            walls, cpus = [], []
            screen.show(base)
            await pilot.pause(0.05)
            for k in range(1, n + 4):
                snap = make(k)
                call = partial(rebuilt if kind == REBUILT else screen.show, snap)
                wall, used = await cpu(call)
                if k > 3:
                    walls.append(wall)
                    cpus.append(used)
            out[kind] = (walls, cpus)
        screen.show(base)
    writer.close()
    reader.close()
    return out


def measure_show(
    store: Path, config: Config, n: int, snap_times: dict[str, list[float]], size: tuple[int, int]
) -> list[Figure]:
    at = size_name(size)
    print(f"\n2. one refresh: DashboardScreen.show(snapshot) in run_test({at}), x{n}", flush=True)
    run_id = int(snap_times["run"][0])
    got = asyncio.run(show_times(store, config, n, run_id, size))
    idle = median(got["nothing (the pause alone)"][1])
    figures = []
    for kind, (walls, cpus) in got.items():
        if not walls:
            continue
        figures.append(
            Figure(f"2. [{at}] show(), {kind}: median", median(walls), note=spread(walls))
        )
        figures.append(
            Figure(
                f"2. [{at}] show() + repaint, main-thread CPU, {kind}: median",
                median(cpus) - idle,
                target=TARGET_REORDER if kind == REORDERED else None,
                note=f"p99 {ms(percentile(cpus, 99) - idle)}; {ms(idle)} of idle CPU subtracted",
            )
        )
    changed = snap_times["changed"]
    typical = got[ONE_RUN]
    reordered, rebuilt = got[REORDERED], got[REBUILT]
    figures.append(
        Figure(
            f"2. [{at}] rows reordered: UI CPU now / the rebuild (medians)",
            (median(reordered[1]) - idle) / (median(rebuilt[1]) - idle),
            unit="x",
            note=f"{ms(median(reordered[1]) - idle)} / {ms(median(rebuilt[1]) - idle)}, "
            "the same run",
        )
    )
    figures.append(
        Figure(
            f"2. [{at}] ONE REFRESH, 1 run changed: snapshot() + show(), medians",
            median(changed) + median(typical[0]),
            target=TARGET_REFRESH,
            note=f"{ms(median(changed))} + {ms(median(typical[0]))}",
        )
    )
    figures.append(
        Figure(
            f"2. [{at}] one refresh, 1 run changed, with the repaint (CPU), medians",
            median(changed) + median(typical[1]) - idle,
            target=TARGET_REFRESH,
        )
    )
    figures.append(
        Figure(
            f"2. [{at}] one refresh, rows reordered, with the repaint (CPU), medians",
            median(changed) + median(reordered[1]) - idle,
            target=TARGET_REFRESH,
            note="what a refresh costs when a pipeline changes state (rows move)",
        )
    )
    return figures


# -- 3. event-loop lag ----------------------------------------------------------------------------


class TimedSnapshotReader(SnapshotReader):
    """A SnapshotReader that records how long each ``snapshot()`` took (in the worker thread)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.times: list[float] = []
        self.changed: list[int] = []

    def snapshot(self) -> Snapshot:
        t0 = time.perf_counter()
        snap = super().snapshot()
        self.times.append(time.perf_counter() - t0)
        if self._dashboard is not None:
            self.changed.append(self._dashboard.last_read_changed)
        return snap


class Timeline:
    """When things happened on the event loop's side: GC passes and ``_show`` calls."""

    def __init__(self) -> None:
        self.gc: list[tuple[float, float, int]] = []  # (start, end, generation)
        self.gc_cpu: list[float] = []  # CPU time of each pass (thread time)
        self.shows: list[tuple[float, float]] = []
        self._gc_start = (0.0, 0.0)

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        if phase == "start":
            self._gc_start = (now, cpu)
        else:
            self.gc.append((self._gc_start[0], now, int(info["generation"])))
            self.gc_cpu.append(cpu - self._gc_start[1])

    def inside(
        self, spans: Sequence[tuple[float, float]], start: float, end: float
    ) -> tuple[int, float]:
        """How many of ``spans`` overlap ``[start, end]`` and for how long in all."""
        hits = [(max(a, start), min(b, end)) for a, b in spans if a < end and b > start]
        return len(hits), sum(b - a for a, b in hits)


@dataclass
class Lags:
    late: list[float]  # how late each sleep(10 ms) woke
    windows: list[tuple[float, float]]  # each sleep's (start, end)
    cpu: list[float]  # the event loop's thread's CPU during each sleep
    landed: int  # snapshots that reached the app


async def lags(seconds: float, app: Any) -> Lags:
    """How late each ``sleep(10 ms)`` woke (its window, the main thread's CPU
    meanwhile), and how many snapshots landed."""
    got = Lags([], [], [], 0)
    last = app.snapshot
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0, c0 = time.perf_counter(), time.thread_time()
        await asyncio.sleep(LAG_SLEEP)
        t1, c1 = time.perf_counter(), time.thread_time()
        got.late.append(max(0.0, t1 - t0 - LAG_SLEEP))
        got.windows.append((t0, t1))
        got.cpu.append(c1 - c0)
        if app.snapshot is not last:
            got.landed += 1
            last = app.snapshot
    return got


@dataclass
class LagRun:
    idle: list[float]
    busy: Lags
    reads: list[float]
    changed: list[int]
    title: str
    timeline: Timeline
    started: float
    objects: int  # tracked by the GC once the GC mode is applied (frozen ones are not)
    settle: float  # CPU of the app's own settle_gc (mode "app"), NaN if it did not run
    full_pass: float  # CPU of a full collection at the end (what a postponed one costs)


async def lag_run(
    store: Path,
    config: Config,
    *,
    seconds: float,
    baseline: float,
    every: float,
    run_id: int,
    size: tuple[int, int],
    gc_mode: str,
) -> LagRun:
    from opstui.tui.app import OpstuiApp

    timeline = Timeline()

    settled: list[float] = []

    class App(OpstuiApp):
        def _show(self, screen: Any, snap: Snapshot, extra: Any) -> None:
            t0 = time.perf_counter()
            super()._show(screen, snap, extra)
            timeline.shows.append((t0, time.perf_counter()))

        def settle_gc(self) -> None:
            c0 = time.thread_time()
            super().settle_gc()
            settled.append(time.thread_time() - c0)

    app = App(store, config, refresh=every, poll=False)
    # "app": the console's own settle_gc, once its first snapshot is shown
    # (in a terminal it always runs; run_test is headless).
    app.gc_settle = gc_mode == "app"
    thresholds = gc.get_threshold()
    reader = TimedSnapshotReader(store, config, clock=app.clock)
    app.reader = reader
    # Made before run_test: multiprocessing starts its resource tracker with
    # this process's stderr, which Textual replaces while the app runs.
    beater = Beater(store, run_id, every)
    async with app.run_test(size=size) as pilot:
        await wait_refresh(app, pilot)
        app.paused = True
        await pilot.pause(0.1)
        if gc_mode == "app":  # settle_gc comes a little after the first snapshot
            for _ in range(500):
                if settled:
                    break
                await pilot.pause(0.01)
            else:
                raise SystemExit("the app's settle_gc did not run after its first snapshot")
        idle = (await lags(baseline, app)).late
        apply_gc(gc_mode)
        objects = len(gc.get_objects())
        app.paused = False
        reads_before = len(reader.times)
        gc.callbacks.append(timeline.on_gc)
        try:
            with beater:
                started = time.perf_counter()
                busy = await lags(seconds, app)
        finally:
            gc.callbacks.remove(timeline.on_gc)
        c0 = time.thread_time()
        gc.collect()  # still frozen and tuned as the mode says
        full_pass = time.thread_time() - c0
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        screen = app.dashboard()
        assert screen is not None
        title = str(screen.query_one("#panel-pipelines").border_title)
    return LagRun(
        idle,
        busy,
        reader.times[reads_before:],
        reader.changed[reads_before:],
        title,
        timeline,
        started,
        objects,
        settled[0] if settled else math.nan,
        full_pass,
    )


def apply_gc(mode: str) -> None:
    """The garbage collector as ``mode`` says, once the first frame is up:
    ``default`` as it is; ``app`` as the console's ``settle_gc`` left it;
    ``freeze`` a full collection then ``gc.freeze()``;
    ``freeze/T0/T1/T2`` also ``gc.set_threshold(T0, T1, T2)``."""
    if mode in ("default", "app"):
        return  # (app: the console did it itself)
    name, *thresholds = mode.split("/")
    if name != "freeze" or len(thresholds) not in (0, 3):
        raise SystemExit(f"unknown GC mode {mode!r}")
    gc.collect()
    gc.freeze()
    if thresholds:
        t0, t1, t2 = (int(t) for t in thresholds)
        gc.set_threshold(t0, t1, t2)


def measure_lag(
    store: Path,
    config: Config,
    args: argparse.Namespace,
    run_id: int,
    *,
    size: tuple[int, int],
    gc_mode: str,
) -> list[Figure]:
    every = 0.25
    at = f"[{size_name(size)}, GC {gc_mode}]"
    what = GC_MODES.get(gc_mode, "as --gc says")
    print(
        f"\n3. {at} event-loop lag: run_test({size_name(size)}), refresh every {every} s for "
        f"{args.lag_seconds} s, 1 run changed every {every} s by another process; first "
        f"{args.lag_baseline} s paused; GC: {gc_mode} ({what})",
        flush=True,
    )
    got = asyncio.run(
        lag_run(
            store,
            config,
            seconds=args.lag_seconds,
            baseline=args.lag_baseline,
            every=every,
            run_id=run_id,
            size=size,
            gc_mode=gc_mode,
        )
    )
    idle, busy, reads = got.idle, got.busy.late, got.reads
    tl = got.timeline
    expected = args.lag_seconds / every
    print(
        f"   {len(busy)} wake-ups; {len(reads)} reads ({expected:.0f} ticks), {got.busy.landed} "
        f"snapshots reached the app; pipelines re-read per read: {sorted(set(got.changed))}; "
        f"panel title at the end: {got.title}"
    )
    shows = [b - a for a, b in tl.shows]
    full_gc = [(a, b) for a, b, g in tl.gc if g == 2]
    full_cpu = [c for (_, _, g), c in zip(tl.gc, tl.gc_cpu, strict=True) if g == 2]
    print(
        f"   _show() on the loop: {len(shows)} calls, median {ms(median(shows))}, "
        f"max {ms(max(shows, default=math.nan))}; GC passes: {len(tl.gc)}, of them "
        f"{len(full_gc)} full (gen 2), max {ms(max((b - a for a, b in full_gc), default=0.0))} "
        f"(CPU: median {ms(median(full_cpu))}, max {ms(max(full_cpu, default=0.0))}); "
        f"{got.objects:,} objects tracked by the GC once the mode was applied; a full "
        f"collection at the end: {ms(got.full_pass)} of CPU"
    )
    print("   the 5 longest wake-ups, and what overlapped them:")
    worst = sorted(range(len(busy)), key=lambda i: -busy[i])[:5]
    for i in sorted(worst):
        a, b = got.busy.windows[i]
        n_show, t_show = tl.inside(tl.shows, a, b)
        n_gc, t_gc = tl.inside([(x, y) for x, y, _ in tl.gc], a, b)
        gens = sorted({g for x, y, g in tl.gc if x < b and y > a})
        print(
            f"     at {a - got.started:6.2f} s: {ms(busy[i]):>9} late, the loop's thread used "
            f"{ms(got.busy.cpu[i])} of CPU; _show {n_show}x {ms(t_show)}; GC {n_gc}x "
            f"{ms(t_gc)} (generations {gens}); the rest {ms(max(0.0, busy[i] - t_show - t_gc))} "
            "(repaint, other callbacks, the GIL, other processes)"
        )
    full_max = max((b - a for a, b in full_gc), default=0.0)
    # The targets are what a terminal gets; Python's own settings are the
    # comparison that shows what the console's settle_gc buys.
    baseline = "; Python's own GC: the comparison" if gc_mode == "default" else ""

    def target(value: float) -> float | None:
        return None if gc_mode == "default" else value

    figures = [
        Figure(
            f"3. {at} lag while refreshing every {every} s: p99",
            percentile(busy, 99),
            target=target(TARGET_LAG),
            note=f"p50 {ms(median(busy))}; {len(busy)} wake-ups{baseline}",
        ),
        Figure(
            f"3. {at} lag while refreshing: max",
            max(busy),
            target=target(TARGET_LAG_MAX),
            note=f"full GC passes {len(full_gc)}, longest {ms(full_max)} "
            f"(CPU {ms(max(full_cpu, default=0.0))})",
        ),
        Figure(
            f"3. {at} the loop thread's CPU in the longest wake-up",
            got.busy.cpu[max(range(len(busy)), key=lambda i: busy[i])],
            note=f"most in any wake-up {ms(max(got.busy.cpu))}; the rest of a late "
            "wake-up is waiting (the worker's GIL, other processes)",
        ),
        Figure(
            f"3. {at} a full collection at the end, CPU",
            got.full_pass,
            note="what a full pass costs after the run (one a raised threshold postpones)",
        ),
        Figure(
            f"3. {at} lag, refresh paused (the floor): p99",
            percentile(idle, 99),
            note=f"p50 {ms(median(idle))}, max {ms(max(idle))}",
        ),
        Figure(
            f"3. {at} snapshot() in the worker thread meanwhile: median",
            median(reads),
            note=f"{spread(reads)}; {len(reads)} reads",
        ),
        Figure(
            f"3. {at} _show() on the event loop meanwhile: median",
            median(shows),
            note=f"{spread(shows)}; GC passes {len(tl.gc)}",
        ),
    ]
    if not math.isnan(got.settle):
        figures.append(
            Figure(
                f"3. {at} the app's settle_gc after its first snapshot, CPU (once)",
                got.settle,
                note="one full collection + gc.freeze(), on the event loop",
            )
        )
    return figures


# -- 4. memory ----------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def kb_to_mb(value: str) -> float:
    return int(value.split(maxsplit=1)[0]) / 1024


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of ``(x, y)`` points; NaN with fewer than two."""
    if len(points) < 2:
        return math.nan
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else math.nan


def measure_memory(
    store: Path,
    config: Path,
    pipelines: int,
    env: dict[str, str],
    args: argparse.Namespace,
    *,
    run_id: int,
) -> list[Figure]:
    needle = f"Pipelines ({pipelines})"
    command = opstui_command(sys.executable, store, config, "--refresh", "1")
    total = args.minutes * 60
    print(
        f"\n4. memory: {command}\n   in tmux 80x24 for {args.minutes:g} min, VmRSS every "
        f"{args.sample_every:g} s, 1 run changed per second by another process",
        flush=True,
    )
    tmux = Tmux(env)
    samples: list[tuple[float, float, int]] = []  # (seconds, RSS MB, threads)
    try:
        started = time.perf_counter()
        tmux.start(command)
        pid = tmux.pane_pid()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        if "opstui" not in cmdline:
            raise SystemExit(f"the pane's process is not opstui: {cmdline}")
        while needle not in tmux.screen():
            if time.perf_counter() - started > args.timeout:
                raise SystemExit(f"{needle!r} never showed:\n{tmux.screen()}")
            time.sleep(0.05)
        with Beater(store, run_id, 1.0):
            t0 = time.perf_counter()
            k = 0
            while True:
                status = proc_status(pid)
                at = time.perf_counter() - t0
                samples.append((at, kb_to_mb(status["VmRSS"]), int(status["Threads"])))
                print(
                    f"   {at / 60:5.1f} min  RSS {samples[-1][1]:6.1f} MB  "
                    f"threads {samples[-1][2]}",
                    flush=True,
                )
                k += 1
                if k * args.sample_every > total + 1e-9:
                    break
                time.sleep(max(0.0, t0 + k * args.sample_every - time.perf_counter()))
        status = proc_status(pid)
        peak = kb_to_mb(status["VmHWM"])
        cpu = sum(int(x) for x in Path(f"/proc/{pid}/stat").read_text().split()[13:15])
        cpu_s = cpu / os.sysconf("SC_CLK_TCK")
        screen = tmux.screen()
    finally:
        tmux.close()
    alive = needle in screen
    print(f"   the pane at the end{'' if alive else ' (NO DASHBOARD)'}:")
    print("\n".join("   | " + line for line in screen.rstrip("\n").splitlines()))
    points = [(t / 60, mb) for t, mb, _ in samples]
    second_half = [p for p in points if p[0] >= points[-1][0] / 2]
    first, last = samples[0][1], samples[-1][1]
    span = samples[-1][0] / 60
    return [
        Figure(
            f"4. RSS after {span:.1f} min of refreshing every 1 s",
            last,
            unit="MB",
            target=TARGET_RSS_MB,
            note=f"first sample {first:.1f} MB (when data showed); peak (VmHWM) {peak:.1f} MB",
        ),
        Figure(
            "4. RSS slope, second half of the samples",
            slope(second_half),
            unit="MB/min",
            # Half a minute (--quick) is all warm-up: no verdict on flatness.
            target=TARGET_SLOPE if span >= 5 else None,
            note=f"over all samples {slope(points):+.2f} MB/min; "
            f"last - first {last - first:+.1f} MB",
        ),
        Figure(
            "4. the console's CPU over the run, % of one core",
            math.nan,
            unit="s",
            note=f"{cpu_s:.1f} s CPU in {span:.1f} min: "
            f"{100 * cpu_s / max(1e-9, time.perf_counter() - started):.1f}% "
            f"(threads {samples[0][2]} -> {samples[-1][2]})",
        ),
    ]


# -- report ---------------------------------------------------------------------------------------


# -- 5. the log viewer ------------------------------------------------------------------------

TARGET_LOG = 0.5  # open a 1,000,000-line log at its end; jump to its end from its top
LOG_LINES = 1_000_000


def long_log_store(path: Path, lines: int) -> None:
    """A store with one run of ``longlog`` whose one stage logged ``lines`` lines
    (every 1000th an ERROR, the last a FATAL), in batches of 50,000."""
    with Store(path) as store:
        run_id, _ = store_runs.create_run(store, "longlog")
        sid = store_runs.start_stage(store, run_id, "train")
        now = time.time()
        for start in range(1, lines + 1, 50_000):
            batch = []
            for i in range(start, min(lines, start + 49_999) + 1):
                text = f"ERROR line {i}: retrying" if i % 1000 == 0 else f"INFO line {i}"
                batch.append((sid, now, "log", f"FATAL line {i}: the end" if i == lines else text))
            store_runs.append_logs(store, batch)


def rss_mb() -> float:
    return kb_to_mb(proc_status(os.getpid())["VmRSS"])


async def _until(pilot: Any, check: Callable[[], bool], timeout: float = 60.0) -> float:
    """Seconds until ``check()`` holds, polled every 2 ms on the app's loop."""
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout:
            raise SystemExit("the log viewer never showed what was waited for")
        await pilot.pause(0.002)
    return time.perf_counter() - started


async def logview_times(
    store: Path, config: Config, rounds: int, size: tuple[int, int]
) -> dict[str, list[float]]:
    from opstui.tui.app import OpstuiApp

    times: dict[str, list[float]] = {
        "open": [], "end": [], "middle": [], "search": [], "rss0": [], "rss1": []
    }  # fmt: skip
    for _ in range(rounds):
        gc.collect()
        times["rss0"].append(rss_mb())
        await logview_round(OpstuiApp(store, config, clock=time.time, poll=False), times, size)
    return times


async def logview_round(app: Any, times: dict[str, list[float]], size: tuple[int, int]) -> None:
    """One app: open the log, G, :middle, a search; each time appended to ``times``."""
    from opstui.tui.logview import LogView

    async with app.run_test(size=size) as pilot:
        await _until(pilot, lambda: app.snapshot is not None and not app.reading)

        def view() -> Any:
            return app.screen.query_one(LogView)

        def shows(number: int) -> bool:
            try:
                v = view()
            except Exception:
                return False
            line = v.line(number)
            return line is not None and v.top <= number < v.top + v.page

        started = time.perf_counter()
        app.open_key("pipeline:longlog")
        await _until(pilot, lambda: shows(LOG_LINES))
        times["open"].append(time.perf_counter() - started)
        view().focus()
        await pilot.press("g")
        await _until(pilot, lambda: shows(1))
        started = time.perf_counter()
        await pilot.press("G")
        await _until(pilot, lambda: shows(LOG_LINES) and view().first > 1)
        times["end"].append(time.perf_counter() - started)
        await pilot.press("colon", *str(LOG_LINES // 2))  # typed, then timed from enter
        started = time.perf_counter()
        await pilot.press("enter")
        await _until(pilot, lambda: shows(LOG_LINES // 2))
        times["middle"].append(time.perf_counter() - started)
        await pilot.press("slash", *"ERROR line 99")
        started = time.perf_counter()
        await pilot.press("enter")
        screen: Any = app.screen
        await _until(pilot, lambda: screen.hits is not None)
        times["search"].append(time.perf_counter() - started)
        gc.collect()
        times["rss1"].append(rss_mb())


def measure_logview(root: Path, args: argparse.Namespace) -> list[Figure]:
    """Open a 1,000,000-line log (following: its last line on screen), jump from its
    top to its end (G), to its middle (``:500000``), search it whole; the process's
    RSS before the app starts and after (a window is held, never the log)."""
    from opstui.store.history import log_search, log_window
    from opstui.tui.logview import WINDOW

    store = root / "longlog.db"
    started = time.perf_counter()
    long_log_store(store, LOG_LINES)
    print(f"log viewer: a {LOG_LINES:,}-line log written in {time.perf_counter() - started:.1f} s")
    config_path = root / "longlog.toml"
    config_path.write_text('[pipelines.longlog]\nkind = "mlops"\n', encoding="utf-8")
    config = load_config(config_path)
    reads: dict[str, list[float]] = {"tail": [], "middle": [], "search": []}
    import re

    with Store(store) as s:
        sid = int(s.query_one("SELECT id FROM stage_runs")[0])
        for _ in range(max(3, args.iterations // 10)):
            t = time.perf_counter()
            log_window(s, sid, None, WINDOW)
            reads["tail"].append(time.perf_counter() - t)
            t = time.perf_counter()
            log_window(s, sid, LOG_LINES // 2, WINDOW)
            reads["middle"].append(time.perf_counter() - t)
        for _ in range(3):
            t = time.perf_counter()
            log_search(s, sid, re.compile("ERROR line 99", re.IGNORECASE))
            reads["search"].append(time.perf_counter() - t)
    rounds = 3
    n = f"{LOG_LINES:,} lines, {rounds} rounds, median"
    figures = []
    for size in args.sizes:
        at = f"[{size_name(size)}]"
        print(f"5. {at} the log viewer in run_test({size_name(size)}), {rounds} rounds", flush=True)
        times = asyncio.run(logview_times(store, config, rounds, size))
        figures += [
            Figure(
                f"5. {at} log: open, last line shown",
                median(times["open"]),
                target=TARGET_LOG,
                note=f"{n}; max {ms(max(times['open']))}",
            ),
            Figure(
                f"5. {at} log: G from the top, end shown",
                median(times["end"]),
                target=TARGET_LOG,
                note=f"{n}; max {ms(max(times['end']))}",
            ),
            Figure(f"5. {at} log: :500000 enter, shown", median(times["middle"]), note=n),
            Figure(f"5. {at} log: search enter, all hits in", median(times["search"]), note=n),
            Figure(f"5. {at} log: RSS before the app", median(times["rss0"]), unit="MB"),
            Figure(f"5. {at} log: RSS after open+jumps+search", median(times["rss1"]), unit="MB"),
        ]
    return [
        *figures,
        Figure("5. log read: last window", median(reads["tail"]), note=f"{WINDOW} lines, SQLite"),
        Figure("5. log read: middle window", median(reads["middle"]), note=f"{WINDOW} lines"),
        Figure("5. log read: search scan", median(reads["search"]), note="Python re, 20k chunks"),
    ]


def report(figures: Sequence[Figure]) -> int:
    rows = []
    missed = 0
    for f in figures:
        if f.target is None:
            target = ratio = "-"
        else:
            target = f.shown(f.target)
            ratio = f"{f.value / f.target:.2f}"
            if f.value > f.target:
                ratio += "  MISSED"
                missed += 1
        rows.append([f.label, f.shown(), target, ratio, f.note])
    print("\nThe console: results")
    print(table(["figure", "value", "target", "value/target", "note"], rows))
    print(f"\n{missed} target(s) missed" if missed else "\nall targets met")
    return missed


def run(args: argparse.Namespace, root: Path) -> int:
    spec = QUICK if args.quick else Spec()
    store = cached_store(spec, args.cache_dir)
    print(f"store holds: {store_counts(store)}")
    print("load average at the start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    config_path = root / "opstui.toml"
    config_path.write_text("# nothing configured: no endpoints, no models\n", encoding="utf-8")
    config = load_config(config_path)
    env = child_env(root, True)
    print(f"child processes: bytecode cached in {env['PYTHONPYCACHEPREFIX']}")
    figures: list[Figure] = []
    parts = set(args.parts)
    if "launch" in parts:
        figures += measure_launch(store, config_path, spec.pipelines, env, args, root=root)
    if "refresh" in parts:
        snap_figures, snap_times = measure_snapshot(store, config, args.iterations, args.cold_opens)
        run_id = int(snap_times["run"][0])
        figures += snap_figures
        for size in args.sizes:
            figures += measure_show(store, config, args.iterations, snap_times, size)
    else:
        console = SnapshotReader(store, config)
        run_id = pick_run(console.snapshot())
        console.close()
    if "lag" in parts:
        for size in args.sizes:
            maxima = {}
            for mode in args.gc:
                gc.collect()
                got = measure_lag(store, config, args, run_id, size=size, gc_mode=mode)
                maxima[mode] = next(f.value for f in got if f.label.endswith("refreshing: max"))
                figures += got
            if {"default", "app"} <= set(maxima):
                figures.append(
                    Figure(
                        f"3. [{size_name(size)}] lag max, the console's GC / Python's own",
                        maxima["app"] / maxima["default"],
                        unit="x",
                        note=f"{ms(maxima['app'])} / {ms(maxima['default'])}, the same run",
                    )
                )
    if "memory" in parts:
        figures += measure_memory(store, config_path, spec.pipelines, env, args, run_id=run_id)
    if "logview" in parts:
        figures += measure_logview(root, args)
    report(figures)
    print("load average at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0  # a benchmark: missed targets are printed, not failed


PARTS = ("launch", "refresh", "lag", "memory", "logview")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small store, short runs")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--launches", type=int, default=5, help="timed launches in tmux")
    parser.add_argument("--cli-runs", type=int, default=9, help="per start-up subprocess figure")
    parser.add_argument("--iterations", type=int, default=50, help="per in-process figure")
    parser.add_argument("--cold-opens", type=int, default=3)
    parser.add_argument("--lag-seconds", type=float, default=30.0)
    parser.add_argument("--lag-baseline", type=float, default=10.0, help="seconds, paused")
    parser.add_argument(
        "--gc",
        nargs="+",
        default=list(GC_MODES),
        help="lag part: the garbage collector's settings to compare, each in an app of its "
        "own: default (Python's), app (the console's own settle_gc), and to try others "
        "from the first frame on: freeze (gc.freeze()), freeze/T0/T1/T2 (and gc.set_threshold)",
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=parse_size,
        default=[(80, 24), (200, 50)],
        help="terminal sizes (WxH) for launch, refresh, lag and the log viewer",
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="of the memory run")
    parser.add_argument("--sample-every", type=float, default=30.0, help="seconds, memory run")
    parser.add_argument("--timeout", type=float, default=60.0, help="for a launch to show data")
    parser.add_argument(
        "--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to measure"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()
    if shutil.which("tmux") is None and {"launch", "memory"} & set(args.parts):
        print("tmux is not installed (apt-get install tmux)", file=sys.stderr)
        return 2
    if args.quick:
        args.launches = min(args.launches, 3)
        args.cli_runs = min(args.cli_runs, 3)
        args.iterations = min(args.iterations, 20)
        args.cold_opens = min(args.cold_opens, 2)
        args.lag_seconds = min(args.lag_seconds, 5.0)
        args.lag_baseline = min(args.lag_baseline, 2.0)
        args.minutes = min(args.minutes, 0.5)
        args.sample_every = min(args.sample_every, 5.0)
    return in_workdir(args.keep, lambda root: run(args, root), prefix="opstui-bench-tui-")


if __name__ == "__main__":
    sys.exit(main())
