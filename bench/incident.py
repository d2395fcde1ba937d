"""The incident flow on ``opstui demo``: from the alert to its fix, and from a fault to the bell.

Each run launches the real ``python -m opstui demo --dir D`` (a fresh ``D``)
in tmux at 80x24, on a tmux server socket of its own, and polls ``tmux
capture-pane`` every 10 ms. The demo's scenario sends web-api 1.15.1 to
production and its endpoint ``web-api`` starts burning its SLO (5xx ~30%)
20-40 s after launch.

  1. keys from launch to a confirmed rollback of the burning endpoint's
     service: wait until the header says ``endpoint burning``; check which
     row of the focused table is selected (``capture-pane -e``: the one row
     whose background no other line of the screen has) without pressing
     anything; press ``b`` once and wait for the confirmation modal
     (``Rollback web-api in PRODUCTION?`` and ``production: web-api 1.15.1
     -> 1.14.10``), press ``y`` and wait until the store's audit says the
     rollback of web-api in production succeeded (the ``actions`` table, as
     ``opstui actions`` reads it). Keys counted: every ``send-keys``. Then
     the time from the rollback's success to the header saying
     ``recovering`` and to the endpoint's row saying ``up`` (if within
     ``--recover-timeout``).
  2. a new fault to the terminal's bell: while (1) waits for the recovery,
     the bench process writes a failed run of a pipeline of its own
     (``bench-fault-N``: ``create_run``, ``start_stage``, ``finish_stage``
     failed, ``finish_run``, as ``tests/test_worst_first.py`` does) into the
     demo's store, ``--faults`` times, ``--gap`` seconds apart; the pane's
     raw output goes to a file (``tmux pipe-pane -o``), read every 10 ms for
     a new BEL byte outside OSC sequences (Textual's terminal queries end
     with BEL too). Baseline, in the same loop: the write to the name
     ``bench-fault-N`` first appearing on screen. Latencies are also given in
     refresh intervals (``[tui] refresh`` of the demo's ``opstui.toml``).
     The first new bell after a write is that fault's; further bells before
     the next write are counted as extra (the demo's own faults, e.g. its
     pipelines failing by themselves, ring too, and one could be taken for
     ours: the latency figures are a lower bound in that case; the screen
     baseline is not affected).

Everything a run starts is stopped at its end, on error or Ctrl-C too:
``q`` first, then SIGTERM/SIGKILL to the pane's process tree and to any
process whose working directory or command line is inside the run's
directory (the detached runners), then ``tmux kill-server``.

    .venv/bin/python bench/incident.py            # 3 runs, under 5 minutes
    .venv/bin/python bench/incident.py --quick    # 1 run, 4 faults, shorter waits

Linux only (``/proc``); needs tmux.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shlex
import signal
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from _processes import tree
from _report import in_workdir, median, table
from tui import Tmux

from opstui.config import load_config
from opstui.store import Store
from opstui.store import status as st
from opstui.store.runs import create_run, finish_run, finish_stage, start_stage

POLL = 0.010
TARGET_KEYS = 2
TARGET_BELL_INTERVALS = 2.0
MODAL = ("Rollback web-api in PRODUCTION?", "production: web-api 1.15.1 -> 1.14.10")
#: An OSC sequence (as tests/test_bell.py's ``bells()``).
OSC = re.compile(rb"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
SGR = re.compile(r"\x1b\[([0-9;]*)m")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# -- the pane's raw output ------------------------------------------------------------------------


class Bells:
    """BEL bytes outside OSC sequences in a growing file, read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.pending = b""
        self.count = 0

    def poll(self) -> int:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.count
        self.offset += len(data)
        buf = OSC.sub(b"", self.pending + data)
        # An OSC sequence not ended yet (or a lone ESC that may start one) waits for more.
        cut = buf.rfind(b"\x1b]")
        if cut == -1 and buf.endswith(b"\x1b"):
            cut = len(buf) - 1
        if cut != -1 and len(buf) - cut < 4096:
            buf, self.pending = buf[:cut], buf[cut:]
        else:
            self.pending = b""
        self.count += buf.count(b"\x07")
        return self.count


# -- the screen -----------------------------------------------------------------------------------


def background(line: str) -> str | None:
    """The background a row starts with (after its border), from ``capture-pane -e``."""
    body = line.split("│", 1)[1] if "│" in line else ""
    bg = None
    for m in SGR.finditer(body[:80]):
        codes = m.group(1).split(";")
        for i, c in enumerate(codes):
            if c == "48" and i + 2 < len(codes) and codes[i + 1] == "5":
                bg = codes[i + 2]
        if ANSI.sub("", body[: m.end()]).strip():
            break
    return bg


