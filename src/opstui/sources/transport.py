"""A lean HTTP/1.1 transport for httpx: h11 on asyncio streams.

The poller makes hundreds of small GETs a second, one at a time per endpoint.
httpx's default transport (httpcore) spends about 0.5 ms of CPU on each,
mostly in its connection-pool bookkeeping and anyio layers, which a pool of
one connection per endpoint never needs (bench/poller_load.py measured it:
httpx's client layer ~130 µs, h11 ~80 µs, the socket ~25 µs, httpcore the
rest). This transport keeps httpx's client API, its exceptions, its
decoding and its timeouts, and replaces only the pool: one request at a time
per connection, an idle connection reused while the server keeps it open,
h11 for the protocol itself (the parser httpcore uses too).

It speaks no HTTP/2 and knows no proxies: the poller uses httpx's own
transport whenever a proxy variable is set (see ``proxy_configured``).
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator
from typing import Any

import h11
import httpx

#: Bytes read from the socket at a time.
READ_SIZE = 64 * 1024
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


def proxy_configured() -> bool:
    """True when httpx would route requests through a proxy from the environment."""
    return any(os.environ.get(v) or os.environ.get(v.upper()) for v in _PROXY_VARIABLES)


class _Connection:
    __slots__ = ("h11", "key", "reader", "writer")

    def __init__(
        self, key: tuple[str, str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.key = key
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)

    def reusable(self) -> bool:
        """Still open: a server that closed it while idle shows EOF here.

        Bytes it sent unasked would make the next response a protocol error,
        which a GET survives by being sent again on a new connection.
        """
        return not (self.writer.is_closing() or self.reader.at_eof())

    def close(self) -> None:
        self.writer.close()

    async def next_event(self, timeout: float | None) -> Any:
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc)) from exc
            if event is not h11.NEED_DATA:
                return event
            try:
                async with asyncio.timeout(timeout):
                    data = await self.reader.read(READ_SIZE)
            except TimeoutError as exc:
                raise httpx.ReadTimeout(f"no data within {timeout}s") from exc
            except OSError as exc:
                raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
            if not data and self.h11.their_state is h11.SEND_RESPONSE:
                raise httpx.RemoteProtocolError("server disconnected without sending a response")
            try:
                self.h11.receive_data(data)
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc)) from exc


class _Body(httpx.AsyncByteStream):
    """The response body; gives the connection back when read to the end."""

    def __init__(self, transport: LeanTransport, conn: _Connection, timeout: float | None) -> None:
        self._transport = transport
        self._conn: _Connection | None = conn
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            return
        try:
            while True:
                event = await conn.next_event(self._timeout)
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    break
        except BaseException:
            await self.aclose()
            raise
        self._conn = None
        self._transport.release(conn)

    async def aclose(self) -> None:
        # Closed before the end (an error, a cap on the body, a cancel): the
        # connection is in an unknown state, so it is not reused.
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio streams, keeping at most ``max_idle`` idle connections."""

    def __init__(self, *, verify: ssl.SSLContext | bool = True, max_idle: int = 1) -> None:
        if verify is True:
            verify = ssl.create_default_context()
        elif verify is False:
            # No CA certificates to load: nothing is verified.
            verify = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            verify.check_hostname = False
            verify.verify_mode = ssl.CERT_NONE
        self._ssl = verify
        self._max_idle = max_idle
        self._idle: list[_Connection] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        port = url.port or (443 if url.scheme == "https" else 80)
        key = (url.scheme, url.host, port)
        timeouts = request.extensions.get("timeout", {})
        conn = self._take_idle(key)
        if conn is not None:
            try:
                return await self._exchange(conn, request, timeouts)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                # The server may close a kept-alive connection just as we use
                # it; a GET is safe to send once more on a new connection.
                if request.method not in ("GET", "HEAD"):
                    raise
        conn = await self._connect(key, timeouts.get("connect"))
        return await self._exchange(conn, request, timeouts)

    def _take_idle(self, key: tuple[str, str, int]) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.key == key and conn.reusable():
                return conn
            conn.close()
        return None

    def release(self, conn: _Connection) -> None:
        h = conn.h11
        if h.our_state is h11.DONE and h.their_state is h11.DONE:
            h.start_next_cycle()
            if conn.reusable() and len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    async def _connect(self, key: tuple[str, str, int], timeout: float | None) -> _Connection:
        scheme, host, port = key
        tls = self._ssl if scheme == "https" else None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=tls, server_hostname=host if tls else None, limit=READ_SIZE
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"no connection within {timeout}s") from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return _Connection(key, reader, writer)

    async def _exchange(
        self, conn: _Connection, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> httpx.Response:
        try:
            body = await request.aread()
            headers = list(request.headers.raw)
            if body and not any(k.lower() == b"content-length" for k, _ in headers):
                headers.append((b"Content-Length", str(len(body)).encode()))
            data = conn.h11.send(
                h11.Request(method=request.method, target=request.url.raw_path, headers=headers)
            )
            if body:
                data = (data or b"") + (conn.h11.send(h11.Data(data=body)) or b"")
            data = (data or b"") + (conn.h11.send(h11.EndOfMessage()) or b"")
            conn.writer.write(data)
            if conn.writer.transport.get_write_buffer_size():
                try:
                    async with asyncio.timeout(timeouts.get("write")):
                        await conn.writer.drain()
                except TimeoutError as exc:
                    raise httpx.WriteTimeout("request not sent in time") from exc
                except OSError as exc:
                    raise httpx.WriteError(str(exc) or type(exc).__name__) from exc
            read_timeout = timeouts.get("read")
            while True:
                event = await conn.next_event(read_timeout)
                if isinstance(event, h11.Response):
                    break
                # InformationalResponse (1xx): keep reading.
        except BaseException:
            conn.close()
            raise
        return httpx.Response(
            status_code=event.status_code,
            headers=list(event.headers),
            stream=_Body(self, conn, read_timeout),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": bytes(event.reason)},
        )

    async def aclose(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
