"""Small real HTTP servers on 127.0.0.1 that misbehave on purpose.

Each serves a table of routes (path -> a function answering the request) and
records every request's path and headers, so a test can see what reached
which origin: a server that echoes the Authorization header back in its
reason phrase, its body or its JSON error, a redirect loop, a redirect to
another origin that must not receive the secret.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes = b""


class Request(BaseHTTPRequestHandler):
    """The handler a route is given: answer with ``reply`` / ``reply_json`` / ``redirect``."""

    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def reply(
        self,
        code: int,
        body: bytes = b"",
        *,
        reason: str | None = None,
        kind: str = "text/plain",
        headers: dict[str, str] | None = None,
    ) -> None:
        # ``reason`` goes out as the status line's reason phrase, as is.
        self.send_response(code, reason)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def reply_json(self, code: int, doc: Any) -> None:
        self.reply(code, json.dumps(doc).encode(), kind="application/json")

    def redirect(self, location: str, code: int = 302) -> None:
        self.reply(code, b"moved", headers={"Location": location})

    @property
    def auth(self) -> str:
        return self.headers.get("Authorization", "")

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0]
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.seen.append(Seen(self.command, path, headers, body))
        route = self.server.routes.get(path)
        if route is None:
            self.reply(404, b"not found")
        else:
            route(self)

    do_GET = do_POST = _handle


Route = Callable[[Request], None]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Route]
    seen: list[Seen]


@dataclass
class Site:
    """A running server: its base URL, its routes (editable) and what it saw."""

    url: str
    routes: dict[str, Route]
    seen: list[Seen] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


@contextmanager
def site(routes: Mapping[str, Route] | None = None) -> Iterator[Site]:
    server = _Server(("127.0.0.1", 0), Request)
    server.routes = dict(routes or {})
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_address[1]}", server.routes, server.seen)
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def osc52_reason() -> Iterator[int]:
    """A raw HTTP server whose reason phrase is an OSC 52 write (a terminal
    clipboard write): every answer is ``503 Busy<ESC>]52;c;aGk=<BEL>``.
    Yields its port."""
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 503 Busy\x1b]52;c;aGk=\x07\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n"
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        server.close()
