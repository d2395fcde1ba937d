"""The run store's file under hostile conditions: full disk, read-only file or
directory, deleted or replaced under a long-running writer, file modes.

Every failure is one line on stderr and exit 2; what was committed stays
committed. Tests run as root in CI, and root ignores permission bits: the
read-only cases run the command as an unprivileged user then (``setpriv``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from opstui.errors import OpstuiError
from opstui.store import Store
from opstui.store.failures import StoreGone
from opstui.store.runs import create_run
from opstui.track import Tracker

from .conftest import run_cli
from .http_service import running_service

NOBODY = 65534


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(*args: str | os.PathLike[str]) -> list[str]:
    return [sys.executable, "-m", "opstui", *map(str, args)]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OPSTUI_")}


# -- file modes ---------------------------------------------------------------

MODES = """
import os, sys
os.umask(int(sys.argv[2], 8))
from opstui.track import Tracker
path = sys.argv[1]
with Tracker(path) as tracker, tracker.run("p", stages=["a"]) as run:
    with run.stage("a") as stage:
        stage.log("x")
        run.flush()
        # -wal and -shm exist while a connection is open: look at them now.
        print(" ".join(oct(os.stat(path + s).st_mode & 0o777) for s in ("", "-wal", "-shm")))
"""


def test_a_new_store_and_its_wal_and_shm_are_owner_only_whatever_the_umask(
    tmp_path: Path,
) -> None:
    # 000 and 022 would widen them; 077 already gives 0600; 277 would leave
    # the store unwritable by its owner.
    for umask in ("000", "022", "077", "277"):
        path = tmp_path / umask / "s.db"
        out = subprocess.run(
            [sys.executable, "-c", MODES, str(path), umask],
            capture_output=True, text=True, check=True, env=clean_env(), timeout=60,
        ).stdout  # fmt: skip
        assert out.split() == ["0o600", "0o600", "0o600"], umask
    # An existing store's mode is the operator's choice: left alone, and its
    # -wal and -shm follow it.
    existing = tmp_path / "000" / "s.db"
    existing.chmod(0o640)
    with Store(existing) as store:
        create_run(store, "p")
        modes = [Path(f"{existing}{s}").stat().st_mode & 0o777 for s in ("", "-wal", "-shm")]
    assert modes == [0o640, 0o640, 0o640]


def test_the_cli_creates_a_store_owner_only_even_with_umask_0(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    result = subprocess.run(
        cli("record", "start", "p", "--store", path),
        capture_output=True, text=True, env=clean_env(), timeout=60, check=False,
        preexec_fn=lambda: os.umask(0),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert path.stat().st_mode & 0o777 == 0o600


# -- disk full ------------------------------------------------------------------


class SmallDisk:
    """Room that runs out: a 4 MB tmpfs filled up (root may mount one, as in
    CI), or a file-size limit on the commands run (anyone)."""

    def __init__(self, root: Path, kind: str) -> None:
        self.dir = root / "fs"
        self.dir.mkdir()
        self.mounted = False
        self.limit: int | None = None
        if kind == "tmpfs":
            if os.geteuid() != 0 or not shutil.which("mount"):
                pytest.skip("mounting a small tmpfs needs root (the file-size limit case runs)")
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(self.dir)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
            self.mounted = True

    def fill(self) -> None:
        if not self.mounted:
            # Writes past RLIMIT_FSIZE fail with EFBIG (CPython ignores
            # SIGXFSZ); 8 KiB is less than any store's WAL needs.
            self.limit = 8192
            return
        # Unbuffered: a buffered file would fail again on close.
        with (self.dir / "filler").open("wb", buffering=0) as f:
            with contextlib.suppress(OSError):
                while f.write(b"\0" * 65536):
                    pass

    def free(self) -> None:
        self.limit = None
        (self.dir / "filler").unlink(missing_ok=True)

    def run(self, *args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
        limit = self.limit

        def limited() -> None:
            if limit is not None:
                import resource

                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        return subprocess.run(
            cli(*args), capture_output=True, text=True, env=clean_env(), timeout=60,
            preexec_fn=limited, check=False,
        )  # fmt: skip

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.dir)], check=False)


@pytest.fixture(params=["tmpfs", "file-size-limit"])
def small_disk(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SmallDisk]:
    disk = SmallDisk(tmp_path, request.param)
    try:
        yield disk
    finally:
        disk.close()


def test_recording_on_a_full_disk_is_one_line_and_keeps_what_was_committed(
    small_disk: SmallDisk,
) -> None:
    store = small_disk.dir / "s.db"
    for name in ("first", "second"):
        assert small_disk.run("record", "start", name, "--store", store).returncode == 0
    # A console or poller holding the store open, as on a real host: its
    # -wal and -shm stay, so readers still read while the disk is full.
    holder = Store(store, create=False)
    try:
        small_disk.fill()
        failed = small_disk.run("record", "start", "third", "--store", store)
        assert failed.returncode == 2, failed.stderr
        line = one_line(failed.stderr)
        assert str(store) in line and "stays committed" in line
        assert "the disk is full" in line or "file-size limit" in line
        status = run_cli("status", "--json", "--store", store)
        assert status.returncode == 0, status.stderr
        names = {p["name"] for p in json.loads(status.stdout)["pipelines"]}
        assert names == {"first", "second"}
    finally:
        holder.close()
    # Nobody holds it now: opening it needs room for its -shm, and says so.
    again = small_disk.run("record", "start", "fourth", "--store", store)
    assert again.returncode == 2, again.stderr
    line = one_line(again.stderr)
    assert "the disk is full" in line or "file-size limit" in line
    small_disk.free()
    conn = sqlite3.connect(store)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        pipelines = {r[0] for r in conn.execute("SELECT name FROM pipelines")}
    finally:
        conn.close()
    assert pipelines == {"first", "second"}
    assert small_disk.run("record", "start", "third", "--store", store).returncode == 0


# -- read-only file and directory ------------------------------------------------


def _as_nobody() -> list[str]:
    """A command prefix that runs as an unprivileged user ([] when not root)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    if shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--"]
    pytest.skip("running as root without setpriv or runuser: permission bits are not enforced")


