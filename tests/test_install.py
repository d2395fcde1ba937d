"""opstui installed as a tool: its wheel, a venv of its own, run from elsewhere. SLOW.

Marked ``slow``: it builds the wheel (``pip wheel . --no-deps``, build
isolation: hatchling from the package registry), makes a fresh venv
(``python -m venv``) and installs the wheel there with its dependencies from
the package registry pip is configured with (numpy, scipy, scikit-learn,
Textual...), then runs ``opstui --version`` and a 10 s headless demo from a
directory outside the checkout, and reads the demo's store with ``opstui
status``. What it shows: the wheel carries everything the demo reads
(the bundled history as ``opstui/_sample_runs``, the themes as
``opstui/_themes``, ``example.toml``, the stage supervisor), and nothing
comes from the checkout. Each step's time is printed (``-s``).

``pipx install`` is tried too where ``pipx`` is on PATH (it is not a
dependency of the test extra); without it that test skips and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from opstui.store.schema import SCHEMA_VERSION

from .conftest import ROOT, SAMPLE_RUNS

pytestmark = pytest.mark.slow

#: What the demo and the console read at run time, as the wheel must hold it.
PACKAGE_DATA = [
    "opstui/example.toml",
    "opstui/runner/supervise.py",
    *(f"opstui/_sample_runs/{p.name}" for p in sorted(SAMPLE_RUNS.glob("*.jsonl"))),
    *(f"opstui/_themes/{p.name}" for p in sorted((ROOT / "themes").glob("*.toml"))),
]


def _timed(
    what: str, argv: list[str | os.PathLike[str]], ok: tuple[int, ...] = (0,), **kw: object
) -> str:
    started = time.perf_counter()
    done = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        check=False,
        **kw,  # type: ignore[call-overload]
    )
    took = time.perf_counter() - started
    print(f"{what}: {took:.1f} s")
    assert done.returncode in ok, (
        f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    )
    out: str = done.stdout
    return out


def _clean_env(home: Path) -> dict[str, str]:
    """The machine's environment without opstui's variables, the checkout's
    venv or a PYTHONPATH that could lend the checkout's code; HOME in tmp."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPSTUI_", "_OPSTUI_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env["HOME"] = str(home)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    _timed(
        "pip wheel . --no-deps",
        [sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "-q", "-w", dist],
        timeout=600,
    )
    (built,) = dist.glob("opstui-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the wheel installed: its bin/ directory."""
    root = tmp_path_factory.mktemp("install")
    venv = root / "venv"
    env = _clean_env(root)
    _timed("python -m venv", [sys.executable, "-m", "venv", venv], env=env, timeout=300)
    _timed(
        "pip install the wheel and its dependencies",
        [venv / "bin" / "python", "-m", "pip", "install", "-q", wheel],
        env=env,
        timeout=900,
    )
    yield venv / "bin"


def test_the_wheel_holds_what_the_demo_reads(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [p for p in PACKAGE_DATA if p not in names] == []
    modules = {
        f"opstui/{p.relative_to(ROOT / 'src' / 'opstui').as_posix()}"
        for p in (ROOT / "src" / "opstui").rglob("*.py")
    }
    assert sorted(modules - names) == []
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "opstui = opstui.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_installed_opstui_runs_the_demo_from_elsewhere(installed: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _clean_env(tmp_path)
    opstui = installed / "opstui"

    where = _timed(
        "import opstui",
        [installed / "python", "-c", "import opstui; print(opstui.__file__)"],
        cwd=elsewhere,
        env=env,
        timeout=60,
    )
    assert Path(where.strip()).is_relative_to(installed.parent)  # not the checkout

    version = _timed("opstui --version", [opstui, "--version"], cwd=elsewhere, env=env, timeout=60)
    lines = version.splitlines()
    assert lines[0].startswith("opstui ")
    assert lines[1].startswith("textual ")
    assert lines[3] == f"store schema {SCHEMA_VERSION}"

    demo = tmp_path / "demo"
    _timed(
        "opstui demo --headless --duration 10",
        [opstui, "demo", "--headless", "--duration", "10", "--dir", demo],
        cwd=elsewhere,
        env=env,
        timeout=180,
    )
    store = demo / "opstui.db"
    status = json.loads(
        _timed(
            "opstui status --json",
            [opstui, "status", "--json", "--store", store],
            ok=(0, 1),  # 1: a pipeline is failing (the demo's world has failures)
            cwd=elsewhere,
            env=env,
            timeout=60,
        )
    )
    assert "web-api" in json.dumps(status)
    # The bundled history was imported, and the demo's world ran runs of its own.
    bundled = len((SAMPLE_RUNS / "runs.jsonl").read_text(encoding="utf-8").splitlines())
    with sqlite3.connect(store) as conn:
        (runs,) = conn.execute("SELECT count(*) FROM runs").fetchone()
    assert runs > bundled
    assert sorted(p.name for p in elsewhere.iterdir()) == []  # nothing left where it ran


def _pipx() -> str | None:
    """pipx on PATH, else beside this Python (the test extra installs it there)."""
    beside = Path(sys.executable).with_name("pipx")
    return shutil.which("pipx") or (str(beside) if beside.exists() else None)


@pytest.mark.skipif(_pipx() is None, reason="pipx is not installed (the test extra has it)")
def test_pipx_install(wheel: Path, tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    env["PIPX_HOME"] = str(tmp_path / "pipx")
    env["PIPX_BIN_DIR"] = str(tmp_path / "bin")
    env["PIPX_MAN_DIR"] = str(tmp_path / "man")
    pipx = _pipx()
    assert pipx is not None
    _timed("pipx install", [pipx, "install", wheel], env=env, timeout=900)
    out = _timed(
        "pipx's opstui --version",
        [tmp_path / "bin" / "opstui", "--version"],
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert out.startswith("opstui ")
