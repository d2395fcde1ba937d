"""A real HTTP service on 127.0.0.1 for the poller's tests.

It serves Prometheus metrics from ``prometheus_client`` (counters the test
drives), a health check, JSON, and every kind of misbehaviour an endpoint
shows in production: 500s, HTML error pages, a 50 MB body, a connection that
is accepted and never answered, malformed exposition, a token check.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter as Hits
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

TOKEN = "s3cr3t-token-value"


class Service:
    def __init__(self) -> None:
        self.hits: Hits[str] = Hits()
        self.stop = threading.Event()
        self.health_delay = 0.0
        self.json_doc: Any = {"queue": {"depth": 7}, "lag_seconds": 1.5, "ok": True}
        self.reset_metrics()

    def reset_metrics(self) -> None:
        """A fresh registry: the counters restart at zero, like a restarted process."""
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests", "Requests served", ["code"], registry=self.registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds", "Latency", registry=self.registry,
            buckets=(0.05, 0.1, 0.5, 1.0),
        )  # fmt: skip

    def serve(self, ok: int, errors: int) -> None:
        self.requests.labels(code="200").inc(ok)
        self.requests.labels(code="503").inc(errors)
        for _ in range(ok + errors):
            self.latency.observe(0.07)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def send(self, code: int, body: bytes, kind: str = "text/plain") -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                service.hits[path] += 1
                if path == "/metrics":
                    self.send(200, generate_latest(service.registry), "text/plain; version=0.0.4")
                elif path == "/health":
                    time.sleep(service.health_delay)
                    self.send(200, b"ok")
                elif path == "/json":
                    self.send(200, json.dumps(service.json_doc).encode(), "application/json")
                elif path == "/500":
                    self.send(500, b"internal error")
                elif path == "/html":
                    page = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"
                    self.send(200, page, "text/html")
                elif path == "/big":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    chunk = b"x" * 1_000_000
                    try:
                        for _ in range(50):
                            self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                elif path == "/hang":
                    service.stop.wait(60)  # accepted, never answered
                elif path == "/malformed":
                    body = generate_latest(service.registry) + b'this is { not valid\nx{a="1} 2\n'
                    self.send(200, body)
                elif path == "/auth":
                    if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                        self.send(401, b"unauthorized")
                    else:
                        self.send(200, b"ok")
                else:
                    self.send(404, b"not found")

        return Handler


@contextmanager
def running_service() -> Iterator[tuple[Service, str]]:
    service = Service()
    server = ThreadingHTTPServer(("127.0.0.1", 0), service.handler())
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        service.stop.set()
        server.shutdown()
        server.server_close()
