"""``opstui doctor``: each check against the real thing (a store, a config,
an HTTP service, a closed port, a socket that never answers, a pty)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import select
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from opstui.config import load_config
from opstui.doctor import FAIL, OK, SKIP, WARN, Check
from opstui.doctor.checks import guarded
from opstui.doctor.local import GLYPHS, terminal_check
from opstui.errors import ConfigError
from opstui.store import Store
from opstui.store.endpoints import Observation, record_observations
from opstui.store.schema import SCHEMA_VERSION

from .conftest import run_cli
from .hostile_http import osc52_reason
from .http_service import running_service
from .processes import free_port


def make_store(path: Path | str) -> None:
    Store(path).close()


def config_with(tmp_path: Path, endpoints: dict[str, str]) -> Path:
    text = "".join(
        f'[endpoints.{name}]\nkind = "health"\nurl = "{url}"\n\n' for name, url in endpoints.items()
    )
    path = tmp_path / "opstui.toml"
    path.write_text(text)
    return path


def lines_of(out: str) -> dict[str, str]:
    """Each check's line by its name (``source NAME`` keeps its space)."""
    found = {}
    for line in out.splitlines():
        verdict, _, rest = line.partition(" ")
        if verdict in (OK, WARN, FAIL, SKIP):
            rest = rest.strip()
            name = " ".join(rest.split()[:2]) if rest.startswith("source ") else rest.split()[0]
            found[name] = line
    return found


