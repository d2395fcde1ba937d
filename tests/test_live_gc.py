"""The console freezes the heap start-up left once its first snapshot is shown
(``LiveApp.settle_gc``; why and the figures: bench/tui.py part 3), in a
terminal only, and thaws it when it ends."""

from __future__ import annotations

import gc
from pathlib import Path

from .test_tui import settle
from .tui_support import make_app


async def test_the_heap_is_frozen_after_the_first_snapshot_and_thawed_at_the_end(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path)
    app.gc_settle = True  # as in a terminal (run_test is headless)
    assert gc.get_freeze_count() == 0
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for _ in range(100):  # a second after the first snapshot
            if gc.get_freeze_count():
                break
            await pilot.pause(0.05)
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


async def test_headless_the_collector_is_left_as_it_is(tmp_path: Path) -> None:
    app = make_app(tmp_path)  # gc_settle None: only in a terminal
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.pause(1.5)
        assert gc.get_freeze_count() == 0
