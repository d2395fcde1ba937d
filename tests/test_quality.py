"""Lint, format and type checks run with the tests (one command for CI)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ["src", "tests", "bench", "scripts", "examples"]


def tool(name: str) -> str:
    # Prefer the tool installed beside this interpreter (the project's venv).
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


def check(*argv: str) -> None:
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_lint() -> None:
    check(tool("ruff"), "check", *TARGETS)


def test_ruff_format() -> None:
    check(tool("ruff"), "format", "--check", *TARGETS)


@pytest.mark.slow
def test_mypy() -> None:
    check(tool("mypy"))
