"""Shell completion (bash, zsh, fish) and ``opstui --version``, through the real command.

Completion is Typer's: the script a shell sources runs ``opstui`` again with
``_OPSTUI_COMPLETE=complete_SHELL`` and the words typed so far (bash:
``COMP_WORDS``/``COMP_CWORD``; zsh and fish: ``_TYPER_COMPLETE_ARGS``), and
``source_SHELL`` prints the script. Every run here is a subprocess of the
console script ``opstui`` (the name the protocol is keyed on), with ``HOME``
a temporary directory: nothing is written to the user's rc files.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opstui.runner.planning import RETRYABLE
from opstui.store import Store
from opstui.store.history import get_run
from opstui.store.schema import SCHEMA_VERSION

from .conftest import SAMPLE_RUNS, run_cli

OPSTUI = Path(sys.executable).parent / "opstui"

pytestmark = pytest.mark.skipif(
    not OPSTUI.exists(), reason="the opstui console script is not installed (pip install -e .)"
)

CONFIG = """
[environments.staging]
description = "where a release is tried first"

[environments.production]

[pipelines.web-api]
kind = "devops"
description = "the HTTP service"
stages = [{name = "build", run = ["true"]}]

[pipelines.etl]
kind = "devops"
stages = [{name = "load", run = ["true"]}]

[pipelines.train-churn]
kind = "mlops"
stages = [{name = "train", run = ["true"]}]

[models.churn]
pipeline = "train-churn"
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A HOME of the test's own, and a working directory holding opstui.toml."""
    here = tmp_path / "home"
    here.mkdir()
    (here / "opstui.toml").write_text(CONFIG, encoding="utf-8")
    return here


def _env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSTUI_", "_OPSTUI_"))}
    env["HOME"] = str(home)
    env["PATH"] = f"{OPSTUI.parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def opstui(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(OPSTUI), *args],
        capture_output=True,
        text=True,
        cwd=home,
        env=_env(home, extra),
        timeout=60,
        check=False,
    )


def bash_complete(home: Path, line: str) -> subprocess.CompletedProcess[str]:
    """What the bash script asks for ``line`` (the last word is the one completed)."""
    words = line.split(" ")
    return opstui(
        home,
        _OPSTUI_COMPLETE="complete_bash",
        COMP_WORDS=line,
        COMP_CWORD=str(len(words) - 1),
    )


