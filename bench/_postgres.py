"""A PostgreSQL 15 server for the benchmarks, with durable settings.

Unlike ``tests/pg_server.py`` (fsync off: tests do not test an OS crash), a
benchmark measures what a team's server would do, so this one runs with
PostgreSQL's defaults: ``fsync``, ``synchronous_commit`` and
``full_page_writes`` on. Only a bulk build may ask for them off
(``start(durable=False)``, which also stops autovacuum and keeps no WAL
segments for reuse, so the cache does not keep gigabytes of them); it is
stopped cleanly (a checkpoint) and the files synced before the server is
started again, durable, to be measured.

Debian's binaries (``/usr/lib/postgresql/15/bin``). ``initdb`` and
``postgres`` refuse to run as root, so as root the cluster belongs to the
``postgres`` system user (``runuser -u postgres --``), which must own the
data directory, the log's directory and the socket directory. Listens on
127.0.0.1 only, on a free port chosen at each start; the socket lives in the
cluster's root directory. Role ``opstui`` (password ``PASSWORD``, SCRAM over
TCP) owns the benchmark databases; the superuser ``postgres`` connects over
the socket without a password.

The cluster can live in a cache directory and be reused: ``PgCluster(root)``
with ``root/data`` already initialised is just started again.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASSWORD = "opstui-bench"
ROLE = "opstui"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def pg_bin() -> Path | None:
    """PostgreSQL 15's bin directory (or the newest installed one), or None."""
    if (PG_BIN / "initdb").exists():
        return PG_BIN
    found = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return found[-1] if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _chown(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass
class PgCluster:
    """One cluster under ``root`` (``root/data``, ``root/postgres.log``, the socket)."""

    root: Path
    port: int = 0
    running: bool = False

    def __post_init__(self) -> None:
        bindir = pg_bin()
        if bindir is None:
            raise SystemExit("PostgreSQL is not installed (apt-get install postgresql-15)")
        self.bin = bindir
        self.as_user = "postgres" if os.geteuid() == 0 else None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.as_user, "--", *args] if self.as_user else list(args)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self._cmd(*args), capture_output=True, text=True, check=False, timeout=300
        )
        if check and done.returncode != 0:
            raise SystemExit(
                f"{' '.join(args[:2])} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-2000:]}"
            )
        return done

    def init(self) -> None:
        """A new cluster in ``root/data`` (``root`` is emptied first)."""
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        self.root.chmod(0o755)
        pwfile = self.root / "pw"
        pwfile.write_text("postgres-bench\n", encoding="utf-8")
        if self.as_user:
            _chown(self.root, self.as_user)
            _chown(pwfile, self.as_user)
        try:
            self._run(
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--locale=C.UTF-8",
                "--encoding=UTF8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self, *, durable: bool = True, extra: str = "") -> None:
        """Start on a free port; ``durable=False`` only for a bulk build."""
        if self.as_user:  # a cache directory copied or restored by root
            for path in (self.root, self.log):
                if path.exists():
                    _chown(path, self.as_user)
        # A server killed without a clean stop leaves its pid file behind;
        # pg_ctl copes with a stale one (it checks the process).
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={{port}} -c unix_socket_directories={self.root}"
        )
        if not durable:
            opts += (
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                " -c max_wal_size=8GB -c wal_recycle=off -c maintenance_work_mem=1GB"
                " -c autovacuum=off"
            )
        if extra:
            opts += " " + extra
        for attempt in range(3):
            self.port = free_port()
            done = self._run(
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "120",
                "-o",
                opts.format(port=self.port),
                "start",
                check=False,
            )
            if done.returncode == 0:
                self.running = True
                return
            if attempt == 2:
                tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
                raise SystemExit(f"pg_ctl start failed: {done.stderr.strip()}\n{tail}")

    def stop(self, mode: str = "fast") -> None:
        if not self.initialised():
            return
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False
        )
        self.running = False

    def setting(self, name: str) -> str:
        with self.admin() as conn:
            return str(conn.execute(f"SHOW {name}").fetchone()[0])

    def admin(self, database: str = "postgres") -> Any:
        """A superuser connection over the socket, autocommit."""
        import psycopg

        return psycopg.connect(
            host=str(self.root), port=self.port, user="postgres", dbname=database, autocommit=True
        )

    def ensure_role(self) -> None:
        with self.admin() as conn:
            found = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()
            if not found:
                conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")

    def has_database(self, name: str) -> bool:
        with self.admin() as conn:
            return bool(
                conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            )

    def create_database(self, name: str) -> None:
        """A new empty database ``name`` owned by the ``opstui`` role (dropped first)."""
        self.ensure_role()
        with self.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name} OWNER {ROLE} TEMPLATE template0")
        with self.admin(name) as conn:
            conn.execute(f"ALTER SCHEMA public OWNER TO {ROLE}")

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def url(self, database: str) -> str:
        """The store URL (no password in it: ``env()`` supplies PGPASSWORD)."""
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{database}"

    def env(self) -> dict[str, str]:
        return {"PGPASSWORD": PASSWORD}


@contextlib.contextmanager
def running_cluster(root: Path, *, fresh: bool = False) -> Iterator[PgCluster]:
    """The cluster under ``root`` (initialised when missing or ``fresh``), started
    durable, and always stopped at the end, even on an error or Ctrl-C."""
    cluster = PgCluster(root)
    if fresh or not cluster.initialised():
        cluster.init()
    try:
        cluster.start()
        cluster.ensure_role()
        yield cluster
    finally:
        cluster.stop("fast")
