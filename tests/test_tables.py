"""Every table's keys (vim moves, sorting) and the `/` filters (regex, `!`,
the count on screen), and enter on an event or an audit row (issue 17).

The filter's snapshots (80x24, while typing) are in ``__snapshots__/test_tables/``;
the last test types in the real ``opstui`` in tmux."""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.strip import Strip
from textual.widgets import DataTable, Input

from opstui.store import Store
from opstui.store.acks import acknowledge
from opstui.tui.app import OpstuiApp
from opstui.tui.screens.audit import EMPTY, AuditScreen
from opstui.tui.screens.timeline import TimelineScreen
from opstui.tui.table import FilterBar, LiveTable, RowFilter, sort_key

from .test_tui import board, settle, text_of
from .test_tui_snapshots import ENDPOINT
from .test_tui_tmux import Tmux
from .tui_support import FROZEN, make_app, sample_config, sample_store


def opened(app: OpstuiApp) -> list[str]:
    """Record what the app is asked to open instead of opening it."""
    keys: list[str] = []
    app.open_key = keys.append  # type: ignore[method-assign, assignment]
    return keys


async def press(pilot: Pilot[None], *keys: str) -> None:
    await pilot.press(*keys)
    await pilot.pause(0.05)


# -- the filter ------------------------------------------------------------------


def test_a_filter_is_a_regex_case_insensitive() -> None:
    f = RowFilter.parse("^(web|billing)-")
    assert f.matches("web-api") and f.matches("Billing-worker") and not f.matches("churn-model")
    assert not f.literal and not f.invert


def test_a_leading_bang_inverts_it() -> None:
    f = RowFilter.parse("!model$")
    assert f.invert and not f.matches("churn-model") and f.matches("web-api")
    assert "not matching" in f.tally(2, 4).plain


def test_a_broken_regex_is_matched_as_typed_and_said() -> None:
    f = RowFilter.parse("web(")
    assert f.literal and f.matches("a web(thing)") and not f.matches("web-api")
    assert f.tally(0, 4).plain == "0 of 4 rows · not a regex: matched as typed"


def test_an_empty_filter_matches_everything_and_a_field_is_read() -> None:
    assert RowFilter.parse("").matches("anything") and not RowFilter.parse("!").active
    host = RowFilter.parse("host:ci-.*", ("host",))
    assert host.field == "host" and host.matches("ci-runner-3") and not host.matches("laptop")
    assert RowFilter.parse("!host:ci", ("host",)).matches("laptop")


def test_cells_sort_by_value_words_after_blanks_last() -> None:
    cells = ["2h10m", "58m", "now", "4d03h", "42s", "-", "3m05s"]
    assert sorted(cells, key=sort_key) == ["now", "42s", "3m05s", "58m", "2h10m", "4d03h", "-"]
    assert sorted(["12.5%", "0.05%", "3.4x", "10"], key=sort_key) == [
        "0.05%",
        "3.4x",
        "10",
        "12.5%",
    ]
    assert sorted([Text("b"), "A", "c"], key=sort_key) == ["A", Text("b"), "c"]


async def test_typing_in_the_dashboard_filter_shows_the_text_and_the_count(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        b = board(app)
        await press(pilot, "slash", *"model$")
        lines = text_of(app).splitlines()
        # Above the footer, the text typed and what it leaves: two pipelines
        # of four, no endpoint, both models ("churn", "fraud" hold no "model").
        assert "model$" in lines[-2] and "2 of 6 rows" in lines[-2], lines[-2:]
        assert b.pipelines.keys == ["pipeline:churn-model", "pipeline:fraud-model"]
        await press(pilot, "home", "!")  # the cursor to the start, then invert
        assert "!model$" in text_of(app).splitlines()[-2]
        assert b.pipelines.keys == ["pipeline:billing-worker", "pipeline:web-api"]
        assert "4 of 6 rows · not matching" in text_of(app)
        await press(pilot, "enter")  # back to the table; the filter stays, shown
        assert b.focused is b.pipelines and "!model$" in text_of(app)
        await press(pilot, "escape")
        assert not b.query_one(FilterBar).shown and len(b.pipelines.keys) == 4
        assert "not matching" not in text_of(app)


async def test_a_broken_regex_on_the_dashboard_says_so(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "slash", *"web(")
        assert "0 of 6 rows · not a regex: matched as typed" in text_of(app)


async def test_the_timeline_filter_is_shown_with_its_count(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "T")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, TimelineScreen)
        everything = len(screen.table.keys)
        await press(pilot, "slash", *"^run.*(fraud|churn)")
        shown = len(screen.table.keys)
        assert 0 < shown < everything
        last = text_of(app).splitlines()[-2]
        assert "^run.*(fraud|churn)" in last and f"{shown} of {everything} events" in last


