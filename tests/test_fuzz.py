"""Property-based fuzzing of every door into the store, on a bounded budget.

The targets and their contract live in ``bench/_fuzz.py``: hostile
``opstui import`` lines, ``record`` arguments, feature CSVs and
``opstui.toml`` files must never produce a traceback, a refusal is one
``opstui:`` line that changes nothing, and after an accepted input
``status``, ``status --json``, ``drift`` and the console's snapshot still
read the store. ``bench/fuzz.py`` runs the same targets for longer and
prints cases per second and tracebacks found.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _fuzz import TARGETS, workdir  # (bench/, on pytest's pythonpath)
from hypothesis import HealthCheck, given, settings

#: About 2-4 s per target on a small machine (bench/fuzz.py prints the rates).
BUDGET = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def work() -> Iterator[dict[str, Path]]:
    dirs = {name: workdir(target) for name, target in TARGETS.items()}
    yield dirs
    for path in dirs.values():
        shutil.rmtree(path, ignore_errors=True)


def _check(name: str, work: dict[str, Path], example: Any) -> None:
    found = TARGETS[name].check(work[name], example)
    assert not found, "\n\n".join(found)


@BUDGET
@given(example=TARGETS["import"].strategy)
def test_import_lines(work: dict[str, Path], example: str) -> None:
    _check("import", work, example)


@BUDGET
@given(example=TARGETS["record"].strategy)
def test_record_arguments(work: dict[str, Path], example: tuple[list[str], str | None]) -> None:
    _check("record", work, example)


@BUDGET
@given(example=TARGETS["features"].strategy)
def test_feature_csvs(work: dict[str, Path], example: bytes) -> None:
    _check("features", work, example)


@BUDGET
@given(example=TARGETS["config"].strategy)
def test_opstui_toml(work: dict[str, Path], example: str) -> None:
    _check("config", work, example)
