"""A lean HTTP/1.1 transport for httpx, on asyncio streams.

The poller makes hundreds of small GETs a second, one at a time per endpoint.
httpx's default transport (httpcore) spends about 0.5 ms of CPU on each,
mostly in connection-pool bookkeeping and anyio layers that a pool of one
connection per endpoint never needs, and h11 (the protocol state machine
under it) another 70 µs validating every header of every message
(bench/poller_load.py measures each). This transport keeps httpx's API, its
exceptions, its response decoding and its timeouts, and replaces the rest:
one request at a time per connection, an idle connection reused while the
server keeps it open, and a response reader that does what RFC 9112 §6.3
requires of a client (status line, headers, then a body framed by
Content-Length, chunked coding, or the end of the connection) and calls
anything else a protocol error. The heavy lifting (finding the end of the
headers, reading exact lengths) is asyncio's, in C.

It speaks no HTTP/2 and knows no proxies: ``transport_for`` gives an httpx
client's full stack instead whenever a proxy variable is set.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import httpx

T = TypeVar("T")

#: Bytes read from the socket at a time, and the most a header block may hold.
READ_SIZE = 64 * 1024
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
_STATUS = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: ([^\r\n]*))?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NO_BODY = frozenset((204, 304))


def proxy_configured() -> bool:
    """True when httpx would route requests through a proxy from the environment."""
    return any(os.environ.get(v) or os.environ.get(v.upper()) for v in _PROXY_VARIABLES)


def _protocol(message: str) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(message)


async def _timed(step: Awaitable[T], timeout: float | None) -> T:
    """``step`` within ``timeout`` (none when None: the caller's deadline rules)."""
    try:
        if timeout is None:
            return await step
        async with asyncio.timeout(timeout):
            return await step
    except TimeoutError as exc:
        raise httpx.ReadTimeout(f"no data within {timeout}s") from exc
    except asyncio.IncompleteReadError as exc:
        raise _protocol("server closed the connection in the middle of a response") from exc
    except asyncio.LimitOverrunError as exc:
        raise _protocol(f"a response line longer than {READ_SIZE} bytes") from exc
    except OSError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__) from exc


