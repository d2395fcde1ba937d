"""opstui.toml validation: every bad key or type is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from opstui.config import load_config, parse_config, resolve_store_path
from opstui.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('stroe = "x.db"', 'unknown key "stroe" (did you mean "store"?)'),
        ("[record]\nheartbeat_timout = 5", '"record.heartbeat_timout" (did you mean'),
        ("[record]\nheartbeat_timeout = '1h'", '"record.heartbeat_timeout" must be a number'),
        ("[record]\nheartbeat_timeout = true", '"record.heartbeat_timeout" must be a number'),
        ("[record]\nheartbeat_timeout = 0", "must be at least 1"),
        ("read_only = 'yes'", '"read_only" must be true or false, got str'),
        ("store = 3", '"store" must be a path'),
        ("record = 5", '"record" must be a table'),
        ("zzz = 1", 'unknown key "zzz"'),
        ("store = ", "is not valid TOML"),
    ],
)
def test_bad_config_names_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("/etc/opstui.toml"))
    assert message in str(info.value)
    assert str(info.value).startswith("/etc/opstui.toml")
    assert "\n" not in str(info.value)


def test_unknown_key_without_a_close_match_lists_known_keys() -> None:
    with pytest.raises(ConfigError, match='known keys here: "store"'):
        parse_config("zzz = 1")


def test_store_is_relative_to_the_config_file(tmp_path: Path) -> None:
    cfg = parse_config('store = "data/opstui.db"', tmp_path / "opstui.toml")
    assert cfg.store == tmp_path / "data" / "opstui.db"


def test_explicit_missing_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_no_config_is_fine(tmp_path: Path) -> None:
    assert load_config().path is None
    # The user's store (tests/test_config_locations.py has the rest).
    assert resolve_store_path() == tmp_path / ".state" / "opstui" / "opstui.db"


def test_config_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text("read_only = true\n")
    monkeypatch.setenv("OPSTUI_CONFIG", str(path))
    assert load_config().read_only is True


def test_config_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "opstui.toml"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(path)


_EP = '[endpoints.web]\nkind = "health"\nurl = "http://127.0.0.1:9/health"\n'
_PIPE = '[pipelines.p]\nkind = "devops"\n[[pipelines.p.stages]]\nname = "s"\nrun = ["true"]\n'


@pytest.mark.parametrize("number", ["nan", "+nan", "-nan", "inf", "-inf", "1e400"])
@pytest.mark.parametrize(
    ("text", "key"),
    [
        (_EP + "timeout = {}", "endpoints.web.timeout"),
        (_EP + "interval = {}", "endpoints.web.interval"),
        (_EP + "slow_ms = {}", "endpoints.web.slow_ms"),
        (_EP + "slo = {}", "endpoints.web.slo"),
        ("[tui]\nrefresh = {}", "tui.refresh"),
        ("[record]\nheartbeat_timeout = {}", "record.heartbeat_timeout"),
        ("[drift]\nwasserstein = {}", "drift.wasserstein"),
        ("[drift]\nwindow_seconds = {}", "drift.window_seconds"),
        ("[drift]\nks_pvalue = {}", "drift.ks_pvalue"),
        (_PIPE + "timeout = {}", "pipelines.p.stages[0].timeout"),
        (_PIPE.replace("[[pipelines", "timeout = {}\n[[pipelines"), "pipelines.p.timeout"),
        ("[models.m]\ndrift = {{}}\nmin_improvement = {}", "models.m.min_improvement"),
    ],
)
def test_nan_and_inf_are_refused_for_every_number_naming_the_key(
    text: str, key: str, number: str
) -> None:
    """nan passes every minimum (each comparison with it is false) and inf
    is a timeout that never fires: neither means anything anywhere."""
    with pytest.raises(ConfigError) as info:
        parse_config(text.format(number), Path("/etc/opstui.toml"))
    message = str(info.value)
    assert message.startswith(f'/etc/opstui.toml: "{key}" must be a finite number, got ')
    assert "\n" not in message


@pytest.mark.parametrize(
    ("digits", "message"),
    [
        (20, '"endpoints.web.max_body" must be a number that fits in 64 bits'),
        (400, '"endpoints.web.max_body" must be a number that fits in 64 bits'),
        (5000, "is not valid TOML: an integer of thousands of digits"),
    ],
)
def test_an_integer_past_64_bits_is_refused(digits: int, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_EP + "max_body = " + "9" * digits)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://", "with a host"),
        ("https://", "with a host"),
        ("http://:8080/x", "with a host"),
        ("http:/example.com", "with a host"),
        ("http:example.com", "with a host"),
        ("ftp://example.com/", "an http:// or https:// URL"),
        ("example.com/health", "an http:// or https:// URL"),
        ("", "an http:// or https:// URL"),
        ("http://example.com:99999/", "port, if given, is a number from 1 to 65535"),
        ("http://example.com:0/", "port, if given"),
        ("http://example.com:http/", "port, if given"),
        ("http://example.com/a b", "without spaces or control characters"),
        ("http://[::1/", "a URL with a valid host (Invalid IPv6 URL)"),
        ("http://exa\\tmple.com/", "without spaces or control characters"),
    ],
)
def test_a_url_that_cannot_be_polled_is_refused(url: str, words: str) -> None:
    text = f'[endpoints.web]\nkind = "health"\nurl = "{url}"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("/etc/opstui.toml"))
    assert str(info.value).startswith('/etc/opstui.toml: "endpoints.web.url" must be ')
    assert words in str(info.value)


@pytest.mark.parametrize(
    "url",
    ["http://example.com", "HTTPS://Example.com:8443/x?y=1#z", "http://[::1]:9090/", "http://h:1"],
)
def test_good_urls_are_accepted(url: str) -> None:
    text = f'[endpoints.web]\nkind = "health"\nurl = "{url}"\n'
    assert parse_config(text).endpoints["web"].url == url


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ('headers = { X-Env = "a\\r\\nX-Injected: 1" }', "without line breaks or control"),
        ('headers = { X-Env = "a\\u0000b" }', "without line breaks or control"),
        ('headers = { "X Env" = "a" }', "header names without spaces or separators"),
        ('headers = { "X:Env" = "a" }', "header names without spaces or separators"),
        ('secret_headers = { "Author ization" = "TOKEN" }', "header names without spaces"),
    ],
)
def test_a_header_that_would_break_the_request_is_refused(table: str, words: str) -> None:
    # Refused at load, naming the key; at poll time it was a protocol error.
    text = f'[endpoints.web]\nkind = "health"\nurl = "http://h/"\n{table}\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("/etc/opstui.toml"))
    assert str(info.value).startswith('/etc/opstui.toml: "endpoints.web.')
    assert words in str(info.value)
    assert "\n" not in str(info.value) and "\r" not in str(info.value)


def test_a_query_named_in_both_queries_and_range_queries_is_refused() -> None:
    text = (
        '[endpoints.prom]\nkind = "prometheus_api"\nurl = "http://h/"\n'
        'queries = { up = "up" }\nrange_queries = { up = "up" }\n'
    )
    with pytest.raises(ConfigError, match="names 'up' in both queries and range_queries"):
        parse_config(text)