# -- keys on every table ---------------------------------------------------------


async def test_vim_keys_move_the_cursor(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        b = board(app)
        events = b.events
        events.focus()
        await press(pilot, "g")
        assert events.cursor_row == 0
        await press(pilot, "j", "j")
        assert events.cursor_row == 2
        await press(pilot, "k")
        assert events.cursor_row == 1
        await press(pilot, "G")
        assert events.cursor_row == events.row_count - 1
        await press(pilot, "ctrl+u")
        half = events.cursor_row
        assert 0 < events.row_count - 1 - half < events.row_count - 1
        await press(pilot, "ctrl+d")
        assert events.cursor_row == events.row_count - 1
        assert b.by_hand  # the operator chose where to look


async def test_sorting_marks_the_header_survives_a_refresh_and_leaves_worst_first(
    tmp_path: Path,
) -> None:
    store = sample_store(tmp_path)
    app = make_app(tmp_path, store=store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        b = board(app)
        table = b.pipelines
        assert b.selected() == "pipeline:churn-model" and not b.by_hand
        await press(pilot, "greater_than_sign")  # by PIPELINE
        assert table.sort_label == "PIPELINE\u2191" and "PIPELINE\u2191" in text_of(app)
        names = ["billing-worker", "churn-model", "fraud-model", "web-api"]
        assert table.keys == [f"pipeline:{n}" for n in names]
        # The cursor stays on the worst fault, and still follows it.
        assert b.selected() == "pipeline:churn-model" and not b.by_hand
        await press(pilot, "less_than_sign")
        assert table.keys == [f"pipeline:{n}" for n in reversed(names)]
        assert "PIPELINE\u2193" in text_of(app)
        await settle(pilot, ticks=2)  # refreshes keep the sort
        assert table.keys == [f"pipeline:{n}" for n in reversed(names)]
        assert b.selected() == "pipeline:churn-model"
        # Round the columns to no sort: the board's own order, worst first.
        for _ in range(len(table.spec)):
            if table.sort_column is None:
                break
            await press(pilot, "greater_than_sign")
        assert table.sort_column is None and table.keys[0] == "pipeline:churn-model"
        assert "\u2191" not in text_of(app) and "\u2193" not in text_of(app)


async def test_sorting_by_age_sorts_by_time_not_text(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = board(app).events
        table.focus()
        table.sort_column = None
        await press(pilot, "greater_than_sign")  # AGE, youngest first
        ages = [sort_key(cells[0])[1] for _, cells in table.shown_rows]
        assert ages == sorted(ages) and len(set(ages)) > 1


async def test_on_the_timeline_k_is_up_and_kind_moved_to_shift_k(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "T")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, TimelineScreen)
        await press(pilot, "j", "j", "k")
        assert screen.table.cursor_row == 1 and screen.only_kind is None
        await press(pilot, "K")
        assert screen.only_kind == "run"


# -- enter on what a row names ---------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "target"),
    [
        ("run:161", "pipeline:fraud-model"),  # a failed run: its pipeline
        ("deployment:120", "model:fraud"),  # a model's deploy: the model
        ("deployment:135", "pipeline:web-api"),  # a service's deploy: its pipeline
    ],
)
async def test_enter_on_an_event_opens_what_it_names(tmp_path: Path, ref: str, target: str) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        asked = opened(app)
        events = board(app).events
        events.focus()
        assert events.select_key(f"event:{ref}")
        await press(pilot, "enter")
        assert asked == [target]


async def test_an_empty_audit_trail_says_what_would_fill_it(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "a")
        await settle(pilot)
        assert isinstance(app.screen, AuditScreen)
        assert "No operator actions yet" in text_of(app)
        assert EMPTY.startswith("No operator actions yet")


async def test_enter_on_an_audit_row_opens_what_the_action_was_on(tmp_path: Path) -> None:
    store = sample_store(tmp_path)
    with Store(store, clock=lambda: FROZEN) as db:
        acknowledge(db, fault="pipeline:fraud-model:failed:161", target="pipeline:fraud-model",
                    actor="oncall@example")  # fmt: skip
    app = make_app(tmp_path, store=store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "a")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        assert "No operator actions yet" not in text_of(app)
        asked = opened(app)
        await press(pilot, "enter")
        assert asked == ["pipeline:fraud-model"]


def drawn(table: LiveTable) -> list[tuple[str, str]]:
    """(key, the row's line as drawn) top to bottom: DataTable's own order, not ``keys``."""
    out = []
    for y, row in enumerate(table.ordered_rows, start=1):  # (y 0: the header)
        out.append((str(row.key.value), table.render_line(y).text))
    return out


async def test_rows_that_move_are_rearranged_in_place_the_cursor_on_its_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        b = board(app)
        table = b.pipelines
        table.focus()
        await press(pilot, "g", "j", "j")
        chosen, before = table.selected_key, table.keys
        assert chosen == before[2] and b.by_hand
        cleared: list[object] = []
        clear = table.clear

        def spy(*args: Any, **kwargs: Any) -> Any:
            cleared.append(args)
            return clear(*args, **kwargs)

        monkeypatch.setattr(table, "clear", spy)
        # No refresh of the app's own lands between the show below and what
        # is checked (the clean-clone run caught one that did).
        app.paused = True
        for _ in range(200):
            if not app.reading:
                break
            await pilot.pause(0.02)
        snap = app.snapshot
        assert snap is not None
        old_cells = dict(table.shown_rows)
        # The rows in another order and a day later (every age moved): one show.
        b.show(snap._replace(at=snap.at + 86_400, pipelines=snap.pipelines[::-1]))
        await pilot.pause(0.05)
        assert table.keys == before[::-1]
        assert not cleared  # rearranged, not rebuilt
        assert table.selected_key == chosen and table.cursor_row == len(before) - 3
        lines = drawn(table)
        assert [key for key, _ in lines] == table.keys
        for (key, line), (_, cells) in zip(lines, table.shown_rows, strict=True):
            assert key.removeprefix("pipeline:") in line
            assert tuple(table.get_row(key)) == cells  # the cells that changed, updated
        assert any(old_cells[key] != cells for key, cells in table.shown_rows)
        # The sort keys still sort what was rearranged, the cursor on its row.
        await press(pilot, "greater_than_sign")  # by PIPELINE
        names = sorted(before)
        assert table.keys == names == [key for key, _ in drawn(table)]
        assert table.selected_key == chosen
        await press(pilot, "less_than_sign")
        assert table.keys == names[::-1] == [key for key, _ in drawn(table)]
        assert table.selected_key == chosen
        await settle(pilot)  # a refresh in the board's own order keeps the sort
        assert table.keys == names[::-1] == [key for key, _ in drawn(table)]
        assert table.selected_key == chosen


def test_every_table_takes_the_same_keys() -> None:
    keys = {b.key for b in LiveTable.BINDINGS if not isinstance(b, tuple)}
    assert {"j", "k", "g", "G", "ctrl+d", "ctrl+u", "less_than_sign", "greater_than_sign"} <= keys


# -- snapshots: the filter while typed, a sorted header --------------------------


def _typing(*keys: str, timeline: bool = False) -> Callable[[Pilot[None]], Awaitable[None]]:
    """`/` pressed and ``keys`` typed, the input still focused: what is typed is on screen."""

    async def run(pilot: Pilot[None]) -> None:
        await settle(pilot)
        if timeline:
            await pilot.press("T")
            await settle(pilot)
        await pilot.press("slash", *keys)
        typed = "".join(keys)
        for _ in range(200):
            await pilot.pause(0.02)
            if pilot.app.screen.query_one(Input).value == typed:
                await pilot.pause(0.05)  # the rows cut and the count drawn
                return
        raise AssertionError(f"the filter never read {typed!r}")

    return run


FILTERS = {
    "regex": _typing(*"model$"),
    "inverted-broken": _typing(*"!web("),
    "timeline": _typing(*"fail|roll", timeline=True),
}


@pytest.mark.parametrize("case", list(FILTERS))
def test_filter_while_typing(
    case: str, snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80x24 the filter's input sits above the footer, what is typed in
    it, with the count it leaves and, for a broken regex, that it is read as typed."""
    monkeypatch.chdir(tmp_path)
    app = make_app(tmp_path, config=sample_config(tmp_path, ENDPOINT, portable=True))
    assert snap_compare(app, terminal_size=(80, 24), run_before=FILTERS[case])


async def _sorted(pilot: Pilot[None]) -> None:
    await settle(pilot)
    await pilot.press("greater_than_sign", "less_than_sign")  # by PIPELINE, reversed
    await pilot.pause(0.1)


def test_dashboard_sorted(
    snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sort column's header carries its arrow; the cursor stays on the worst fault."""
    monkeypatch.chdir(tmp_path)
    app = make_app(tmp_path, config=sample_config(tmp_path, ENDPOINT, portable=True))
    assert snap_compare(app, terminal_size=(80, 24), run_before=_sorted)


# -- the real program in tmux ---------------------------------------------------


@pytest.fixture
def terminal() -> Iterator[Tmux]:
    t = Tmux(f"opstui-tables-{uuid.uuid4().hex[:8]}")
    try:
        yield t
    finally:
        t("kill-server")


@pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)"
)
def test_typing_in_the_dashboard_filter_shows_the_text_at_80x24(
    tmp_path: Path, terminal: Tmux
) -> None:
    """What the operator types after `/` is on screen, above the footer, with
    what it leaves (it once sat under the footer, filtering unseen)."""
    tmux = terminal
    store = sample_store(tmp_path)
    sample_config(tmp_path)
    command = (
        f"cd {tmp_path} && {sys.executable} -m opstui --store {store.name} --config opstui.toml"
    )
    tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", tmux.session, command)
    tmux.wait_for(lambda s: "fraud-model" in s and "failing" in s, "the dashboard")
    tmux.keys("/", *"model$")
    screen = tmux.wait_for(lambda s: "2 of 6 rows" in s, "the filter's count")
    lines = screen.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    # Above the footer: the text typed and the count; the footer still there.
    assert "/ model$" in lines[-2] and "2 of 6 rows" in lines[-2], lines[-3:]
    assert "Filter" in lines[-1]
    assert "web-api" not in "\n".join(lines[1:8])  # cut from the pipelines
    tmux.keys("Home", "!")
    screen = tmux.wait_for(lambda s: "not matching" in s, "the inverted filter")
    assert "/ !model$" in screen.splitlines()[-2]
    tmux.keys("Escape")
    tmux.wait_for(lambda s: "of 6 rows" not in s and "Pipelines (4)" in s, "the filter cleared")