class _Head:
    __slots__ = ("close", "framing", "headers", "length", "reason", "status")

    def __init__(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.close = False
        #: "length", "chunked", "close" (read to EOF) or "none".
        self.framing = "none"
        self.length = 0


def parse_head(block: bytes, method: str) -> _Head:
    """Status line and headers (``block`` ends with the blank line); raise on anything odd."""
    lines = block[:-4].split(b"\r\n")
    m = _STATUS.fullmatch(lines[0])
    if m is None:
        raise _protocol(f"not an HTTP/1.x response: {lines[0][:60]!r}")
    headers = []
    connection = b""
    lengths: set[bytes] = set()
    encoding = None
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or _TOKEN.fullmatch(name) is None:
            raise _protocol(f"malformed header line: {line[:60]!r}")
        value = value.strip(b" \t")
        headers.append((name, value))
        lower = name.lower()
        if lower == b"content-length":
            lengths.add(value)
        elif lower == b"transfer-encoding":
            encoding = value.lower()
        elif lower == b"connection":
            connection += b"," + value.lower()
    head = _Head(int(m[2]), m[3] or b"", headers)
    tokens = {t.strip() for t in connection.split(b",")}
    head.close = b"close" in tokens or (m[1] == b"0" and b"keep-alive" not in tokens)
    if method == "HEAD" or head.status in _NO_BODY or head.status < 200:
        return head
    if encoding is not None:
        # Chunked must be the last coding; anything else ends at the close.
        head.framing = "chunked" if encoding.rsplit(b",", 1)[-1].strip() == b"chunked" else "close"
    elif lengths:
        length = lengths.pop()
        if lengths or not length.isdigit():
            raise _protocol(f"bad Content-Length: {b', '.join(sorted({length, *lengths}))[:60]!r}")
        head.framing, head.length = "length", int(length)
    else:
        head.framing = "close"
    if head.framing == "close":
        head.close = True
    return head


class _Connection:
    __slots__ = ("key", "reader", "writer")

    def __init__(
        self, key: tuple[str, str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.key = key
        self.reader = reader
        self.writer = writer

    def reusable(self) -> bool:
        """Still open: a server that closed it while idle shows EOF here.

        Bytes it sent unasked would make the next response a protocol error,
        which a GET survives by being sent again on a new connection.
        """
        return not (self.writer.is_closing() or self.reader.at_eof())

    def close(self) -> None:
        self.writer.close()


class _Body(httpx.AsyncByteStream):
    """The response body; gives the connection back when read to the end."""

    def __init__(
        self, transport: LeanTransport, conn: _Connection, head: _Head, timeout: float | None
    ) -> None:
        self._transport = transport
        self._conn: _Connection | None = conn
        self._head = head
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn, head, timeout = self._conn, self._head, self._timeout
        if conn is None:
            return
        reader = conn.reader
        try:
            if head.framing == "length":
                left = head.length
                while left:
                    chunk = await _timed(reader.read(min(left, READ_SIZE)), timeout)
                    if not chunk:
                        raise _protocol(f"body cut short: {left} of {head.length} bytes missing")
                    left -= len(chunk)
                    yield chunk
            elif head.framing == "chunked":
                while True:
                    line = await _timed(reader.readuntil(b"\r\n"), timeout)
                    try:
                        size = int(line.split(b";", 1)[0].strip(), 16)
                    except ValueError:
                        raise _protocol(f"bad chunk size line: {line[:40]!r}") from None
                    if size == 0:
                        # Trailer fields, then the blank line that ends the message.
                        while await _timed(reader.readuntil(b"\r\n"), timeout) != b"\r\n":
                            pass
                        break
                    chunk = await _timed(reader.readexactly(size + 2), timeout)
                    if chunk[-2:] != b"\r\n":
                        raise _protocol("a chunk does not end where its size says")
                    yield chunk[:-2]
            elif head.framing == "close":
                while chunk := await _timed(reader.read(READ_SIZE), timeout):
                    yield chunk
        except BaseException:
            await self.aclose()
            raise
        self._conn = None
        self._transport.release(conn, reuse=not head.close)

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

    def release(self, conn: _Connection, *, reuse: bool) -> None:
        if reuse and conn.reusable() and len(self._idle) < self._max_idle:
            self._idle.append(conn)
        else:
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
            conn.writer.write(_serialize(request, await request.aread()))
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
                try:
                    block = await _timed(conn.reader.readuntil(b"\r\n\r\n"), read_timeout)
                except httpx.RemoteProtocolError as exc:
                    cause = exc.__cause__
                    if isinstance(cause, asyncio.IncompleteReadError) and not cause.partial:
                        raise _protocol("server disconnected without sending a response") from exc
                    raise
                head = parse_head(block, request.method)
                if head.status >= 200 or head.status == 101:
                    break
                # 1xx informational: the real response follows.
        except BaseException:
            conn.close()
            raise
        return httpx.Response(
            status_code=head.status,
            headers=head.headers,
            stream=_Body(self, conn, head, read_timeout),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": head.reason},
        )

    async def aclose(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()


def _serialize(request: httpx.Request, body: bytes) -> bytes:
    headers = request.headers.raw
    if body and not any(k.lower() == b"content-length" for k, _ in headers):
        headers = [*headers, (b"Content-Length", str(len(body)).encode())]
    for name, value in headers:
        if b"\r" in value or b"\n" in value or _TOKEN.fullmatch(name) is None:
            raise httpx.LocalProtocolError(f"header {name!r} cannot be sent")
    lines = [b"%s %s HTTP/1.1" % (request.method.encode(), request.url.raw_path)]
    lines += [b"%s: %s" % pair for pair in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class ViaClient(httpx.AsyncBaseTransport):
    """A whole ``httpx.AsyncClient`` (proxies from the environment, its own
    pool) behind the transport interface the poller calls."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.client.send(request, stream=True)

    async def aclose(self) -> None:
        await self.client.aclose()


def transport_for(verify: ssl.SSLContext | bool) -> httpx.AsyncBaseTransport:
    """One endpoint's transport: lean, unless a proxy must be honoured."""
    if proxy_configured():
        limits = httpx.Limits(max_connections=2, max_keepalive_connections=1)
        return ViaClient(httpx.AsyncClient(limits=limits, verify=verify, follow_redirects=False))
    return LeanTransport(verify=verify)
