"""The layering rules of docs/ARCHITECTURE.md, checked.

What each package may import of the others is the layer table, written as
import-linter contracts in pyproject.toml (``[tool.importlinter]``) and run
here with ``lint-imports``; the package has no import cycle (an ast-built
graph, below); and the third-party rules the contracts do not cover (Textual
only in tui/, no heavy import on the fast paths) are checked with ``ast``.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "opstui"
# psycopg too: an SQLite store never loads the PostgreSQL driver.
HEAVY = ("textual", "sklearn", "scipy", "psycopg")


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


def test_the_console_starts_without_an_http_client() -> None:
    """A console with no endpoint configured never makes a request: its read
    model takes the backoff rule from a module without HTTP (httpx and its
    dependencies were a sixth of the launch's imports)."""
    code = "import opstui.cli, opstui.tui.app, opstui.tui.screens.dashboard, opstui.views.snapshot"
    probe = f"{code}\nimport sys\nprint('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


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


# --- no import cycle ----------------------------------------------------------

#: Import edges left out of the cycle check, each with why. Only for cycles
#: being removed: this list only shrinks.
#: Edges the cycle test leaves out, each with its reason (none today).
KNOWN_CYCLE_EDGES: set[tuple[str, str]] = set()


def _module_name(path: Path, root: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """``(module, name)`` of every import, at module level or in a function,
    except under ``if TYPE_CHECKING:`` (its ``else`` counts)."""

    def __init__(self, package: str) -> None:
        self.package = package  # what a relative import is relative to
        self.found: list[tuple[str, str | None]] = []

    def visit_If(self, node: ast.If) -> None:
        if _type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.extend((a.name, None) for a in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            anchor = self.package.split(".")[: len(self.package.split(".")) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        self.found.extend((base, a.name) for a in node.names)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the package at ``root`` it imports."""
    paths = {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}

    def known(name: str) -> str | None:
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        is_package = path.name == "__init__.py"
        imports = _Imports(module if is_package else module.rpartition(".")[0])
        imports.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        targets = set()
        for base, name in imports.found:
            # ``from pkg import mod`` imports the module pkg.mod; ``from mod import f``, mod.
            target = f"{base}.{name}" if name and f"{base}.{name}" in paths else known(base)
            if target is not None and target != module:
                targets.add(target)
        graph[module] = targets
    return graph


def _components(graph: dict[str, set[str]]) -> Iterator[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(v: str) -> Iterator[set[str]]:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                yield from visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                yield component

    for v in sorted(graph):
        if v not in index:
            yield from visit(v)


def _shortest_cycle(graph: dict[str, set[str]], start: str, within: set[str]) -> list[str]:
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & within):
                if w == start:
                    path = [v]
                    while path[0] != start:
                        path.insert(0, came_from[path[0]])
                    return [*path, start]
                if w not in came_from:
                    came_from[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError(f"{start} is on no cycle")  # a component always has one


def find_cycles(graph: dict[str, set[str]]) -> list[str]:
    """Each import cycle as ``a -> b -> a``: the shortest through every module
    that is on one, without repeats."""
    found: list[str] = []
    for component in _components(graph):
        for start in sorted(component):
            path = _shortest_cycle(graph, start, component)
            turn = path.index(min(path[:-1]))
            shown = " -> ".join([*path[turn:-1], *path[:turn], path[turn]])
            if shown not in found:
                found.append(shown)
    return sorted(found)


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph(SRC)
    for source, target in KNOWN_CYCLE_EDGES:
        graph.get(source, set()).discard(target)
    assert find_cycles(graph) == []


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_the_cycle_finder_finds_a_deliberate_cycle(tmp_path: Path) -> None:
    pkg = _write(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            # a -> b -> c -> a, the last import inside a function.
            "a.py": "from pkg import b\nfrom pkg.d import x\n",
            "b.py": "import pkg.c\n",
            "c.py": "def f():\n    from pkg.a import y\n",
            # d's import of a is for type checkers only: no cycle.
            "d.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\nx = 1\n"
            ),
            # Relative imports: sub.e -> f -> sub.e.
            "sub/__init__.py": "",
            "sub/e.py": "from .. import f\n",
            "f.py": "from .sub import e\n",
        },
    )
    assert find_cycles(import_graph(pkg)) == [
        "pkg.a -> pkg.b -> pkg.c -> pkg.a",
        "pkg.f -> pkg.sub.e -> pkg.f",
    ]
    # Without the violation, nothing.
    (pkg / "c.py").write_text("def f():\n    return 1\n", encoding="utf-8")
    (pkg / "f.py").write_text("", encoding="utf-8")
    assert find_cycles(import_graph(pkg)) == []


# --- the layer table: import-linter's contracts in pyproject.toml ---------------


def lint_imports(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert command, "lint-imports is missing: pip install -e '.[test]'"
    return subprocess.run(
        [command, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def test_the_layer_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_layer_contracts_fail_on_a_deliberate_violation(tmp_path: Path) -> None:
    shutil.copytree(SRC, tmp_path / "src" / "opstui")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    # The store reaching up to the CLI, inside a function.
    with (tmp_path / "src" / "opstui" / "store" / "fields.py").open("a", encoding="utf-8") as f:
        f.write("\n\ndef _upward() -> None:\n    import opstui.cli.output  # noqa\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}
    result = lint_imports(tmp_path, env)
    assert result.returncode != 0, result.stdout
    assert "store imports the leaves only BROKEN" in result.stdout
    assert "opstui.store.fields -> opstui.cli.output" in result.stdout