def test_a_flex_cell_is_elided_in_the_middle_keeping_both_ends() -> None:
    from opstui.tui.table import cell_width, elide

    text = Text(
        "web-api burning its error budget: 44.3x over 1h, 61.4x over 5m [page] resolved after 12m",
        style="red",
    )
    out = elide(text, 60)
    assert isinstance(out, Text) and cell_width(out) == 60
    assert out.plain.startswith("web-api burning") and out.plain.endswith("resolved after 12m")
    assert out.plain.count("…") == 1
    assert all(span.style == "red" for span in out.spans)  # the colour kept
    # Too little room for two halves: the start, "…" at the end.
    assert elide("a" * 50, 10) == Text("a" * 9 + "…")
    assert elide("fits", 10) == "fits"


# -- a row's line is drawn again only when what it shows changed ------------------


class OneTable(App[None]):
    def compose(self) -> ComposeResult:
        yield LiveTable([("name", "NAME"), ("state", "STATE"), ("age", "AGE")])


def named(*names: str, state: Text | None = None) -> list[tuple[str, tuple[Any, ...]]]:
    return [
        (n, (n, state if state is not None else Text("ok", style="green"), "1m")) for n in names
    ]


def lines_by_key(table: LiveTable) -> dict[str, Strip]:
    return {str(row.key.value): table.render_line(y) for y, row in enumerate(table.ordered_rows, 1)}


