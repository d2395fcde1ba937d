"""How the console's parts talk: workers post messages, refreshes merge, screens keep to themselves.

The rule of when to read is tested without an app (``RefreshGate``), then in
one: a read held in flight by the test shows that ticks meanwhile are
skipped and that any number of requests meanwhile owe exactly one read.
"""

from __future__ import annotations

import ast
import threading
from pathlib import Path
from typing import Any

import pytest

from opstui.tui.refresh import RefreshGate
from opstui.views.snapshot import SnapshotReader
from tests.test_tui import settle
from tests.test_tui_resilience import until
from tests.tui_support import make_app

TUI = Path(__file__).resolve().parent.parent / "src" / "opstui" / "tui"


# --- the refresh rule, without an app ---------------------------------------------------


def test_a_tick_during_a_read_is_skipped() -> None:
    gate = RefreshGate()
    assert gate.tick()  # idle: read
    assert not gate.tick()  # in flight: skipped, not queued
    assert not gate.done()  # nothing owed
    assert not gate.busy


def test_requests_during_a_read_owe_one_read_after_it() -> None:
    gate = RefreshGate()
    assert gate.request()
    assert not any([gate.request(), gate.request(), gate.tick(), gate.request()])
    assert gate.done()  # one read owed, however many asked
    assert gate.request()  # ... which the app starts now
    assert not gate.done()


def test_a_failed_read_owes_nothing() -> None:
    """A failing read is retried by the next tick, not back to back."""
    gate = RefreshGate()
    gate.request()
    gate.request()
    gate.failed()
    assert not gate.busy
    assert gate.tick()


# --- the same in the app ------------------------------------------------------------------


async def test_a_slow_read_skips_ticks_and_a_request_meanwhile_runs_once_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path, refresh=3600.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        release = threading.Event()
        reads: list[float] = []
        snapshot = SnapshotReader.snapshot

        def slow(self: SnapshotReader) -> Any:
            reads.append(0.0)
            release.wait(10)
            return snapshot(self)

        monkeypatch.setattr(SnapshotReader, "snapshot", slow)
        app.tick()
        await until(pilot, lambda: len(reads) == 1, "the read started")
        for _ in range(5):
            app.tick()  # skipped: a read is in flight
        await pilot.pause(0.1)
        assert len(reads) == 1
        for _ in range(5):
            app.refresh_now()  # owed: one read after this one
        await pilot.pause(0.1)
        assert len(reads) == 1 and app.reading
        release.set()
        await until(pilot, lambda: len(reads) == 2, "the owed read")
        await until(pilot, lambda: not app.reading, "the owed read landed")
        await pilot.pause(0.2)
        assert len(reads) == 2  # once, not five times


# --- who may import whom ----------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, type-only imports included."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def test_screens_and_widgets_never_import_the_app() -> None:
    """What a screen needs comes with it when built, what it asks for is a message:
    no screen reaches the app, not even for a type (the old app <-> screens cycle)."""
    app_modules = {"opstui.tui.app", "opstui.tui.live"}
    files = [*sorted((TUI / "screens").glob("*.py")), TUI / "widgets.py", TUI / "messages.py"]
    offenders = {p.name: sorted(_imports(p) & app_modules) for p in files}
    assert {k: v for k, v in offenders.items() if v} == {}
    # Screens import widgets, never each other (modals and the Detail base aside).
    for p in sorted((TUI / "screens").glob("*.py")):
        others = {
            m
            for m in _imports(p)
            if m.startswith("opstui.tui.screens.")
            and m.split(".")[3] not in ("base", "modals", p.stem)
        }
        assert others == set(), p.name


def test_workers_post_messages_instead_of_calling_into_the_event_loop() -> None:
    calls = {
        p.relative_to(TUI).as_posix()
        for p in TUI.rglob("*.py")
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Attribute) and node.attr == "call_from_thread"
    }
    assert calls == set()
