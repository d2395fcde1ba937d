"""Config where operators look (issue: a well-behaved command on a shared
server): --config, $OPSTUI_CONFIG, ./opstui.toml, $XDG_CONFIG_HOME, /etc/opstui,
first found wins; the default store under $XDG_STATE_HOME, never a new file
where the operator stands; `opstui config path/show`, secrets never shown."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from opstui.config import load as config_load
from opstui.config import load_config, resolve_store_path
from opstui.errors import ConfigError

from .conftest import run_cli


def _write(path: Path, actor: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'actor = "{actor}"\n')
    return path


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    system = tmp_path / "etc" / "opstui" / "opstui.toml"
    monkeypatch.setattr(config_load, "SYSTEM_CONFIG", system)
    return {
        "here": tmp_path / "opstui.toml",
        "user": Path(os.environ["XDG_CONFIG_HOME"]) / "opstui" / "opstui.toml",
        "system": system,
        "env": tmp_path / "env.toml",
        "flag": tmp_path / "flag.toml",
    }


def test_each_location_in_its_order(
    places: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_config().path is None  # none anywhere: defaults
    _write(places["system"], "system")
    assert load_config().actor == "system"
    _write(places["user"], "user")
    assert load_config().actor == "user"
    _write(places["here"], "here")
    assert load_config().actor == "here"
    monkeypatch.setenv("OPSTUI_CONFIG", str(_write(places["env"], "env")))
    assert load_config().actor == "env"
    assert load_config(_write(places["flag"], "flag")).actor == "flag"
    states = [(c.how, c.state) for c in config_load.config_locations(places["flag"])]
    assert states == [("--config", "read"), ("$OPSTUI_CONFIG", "shadowed"),
                      ("./opstui.toml", "shadowed"), ("$XDG_CONFIG_HOME", "shadowed"),
                      ("/etc/opstui", "shadowed")]  # fmt: skip


def test_a_named_config_must_exist(
    places: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(places["user"], "user")  # not a fallback for a typo
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(places["flag"])
    monkeypatch.setenv("OPSTUI_CONFIG", str(places["env"]))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config()


def test_the_default_store_is_the_users_never_a_new_file_here(tmp_path: Path) -> None:
    state = Path(os.environ["XDG_STATE_HOME"])
    assert resolve_store_path(config=load_config()) == state / "opstui" / "opstui.db"
    result = run_cli("record", "start", "etl", "--stages", "a", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "opstui.db").exists()
    assert (state / "opstui" / "opstui.db").exists()
    status = run_cli("status", cwd=tmp_path / ".state")  # from any directory
    assert "etl" in status.stdout
    # A store made here before is still found here.
    (tmp_path / "opstui.db").write_bytes(b"")
    assert resolve_store_path(config=load_config()) == Path("opstui.db")


def test_config_path_says_which_was_read_and_what_it_shadows(
    tmp_path: Path, places: dict[str, Path]
) -> None:
    _write(places["here"], "here")
    _write(places["user"], "user")
    out = run_cli("config", "path", cwd=tmp_path).stdout
    lines = out.splitlines()
    assert lines[0] == "config (the first found is read):"
    assert any("./opstui.toml" in ln and ln.endswith("  read") for ln in lines)
    assert any("$XDG_CONFIG_HOME" in ln and "there, not read" in ln for ln in lines)
    assert lines[-1].startswith("store: ") and "the default" in lines[-1]


def test_config_show_names_secrets_and_never_shows_them(tmp_path: Path) -> None:
    (tmp_path / "opstui.toml").write_text(
        'store = "postgresql://ops@127.0.0.1:1/ops?password_env=PG_PASS"\n'
        "[endpoints.web]\n"
        'url = "https://web.internal/metrics"\nkind = "prometheus"\n'
        'requests = "http_requests_total"\n'
        'secret_headers = { Authorization = "WEB_TOKEN" }\n'
        'headers = { "X-Api-Key" = "k-123-secret", Accept = "text/plain" }\n'
        "[notify]\n"
        'alertmanager = "http://127.0.0.1:9093"\n'
    )
    env = {"WEB_TOKEN": "Bearer tok-very-secret", "PG_PASS": "pg-very-secret"}
    text = run_cli("config", "show", cwd=tmp_path, env=env)
    assert text.returncode == 0, text.stderr
    doc = json.loads(run_cli("config", "show", "--json", cwd=tmp_path, env=env).stdout)
    for out in (text.stdout, json.dumps(doc)):
        assert "very-secret" not in out and "k-123-secret" not in out
        assert "$WEB_TOKEN" in out
    web = doc["endpoints"]["web"]
    assert web["secret_headers"] == {"Authorization": "$WEB_TOKEN"}
    assert web["headers"] == {"X-Api-Key": "***", "Accept": "text/plain"}
    assert doc["notify"]["alertmanager"] == "http://127.0.0.1:9093"
    assert doc["store_from"] == "store = in the config"


def test_a_place_this_user_may_not_look_into_is_passed_over(
    places: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another user's $HOME after sudo: `Path.is_file` raises there; the
    system config is read and `config path` says why the user's was not."""
    _write(places["system"], "system")
    user = places["user"]
    real = Path.is_file

    def is_file(self: Path) -> bool:
        if self == user:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "is_file", is_file)
    assert load_config().actor == "system"
    states = {c.how: c.state for c in config_load.config_locations()}
    assert states["$XDG_CONFIG_HOME"] == "unreadable" and states["/etc/opstui"] == "read"
