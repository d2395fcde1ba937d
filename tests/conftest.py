from __future__ import annotations

import asyncio
import inspect
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from opstui.store import Store

from . import alertmanager_server
from .pg_server import PASSWORD, PgServer, pg_bin, running_server
from .prefect_server import PrefectServer, running_prefect
from .prefect_server import venv as prefect_venv

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RUNS = ROOT / "sample_runs"


class Clock:
    """A settable clock for stores, so staleness is tested without sleeping."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "opstui.db"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One real PostgreSQL server for the session (started on first use)."""
    if pg_bin() is None:
        if os.environ.get("OPSTUI_REQUIRE_PG"):
            pytest.fail("PostgreSQL is not installed, and OPSTUI_REQUIRE_PG is set")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    with running_server() as server:
        yield server


@pytest.fixture(scope="session")
def prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """One real Prefect 3 server, with its ``serve`` process, for the session
    (started on first use; ~8 s, ~400 MB)."""
    if prefect_venv() is None:
        pytest.skip(
            "Prefect's venv is missing: python3 -m venv .venvs/prefect && "
            ".venvs/prefect/bin/pip install prefect==3.9.1 (.ci/run does it)"
        )
    with running_prefect(tmp_path_factory.mktemp("prefect")) as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh database on the session's server, as a store URL without a
    password (libpq takes it from PGPASSWORD, set here)."""
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    return pg_server.url(pg_server.fresh_database())


@pytest.fixture(params=["sqlite", "postgresql"])
def store_where(request: pytest.FixtureRequest, store_path: Path) -> Path | str:
    """Each back end in turn: an SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return store_path
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(store_where: Path | str, clock: Clock) -> Iterator[Store]:
    s = Store(store_where, clock=clock)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Tests never pick up a developer's own store or config.
    monkeypatch.delenv("OPSTUI_STORE", raising=False)
    monkeypatch.delenv("OPSTUI_CONFIG", raising=False)
    # ... nor read their own config, nor write into their state directory
    # (the default store, what each console last saw).
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / ".state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    # The console's top line names this host: the same on every machine, so
    # snapshots taken here hold on CI.
    monkeypatch.setattr("opstui.tui.header.hostname", lambda: "ops-host")
    monkeypatch.chdir(tmp_path)


def sqlite_conn(store: Store) -> sqlite3.Connection:
    """The SQLite connection of a file store (for what only SQLite has: iterdump, traces)."""
    assert isinstance(store.conn, sqlite3.Connection), "an SQLite store"
    return store.conn


def run_cli(
    *args: str | os.PathLike[str],
    input: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``opstui`` command in a subprocess (real exit codes, real stderr)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPSTUI_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "opstui", *map(str, args)],
        input=input,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
        check=False,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests (the console's Pilot tests) on a fresh event loop."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real Alertmanager for the session (started on first use, ~0.1 s):
    its base URL. Tests give their alerts names of their own
    (``alertmanager_server.unique``)."""
    yield from alertmanager_server.serve(tmp_path_factory)