def selected_row(colour: str) -> tuple[str, str] | None:
    """(the panel, the row's text) of the one table row whose background no other line has."""
    lines = colour.splitlines()
    bgs = [background(line) for line in lines]
    panel = ""
    out = None
    for line, bg in zip(lines, bgs, strict=True):
        text = ANSI.sub("", line)
        if "╭─" in text:
            panel = text.split("─ ", 1)[1].split(" ─", 1)[0] if "─ " in text else ""
        if bg is not None and bgs.count(bg) == 1 and text.startswith("│"):
            out = (panel, text.strip("│ ").rstrip())
    return out


def endpoint_state(screen: str, name: str = "web-api") -> str:
    inside = False
    for line in screen.splitlines():
        if "Endpoints (" in line:
            inside = True
        elif inside and line.startswith("╰"):
            break
        elif inside:
            cells = line.strip("│ ").split()
            if cells and cells[0] == name:
                return cells[1] if len(cells) > 1 else ""
    return ""


# -- processes ------------------------------------------------------------------------------------


def inside(directory: Path) -> list[int]:
    """Processes whose working directory or command line is in ``directory``."""
    me = os.getpid()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == me:
            continue
        try:
            cwd = str((proc / "cwd").readlink())
            cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(str(directory)) or str(directory) in cmd:
            found.append(int(proc.name))
    return found


