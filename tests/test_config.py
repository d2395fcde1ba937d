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
    assert resolve_store_path() == Path("opstui.db")


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