async def test_rows_that_only_moved_are_not_drawn_again_and_a_restyled_cell_is() -> None:
    app = OneTable()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(LiveTable)
        table.show(named("alpha", "beta", "gamma", "delta"))
        await pilot.pause(0.05)
        before = lines_by_key(table)
        table.show(named("delta", "gamma", "beta", "alpha"))
        await pilot.pause(0.05)
        after = lines_by_key(table)
        assert [k for k in after] == ["delta", "gamma", "beta", "alpha"]
        # The cursor stayed on alpha (now last): every line is the one drawn before.
        assert all(after[key] is before[key] for key in before)
        assert [line.text.split()[0] for line in after.values()] == list(after)
        # The same words in another colour: drawn again, in the new colour
        # (Rich's Text == compares words, not the Text's own style).
        red = Text("ok", style="red")
        rows = named("delta", "gamma", "beta", "alpha")
        rows[1] = ("gamma", ("gamma", red, "1m"))
        table.show(rows)
        await pilot.pause(0.05)
        again = lines_by_key(table)
        assert again["gamma"] is not after["gamma"]
        colours = {
            str(s.style.color.name)
            for s in again["gamma"]
            if s.text.strip() == "ok" and s.style and s.style.color
        }
        assert colours == {"red"}
        assert again["delta"] is after["delta"] and again["beta"] is after["beta"]
        # Another kind of cursor: DataTable's own drawing (the cell under it marked).
        table.cursor_type = "cell"
        table.move_cursor(row=0, column=1)
        await pilot.pause(0.05)
        cell_cursor = lines_by_key(table)["delta"]
        assert cell_cursor is not again["delta"]
        bg = {s.text.strip(): s.style.bgcolor for s in cell_cursor if s.text.strip() and s.style}
        # Only the STATE cell has the cursor's colours.
        assert bg["ok"] != bg["1m"] == bg["delta"]


