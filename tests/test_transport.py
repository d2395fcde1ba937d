"""The poller's lean HTTP/1.1 transport against a real server on 127.0.0.1.

The server is a few lines of asyncio that answer exactly as each test needs
(keep-alive or not, chunked, gzip, closing an idle connection, cutting a body
short, TLS with a self-signed certificate, acting as a proxy), so every path of
the transport runs over a real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import shutil
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opstui.config.endpoints import EndpointDef
from opstui.sources.fetch import observe
from opstui.sources.poller import Poller
from opstui.sources.transport import LeanTransport, parse_head, proxy_configured

Reply = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]


class Server:
    """Reads requests; ``reply`` answers one and says whether to keep the connection."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                if length:
                    await reader.readexactly(length)
                if not await self.reply(head, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


def response(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def serve(
    reply: Reply, ssl_context: ssl.SSLContext | None = None
) -> tuple[Server, asyncio.Server, str]:
    server = Server(reply)
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=ssl_context)
    port = srv.sockets[0].getsockname()[1]
    scheme = "https" if ssl_context else "http"
    return server, srv, f"{scheme}://127.0.0.1:{port}"


def run(coro: Awaitable[None]) -> None:
    async def main() -> None:
        await coro

    asyncio.run(main())


def test_connections_are_kept_alive_and_reused() -> None:
    async def reply(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(response(b"x" * 5000))
        return True

    async def main() -> None:
        server, srv, url = await serve(reply)
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            for _ in range(5):
                r = await client.get(f"{url}/metrics")
                assert r.status_code == 200 and r.content == b"x" * 5000
        srv.close()
        assert server.connections == 1
        assert len(server.requests) == 5
        assert server.requests[0].startswith(b"GET /metrics HTTP/1.1\r\n")

    run(main())


def test_chunked_and_gzip_bodies_are_decoded() -> None:
    packed = gzip.compress(b"hello " * 1000)

    async def reply(head: bytes, writer: asyncio.StreamWriter) -> bool:
        if b"/chunked" in head:
            writer.write(
                response(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "Transfer-Encoding: chunked")
            )
        else:
            writer.write(response(packed, "Content-Encoding: gzip"))
        return True

    async def main() -> None:
        server, srv, url = await serve(reply)
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            assert (await client.get(f"{url}/chunked")).text == "hello world"
            assert (await client.get(f"{url}/gzip")).content == b"hello " * 1000
            assert (await client.get(f"{url}/chunked")).text == "hello world"
        srv.close()
        assert server.connections == 1

    run(main())


def test_connection_close_and_a_server_closing_an_idle_connection() -> None:
    """'Connection: close' opens a new one next time; so does an idle one the
    server dropped, and a GET on a connection the server just closed is sent
    once more rather than failing."""

    async def reply(head: bytes, writer: asyncio.StreamWriter) -> bool:
        if b"/close" in head:
            writer.write(response(b"bye", "Connection: close"))
            return False
        writer.write(response(b"ok"))
        await writer.drain()
        return b"/drop" not in head  # drop silently after answering

    async def main() -> None:
        server, srv, url = await serve(reply)
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            assert (await client.get(f"{url}/close")).text == "bye"
            assert (await client.get(f"{url}/a")).text == "ok"
            assert server.connections == 2
            assert (await client.get(f"{url}/drop")).text == "ok"
            await asyncio.sleep(0.05)  # let the EOF arrive
            assert (await client.get(f"{url}/b")).text == "ok"
            assert server.connections == 3
        srv.close()

    run(main())


def test_a_body_cut_short_and_garbage_are_protocol_errors() -> None:
    async def reply(head: bytes, writer: asyncio.StreamWriter) -> bool:
        if b"/cut" in head:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        else:
            writer.write(b"<html>not http at all</html>\r\n\r\n")
        await writer.drain()
        return False

    async def main() -> None:
        _, srv, url = await serve(reply)
        transport = LeanTransport()
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(f"{url}/cut")
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(f"{url}/garbage")
            ep = EndpointDef(name="cut", url=f"{url}/cut", kind="health", timeout=2.0)
            ob = await observe(transport, ep)
            assert ob.state == "down" and ob.reason and "RemoteProtocolError" in ob.reason
        srv.close()

    run(main())


def test_refused_and_hanging_servers_raise_httpx_errors() -> None:
    async def never(head: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(30)
        return False

    async def main() -> None:
        _, srv, url = await serve(never)
        _, closed_srv, closed_url = await serve(never)
        closed_srv.close()
        await closed_srv.wait_closed()
        async with httpx.AsyncClient(transport=LeanTransport(), timeout=0.3) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(url)
            with pytest.raises(httpx.ConnectError) as refused:
                await client.get(closed_url)
            assert isinstance(refused.value.__cause__, ConnectionRefusedError)
        srv.close()

    run(main())


def test_a_post_body_is_sent() -> None:
    async def reply(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(response(b'{"ok": true}', "Content-Type: application/json"))
        return True

    async def main() -> None:
        server, srv, url = await serve(reply)
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            r = await client.post(f"{url}/api", json={"a": 1})
            assert r.json() == {"ok": True}
        srv.close()
        assert b"content-length: 7" in server.requests[0].lower()  # {"a":1}

    run(main())


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_is_verified_by_default(self_signed: tuple[Path, Path]) -> None:
    cert, key = self_signed
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def reply(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(response(b"secure"))
        return True

    async def main() -> None:
        _, srv, url = await serve(reply, server_ctx)
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(url)
        async with httpx.AsyncClient(transport=LeanTransport(verify=False)) as client:
            assert (await client.get(url)).text == "secure"
        trusting = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(transport=LeanTransport(verify=trusting)) as client:
            assert (await client.get(url)).text == "secure"
        srv.close()

    run(main())


def test_with_a_proxy_in_the_environment_the_poller_goes_through_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The lean transport knows no proxies, so with one configured the poller
    uses httpx's own transport, which sends the request to the proxy."""

    async def proxy(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(response(b"via proxy"))
        return True

    async def main() -> None:
        server, srv, proxy_url = await serve(proxy)
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert proxy_configured()
        target = "http://internal.example:9100/health"
        ep = EndpointDef(name="behind", url=target, kind="health", timeout=2.0)
        [ob] = await Poller(tmp_path / "s.db", [ep], use_leases=False).poll_once()
        srv.close()
        assert ob.state == "up", ob.reason
        assert server.requests[0].startswith(f"GET {target} HTTP/1.1".encode())

    run(main())


def test_response_heads_are_framed_as_rfc_9112_says() -> None:
    def head(text: str, method: str = "GET") -> tuple[int, str, int, bool]:
        h = parse_head(text.replace("\n", "\r\n").encode() + b"\r\n", method)
        return h.status, h.framing, h.length, h.close

    assert head("HTTP/1.1 200 OK\nContent-Length: 12\n") == (200, "length", 12, False)
    assert head("HTTP/1.1 200 OK\nTransfer-Encoding: gzip, chunked\n")[1] == "chunked"
    assert head("HTTP/1.1 200 OK\nTransfer-Encoding: gzip\n")[1:] == ("close", 0, True)
    assert head("HTTP/1.1 200 OK\n") == (200, "close", 0, True)
    assert head("HTTP/1.0 200 OK\nContent-Length: 3\n")[3] is True
    assert head("HTTP/1.0 200 OK\nContent-Length: 3\nConnection: keep-alive\n")[3] is False
    assert head("HTTP/1.1 200 OK\nContent-Length: 3\nConnection: Close\n")[3] is True
    assert head("HTTP/1.1 204 No Content\n")[1] == "none"
    assert head("HTTP/1.1 200 OK\nContent-Length: 50\n", "HEAD")[1] == "none"
    assert head("HTTP/1.1 100 Continue\n")[1] == "none"
    assert head("HTTP/1.1 200 OK\nContent-Length: 3\nContent-Length: 3\n")[2] == 3
    for bad in (
        "HTTP/1.1 200 OK\nContent-Length: 3\nContent-Length: 4\n",
        "HTTP/1.1 200 OK\nContent-Length: -1\n",
        "HTTP/1.1 200 OK\n folded: header\n",
        "HTTP/1.1 200 OK\nno colon here\n",
        "HTTP/2 200\n",
        "ICY 200 OK\n",
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            head(bad)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["GET", "HEAD"]))
def test_parse_head_only_ever_raises_a_protocol_error(block: bytes, method: str) -> None:
    with contextlib.suppress(httpx.RemoteProtocolError):
        parse_head(block + b"\r\n\r\n", method)


def test_informational_responses_are_skipped_and_headers_cannot_be_injected() -> None:
    async def reply(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + response(b"final"))
        return True

    async def main() -> None:
        _, srv, url = await serve(reply)
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            assert (await client.get(url)).text == "final"
            with pytest.raises(httpx.LocalProtocolError):
                await client.get(url, headers={"X-Token": "a\r\nInjected: yes"})
        srv.close()

    run(main())
