"""Secrets never reach the store or the terminal.

A URL holding credentials is refused when the config loads; a server that
echoes the request's secret header (in its reason phrase, a Prometheus API
error, a malformed exposition line, MLflow's error message, a redirect) gets
``***`` stored and printed, never the token. Real servers on 127.0.0.1, the
real ``opstui`` command, and the store's files read byte by byte.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest

from opstui.config.endpoints import EndpointDef
from opstui.errors import ConfigError
from opstui.sources.poller import Poller
from opstui.store import Store
from opstui.store.endpoints import endpoint_statuses

from .conftest import run_cli
from .hostile_http import Request, site

TOKEN = "opstui-test-secret-3f9a1c7e5b2d8a64"
BEARER = f"Bearer {TOKEN}"
USER, PASSWORD = "ops", "hunter2-pa55word-x"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
#: Every form of the secrets that must not appear anywhere.
FORBIDDEN = (TOKEN, PASSWORD, BASIC.split()[1], TOKEN[:12], PASSWORD[:10])
ENV = {"OPSTUI_TEST_TOKEN": BEARER, "OPSTUI_TEST_BASIC": BASIC}


def _echo_reason(r: Request) -> None:
    r.reply(500, b"oops", reason=f"Internal error for {r.auth}")


def _echo_long_reason(r: Request) -> None:
    # The token straddles the 300 characters a reason keeps.
    r.reply(503, b"", reason="x" * 282 + r.auth)


def _echo_bare_token(r: Request) -> None:
    r.reply(500, b"", reason=f"token {r.auth.split()[-1]} expired")


def _echo_basic(r: Request) -> None:
    decoded = base64.b64decode(r.auth.split()[-1]).decode()
    r.reply(418, b"", reason=f"user {decoded} denied, password {decoded.split(':')[1]}")


def _prometheus_api_error(r: Request) -> None:
    r.reply_json(400, {"status": "error", "errorType": "bad_data", "error": f"bad {r.auth}"})


def _malformed_metrics(r: Request) -> None:
    # A line that cannot be read is quoted (cut short) in the reason.
    body = f"http_requests_total 5\n# TYPE {r.auth.split()[-1]} counter\n".encode()
    r.reply(200, body, kind="text/plain; version=0.0.4")


def _mlflow_error(r: Request) -> None:
    r.reply_json(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": f"header {r.auth}"})


def _redirect_with_token(r: Request) -> None:
    # The secret in the Location, then a loop: the reason quotes the URL.
    r.redirect(f"/leak?t={r.auth.split()[-1]}")


ROUTES = {
    "/reason": _echo_reason,
    "/long": _echo_long_reason,
    "/bare": _echo_bare_token,
    "/basic": _echo_basic,
    "/api/v1/query": _prometheus_api_error,
    "/metrics": _malformed_metrics,
    "/api/2.0/mlflow/experiments/get-by-name": _mlflow_error,
    "/leak": _redirect_with_token,
}


def _config(folder: Path, base: str) -> Path:
    secret = 'secret_headers = { Authorization = "OPSTUI_TEST_TOKEN" }'
    path = folder / "opstui.toml"
    path.write_text(
        f"""
store = "ops.db"
[endpoints.reason]
kind = "health"
url = "{base}/reason"
{secret}
[endpoints.long]
kind = "health"
url = "{base}/long"
{secret}
[endpoints.bare]
kind = "health"
url = "{base}/bare"
{secret}
[endpoints.basic]
kind = "health"
url = "{base}/basic"
secret_headers = {{ Authorization = "OPSTUI_TEST_BASIC" }}
[endpoints.promapi]
kind = "prometheus_api"
url = "{base}"
queries = {{ q = "up" }}
{secret}
[endpoints.metrics]
kind = "prometheus"
url = "{base}/metrics"
requests = "http_requests_total"
{secret}
[endpoints.registry]
kind = "mlflow"
url = "{base}"
experiments = ["churn"]
{secret}
[endpoints.leak]
kind = "health"
url = "{base}/leak"
{secret}
"""
    )
    return path


def _no_secret_in(text: str | bytes, where: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in FORBIDDEN:
        assert secret.encode() not in data, f"{secret!r} found in {where}"


def test_a_server_echoing_the_secret_gets_it_masked_in_the_store_and_every_output(
    tmp_path: Path,
) -> None:
    with site(ROUTES) as server:
        config = _config(tmp_path, server.url)
        polled = run_cli("poll", "--once", "--config", config, cwd=tmp_path, env=ENV)
        # Every request carried the secret: each server had something to echo.
        assert all(s.headers.get("authorization") in (BEARER, BASIC) for s in server.seen)
    assert polled.returncode == 1, polled.stderr
    _no_secret_in(polled.stdout + polled.stderr, "opstui poll --once")
    with Store(tmp_path / "ops.db") as store:
        reasons = {s.name: s.reason or "" for s in endpoint_statuses(store)}
    expected = {
        "reason": "HTTP 500 Internal error for ***",
        "long": "HTTP 503 " + "x" * 282,
        "bare": "HTTP 500 token *** expired",
        "basic": "HTTP 418 user *** denied, password ***",
        "promapi": "q: bad_data: bad ***",
        "registry": "INVALID_PARAMETER_VALUE: header ***",
    }
    for name, reason in expected.items():
        assert reasons[name].startswith(reason), (name, reasons[name])
    assert "***" in reasons["metrics"] and "malformed" in reasons["metrics"]
    assert "redirect loop" in reasons["leak"] and "t=***" in reasons["leak"]
    for name, reason in reasons.items():
        _no_secret_in(reason, f"the stored reason of {name}")
    # Nothing in any file of the store, whatever its state (WAL, shm).
    files = sorted(tmp_path.glob("ops.db*"))
    assert files
    for path in files:
        _no_secret_in(path.read_bytes(), path.name)
    for args in (("endpoints",), ("endpoints", "--json")):
        shown = run_cli(*args, "--config", config, cwd=tmp_path, env=ENV)
        assert shown.returncode == 1, shown.stderr
        _no_secret_in(shown.stdout + shown.stderr, f"opstui {' '.join(args)}")
        assert "***" in shown.stdout
    doc = json.loads(shown.stdout)
    shown_reasons = {e["name"]: e["reason"] for e in doc["endpoints"]}
    assert shown_reasons["reason"] == expected["reason"]


def test_credentials_in_a_url_are_refused_at_config_load(tmp_path: Path) -> None:
    with site({}) as server:
        port = server.url.rsplit(":", 1)[1]
        config = tmp_path / "opstui.toml"
        config.write_text(
            f"""
