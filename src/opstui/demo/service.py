"""The demo's web-api: a small HTTP service on 127.0.0.1 that runs what is deployed.

``/metrics`` serves Prometheus text (written by hand: prometheus_client is
not a runtime dependency) and ``/health`` a health check. Traffic is
simulated where it is counted: each time the service is read, the requests
of the seconds since are put through the ``handle()`` of the build that
production serves (``serving/web-api.json``, written by the deploy and
rollback stages). A build whose connection pool is too small for the load
answers some requests 503, so a bad deploy really raises the error rate and
a rollback really brings it down. Nothing runs between reads: idle, the
service costs nothing.
"""

from __future__ import annotations

import errno
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

from opstui.demo.devops import load_build
from opstui.demo.layout import Layout, read_json

#: Requests a second; the concurrency they arrive with (mean, sd).
RATE = 60.0
IN_FLIGHT = (20.0, 5.0)
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: At most this many seconds of traffic are simulated at once (after a pause).
MAX_CATCH_UP = 120.0
#: Above this error share over the last HEALTH_WINDOW seconds, health checks
#: wait on the pool: slow, "degraded".
HEALTH_SLOW_ABOVE = 0.01
HEALTH_WINDOW = 10.0


def _healthy(in_flight: int, draw: float) -> tuple[int, float]:
    """What answers before anything was deployed: a service that never fails."""
    return 200, 0.03 + 0.12 * draw**3


class Traffic:
    """Counters of the requests production has served, advanced on demand."""

    def __init__(self, layout: Layout, *, seed: int = 7, clock: Callable[[], float] = time.time):
        self.layout = layout
        self.clock = clock
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.codes: dict[str, int] = {"200": 0, "503": 0}
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0
        self.last = clock()
        self.carry = 0.0
        #: (time, requests, errors) of each recent read, for the health check.
        self.recent: deque[tuple[float, int, int]] = deque()
        self.version = "none"
        self._handle: Callable[[int, float], tuple[int, float]] = _healthy
        self._served_mtime: float | None = None

    def _served(self) -> None:
        path = self.layout.serving("web-api.json")
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return
        if mtime == self._served_mtime:
            return
        self._served_mtime = mtime
        manifest: dict[str, Any] = read_json(path, {})
        build = self.layout.build("web-api", str(manifest.get("version")))
        try:
            module: ModuleType = load_build(build)
            self._handle = module.handle
            self.version = str(module.VERSION)
        except Exception:  # a damaged build: keep serving what ran before
            return

    def advance(self) -> None:
        """Serve the requests that arrived since the last read."""
        with self.lock:
            now = self.clock()
            self._served()
            due = RATE * min(max(now - self.last, 0.0), MAX_CATCH_UP) + self.carry
            self.last = now
            n = int(due)
            self.carry = due - n
            errors = 0
            for _ in range(n):
                in_flight = max(0, round(self.rng.gauss(*IN_FLIGHT)))
                code, seconds = self._handle(in_flight, self.rng.random())
                key = str(code)
                self.codes[key] = self.codes.get(key, 0) + 1
                errors += code >= 500
                self.latency_sum += seconds
                index = next((i for i, le in enumerate(BUCKETS) if seconds <= le), len(BUCKETS))
                self.buckets[index] += 1
            self.recent.append((now, n, errors))
            while self.recent and self.recent[0][0] < now - HEALTH_WINDOW:
                self.recent.popleft()

    def error_share(self) -> float:
        """5xx share of the requests of the last HEALTH_WINDOW seconds."""
        self.advance()
        with self.lock:
            requests = sum(n for _, n, _ in self.recent)
            return sum(e for _, _, e in self.recent) / requests if requests else 0.0

    def exposition(self) -> str:
        self.advance()
        with self.lock:
            lines = [
                "# HELP http_requests_total Requests served, by status code.",
                "# TYPE http_requests_total counter",
                *(f'http_requests_total{{code="{c}"}} {n}' for c, n in sorted(self.codes.items())),
                "# HELP http_request_duration_seconds Time to answer a request.",
                "# TYPE http_request_duration_seconds histogram",
            ]
            total = 0
            for le, count in zip((*map(str, BUCKETS), "+Inf"), self.buckets, strict=True):
                total += count
                lines.append(f'http_request_duration_seconds_bucket{{le="{le}"}} {total}')
            lines += [
                f"http_request_duration_seconds_sum {self.latency_sum:.3f}",
                f"http_request_duration_seconds_count {total}",
                "# HELP demo_build_info The version production serves.",
                "# TYPE demo_build_info gauge",
                f'demo_build_info{{version="{self.version}"}} 1',
            ]
        return "\n".join(lines) + "\n"


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hung up mid-request (the poller stopping at Ctrl-C)
        # is not an error of the service: no traceback over the demo's output.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class Service:
    """The HTTP server on its own thread; ``stop()`` frees the port."""

    def __init__(self, layout: Layout, *, port: int = 0) -> None:
        self.traffic = Traffic(layout)
        self.wanted_port = port
        self.port_taken = False
        self.server = self._bind(port)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.5},
            name="opstui-demo-service", daemon=True,
        )  # fmt: skip

    def _bind(self, port: int) -> ThreadingHTTPServer:
        handler = _handler(self.traffic)
        try:
            server = _Server(("127.0.0.1", port), handler)
        except OSError as exc:
            if port == 0 or exc.errno != errno.EADDRINUSE:
                raise
            # The port is taken (another program, or a demo elsewhere): any
            # free port will do; the caller says which one it got.
            self.port_taken = True
            server = _Server(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        return server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()


def _handler(traffic: Traffic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the poller holds one connection
        timeout = 30  # an idle kept-alive connection frees its thread after this

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the demo's terminal belongs to the console

        def _send(self, code: int, body: str, kind: str = "text/plain; charset=utf-8") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, traffic.exposition(), "text/plain; version=0.0.4; charset=utf-8")
            elif path == "/health":
                if traffic.error_share() > HEALTH_SLOW_ABOVE:
                    time.sleep(0.35)  # the check waits for a database connection too
                self._send(200, f"ok {traffic.version}\n")
            else:
                self._send(404, "not found: try /metrics or /health\n")

    return Handler
