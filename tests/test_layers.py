"""The layering rules of docs/ARCHITECTURE.md, checked."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "opstui"
HEAVY = ("textual", "sklearn", "scipy")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_module_outside_tui_imports_textual() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        if "tui" in path.relative_to(SRC).parts:
            continue
        if any(m == "textual" or m.startswith("textual.") for m in imported_modules(path)):
            offenders.append(str(path.relative_to(SRC)))
    assert offenders == []


def assert_imports_only(layer: str, allowed: tuple[str, ...]) -> None:
    """Every opstui module that ``layer``'s files import starts with one of ``allowed``."""
    for path in (SRC / layer).rglob("*.py"):
        for module in imported_modules(path):
            if module == "opstui" or module.startswith("opstui."):
                assert module.startswith(allowed), f"{layer}/{path.name} imports {module}"


def test_store_imports_nothing_above_it() -> None:
    assert_imports_only("store", ("opstui.store", "opstui.errors", "opstui.timeutil"))


def test_config_imports_nothing_above_it() -> None:
    assert_imports_only("config", ("opstui.config", "opstui.errors", "opstui.timeutil"))


def test_drift_sits_on_analysis_config_and_store() -> None:
    assert_imports_only(
        "drift",
        (
            "opstui.drift",
            "opstui.analysis",
            "opstui.config",
            "opstui.store",
            "opstui.errors",
            "opstui.timeutil",
        ),
    )


def test_views_read_below_the_console_and_the_cli() -> None:
    # The read models the console and the CLI share: never the TUI or the CLI.
    # sources.poller: an endpoint's next poll time comes from its backoff rule.
    assert_imports_only(
        "views",
        (
            "opstui.views",
            "opstui.drift",
            "opstui.analysis",
            "opstui.config",
            "opstui.store",
            "opstui.sources.poller",
            "opstui.errors",
            "opstui.timeutil",
        ),
    )


def loaded_after(code: str) -> dict[str, bool]:
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps({{m: m in sys.modules for m in {list(HEAVY)!r}}}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, bool] = json.loads(out.strip().splitlines()[-1])
    return result


def test_core_layers_import_without_textual_or_sklearn() -> None:
    code = (
        "import opstui.store, opstui.track, opstui.config, opstui.store.importer, "
        "opstui.drift.check, opstui.drift.reference, opstui.drift.records, "
        "opstui.views.snapshot, opstui.views.endpoints, opstui.views.models"
    )
    assert loaded_after(code) == dict.fromkeys(HEAVY, False)


def test_help_and_status_import_neither_textual_nor_sklearn(tmp_path: Path) -> None:
    from opstui.track import Tracker

    store = tmp_path / "s.db"
    with Tracker(store) as tracker, tracker.run("p", stages=["a"]) as run, run.stage("a"):
        pass
    argvs = (
        ["--help"],
        ["status", "--store", str(store)],
        ["status", "--json", "--store", str(store)],
        ["drift", "--help"],
        ["drift", "check", "--help"],
    )
    for argv in argvs:
        code = (
            "import sys\n"
            f"sys.argv = ['opstui', *{argv!r}]\n"
            "from opstui.cli import app\n"
            "try:\n"
            "    app()\n"
            "except SystemExit as exc:\n"
            "    assert exc.code in (0, None), exc.code\n"
        )
        assert loaded_after(code) == dict.fromkeys(HEAVY, False), argv


def test_analysis_is_pure_arithmetic() -> None:
    # analysis/ sees numbers only: no store, no network, no config.
    for path in (SRC / "analysis").rglob("*.py"):
        for module in imported_modules(path):
            assert not module.startswith(
                ("opstui.store", "opstui.sources", "opstui.config", "httpx")
            ), f"{path.name} imports {module}"


def test_sources_and_runner_stay_below_the_cli() -> None:
    for layer in ("sources", "runner"):
        for path in (SRC / layer).rglob("*.py"):
            for module in imported_modules(path):
                assert not module.startswith(("opstui.cli", "opstui.tui", "typer")), (
                    f"{layer}/{path.name} imports {module}"
                )