@pytest.fixture
def unprivileged() -> Iterator[tuple[list[str], Path]]:
    """(prefix, directory): a private directory the unprivileged user owns."""
    prefix = _as_nobody()
    # Outside pytest's tmp_path: its parents are root's, mode 0700.
    base = Path(tempfile.mkdtemp(prefix="opstui-ro-", dir="/tmp"))
    try:
        if prefix:
            os.chown(base, NOBODY, NOBODY)
        probe = base / "probe"
        probe.write_text("x")
        probe.chmod(0o444)
        if prefix:
            os.chown(probe, NOBODY, NOBODY)
        script = f"import opstui; print('ran'); open({str(probe)!r}, 'a')"
        tried = subprocess.run(
            [*prefix, sys.executable, "-c", script],
            capture_output=True, text=True, cwd=base, check=False,
        )  # fmt: skip
        if "ran" not in tried.stdout:
            pytest.skip(f"the unprivileged user cannot run opstui here: {tried.stderr[-200:]}")
        if tried.returncode == 0:
            pytest.skip("this user can write a read-only file: permission bits are not enforced")
        probe.unlink()
        yield prefix, base
    finally:
        for d in (base, *base.rglob("*")):
            with contextlib.suppress(OSError):
                d.chmod(0o700)
        shutil.rmtree(base, ignore_errors=True)


def _store_owned_by(prefix: list[str], path: Path) -> None:
    with Store(path) as store:
        create_run(store, "before")
    if prefix:
        for f in path.parent.iterdir():
            os.chown(f, NOBODY, NOBODY)