async def test_a_click_selects_the_row_under_the_mouse_after_rows_moved() -> None:
    """Lines carry no row index (they outlive a reorder): the mouse's row is
    found from where it points, the cursor moves there, and a second click
    opens it (DataTable's RowSelected)."""
    selected: list[str] = []

    class Clicked(OneTable):
        def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
            selected.append(str(event.row_key.value))

    app = Clicked()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(LiveTable)
        table.show(named("alpha", "beta", "gamma", "delta"))
        await pilot.pause(0.05)
        table.show(named("delta", "gamma", "beta", "alpha"))
        await pilot.pause(0.05)
        # y 0 is the header; the third row down is beta now.
        assert await pilot.click(LiveTable, offset=(3, 3))
        await pilot.pause(0.05)
        assert table.selected_key == "beta" and table.cursor_row == 2
        assert await pilot.hover(LiveTable, offset=(20, 4))
        await pilot.pause(0.05)
        assert table.hover_coordinate.row == 3
        assert await pilot.click(LiveTable, offset=(3, 3))
        await pilot.pause(0.05)
        assert selected == ["beta"]
        # Right of the last column, still the row's (DataTable's "out of bounds").
        assert await pilot.click(LiveTable, offset=(55, 1))
        await pilot.pause(0.05)
        assert table.selected_key == "delta"
