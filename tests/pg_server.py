"""A real PostgreSQL server for the store's tests, started once per session.

Debian's PostgreSQL binaries, a cluster in a temporary directory, listening
on a free port of 127.0.0.1 only. ``initdb`` and ``postgres`` refuse to run
as root, so as root the cluster belongs to the ``postgres`` system user (the
directories it writes are made its own). Ready in ~1 s, ~70 MB.

Each test gets a database of its own (``fresh_database``): ``CREATE
DATABASE`` from ``template0`` takes ~20 ms with fsync off, which is how the
test cluster runs (a clean stop still writes everything; only an OS crash
would lose what fsync protects against, and tests do not test that).

Roles: ``opstui`` (the owner, password ``opstui-secret``, over TCP with
SCRAM) and ``reader`` (may read, not write) exist in every cluster.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .processes import free_port

PASSWORD = "opstui-secret"
READER_PASSWORD = "reader-secret"


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    root = Path("/usr/lib/postgresql")
    found = sorted(
        (p for p in root.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PgServer:
    root: Path
    port: int
    bin: Path
    as_user: str | None
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str, *, user: str = "opstui", password: bool = False) -> str:
        secret = f":{PASSWORD if user == 'opstui' else READER_PASSWORD}" if password else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{database}"

    def env(self, user: str = "opstui") -> dict[str, str]:
        """libpq's own password variable, for a URL without one."""
        return {"PGPASSWORD": PASSWORD if user == "opstui" else READER_PASSWORD}

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.as_user, "--", *args] if self.as_user else list(args)

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._cmd(str(self.bin / "pg_ctl"), "-D", str(self.data), *args),
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def start(self) -> None:
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self.pg_ctl("-l", str(self.log), "-w", "-t", "60", "-o", opts, "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "-w", "stop", check=False)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser over the socket; its output."""
        done = subprocess.run(
            self._cmd(
                str(self.bin / "psql"),
                "-h",
                str(self.root),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-Atqc",
                sql,
            ),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def admin(self, database: str = "postgres") -> Any:
        """A superuser connection over the socket (autocommit)."""
        import psycopg

        return psycopg.connect(
            host=str(self.root), port=self.port, user="postgres", dbname=database, autocommit=True
        )

    def fresh_database(self, prefix: str = "t") -> str:
        """A new empty database owned by ``opstui``, readable by ``reader``."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {name} OWNER opstui TEMPLATE template0")
        with self.admin(name) as conn:
            conn.execute(f"GRANT CONNECT ON DATABASE {name} TO reader")
            conn.execute("ALTER SCHEMA public OWNER TO opstui")
            conn.execute("GRANT USAGE ON SCHEMA public TO reader")
            conn.execute(
                "ALTER DEFAULT PRIVILEGES FOR ROLE opstui IN SCHEMA public "
                "GRANT SELECT ON TABLES TO reader"
            )
        return name


def _owned_by(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


@contextlib.contextmanager
def running_server() -> Iterator[PgServer]:
    bindir = pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    as_user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="opstui-pg-"))
    root.chmod(0o755)
    if as_user:
        _owned_by(root, as_user)
    server = PgServer(root=root, port=free_port(), bin=bindir, as_user=as_user)
    pwfile = root / "pw"
    pwfile.write_text("postgres-secret\n")
    if as_user:
        _owned_by(pwfile, as_user)
    subprocess.run(
        server._cmd(
            str(bindir / "initdb"),
            "-D",
            str(server.data),
            "-U",
            "postgres",
            "--locale=C.UTF-8",
            "--encoding=UTF8",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={pwfile}",
        ),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    started = False
    for attempt in range(3):
        try:
            server.start()
            started = True
            break
        except subprocess.CalledProcessError:  # the port was taken meanwhile
            if attempt == 2:
                raise
            server.port = free_port()
    assert started
    try:
        server.psql(
            f"CREATE ROLE opstui LOGIN PASSWORD '{PASSWORD}'; "
            f"CREATE ROLE reader LOGIN PASSWORD '{READER_PASSWORD}'"
        )
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def wait_until_up(server: PgServer, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", server.port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"PostgreSQL did not come back on port {server.port}")