def offered(home: Path, line: str) -> list[str]:
    done = bash_complete(home, line)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout.split()


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled history in a store: models churn and fraud, runs that failed."""
    path = tmp_path_factory.mktemp("store") / "runs.db"
    done = run_cli("import", SAMPLE_RUNS, "--store", path)
    assert done.returncode == 0, done.stderr
    return path


# --- the scripts --------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_a_script_for_each_shell(home: Path, shell: str) -> None:
    done = opstui(home, _OPSTUI_COMPLETE=f"source_{shell}")
    assert done.returncode == 0, done.stderr
    assert f"_OPSTUI_COMPLETE=complete_{shell}" in done.stdout
    assert "opstui" in done.stdout
    assert sorted(p.name for p in home.iterdir()) == ["opstui.toml"]  # nothing installed


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_show_and_install_completion_from_bash(home: Path) -> None:
    """``--show-completion`` and ``--install-completion`` detect the shell they run under."""
    env = _env(home, {})
    # `; exit $?` keeps bash from exec'ing opstui: bash stays its parent.
    shown = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", "opstui --show-completion; exit $?"],
        capture_output=True,
        text=True,
        cwd=home,
        env=env,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == opstui(home, _OPSTUI_COMPLETE="source_bash").stdout.strip()
    installed = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", "opstui --install-completion; exit $?"],
        capture_output=True,
        text=True,
        cwd=home,
        env=env,
        timeout=60,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    script = home / ".bash_completions" / "opstui.sh"
    assert script.read_text(encoding="utf-8").strip() == shown.stdout.strip()
    assert f"source '{script}'" in (home / ".bashrc").read_text(encoding="utf-8")


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_itself_completes_with_the_script(home: Path) -> None:
    script = opstui(home, _OPSTUI_COMPLETE="source_bash").stdout
    probe = (
        f"{script}\n"
        "COMP_WORDS=(opstui run w); COMP_CWORD=2; _opstui_completion opstui\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", probe],
        capture_output=True,
        text=True,
        cwd=home,
        env=_env(home, {}),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["web-api"]


# --- the values ----------------------------------------------------------------


def test_pipeline_names_from_the_config(home: Path) -> None:
    assert offered(home, "opstui run ") == ["etl", "train-churn", "web-api"]
    assert offered(home, "opstui run we") == ["web-api"]
    assert offered(home, "opstui run x") == []


def test_zsh_and_fish_get_the_descriptions(home: Path) -> None:
    zsh = opstui(home, _OPSTUI_COMPLETE="complete_zsh", _TYPER_COMPLETE_ARGS="opstui run we")
    assert zsh.returncode == 0, zsh.stderr
    assert zsh.stdout.strip() == """_arguments '*: :(("web-api":"the HTTP service"))'"""
    fish = opstui(
        home,
        _OPSTUI_COMPLETE="complete_fish",
        _TYPER_COMPLETE_FISH_ACTION="get-args",
        _TYPER_COMPLETE_ARGS="opstui run ",
    )
    assert fish.returncode == 0, fish.stderr
    assert fish.stdout.splitlines() == ["etl", "train-churn", "web-api\tthe HTTP service"]


def test_environments(home: Path) -> None:
    assert offered(home, "opstui rollback ") == ["production", "staging"]
    assert offered(home, "opstui run web-api -e p") == ["production"]
    assert offered(home, "opstui run web-api --environment ") == ["production", "staging"]


def test_models_from_the_config_and_the_store(home: Path, sample_store: Path) -> None:
    # --store typed before the command or after it
    assert offered(home, f"opstui --store {sample_store} models ") == ["churn", "fraud"]
    assert offered(home, f"opstui models --store {sample_store} f") == ["fraud"]
    assert offered(home, "opstui retrain ") == ["churn"]  # [models] of opstui.toml only
    # drift takes a model or the pipeline that trains it
    assert offered(home, f"opstui drift --store {sample_store} ") == [
        "churn",
        "fraud",
        "train-churn",
    ]
    assert offered(home, f"opstui drift set-reference --store {sample_store} c") == ["churn"]


def test_retry_offers_the_runs_that_failed(home: Path, sample_store: Path) -> None:
    """``retry`` takes a run id: each pipeline's latest run that a retry accepts."""
    ids = offered(home, f"opstui --store {sample_store} retry ")
    assert ids
    with Store(sample_store, create=False) as store:
        # as read: a run recorded running whose heartbeat stopped is lost
        assert {get_run(store, int(i)).status for i in ids} <= set(RETRYABLE)
    fish = opstui(
        home,
        _OPSTUI_COMPLETE="complete_fish",
        _TYPER_COMPLETE_FISH_ACTION="get-args",
        _TYPER_COMPLETE_ARGS=f"opstui --store {sample_store} retry ",
    )
    assert [line.split("\t")[0] for line in fish.stdout.splitlines()] == ids
    assert all("\t" in line for line in fish.stdout.splitlines())  # the pipeline, the state


def test_a_rollback_pipeline_from_the_store_too(home: Path, sample_store: Path) -> None:
    names = offered(home, f"opstui --store {sample_store} rollback production --pipeline ")
    assert {"etl", "web-api", "train-churn"} <= set(names)  # the config's
    assert "fraud-model" in names  # the store's


# --- what may go wrong ------------------------------------------------------------


def test_a_broken_config_offers_nothing(home: Path) -> None:
    (home / "opstui.toml").write_text("[pipelines\nnot toml", encoding="utf-8")
    assert offered(home, "opstui run ") == []
    assert offered(home, "opstui --config nowhere.toml run ") == []


def test_a_broken_config_still_offers_the_store(home: Path, sample_store: Path) -> None:
    (home / "opstui.toml").write_text("[pipelines\nnot toml", encoding="utf-8")
    assert offered(home, f"opstui --store {sample_store} models ") == ["churn", "fraud"]