def stop(pids: set[int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = set()
        for pid in pids:
            try:
                os.kill(pid, sig)
                alive.add(pid)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + 3
        while alive and time.monotonic() < deadline:
            alive = {p for p in alive if Path(f"/proc/{p}").exists() and not _zombie(p)}
            time.sleep(0.05)
        pids = alive
        if not pids:
            return


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].startswith("Z")
    except OSError:
        return True


# -- one run --------------------------------------------------------------------------------------


@dataclass
class Fault:
    written: float
    bell: float = math.nan
    screen: float = math.nan
    stray: int = 0


@dataclass
class Run:
    burning: float = math.nan  # launch -> header says "endpoint burning"
    selected: str = ""
    keys: int = 0
    modal: float = math.nan  # b -> the confirmation modal
    rollback: float = math.nan  # burn showing -> the rollback's run succeeded
    recovering: float = math.nan  # rollback succeeded -> header says "recovering"
    up: float = math.nan  # rollback succeeded -> the endpoint says "up"
    refresh: float = 1.0
    faults: list[Fault] = field(default_factory=list)
    odd: list[str] = field(default_factory=list)


def rollback_done(db: Path) -> str | None:
    """The status of the newest audited rollback of web-api in production, if any."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            row = conn.execute(
                "SELECT status FROM actions WHERE action = 'rollback' AND target = 'web-api'"
                " AND environment = 'production' ORDER BY id DESC LIMIT 1"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])


def fail(db: Path, pipeline: str) -> float:
    """A failed run of ``pipeline`` written into the store; when its last write committed."""
    with Store(db, create=False) as store:
        run, _ = create_run(store, pipeline, stages=["build", "test"], trigger="push")
        start_stage(store, run, "build")
        finish_stage(store, run, "build", status=st.FAILED)
        finish_run(store, run)
        return time.perf_counter()


def wait(tmux: Tmux, what: str, ok: object, timeout: float) -> tuple[float, str]:
    started = time.perf_counter()
    screen = ""
    while time.perf_counter() - started < timeout:
        screen = tmux.screen()
        if callable(ok) and ok(screen):
            return time.perf_counter(), screen
        time.sleep(POLL)
    raise SystemExit(f"{what}: not seen in {timeout} s; the pane:\n{screen}")


def one_run(n: int, root: Path, args: argparse.Namespace, env: dict[str, str]) -> Run:
    where = root / f"run{n}"
    where.mkdir()
    demo = where / "demo"
    raw = where / "pane.out"
    tmux = Tmux(env)
    out = Run()
    pane = 0
    command = f"cd {shlex.quote(str(where))} && exec " + shlex.join(
        [sys.executable, "-m", "opstui", "demo", "--dir", str(demo)]
    )
    try:
        launched = time.perf_counter()
        tmux.start(command)
        pane = tmux.pane_pid()
        tmux("pipe-pane", "-o", "-t", "bench", f"cat >> {shlex.quote(str(raw))}")
        seen, screen = wait(
            tmux, "endpoint burning", lambda s: "endpoint burning" in s[:200], args.burn_timeout
        )
        out.burning = seen - launched
        out.refresh = load_config(demo / "opstui.toml").tui.refresh
        colour = tmux("capture-pane", "-p", "-e", "-t", "bench").stdout
        picked = selected_row(colour)
        out.selected = f"{picked[0]}: {picked[1][:40]}" if picked else "?"
        print(f"   run {n}: burning after {out.burning:.1f} s; selected: {out.selected}")
        if (
            not picked
            or not picked[0].startswith("Endpoints")
            or not picked[1].startswith("web-api ")
        ):
            out.odd.append(f"run {n}: the selected row was not the burning endpoint: {picked}")
            print("\n".join("   | " + line for line in screen.rstrip().splitlines()))

        pressed = time.perf_counter()
        tmux("send-keys", "-t", "bench", "b")
        out.keys += 1
        seen, screen = wait(tmux, "the rollback modal", lambda s: all(m in s for m in MODAL), 10)
        out.modal = seen - pressed
        tmux("send-keys", "-t", "bench", "y")
        out.keys += 1
        db = demo / "opstui.db"
        deadline = time.perf_counter() + 60
        status = None
        while time.perf_counter() < deadline:
            status = rollback_done(db)
            if status in ("succeeded", "failed", "refused"):
                break
            time.sleep(POLL)
        if status != "succeeded":
            raise SystemExit(f"run {n}: the rollback ended {status!r}")
        done = time.perf_counter()
        out.rollback = done - launched - out.burning
        print(
            f"   run {n}: keys {out.keys}; rollback succeeded {out.rollback:.1f} s after the burn"
        )

        # 2. faults, while waiting for the recovery.
        bells = Bells(raw)
        bells.poll()
        next_write = time.perf_counter() + 1.0
        deadline = done + args.recover_timeout
        current: Fault | None = None
        name = ""
        while True:
            now = time.perf_counter()
            if len(out.faults) < args.faults and now >= next_write:
                if current is not None and math.isnan(current.screen):
                    out.odd.append(f"run {n}: {name} never showed on screen")
                name = f"bench-fault-{n}-{len(out.faults) + 1}"
                count = bells.poll()
                current = Fault(fail(db, name))
                out.faults.append(current)
                next_write = current.written + args.gap
                before = count
            rang = bells.poll()
            screen = tmux.screen()
            now = time.perf_counter()
            if current is not None:
                if rang > before:
                    if math.isnan(current.bell):
                        current.bell = now - current.written
                    else:
                        current.stray += rang - before
                    before = rang
                if math.isnan(current.screen) and name in screen:
                    current.screen = now - current.written
            if math.isnan(out.recovering) and "recovering" in screen[:200]:
                out.recovering = now - done
            if math.isnan(out.up) and endpoint_state(screen) == "up":
                out.up = now - done
            faults_done = len(out.faults) >= args.faults and now > next_write - args.gap + 3
            if faults_done and (not math.isnan(out.up) or now > deadline):
                break
            time.sleep(POLL)
        shown = (
            ("recovering after " + f"{out.recovering:.1f} s")
            if not math.isnan(out.recovering)
            else "never recovering"
        )
        print(f"   run {n}: {shown}; endpoint state at the end: {endpoint_state(screen)!r}")
        return out
    finally:
        if pane:
            pids = set(tree(pane))
            tmux("send-keys", "-t", "bench", "q")
            end = time.monotonic() + 10
            while time.monotonic() < end and Path(f"/proc/{pane}").exists():
                if _zombie(pane):
                    break
                time.sleep(0.1)
            stop((pids | set(inside(where))) - {os.getpid()})
        tmux.close()
        left = inside(where)
        if left:
            stop(set(left))


# -- the report -----------------------------------------------------------------------------------


def fmt_s(v: float) -> str:
    return "not reached" if math.isnan(v) else f"{v:.1f} s"


def run(root: Path, args: argparse.Namespace) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSTUI_")}
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    runs = []
    print(f"{args.runs} run(s) of `opstui demo` in tmux 80x24, {args.faults} faults each")
    for n in range(1, args.runs + 1):
        runs.append(one_run(n, root, args, env))
    refresh = runs[0].refresh
    faults = [f for r in runs for f in r.faults]
    bell = [f.bell for f in faults if not math.isnan(f.bell)]
    screen = [f.screen for f in faults if not math.isnan(f.screen)]
    missed = sum(math.isnan(f.bell) for f in faults)
    stray = sum(f.stray for f in faults)
    keys = [r.keys for r in runs]
    on_endpoint = sum(r.selected.startswith("Endpoints") and "web-api " in r.selected for r in runs)

    def ivl(v: float) -> str:
        return "-" if math.isnan(v) else f"{v / refresh:.2f}"

    def msf(v: float) -> str:
        return "-" if math.isnan(v) else f"{v * 1000:.0f} ms"

    rows: list[list[object]] = [
        ["1. launch -> header says endpoint burning", fmt_s(median([r.burning for r in runs])),
         "-", f"max {fmt_s(max(r.burning for r in runs))}"],
        ["1. first frame after the burn selects the burning endpoint", f"{on_endpoint}/{len(runs)}",
         f"{len(runs)}/{len(runs)}", "no key pressed before b"],
        ["1. keys to a confirmed rollback (b, y)", f"{max(keys)}", f"{TARGET_KEYS}",
         "met" if max(keys) <= TARGET_KEYS else "MISSED"],
        ["1. b -> confirmation modal", msf(median([r.modal for r in runs])), "-",
         "Rollback web-api in PRODUCTION?"],
        ["1. burn showing -> rollback run succeeded", fmt_s(median([r.rollback for r in runs])),
         "-", f"max {fmt_s(max(r.rollback for r in runs))}"],
        ["1. rollback -> header says recovering",
         fmt_s(median([r.recovering for r in runs if not math.isnan(r.recovering)])), "-",
         f"{sum(not math.isnan(r.recovering) for r in runs)}/{len(runs)} within "
         f"{args.recover_timeout:.0f} s"],
        ["1. rollback -> endpoint up", fmt_s(median([r.up for r in runs if not math.isnan(r.up)])),
         "-", f"{sum(not math.isnan(r.up) for r in runs)}/{len(runs)} within "
         f"{args.recover_timeout:.0f} s"],
        ["2. fault written -> BEL: median", msf(median(bell)),
         f"<= {TARGET_BELL_INTERVALS:.0f} ivl", f"{ivl(median(bell))} ivl"],
        ["2. fault written -> BEL: max", msf(max(bell) if bell else math.nan),
         f"<= {TARGET_BELL_INTERVALS:.0f} ivl", f"{ivl(max(bell) if bell else math.nan)} ivl"],
        ["2. fault written -> name on screen: median", msf(median(screen)), "-",
         f"{ivl(median(screen))} ivl"],
        ["2. fault written -> name on screen: max", msf(max(screen) if screen else math.nan), "-",
         f"{ivl(max(screen) if screen else math.nan)} ivl"],
        ["2. ratio bell / screen (medians)",
         f"{median(bell) / median(screen):.2f}" if bell and screen else "-", "-", ""],
        ["2. faults without a bell / extra bells", f"{missed} / {stray}", "0 / -",
         f"of {len(faults)} faults"],
    ]  # fmt: skip
    print(f"\nrefresh interval (ivl): {refresh:g} s ([tui] refresh of the demo's opstui.toml)")
    odd = [o for r in runs for o in r.odd]
    for o in odd:
        print("odd:", o)
    print()
    print(table(["figure", "value", "target", "note"], rows))
    worst = max(bell) if bell else math.inf
    met = (
        max(keys) <= TARGET_KEYS
        and on_endpoint == len(runs)
        and worst <= TARGET_BELL_INTERVALS * refresh
        and missed == 0
    )
    print(f"\ntargets {'met' if met else 'NOT met'}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 run, 4 faults, shorter waits")
    parser.add_argument("--runs", type=int, default=3, help="runs, each on a fresh demo (3)")
    parser.add_argument("--faults", type=int, default=10, help="faults written per run (10)")
    parser.add_argument("--gap", type=float, default=2.3, help="seconds between faults (2.3)")
    parser.add_argument(
        "--recover-timeout",
        type=float,
        default=60.0,
        help="seconds after the rollback to wait for recovering / up (60)",
    )
    parser.add_argument(
        "--burn-timeout", type=float, default=90.0, help="seconds to wait for the burn (90)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.faults, args.recover_timeout = 1, 4, 15.0
    try:
        return in_workdir(args.keep, lambda root: run(root, args), prefix="opstui-incident-")
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