store = "ops.db"
[endpoints.web]
kind = "health"
url = "http://{USER}:{PASSWORD}@127.0.0.1:{port}/health"
"""
        )
        for args in (("poll", "--once"), ("endpoints", "--json"), ("status",)):
            result = run_cli(*args, "--config", config, cwd=tmp_path)
            assert result.returncode == 2, (args, result.stdout, result.stderr)
            _no_secret_in(result.stdout + result.stderr, f"opstui {' '.join(args)}")
            line = result.stderr.strip()
            assert "\n" not in line
            assert '"endpoints.web.url" holds credentials' in line
            assert 'secret_headers = { Authorization = "VAR" }' in line
        # Nothing was asked and nothing was stored.
        assert server.seen == []
    assert not list(tmp_path.glob("ops.db*"))


@pytest.mark.parametrize(
    "url",
    [
        f"http://{USER}:{PASSWORD}@example.com/",
        f"https://{TOKEN}@example.com/",  # a token as the user name
        f"http://{USER}:@example.com/",
        "http://@example.com/",
        f"http://{USER}:{PASSWORD}@",  # no host either: still named as credentials
    ],
)
def test_every_form_of_url_credentials_is_refused_without_echoing_them(url: str) -> None:
    from opstui.config import parse_config

    text = f'[endpoints.e]\nkind = "health"\nurl = "{url}"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("/etc/opstui.toml"))
    message = str(info.value)
    assert message.startswith('/etc/opstui.toml: "endpoints.e.url" holds credentials')
    _no_secret_in(message, "the error")


def test_a_url_with_credentials_built_in_code_is_stored_without_them(tmp_path: Path) -> None:
    """Defence in depth: an EndpointDef made without the config (the demo, a
    test, a library user) never gets its user info stored or shown."""
    with site({"/x": lambda r: r.reply(500, b"", reason="nope")}) as server:
        url = server.url.replace("http://", f"http://{USER}:{PASSWORD}@") + "/x"
        ep = EndpointDef(name="e", kind="health", url=url)
        [ob] = asyncio.run(Poller(tmp_path / "s.db", [ep]).poll_once())
    assert ob.url == f"{server.url}/x" and ob.reason == "HTTP 500 nope"
    with Store(tmp_path / "s.db") as store:
        [status] = endpoint_statuses(store)
    assert status.url == f"{server.url}/x"
    for path in tmp_path.glob("s.db*"):
        _no_secret_in(path.read_bytes(), path.name)


def test_mask_hides_every_form_of_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from opstui.sources.http import mask

    monkeypatch.setenv("OPSTUI_TEST_TOKEN", BEARER)
    monkeypatch.setenv("OPSTUI_TEST_BASIC", BASIC)
    monkeypatch.setenv("OPSTUI_TEST_SHORT", "abc")
    ep = EndpointDef(
        name="e",
        kind="health",
        url="https://example.com/x?api_key=query-secret-1234&page=2",
        headers={"X-Auth-Token": "plain-header-secret", "Accept": "text/plain"},
        secret_headers={
            "Authorization": "OPSTUI_TEST_TOKEN",
            "Proxy-Authorization": "OPSTUI_TEST_BASIC",
            "X-Short": "OPSTUI_TEST_SHORT",
        },
    )
    assert mask(f"echo {BEARER}", ep) == "echo ***"
    assert mask(f"echo {TOKEN}.", ep) == "echo ***."
    assert mask(f"{USER}:{PASSWORD} and {PASSWORD}", ep) == "*** and ***"
    assert mask(BASIC, ep) == "***"
    # A token cut short (a truncated quotation) is masked from its start.
    assert mask(f"line 2: '{TOKEN[:20]}'...", ep) == "line 2: '***'..."
    assert mask("plain-header-secret query-secret-1234", ep) == "*** ***"
    # Headers that carry no credential, and values too short to mean
    # anything, are left alone: they would garble every reason.
    assert mask("expected text/plain, page 2, abc", ep) == "expected text/plain, page 2, abc"
    assert mask("nothing secret here", ep) == "nothing secret here"