def test_no_store_offers_nothing_and_creates_none(home: Path, tmp_path: Path) -> None:
    (home / "opstui.toml").unlink()
    missing = tmp_path / "nowhere" / "runs.db"
    assert offered(home, f"opstui --store {missing} models ") == []
    assert offered(home, "opstui models ") == []  # the default store, not there
    not_a_store = home / "junk.db"
    not_a_store.write_bytes(b"not sqlite at all" * 100)
    assert offered(home, f"opstui --store {not_a_store} models ") == []
    assert not missing.exists()
    assert not (home / "opstui.db").exists()
    assert not (Path(os.environ["XDG_STATE_HOME"]) / "opstui").exists()


def test_a_tab_never_migrates_an_older_store(home: Path, tmp_path: Path) -> None:
    older = tmp_path / "older.db"
    with Store(older) as store:
        store.conn.execute("INSERT INTO models (name, created_at) VALUES ('old-model', 0)")
        store.conn.execute("PRAGMA user_version = 6")  # as an opstui of schema 6 left it
    assert offered(home, f"opstui --store {older} models ") == ["churn"]  # the config's only
    conn = sqlite3.connect(older)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 6
    assert conn.execute("SELECT name FROM models").fetchall() == [("old-model",)]
    conn.close()


def test_a_locked_store_offers_the_config_alone_quickly(home: Path, sample_store: Path) -> None:
    with sqlite3.connect(sample_store, isolation_level=None) as locker:
        locker.execute("PRAGMA journal_mode = DELETE")  # so EXCLUSIVE locks readers out too
        locker.execute("BEGIN EXCLUSIVE")
        try:
            started = time.perf_counter()
            names = offered(home, f"opstui --store {sample_store} models ")
            took = time.perf_counter() - started
        finally:
            locker.execute("ROLLBACK")
            locker.execute("PRAGMA journal_mode = WAL")
    assert names == ["churn"]  # from opstui.toml; the store was busy
    print(f"completion against a locked store: {took:.2f} s")


def test_completion_loads_neither_textual_nor_scikit_learn(home: Path) -> None:
    probe = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: print(json.dumps([m for m in ('textual', 'sklearn', 'scipy',"
        " 'psycopg') if m in sys.modules]), file=sys.stderr))\n"
        "sys.argv = ['opstui']\n"
        "from opstui.cli import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=home,
        env=_env(
            home,
            {"_OPSTUI_COMPLETE": "complete_bash", "COMP_WORDS": "opstui run ", "COMP_CWORD": "2"},
        ),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["etl", "train-churn", "web-api"]
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []


def test_completion_latency_is_printed(home: Path, sample_store: Path) -> None:
    """Measured, not asserted (bench/ is where performance is judged)."""
    for line in ("opstui run ", f"opstui --store {sample_store} models "):
        times = []
        for _ in range(5):
            started = time.perf_counter()
            assert offered(home, line)
            times.append(time.perf_counter() - started)
        print(f"completion of {line.split()[-1]!r}: median {statistics.median(times):.3f} s")


# --- --version --------------------------------------------------------------------------


def test_version_names_opstui_textual_python_and_the_schema(home: Path) -> None:
    done = opstui(home, "--version")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(" ")[0] for line in lines] == ["opstui", "textual", "python", "store"]
    from importlib import metadata

    assert lines[0] == f"opstui {metadata.version('opstui')}"
    assert lines[1] == f"textual {metadata.version('textual')}"
    assert lines[2] == "python " + ".".join(map(str, sys.version_info[:3]))
    assert lines[3] == f"store schema {SCHEMA_VERSION}"


def test_version_does_not_import_textual(home: Path) -> None:
    probe = (
        "import sys\nsys.argv = ['opstui', '--version']\n"
        "from opstui.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('textual' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines()[-1] == "False"


def test_names_with_control_characters_are_not_offered(home: Path, tmp_path: Path) -> None:
    """A name from data with an escape sequence or a line break never reaches the shell."""
    from opstui.store import models as store_models

    path = tmp_path / "evil.db"
    with Store(path) as store, store.write() as tx:
        for name in ("fraud", "evil\x1b]52;c;aGk=\x07", "two\nlines", "rtl\u202e"):
            store_models.ensure_model(tx, name, now=1_800_000_000.0)
    (home / "opstui.toml").unlink()
    assert offered(home, f"opstui --store {path} models ") == ["fraud"]
