"""``opstui doctor``'s wall time with 10 sources, 2 of them hanging.

Each run is the real ``python -m opstui doctor --json`` in a subprocess
(start-up included) on a fresh store, with a config of 10 health endpoints:
8 served by a local HTTP server on 127.0.0.1 (``200 ok``), 2 listening
sockets that take the connection (the kernel's backlog) and never answer.
Scenarios:

  1. baseline: the 10 sources all answer (``--timeout T``);
  2. 2 hanging, bounded by ``--timeout T`` (default 5 s, doctor's default);
  3. 2 hanging with timeouts of their own in the config (1 s and 3 s), the
     doctor's ``--timeout`` at 5 s: the longest bound is 3 s.

Target: each hanging scenario's median <= its longest timeout + 1 s (the
sources are polled concurrently, beside the other checks). Each run's
verdicts are checked: 8 sources ok and the 2 hanging ones ``fail`` with
"no answer within".

    .venv/bin/python bench/doctor.py           # 5 runs per scenario, ~1 minute
    .venv/bin/python bench/doctor.py --quick   # 1 run each, --timeout 1
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from _report import in_workdir, median, table

ROOT = Path(__file__).resolve().parent.parent


class Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    # The default backlog (5) drops the SYNs of 10 concurrent polls: the
    # kernel retries them a second later, which would be measured here.
    request_queue_size = 128


@contextmanager
def serving() -> Iterator[str]:
    server = Server(("127.0.0.1", 0), Ok)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/health"


def config(path: Path, urls: list[tuple[str, str, float | None]]) -> Path:
    text = ""
    for name, url, timeout in urls:
        text += f'[endpoints.{name}]\nkind = "health"\nurl = "{url}"\n'
        if timeout is not None:
            text += f"timeout = {timeout}\n"
        text += "\n"
    path.write_text(text)
    return path


def one(store: Path, cfg: Path, timeout: float) -> tuple[float, dict[str, str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSTUI_")}
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "opstui", "doctor", "--json", "--timeout", f"{timeout:g}",
         "--store", str(store), "--config", str(cfg)],
        capture_output=True, text=True, env=env, cwd=cfg.parent, timeout=120, check=False,
    )  # fmt: skip
    took = time.perf_counter() - began
    doc = json.loads(done.stdout)
    verdicts = {c["name"]: c["verdict"] for c in doc["checks"]}
    details = " | ".join(c["detail"] for c in doc["checks"] if c["name"].startswith("source h"))
    return took, verdicts, details


def run(root: Path, args: argparse.Namespace) -> int:
    from opstui.store import Store

    store = root / "opstui.db"
    Store(store).close()
    rows: list[list[str]] = []
    met = True
    with ExitStack() as stack:
        good = stack.enter_context(serving())
        hangs = [stack.enter_context(silent()) for _ in range(2)]
        healthy = [(f"s{i}", good, None) for i in range(8)]
        scenarios: list[tuple[str, list[tuple[str, str, float | None]], float, float | None]]
        scenarios = [
            ("10 answering", [*healthy, ("s8", good, None), ("s9", good, None)],
             args.timeout, None),
            (f"2 hanging, --timeout {args.timeout:g}",
             [*healthy, ("h1", hangs[0], None), ("h2", hangs[1], None)],
             args.timeout, args.timeout + 1),
            ("2 hanging, own timeouts 1 s / 3 s, --timeout 5",
             [*healthy, ("h1", hangs[0], 1.0), ("h2", hangs[1], 3.0)], 5.0, 3.0 + 1),
        ]  # fmt: skip
        for label, urls, timeout, target in scenarios:
            cfg = config(root / f"opstui-{len(rows)}.toml", urls)
            times = []
            for _ in range(args.runs):
                took, verdicts, details = one(store, cfg, timeout)
                times.append(took)
                oks = sum(verdicts[f"source {n}"] == "ok" for n, _, _ in urls)
                hung = [n for n, _, _ in urls if n.startswith("h")]
                right = oks == len(urls) - len(hung) and all(
                    verdicts[f"source {n}"] == "fail" for n in hung
                )
                if not right or (hung and "no answer within" not in details):
                    print(f"unexpected verdicts in {label!r}: {verdicts} {details}")
                    met = False
            ok = target is None or median(times) <= target
            met = met and ok
            rows.append(
                [label, f"{median(times):.2f} s", f"{max(times):.2f} s",
                 f"<= {target:g} s" if target is not None else "-",
                 ("met" if ok else "NOT met") if target is not None else "-"]
            )  # fmt: skip
    print(f"\nopstui doctor --json, 10 health sources, median of {args.runs} run(s)\n")
    print(table(["scenario", "median", "max", "target", ""], rows))
    print(f"\ntargets {'met' if met else 'NOT met'}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 run each, --timeout 1")
    parser.add_argument("--runs", type=int, default=5, help="runs per scenario (5)")
    parser.add_argument("--timeout", type=float, default=5.0, help="doctor's --timeout (5)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.timeout = 1, 1.0
    return in_workdir(args.keep, lambda root: run(root, args), prefix="opstui-doctor-")


if __name__ == "__main__":
    sys.exit(main())