def _run_as(
    prefix: list[str], cwd: Path, *args: str | os.PathLike[str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, *cli(*args)], capture_output=True, text=True, cwd=cwd, env=clean_env(),
        timeout=60, check=False,
    )  # fmt: skip


def test_a_read_only_store_file_is_one_line_and_unchanged(
    unprivileged: tuple[list[str], Path],
) -> None:
    prefix, base = unprivileged
    store = base / "s.db"
    _store_owned_by(prefix, store)
    store.chmod(0o444)
    before = digest(store)
    result = _run_as(prefix, base, "record", "start", "after", "--store", store)
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert str(store) in line and "read-only" in line
    assert digest(store) == before
    # Reading it still works: the directory takes its -wal and -shm.
    status = _run_as(prefix, base, "status", "--json", "--store", store)
    assert status.returncode == 0, status.stderr
    assert [p["name"] for p in json.loads(status.stdout)["pipelines"]] == ["before"]


def test_a_store_in_a_read_only_directory_is_one_line_and_unchanged(
    unprivileged: tuple[list[str], Path],
) -> None:
    prefix, base = unprivileged
    store = base / "s.db"
    _store_owned_by(prefix, store)
    before = digest(store)
    base.chmod(0o555)
    try:
        result = _run_as(prefix, base, "record", "start", "after", "--store", store)
        created = _run_as(prefix, base, "record", "start", "x", "--store", base / "new.db")
    finally:
        base.chmod(0o755)
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert str(store) in line and "not writable" in line and "s.db-wal" in line
    assert created.returncode == 2, created.stderr
    assert "not writable" in one_line(created.stderr)
    assert digest(store) == before
    assert sorted(p.name for p in base.iterdir()) == ["s.db"]


# -- deleted or replaced under a long-running writer -----------------------------


