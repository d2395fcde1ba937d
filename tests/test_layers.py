"""The layering rules of DESIGN.md, checked."""

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


def test_store_imports_nothing_above_it() -> None:
    allowed_prefixes = ("opstui.store", "opstui.errors", "opstui.timeutil")
    for path in (SRC / "store").rglob("*.py"):
        for module in imported_modules(path):
            if module.startswith("opstui"):
                assert module.startswith(allowed_prefixes), f"{path.name} imports {module}"


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
        "import opstui.store, opstui.track, opstui.config, opstui.store.importer, opstui.drift_job"
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
            assert not module.startswith(("opstui.store", "opstui.sources", "httpx")), (
                f"{path.name} imports {module}"
            )


def test_sources_and_runner_stay_below_the_cli() -> None:
    for layer in ("sources", "runner"):
        for path in (SRC / layer).rglob("*.py"):
            for module in imported_modules(path):
                assert not module.startswith(("opstui.cli", "opstui.tui", "typer")), (
                    f"{layer}/{path.name} imports {module}"
                )
