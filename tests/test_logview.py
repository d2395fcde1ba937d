"""The pipeline screen's log viewer: a window of a stage's whole log by true line number.

The store's reads (``log_window``, ``log_search``, ``log_chunks``) run on both
back ends; the viewer's keys, follow, search, wrap, save and copy run in
Pilot on logs of 50,001 and 1,000,000 lines.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from textual.widgets import Footer, Input

from opstui.config.load import parse_config
from opstui.errors import ConfigError
from opstui.store import history
from opstui.store import runs as store_runs
from opstui.store.db import Store
from opstui.tui.app import OpstuiApp
from opstui.tui.logview import LogView, compile_search
from opstui.tui.screens.pipeline import PipelineScreen
from tests.conftest import Clock
from tests.test_tui import settle, text_of
from tests.tui_support import make_app, sample_config


def line_text(i: int, n: int) -> str:
    """Line ``i`` of an ``n``-line log: the last FATAL, every 1000th an ERROR."""
    if i == n:
        return f"FATAL line {i}: out of memory"
    if i % 1000 == 0:
        return f"ERROR line {i}: retrying"
    if i % 777 == 0:
        return f"WARNING line {i}: slow"
    return f"INFO line {i}"


def long_log(path: Path, n: int, name: str = "longlog") -> int:
    """A store at ``path`` with one run of ``name`` whose stage logged ``n`` lines; its id."""
    with Store(path) as store:
        run_id, _ = store_runs.create_run(store, name)
        sid = store_runs.start_stage(store, run_id, "train")
        now = time.time()
        for start in range(1, n + 1, 50_000):
            rows = [
                (sid, now, "log", line_text(i, n)) for i in range(start, min(n, start + 49_999) + 1)
            ]
            store_runs.append_logs(store, rows)
    return sid


# -- the store --------------------------------------------------------------


def _interleaved(store: Store, clock: Clock, n: int) -> tuple[int, int]:
    """Two stages logging in turn, so a stage's ids are not its line numbers."""
    run_id, _ = store_runs.create_run(store, "p")
    a = store_runs.start_stage(store, run_id, "a")
    b = store_runs.start_stage(store, run_id, "b")
    for i in range(1, n + 1):
        store_runs.append_logs(
            store, [(a, clock(), "log", f"a {i}"), (b, clock(), "log", f"b {i}")]
        )
    return a, b


def test_a_window_is_numbered_by_line_from_either_end(store: Store, clock: Clock) -> None:
    a, b = _interleaved(store, clock, 30)
    assert history.log_count(store, a) == 30
    tail = history.log_window(store, a, None, 5)
    assert (tail.total, tail.first) == (30, 26)
    assert [x.line for x in tail.lines] == [f"a {i}" for i in range(26, 31)]
    head = history.log_window(store, b, 1, 3)
    assert [x.line for x in head.lines] == ["b 1", "b 2", "b 3"]
    middle = history.log_window(store, b, 17, 4)  # read from the end: nearer
    assert middle.first == 17 and [x.line for x in middle.lines] == [
        f"b {i}" for i in range(17, 21)
    ]
    past = history.log_window(store, a, 29, 5)  # moved back to end at the last line
    assert past.first == 26 and past.lines[-1].line == "a 30"
    assert history.log_window(store, 999, None, 5) == history.LogWindow(0, 1, [])