def test_a_write_to_a_deleted_or_replaced_store_raises_store_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not a false alarm: a process that changes directory keeps its store.
    (tmp_path / "elsewhere").mkdir()
    with Store("relative.db") as store:
        monkeypatch.chdir(tmp_path / "elsewhere")
        assert store.gone() is None
        create_run(store, "p")
    path = tmp_path / "s.db"
    with Store(path) as store:
        create_run(store, "before")
        assert store.gone() is None
        path.unlink()
        assert store.gone() == "deleted or moved away"
        with pytest.raises(StoreGone, match=r"deleted or moved away.*not written: this write"):
            create_run(store, "lost")
    Store(tmp_path / "other.db").close()
    with Store(tmp_path / "b.db") as store:
        (tmp_path / "other.db").replace(tmp_path / "b.db")
        with pytest.raises(StoreGone, match="replaced by another file"):
            create_run(store, "lost")
    with Store(tmp_path / "b.db") as fresh:  # the replacement got nothing
        assert fresh.conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_a_store_deleted_under_opstui_poll_stops_it_with_the_reason(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    config = tmp_path / "opstui.toml"
    with running_service() as (_, base):
        config.write_text(
            f'[endpoints.web]\nurl = "{base}/health"\nkind = "health"\ninterval = 0.2\n'
        )
        poller = subprocess.Popen(
            cli("poll", "--duration", "30", "--store", store, "--config", config),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
        )  # fmt: skip
        try:

            def polled() -> bool:
                if not store.exists():
                    return False
                conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
                try:
                    return bool(conn.execute("SELECT count(*) FROM endpoint_status").fetchone()[0])
                except sqlite3.Error:
                    return False
                finally:
                    conn.close()

            assert wait_for(polled), "the poller never wrote"
            store.unlink()
            deleted_at = time.monotonic()
            _, stderr = poller.communicate(timeout=40)
        finally:
            if poller.poll() is None:
                poller.kill()
                poller.wait()
    took = time.monotonic() - deleted_at
    assert poller.returncode == 2, stderr
    line = one_line(stderr)
    assert str(store) in line and "deleted" in line and "not written" in line
    assert took < 5.0  # a couple of intervals and flushes, not the 30 s it was asked for


def test_a_store_replaced_under_drift_watch_stops_it_with_the_reason(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    rows = [{"x": float(i % 17), "y": float(i % 5)} for i in range(400)]
    with Tracker(store) as tracker, tracker.run("train") as run:
        run.log_model_version("churn", reference=rows)
        run.log_features("churn", rows)
    watch = subprocess.Popen(
        cli("drift", "churn", "--watch", "--interval", "0.2", "--count", "100", "--json",
            "--no-classifier", "--store", store),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
    )  # fmt: skip
    try:
        assert watch.stdout is not None
        first = json.loads(watch.stdout.readline())  # one check done, on the old file
        assert first["model"] == "churn"
        Store(tmp_path / "restored.db").close()
        (tmp_path / "restored.db").replace(store)  # e.g. a restore from a backup
        _, stderr = watch.communicate(timeout=30)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert watch.returncode == 2, stderr
    line = one_line(stderr)
    assert str(store) in line and "replaced" in line


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_store_lost_under_a_tracker_fails_the_pipelines_next_call(
    tmp_path: Path, how: str
) -> None:
    path = tmp_path / "s.db"
    tracker = Tracker(path, flush_interval=0.05, heartbeat_interval=0.1)
    try:
        with pytest.raises(OpstuiError) as caught:
            with tracker.run("nightly", stages=["train"]) as run:
                with run.stage("train") as stage:
                    stage.log("epoch 1")
                    if how == "deleted":
                        path.unlink()
                    else:
                        Store(tmp_path / "other.db").close()
                        (tmp_path / "other.db").replace(path)
                    # The pipeline goes on computing; the heartbeat thread notices.
                    assert wait_for(lambda: run._thread is not None and not run._thread.is_alive())
                    stage.log("epoch 2")
        assert run._thread is not None and not run._thread.is_alive()
    finally:
        tracker.close()
    assert isinstance(caught.value, StoreGone)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and how in message
    # Every later call says the same: nothing goes to a file nobody reads.
    with pytest.raises(StoreGone):
        run.log_metric("loss", 0.1)


RUNNER_LIKE = """
import os, sys, time
from opstui.track import Tracker
path = sys.argv[1]
with Tracker(path, flush_interval=0.05, heartbeat_interval=0.1) as tracker:
    with tracker.run("p", stages=["a"]) as run, run.stage("a") as stage:
        stage.log("started")
        run.flush()
        print("ready", flush=True)
        sys.stdin.readline()
        time.sleep(0.5)
        for i in range(100):
            stage.log(f"line {i}")
"""


def test_a_pipeline_script_gets_one_opstui_error_not_a_thread_traceback(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    script = tmp_path / "pipeline.py"
    script.write_text(textwrap.dedent(RUNNER_LIKE))
    # What a pipeline's own error handling does with an OpstuiError.
    wrapper = (
        "import runpy, sys\n"
        "from opstui.errors import OpstuiError\n"
        "try:\n"
        f"    runpy.run_path({str(script)!r}, run_name='__main__')\n"
        "except OpstuiError as exc:\n"
        "    print(f'pipeline: {exc}', file=sys.stderr)\n"
        "    sys.exit(exc.exit_code)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", wrapper, str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=clean_env(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready"
        path.unlink()
        proc.stdin.write("\n")
        proc.stdin.flush()
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, stderr
    line = one_line(stderr)
    assert line.startswith("pipeline: run store") and "deleted" in line


def test_a_damaged_store_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    from .conftest import SAMPLE_RUNS, run_cli

    store = tmp_path / "damaged.db"
    assert run_cli("import", SAMPLE_RUNS, "--store", store).returncode == 0
    with store.open("r+b") as f:  # a page of junk where the tables' pages are
        f.seek(8192)
        f.write(b"\xff" * 4096)
    result = run_cli("status", "--store", store)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("opstui: the run store could not be read: database disk image")
    assert "Traceback" not in result.stderr
