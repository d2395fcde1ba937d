"""Redirects: followed a bounded number of times, a loop is down with the
reason, and credentials never follow a redirect to another origin.

Two real servers on 127.0.0.1 (two ports: two origins) record every request
with its headers; the poller reaches them through the lean transport, through
httpx's own client (the path taken behind a proxy), and as MLflow.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opstui.config.endpoints import EndpointDef
from opstui.sources.fetch import observe
from opstui.sources.mlflow.rest import MlflowError, MlflowRest
from opstui.sources.poller import Poller
from opstui.sources.transport import LeanTransport, ViaClient
from opstui.store.endpoints import Observation

from .conftest import run_cli
from .hostile_http import Request, Site, _Server, site

#: Redirects followed before giving up (``opstui.sources.http.MAX_REDIRECTS``).
MAX_REDIRECTS = 5
TOKEN = "Bearer redirect-test-secret-9c41e07a"
API_KEY = "api-key-secret-5d27b9"
SECRETS = {"Authorization": "OPSTUI_TEST_TOKEN", "X-Api-Key": "OPSTUI_TEST_API_KEY"}


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSTUI_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("OPSTUI_TEST_API_KEY", API_KEY)


def _ok(r: Request) -> None:
    r.reply(200, b"ok")


@pytest.fixture
def sites() -> Iterator[tuple[Site, Site]]:
    """Origin A (the endpoint's) and origin B (another port: another origin)."""
    with site({"/health": _ok}) as a, site({"/health": _ok}) as b:
        yield a, b


def endpoint(url: str, kind: str = "health", **extra: object) -> EndpointDef:
    values: dict[str, object] = {
        "secret_headers": SECRETS,
        "headers": {"X-Team": "payments", "Cookie": "session=plain-cookie-value"},
        "timeout": 5.0,
        **extra,
    }
    return EndpointDef(name="e", kind=kind, url=url, **values)  # type: ignore[arg-type]


TRANSPORTS = ("lean", "httpx")


def poll(ep: EndpointDef, via: str = "lean") -> Observation:
    async def once() -> Observation:
        transport: httpx.AsyncBaseTransport = (
            LeanTransport(verify=ep.verify_tls)
            if via == "lean"
            else ViaClient(httpx.AsyncClient(follow_redirects=False))
        )
        try:
            return await observe(transport, ep)
        finally:
            await transport.aclose()

    return asyncio.run(once())


def carried_credentials(site: Site, path: str) -> list[bool]:
    """Per request to ``path``: did it carry any credential?"""
    return [
        any(h in s.headers for h in ("authorization", "x-api-key", "cookie"))
        for s in site.requests_to(path)
    ]


@pytest.mark.parametrize("via", TRANSPORTS)
def test_a_redirect_loop_is_down_with_the_reason(sites: tuple[Site, Site], via: str) -> None:
    a, _ = sites
    a.routes["/ping"] = lambda r: r.redirect("/pong")
    a.routes["/pong"] = lambda r: r.redirect(f"{a.url}/ping", 307)
    a.routes["/self"] = lambda r: r.redirect("/self", 301)
    ob = poll(endpoint(f"{a.url}/ping"), via)
    assert ob.state == "down"
    assert ob.reason == (f"redirect loop: {a.url}/pong redirects to {a.url}/ping, already visited")
    assert a.paths() == ["/ping", "/pong"]
    ob = poll(endpoint(f"{a.url}/self"), via)
    assert (ob.state, ob.reason) == (
        "down",
        f"redirect loop: {a.url}/self redirects to {a.url}/self, already visited",
    )


@pytest.mark.parametrize("via", TRANSPORTS)
def test_endless_redirects_stop_after_the_bound(sites: tuple[Site, Site], via: str) -> None:
    a, _ = sites

    def hop(r: Request) -> None:
        r.redirect(f"/hop/{int(r.path.rsplit('/', 1)[1]) + 1}")

    for i in range(20):
        a.routes[f"/hop/{i}"] = hop
    extras: dict[str, dict[str, object]] = {
        "health": {},
        "json": {"fields": {"x": "x"}},
        "prometheus": {"requests": "r"},
    }
    for kind, extra in extras.items():
        a.seen.clear()
        ob = poll(endpoint(f"{a.url}/hop/0", kind, **extra), via)
        assert ob.state == "down", kind
        assert ob.reason == (
            f"too many redirects (more than {MAX_REDIRECTS}), the last at "
            f"{a.url}/hop/{MAX_REDIRECTS}"
        )
        assert len(a.seen) == MAX_REDIRECTS + 1
    from opstui.sources.http import MAX_REDIRECTS as configured

    assert configured == MAX_REDIRECTS


@pytest.mark.parametrize("via", TRANSPORTS)
def test_a_same_origin_redirect_is_followed_with_the_secrets(
    sites: tuple[Site, Site], via: str
) -> None:
    a, _ = sites
    a.routes["/old"] = lambda r: r.redirect("/health", 301)
    ob = poll(endpoint(f"{a.url}/old"), via)
    assert (ob.state, ob.reason) == ("up", None)
    [arrived] = a.requests_to("/health")
    assert arrived.headers["authorization"] == TOKEN
    assert arrived.headers["x-api-key"] == API_KEY
    assert arrived.headers["x-team"] == "payments"


@pytest.mark.parametrize("via", TRANSPORTS)
def test_secrets_never_follow_a_redirect_to_another_origin(
    sites: tuple[Site, Site], via: str
) -> None:
    a, b = sites
    a.routes["/away"] = lambda r: r.redirect(f"{b.url}/health")
    ob = poll(endpoint(f"{a.url}/away"), via)
    assert (ob.state, ob.reason) == ("up", None)
    assert carried_credentials(a, "/away") == [True]
    [arrived] = b.requests_to("/health")
    assert carried_credentials(b, "/health") == [False]
    # What is not a credential still goes: the other origin may need it.
    assert arrived.headers["x-team"] == "payments"
    # Another host name for the same address is another origin too.
    a.routes["/by-name"] = lambda r: r.redirect(b.url.replace("127.0.0.1", "localhost") + "/h2")
    b.routes["/h2"] = _ok
    assert poll(endpoint(f"{a.url}/by-name"), via).state == "up"
    assert carried_credentials(b, "/h2") == [False]


def test_a_redirect_without_location_or_unfollowed_is_never_up(sites: tuple[Site, Site]) -> None:
    a, _ = sites
    a.routes["/nowhere"] = lambda r: r.reply(302, b"")
    a.routes["/choices"] = lambda r: r.reply(300, b"", headers={"Location": "/health"})
    a.routes["/ftp"] = lambda r: r.redirect("ftp://127.0.0.1/file")
    ob = poll(endpoint(f"{a.url}/nowhere"))
    assert (ob.state, ob.reason) == ("down", "HTTP 302 Found without a Location to follow")
    ob = poll(endpoint(f"{a.url}/choices"))
    assert (ob.state, ob.reason) == ("down", "HTTP 300 Multiple Choices (not followed)")
    ob = poll(endpoint(f"{a.url}/ftp"))
    assert ob.state == "down"
    assert (
        ob.reason
        == f"HTTP 302 at {a.url}/ftp redirects to ftp://127.0.0.1/file, not an http(s) URL"
    )


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


def test_a_redirect_from_https_to_http_is_refused(
    sites: tuple[Site, Site], self_signed: tuple[Path, Path]
) -> None:
    _, b = sites
    cert, key = self_signed
    server = _Server(("127.0.0.1", 0), Request)
    server.routes = {"/secure": lambda r: r.redirect(f"{b.url}/health")}
    server.seen = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/secure"
        ob = poll(endpoint(url, verify_tls=False))
    finally:
        server.shutdown()
        server.server_close()
    assert ob.state == "down"
    assert ob.reason == (
        f"HTTP 302 at {url} redirects from https to {b.url}/health: refused "
        "(set url to the http address if that is meant)"
    )
    assert b.seen == []  # not asked at all, with or without the secret


def test_the_poller_and_the_cli_report_a_loop_as_down(
    sites: tuple[Site, Site], tmp_path: Path
) -> None:
    a, _ = sites
    a.routes["/loop"] = lambda r: r.redirect("/loop")
    config = tmp_path / "opstui.toml"
    config.write_text(f'[endpoints.loopy]\nkind = "health"\nurl = "{a.url}/loop"\n')
    result = run_cli("poll", "--once", "--config", config, "--store", tmp_path / "s.db")
    assert result.returncode == 1, result.stderr
    assert f"loopy: down: redirect loop: {a.url}/loop redirects to" in result.stdout
    shown = run_cli("endpoints", "--config", config, "--store", tmp_path / "s.db")
    assert shown.returncode == 1
    assert "down" in shown.stdout and "redirect loop" in shown.stdout


def test_mlflow_follows_redirects_within_the_same_rules(
    sites: tuple[Site, Site], tmp_path: Path
) -> None:
    a, b = sites
    get = "/api/2.0/mlflow/experiments/get-by-name"
    missing = {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such experiment"}
    a.routes[get] = lambda r: r.redirect(f"{b.url}{r.path}", 307)
    b.routes[get] = lambda r: r.reply_json(404, missing)
    ep = endpoint(a.url, "mlflow", experiments=("churn",), headers={}, interval=5.0)
    [ob] = asyncio.run(Poller(tmp_path / "s.db", [ep]).poll_once())
    # Followed (B's answer is read: the experiment is missing), query kept,
    # and B never saw the credentials.
    assert (ob.state, ob.reason) == ("degraded", "experiment churn does not exist")
    assert carried_credentials(a, get) == [True]
    assert carried_credentials(b, get) == [False]
    # A loop is down with the reason.
    a.routes[get] = lambda r: r.redirect(get)
    [ob] = asyncio.run(Poller(tmp_path / "s.db", [ep]).poll_once())
    assert ob.state == "down"
    assert ob.reason == (f"redirect loop: {a.url}{get} redirects to {a.url}{get}, already visited")
    # Moving an alias is a POST: a 302 would turn it into a GET that
    # "succeeds" without moving anything, so it is not followed.
    alias = "/api/2.0/mlflow/registered-models/alias"
    a.routes[alias] = lambda r: r.redirect(f"{a.url}/elsewhere")
    a.routes["/elsewhere"] = lambda r: r.reply_json(200, {})
    with MlflowRest(ep) as rest, pytest.raises(MlflowError) as info:
        rest.set_alias("churn", "champion", "2")
    assert "redirects a POST" in str(info.value) and "not followed" in str(info.value)
    assert a.requests_to("/elsewhere") == []
    # A 308 keeps the method and the body: followed on the same origin.
    a.routes[alias] = lambda r: r.redirect("/v2/alias", 308)
    a.routes["/v2/alias"] = lambda r: r.reply_json(200, {})
    with MlflowRest(ep) as rest:
        rest.set_alias("churn", "champion", "2")
    [moved] = a.requests_to("/v2/alias")
    assert moved.method == "POST" and b'"version": "2"' in moved.body.replace(b'":"', b'": "')
    assert moved.headers["authorization"] == TOKEN