def test_search_and_chunks_walk_the_whole_log(store: Store, clock: Clock) -> None:
    a, _ = _interleaved(store, clock, 25)
    found = history.log_search(store, a, re.compile(r"a \d*7$"))
    assert found == history.LogSearch(2, [7, 17], 25)
    capped = history.log_search(store, a, re.compile("a"), limit=4)
    assert (capped.matches, capped.lines) == (25, [1, 2, 3, 4])
    chunks = list(history.log_chunks(store, a, chunk=10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert chunks[2][-1] == "a 25"


# -- the config -------------------------------------------------------------


def test_log_patterns_and_osc52_in_the_tui_table() -> None:
    tui = parse_config('[tui]\nlog_error = "BOOM"\nlog_warn = "meh"\nosc52 = true\n').tui
    assert (tui.log_error, tui.log_warn, tui.osc52) == ("BOOM", "meh", True)
    assert parse_config("").tui.osc52 is False
    with pytest.raises(ConfigError) as err:
        parse_config('[tui]\nlog_warn = "(unclosed"\n')
    assert "tui.log_warn" in str(err.value) and "\n" not in str(err.value)


def test_search_falls_back_to_literal_text() -> None:
    pattern, regex = compile_search("a(b")
    assert not regex and pattern.search("xa(by")
    pattern, regex = compile_search("line \\d+0$")
    assert regex and pattern.search("INFO LINE 10")


# -- the viewer ---------------------------------------------------------------


def _open_log(tmp_path: Path, n: int) -> OpstuiApp:
    path = tmp_path / "long.db"
    long_log(path, n)
    config = sample_config(tmp_path, '[pipelines.longlog]\nkind = "mlops"\n')
    return make_app(tmp_path, store=path, config=config, clock=time.time)


def following(view: LogView) -> bool:
    return view.follow  # (a function: mypy keeps no narrowing across a key press)


def _screen(app: OpstuiApp) -> tuple[PipelineScreen, LogView]:
    screen = app.screen
    assert isinstance(screen, PipelineScreen)
    return screen, screen.query_one(LogView)


@pytest.mark.parametrize("n", [50_001, 1_000_000], ids=["50001", "1000000"])
async def test_following_shows_the_last_line_and_the_true_count(tmp_path: Path, n: int) -> None:
    app = _open_log(tmp_path, n)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_key("pipeline:longlog")
        await settle(pilot)
        _, view = _screen(app)
        shown = text_of(app)
        assert f"{n:,} lines · following" in shown
        assert f"E {n} FATAL line {n}: out of memory" in shown, shown
        assert view.total == n and view.cursor == n


async def test_keys_move_by_true_lines_and_no_press_is_lost(tmp_path: Path) -> None:
    app = _open_log(tmp_path, 50_001)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_key("pipeline:longlog")
        await settle(pilot)
        _, view = _screen(app)
        view.focus()
        await pilot.press("g")
        assert (view.top, view.follow) == (1, False)
        page = view.page
        await pilot.press(*["pagedown"] * 20)  # no wait between them
        assert view.top == 1 + 20 * page
        await settle(pilot)
        assert view.top == 1 + 20 * page  # a read that lands moves nothing
        assert f"{1 + 20 * page} INFO line {1 + 20 * page}" in text_of(app)
        await pilot.press("ctrl+d")
        assert view.top == 1 + 20 * page + page // 2
        await pilot.press("ctrl+u", "j", "j", "k")
        assert view.top == 1 + 20 * page
        await pilot.press("colon", *"40000", "enter")
        assert view.cursor == 40_000
        await settle(pilot)
        assert "E 40000 ERROR line 40000: retrying" in text_of(app)
        await pilot.press("G")
        assert view.follow and view.cursor == 50_001
        await settle(pilot)
        assert "FATAL line 50001" in text_of(app)
        await pilot.press("f")
        assert not following(view)
        await pilot.press("f")
        assert following(view)


async def test_search_is_shown_while_typed_and_finds_true_lines(tmp_path: Path) -> None:
    app = _open_log(tmp_path, 50_001)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_key("pipeline:longlog")
        await settle(pilot)
        screen, view = _screen(app)
        await pilot.press("slash", *"ERROR line 4\\d{4}")
        box = screen.query_one("#search", Input)
        footer = screen.query_one(Footer)
        assert box.region.height == 1 and box.region.bottom <= footer.region.y
        assert "ERROR line 4\\d{4}" in text_of(app)
        await pilot.press("enter")
        await settle(pilot)
        assert screen.hits is not None and screen.hits.matches == 10
        assert view.cursor == 40_000 and "1/10" in str(
            screen.query_one("#log-panel").border_subtitle
        )
        await pilot.press("n")
        assert view.cursor == 41_000
        await pilot.press("N", "N")
        assert view.cursor == 49_000  # wraps to the last match
        await settle(pilot)
        assert "E 49000 ERROR line 49000" in text_of(app)
        await pilot.press("slash", *"line 7(", "enter")  # not a regex: literal
        await settle(pilot)
        assert screen.literal and "not a regex" in str(
            screen.query_one("#log-panel").border_subtitle
        )


async def test_wrap_save_copy_and_markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "long.db"
    with Store(path) as store:
        run_id, _ = store_runs.create_run(store, "longlog")
        sid = store_runs.start_stage(store, run_id, "train")
        lines = [
            "Traceback (most recent call last):",
            '  File "train.py", line 3, in <module>',
            "    fit(" + "x, " * 40 + ")",
            "ValueError: bad",
            "WARNING disk 91%",
            "plain \x1b]52;c;aGk=\x07 line",
        ]
        store_runs.append_logs(store, [(sid, time.time(), "log", x) for x in lines])
    config = sample_config(tmp_path, '[pipelines.longlog]\nkind = "mlops"\n')
    app = make_app(tmp_path, store=path, config=config, clock=time.time)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_key("pipeline:longlog")
        await settle(pilot)
        _, view = _screen(app)
        shown = text_of(app)
        assert "E 1 Traceback" in shown and 'T 2   File "train.py"' in shown
        assert "T 3     fit(x" in shown and "E 4 ValueError" in shown and "W 5 WARNING" in shown
        assert "\\x1b]52" in shown and "\x1b]52" not in shown
        assert "…" in shown  # the long line is cut
        await pilot.press("w")
        assert view.wrap
        shown = text_of(app)
        # Cut at a word's end, the rest under the text, 2 cells in: no number lost.
        assert "T 3     fit(x, x" in shown and "\n│       x, x, x" in shown
        assert "x, x, )" in shown and "E 4 ValueError" in shown  # all of it, numbers kept
        view.focus()
        await pilot.press("y")  # off by default: says how to turn it on
        assert any("osc52 = true" in n.message for n in app._notifications)
        await pilot.press("s")
        await settle(pilot)
        saved = tmp_path / f"longlog-{run_id}-train.log"
        assert saved.read_text().splitlines()[0] == "Traceback (most recent call last):"
        assert len(saved.read_text().splitlines()) == 6 and "\x1b" not in saved.read_text()
        assert any(f"saved 6 lines to {saved.name}" in n.message for n in app._notifications)
    config = sample_config(tmp_path, '[tui]\nosc52 = true\n[pipelines.longlog]\nkind = "mlops"\n')
    app = make_app(tmp_path, store=path, config=config, clock=time.time)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_key("pipeline:longlog")
        await settle(pilot)
        _, view = _screen(app)
        await settle(pilot)
        await pilot.press("y")
        assert app.clipboard == "plain \\x1b]52;c;aGk=\\x07 line"