@contextlib.contextmanager
def silent_socket() -> Iterator[str]:
    """A listening socket that takes connections (the kernel's backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/health"


def test_healthy_setup_exits_0_and_json_parses(tmp_path: Path) -> None:
    db = tmp_path / "opstui.db"
    make_store(db)
    with running_service() as (_, base):
        cfg = config_with(tmp_path, {"api": f"{base}/health"})
        polled = run_cli("poll", "--once", "--store", db, "--config", cfg)
        assert polled.returncode == 0, polled.stderr
        result = run_cli("doctor", "--store", db, "--config", cfg)
        as_json = run_cli("doctor", "--json", "--store", db, "--config", cfg)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    lines = lines_of(result.stdout)
    assert lines["python"].startswith("ok")
    assert lines["config"].startswith("ok") and str(cfg) in lines["config"]
    store_line = lines["store"]
    assert store_line.startswith("ok")
    assert f"{db}: sqlite, schema {SCHEMA_VERSION}" in store_line
    assert "quick_check ok" in store_line and "writable" in store_line
    api = lines["source api"]
    assert api.startswith("ok") and ": up" in api
    assert "last poll" in api and " by " in api  # what `poll --once` wrote
    # Not a tty (a pipe): the terminal is not judged, so CI exits 0.
    assert lines["terminal"].startswith("skip")
    assert lines["clock"].startswith("ok")
    assert "fix:" not in result.stdout
    assert as_json.returncode == 0
    doc = json.loads(as_json.stdout)
    assert doc["schema"] == 1 and doc["ok"] is True
    by_name = {c["name"]: c for c in doc["checks"]}
    assert set(by_name) == {"python", "config", "store", "source api", "terminal", "clock"}
    assert all(c["verdict"] in (OK, SKIP) and c["fix"] is None for c in doc["checks"])
    assert by_name["terminal"]["verdict"] == SKIP


def test_missing_store_fails_saying_how_to_create_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    result = run_cli("doctor", "--store", missing)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == ""
    out = result.stdout.splitlines()
    at = next(i for i, line in enumerate(out) if line.startswith("fail  store"))
    assert f"no run store at {missing}" in out[at]
    assert "fix:" in out[at + 1] and f"opstui store init --store {missing}" in out[at + 1]
    assert not missing.exists()  # the doctor creates nothing
    doc = json.loads(run_cli("doctor", "--json", "--store", missing).stdout)
    store = next(c for c in doc["checks"] if c["name"] == "store")
    assert doc["ok"] is False and store["verdict"] == FAIL and "store init" in store["fix"]
    assert next(c for c in doc["checks"] if c["name"] == "clock")["verdict"] == SKIP


def _read_only(db: Path) -> Callable[[], None]:
    """Make ``db`` unwritable for this user; return the undo. Root writes
    through any mode, so as root the file is made immutable (chattr +i)."""
    if os.geteuid() != 0:
        db.chmod(0o444)
        db.parent.chmod(0o555)

        def chmod_back() -> None:
            db.parent.chmod(0o755)
            db.chmod(0o644)

        return chmod_back
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(db)], check=False).returncode:
        pytest.skip("as root only an immutable file is read-only, and chattr +i failed here")

    def mutable_again() -> None:
        subprocess.run([chattr, "-i", str(db)], check=True)

    return mutable_again


def test_read_only_store_fails(tmp_path: Path) -> None:
    home = tmp_path / "ro"
    home.mkdir()
    db = home / "opstui.db"
    make_store(db)
    undo = _read_only(db)
    try:
        result = run_cli("doctor", "--store", db)
    finally:
        undo()
    assert result.returncode == 1
    store = lines_of(result.stdout)["store"]
    assert store.startswith("fail") and "not writable" in store
    assert "quick_check ok" in store  # read, all the same


def test_write_lock_held_elsewhere_is_a_warning(tmp_path: Path) -> None:
    """What can be shown as root: another process's writer holding the lock."""
    db = tmp_path / "opstui.db"
    make_store(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = run_cli("doctor", "--store", db)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 1
    store = lines_of(result.stdout)["store"]
    assert store.startswith("warn") and "write lock held by another process" in store
    assert "quick_check ok" in store


def test_older_schema_is_not_migrated(tmp_path: Path) -> None:
    db = tmp_path / "opstui.db"
    make_store(db)
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    result = run_cli("doctor", "--store", db)
    store = lines_of(result.stdout)["store"]
    assert store.startswith("warn") and f"schema {SCHEMA_VERSION - 1}" in store
    assert "opstui store init" in result.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION - 1


def test_unreachable_source_fails_naming_it(tmp_path: Path) -> None:
    db = tmp_path / "opstui.db"
    make_store(db)
    port = free_port()  # closed: nothing listens
    cfg = config_with(tmp_path, {"billing": f"http://127.0.0.1:{port}/health"})
    result = run_cli("doctor", "--store", db, "--config", cfg)
    assert result.returncode == 1
    line = lines_of(result.stdout)["source billing"]
    assert line.startswith("fail") and f"127.0.0.1:{port}" in line and "refused" in line
    assert "never polled into this store" in line
    out = result.stdout.splitlines()
    fix = out[out.index(line) + 1]
    assert "fix:" in fix and "[endpoints.billing]" in fix


def test_hanging_source_is_bounded_by_the_timeout(tmp_path: Path) -> None:
    db = tmp_path / "opstui.db"
    make_store(db)
    with running_service() as (_, base), silent_socket() as hang:
        cfg = config_with(tmp_path, {"api": f"{base}/health", "stuck": hang})
        began = time.monotonic()
        result = run_cli("doctor", "--timeout", "1", "--store", db, "--config", cfg)
        took = time.monotonic() - began
    assert took < 2.5, f"doctor took {took:.2f} s"
    assert result.returncode == 1
    lines = lines_of(result.stdout)
    assert lines["source stuck"].startswith("fail")
    assert "no answer within 1s" in lines["source stuck"]
    assert lines["source api"].startswith("ok")


def test_bad_config_fails_with_the_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "opstui.toml"
    cfg.write_text('[endpoints.api]\nkind = "health"\nurll = "http://127.0.0.1:9/"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(cfg)
    result = run_cli("doctor", "--config", cfg, "--store", tmp_path / "opstui.db")
    assert result.returncode == 1 and result.stderr == ""
    line = lines_of(result.stdout)["config"]
    assert line.startswith("fail") and raised.value.message in line
    assert lines_of(result.stdout)["sources"].startswith("skip")


def test_store_times_ahead_of_this_clock_name_the_host(tmp_path: Path) -> None:
    db = tmp_path / "opstui.db"
    with Store(db) as store:
        ahead = time.time() + 600
        ob = Observation("api", "health", "http://x/health", ahead, "up", None, 3.0)
        record_observations(store, [ob], holder="ops@far-host:4242")
    result = run_cli("doctor", "--store", db)
    line = lines_of(result.stdout)["clock"]
    assert line.startswith("warn") and "far-host" in line and "behind" in line
    assert result.returncode == 1


def run_in_pty(args: list[str], env: dict[str, str], size: tuple[int, int]) -> tuple[int, str]:
    """``opstui ARGS`` with stdout on a pty of ``size`` (columns, lines)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    full = {k: v for k, v in os.environ.items() if not k.startswith("OPSTUI_")}
    full.update(env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "opstui", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=full,
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the pty
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    code = proc.wait(timeout=10)
    os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def test_dumb_terminal_is_reported(tmp_path: Path) -> None:
    db = tmp_path / "opstui.db"
    make_store(db)
    code, out = run_in_pty(
        ["doctor", "--store", str(db)],
        {"TERM": "dumb", "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"},
        (120, 40),
    )
    assert code == 1, out
    line = lines_of(out)["terminal"]
    assert line.startswith("warn") and "a tty, 120x40" in line
    assert "TERM=dumb" in line and "NO_COLOR set" in line
    assert "fix:" in out and "xterm-256color" in out


def test_a_good_terminal_is_ok(tmp_path: Path) -> None:
    db = tmp_path / "opstui.db"
    make_store(db)
    code, out = run_in_pty(
        ["doctor", "--store", str(db)],
        {"TERM": "xterm-256color", "COLORTERM": "truecolor", "PYTHONIOENCODING": "utf-8"},
        (100, 30),
    )
    line = lines_of(out)["terminal"]
    assert line.startswith("ok") and "100x30" in line and "truecolor" in line
    assert GLYPHS in line
    assert code == 0, out


def test_terminal_check_small_and_ascii() -> None:
    """The function itself, on a real pty opened as an ASCII stream."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 20, 60, 0, 0))
    try:
        with open(slave, "w", encoding="ascii", closefd=False) as stream:
            (check,) = terminal_check(stream, {"TERM": "xterm", "TMUX": "/tmp/tmux-0/default"})
    finally:
        os.close(slave)
        os.close(master)
    assert check.verdict == WARN
    assert "60x20" in check.detail and "smaller than 80x24" in check.detail
    assert "cannot encode the stage bar's glyphs" in check.detail
    assert "inside tmux" in check.detail
    assert "LANG=C.UTF-8" in check.fix


def test_a_check_that_raises_is_one_fail_line() -> None:
    def broken() -> list[Check]:
        raise RuntimeError("boom")

    (check,) = guarded("thing", broken)
    assert check.verdict == FAIL and "RuntimeError: boom" in check.detail and check.fix


def test_bad_option_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("doctor", "--timeout", "0")
    assert result.returncode == 2
    assert "--timeout" in result.stderr


def test_doctor_loads_neither_textual_nor_sklearn(tmp_path: Path) -> None:
    make_store(tmp_path / "opstui.db")
    code = (
        "import sys\n"
        "sys.argv = ['opstui', 'doctor', '--store', 'opstui.db']\n"
        "from opstui.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('textual', 'sklearn', 'scipy') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert "HEAVY []" in result.stderr, result.stderr


def test_postgresql_store(pg_url: str) -> None:
    make_store(pg_url)
    result = run_cli("doctor", "--store", pg_url)
    line = lines_of(result.stdout)["store"]
    assert line.startswith("ok"), result.stdout
    assert "postgresql, server" in line and f"schema {SCHEMA_VERSION}" in line
    assert "writable" in line
    assert result.returncode == 0, result.stdout


@pytest.fixture
def port() -> Iterator[int]:
    with osc52_reason() as served:
        yield served


def test_names_and_reasons_from_data_are_escaped(tmp_path: Path, port: int) -> None:
    """An endpoint's name (config) and a server's reason phrase reach the
    screen escaped: no byte of an escape sequence is printed raw."""
    db = tmp_path / "opstui.db"
    make_store(db)
    cfg = tmp_path / "opstui.toml"
    cfg.write_text(
        r'[endpoints."web\u001b]52;c;aGk=\u0007"]' + "\n"
        f'kind = "health"\nurl = "http://127.0.0.1:{port}/health"\n'
    )
    result = run_cli("doctor", "--store", db, "--config", cfg)
    as_json = run_cli("doctor", "--json", "--store", db, "--config", cfg)
    assert result.returncode == 1
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "HTTP 503 Busy" in result.stdout and "fail  source web" in result.stdout
    assert "\x1b" not in as_json.stdout and "\x07" not in as_json.stdout
    (source,) = [c for c in json.loads(as_json.stdout)["checks"] if c["name"].startswith("source")]
    assert source["name"] == "source web\x1b]52;c;aGk=\x07" and source["verdict"] == FAIL
