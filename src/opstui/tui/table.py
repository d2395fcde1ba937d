"""A DataTable that takes a whole new set of rows every refresh, cheaply.

Rebuilding a table of 10,000 pipelines every second would cost more than the
store read; most refreshes change a few cells or none. ``show`` compares each
row with what is on screen, updates only the cells that changed, and rebuilds
only when rows came, went or moved. The cursor stays on the same row (by
key) across a rebuild, so an operator's selection does not jump.

Every table takes the keys k9s and lazygit users expect: ``j``/``k`` down
and up, ``g``/``G`` the first and last row, ``ctrl+d``/``ctrl+u`` half a
page; ``>`` sorts by the next column (its header marked with an arrow, then
back to the screen's own order) and ``<`` reverses it. The sort is the
table's, so it holds across refreshes; ties keep the screen's order.

Columns shrink by priority, never by cutting a value: a column given as
``(key, label, min_width)`` is shown only while the table is at least that
many cells wide (rows always pass every cell; the table leaves out the hidden
ones), and the ``flex`` column takes what width is left, its text elided
with "…" to fit, so the last column never runs off the edge mid-number
(``40.`` for ``40.2x``). What a narrow table hides, a screen says elsewhere
(the selected row in full under the table).

``RowFilter`` is what the ``/`` filters type (a regex, ``!`` inverting it,
a broken regex matched as typed) and ``FilterBar`` the line above the
footer where it is typed, with the count it leaves.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple, TypeGuard

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual._segment_tools import line_crop
from textual._two_way_dict import TwoWayDict
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable, Input, Static
from textual.widgets.data_table import RowKey

from opstui.views.snapshot import Snapshot

Row = tuple[str, tuple[Any, ...]]
#: A column: (key, label), or (key, label, the table's width from which it is shown).
ColumnSpec = tuple[str, str] | tuple[str, str, int]


#: The table's own keys (``config/keys.py`` holds the app's): (key, action, what it does).
TABLE_KEYS: tuple[tuple[str, str, str], ...] = (
    ("j", "cursor_down", "Down a row"),
    ("k", "cursor_up", "Up a row"),
    ("g", "first", "First row"),
    ("G", "last", "Last row"),
    ("ctrl+d", "half_page(1)", "Half a page down"),
    ("ctrl+u", "half_page(-1)", "Half a page up"),
    ("greater_than_sign", "sort_next", "Sort by the next column (then unsorted)"),
    ("less_than_sign", "sort_reverse", "Reverse the sort"),
)
#: The header's mark on the sort column: ascending, descending.
ARROWS = ("\u2191", "\u2193")


class LiveTable(DataTable[Any]):
    DEFAULT_CSS = """
    LiveTable { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(key, action, what, show=False) for key, action, what in TABLE_KEYS
    ]

    def __init__(
        self, columns: Sequence[ColumnSpec], *, flex: str | None = None, **kwargs: Any
    ) -> None:
        # First: DataTable's own __init__ clears caches (show_cursor's watcher).
        self._memo = {}
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        #: Every column: (key, label, shown from this width); rows hold a cell for each.
        self.every: list[tuple[str, str, int]] = [
            (c[0], c[1], c[2] if len(c) > 2 else 0) for c in columns
        ]
        #: The column that takes the width left, its text elided to fit (None: none does).
        self.flex = flex
        #: (key, label) of each column shown at the table's width now.
        self.spec = self._fitting(0)
        self._width = 0
        self._rows: list[Row] = []
        #: The column the rows are sorted by (None: the order they come in), and whether reversed.
        self.sort_column: str | None = None
        self.sort_reverse = False
        #: The rows as they came, before the sort (``show`` again after a sort key).
        self._given: list[Row] = []

    def on_mount(self) -> None:
        self._columns()

    def set_columns(self, columns: Sequence[ColumnSpec], flex: str | None = None) -> None:
        """Another set of columns (rows given afterwards hold a cell for each)."""
        self.every = [(c[0], c[1], c[2] if len(c) > 2 else 0) for c in columns]
        self.flex = flex
        self._rebuild()

    def _fitting(self, width: int) -> list[tuple[str, str]]:
        """The columns shown at ``width`` (0: not laid out yet, every column)."""
        return [(k, label) for k, label, least in self.every if not width or width >= least]

    def on_resize(self) -> None:
        width = self.size.width
        if width == self._width:
            return
        self._width = width
        if self._fitting(width) != self.spec or self.flex is not None:
            self._rebuild()

    def _rebuild(self) -> None:
        """Columns again for the width now, and the rows drawn anew in them."""
        keep = self.selected_key
        self.spec = self._fitting(self._width)
        self.clear(columns=True)
        self._rows = []
        if self._given or keep is not None:
            self.show(self._given, _cut=False)
            if keep is not None:
                self.select_key(keep)

    def _columns(self) -> None:
        # Data can arrive before on_mount has run (the first refresh races
        # the screen's mount): columns come first either way.
        if not self.columns:
            for key, label in self.spec:
                self.add_column(self._label(key, label), key=key)

    def _label(self, key: str, label: str) -> str:
        if key != self.sort_column:
            return label
        return f"{label}{ARROWS[self.sort_reverse]}"

    # -- keys ------------------------------------------------------------------

    def action_first(self) -> None:
        if self.row_count:
            self.move_cursor(row=0, animate=False)

    def action_last(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)

    def action_half_page(self, direction: int) -> None:
        if not self.row_count:
            return
        height = self.scrollable_content_region.height - (
            self.header_height if self.show_header else 0
        )
        step = max(1, height // 2)
        row = min(self.row_count - 1, max(0, self.cursor_row + direction * step))
        self.move_cursor(row=row, animate=False)

    def action_sort_next(self) -> None:
        """Sort by the next column with a header, ascending; after the last, the
        rows' own order."""
        keys = [key for key, label in self.spec if label]
        self.sort_reverse = False
        if self.sort_column in keys:
            i = keys.index(self.sort_column) + 1
            self.sort_column = keys[i] if i < len(keys) else None
        else:
            self.sort_column = keys[0] if keys else None
        self._resort()

    def action_sort_reverse(self) -> None:
        if self.sort_column is None:
            # Nothing sorted yet: the first column, descending.
            self.sort_column = next((key for key, label in self.spec if label), None)
            self.sort_reverse = True
        else:
            self.sort_reverse = not self.sort_reverse
        self._resort()

    def _resort(self) -> None:
        """Headers marked again and the rows sorted anew, the cursor on the same row."""
        self._rebuild()

    @property
    def sort_label(self) -> str | None:
        """``AGE↓``: the sort as the header shows it, or None."""
        for key, label in self.spec:
            if key == self.sort_column:
                return self._label(key, label)
        return None

    #: The widget's Rich style for the frame being drawn (``render_lines``).
    _frame_style: Style | None = None
    #: The update count the render caches were last dropped at.
    _cached_at = -1

    def render_lines(self, crop: Region) -> list[Strip]:
        # DataTable asks for ``rich_style`` once a line, and Textual computes
        # it anew each time (the ancestors' backgrounds blended): at 200x50
        # that was a sixth of a refresh's repaint. Once a frame is enough.
        self._frame_style = self.rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._frame_style = None

    def render_line(self, y: int) -> Strip:
        style = self._frame_style
        if style is None or self.fixed_rows:
            return super().render_line(y)
        scroll_x, scroll_y = self.scroll_offset
        header = self.get_row_height(self._header_row_key) if self.show_header else 0
        if y >= header:
            y += scroll_y
        return self._render_line(y, scroll_x, scroll_x + self.size.width, style)

    def _cell_line(
        self, cell: Text, width: int, base_style: Style, cursor: bool, hover: bool
    ) -> list[Segment]:
        """A one-line Text cell's segments: padding, the cell's own styles, the
        cursor's (or hover's) over them, as DataTable's ``_render_cell`` draws it
        (without rendering a Rich Padding of it, most of what that costs)."""
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css",
        )  # fmt: skip
        pre = base_style + component_style
        pad = self.cell_padding
        console = self.app.console
        # Text.render leaves out the Text's own style (its __rich_console__ adds it).
        own = console.get_style(cell.style) if cell.style else None
        inner = Segment.adjust_line_length(
            list(Segment.apply_style(cell.render(console, end=""), own)), max(0, width - 2 * pad)
        )
        line = [Segment(" " * pad), *inner, Segment(" " * pad)] if pad else inner
        return list(Segment.apply_style(line, pre, post_style))

    #: Each body row's last drawn line, by row key: (what it was drawn from, the line).
    _memo: dict[RowKey, tuple[tuple[Any, ...], Strip]]

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        """A body row's line, drawn again only when what it shows changed.

        DataTable keys every cache on one update count, bumped by any change,
        and marks each cell with its row's index (for the mouse): a refresh in
        which one pipeline changed state, or rows only moved, drew every
        visible cell again, the most of its UI time at 200x50 (bench/tui.py
        part 2). Here a row's line is kept by its key with what it was drawn
        from (the cell objects themselves, column widths, cursor, hover,
        focus, styles), so moving a row costs nothing; the mouse finds its row
        from where it points (``_pointed``) instead of from the line."""
        if (
            self.fixed_rows
            or self.fixed_columns
            or self.cursor_type != "row"
            or (self.show_row_labels and self._labelled_row_exists)
        ):
            return super()._render_line(y, x1, x2, base_style)
        try:
            row_key, line_no = self._get_offsets(y)
        except LookupError:
            return Strip.blank(self.size.width, base_style)
        row = self.rows.get(row_key)
        cells = self._data.get(row_key)
        if (
            row_key is self._header_row_key
            or line_no
            or row is None
            or row.height != 1
            or cells is None
        ):
            return super()._render_line(y, x1, x2, base_style)
        columns = self.ordered_columns
        values = tuple(cells.get(column.key) for column in columns)
        texts = [value for value in values if _one_line(value)]
        if len(texts) != len(values):
            return super()._render_line(y, x1, x2, base_style)
        row_index = self._row_locations.get(row_key)
        if row_index is None:
            return super()._render_line(y, x1, x2, base_style)
        show = self.show_cursor
        cursor = show and row_index == self.cursor_coordinate.row
        hover = show and self._show_hover_cursor and row_index == self.hover_coordinate.row
        widths = tuple(column.get_render_width(self) for column in columns)
        width = self.size.width
        stripe = self.zebra_stripes and row_index % 2
        what = (widths, x1, x2, width, base_style, cursor, hover, stripe,
                self._show_hover_cursor, self._pseudo_class_state)  # fmt: skip
        kept = self._memo.get(row_key)
        # The cells by identity: a Text equals another with the same words in
        # another colour. The memo holds them, so an id is never reused.
        if kept is not None and kept[0][0] == what and _same(kept[0][1], values):
            return kept[1]
        row_style = self._get_row_style(row_index, base_style)
        segments: list[Segment] = []
        for text, cell_width_ in zip(texts, widths, strict=True):
            segments += self._cell_line(text, cell_width_, row_style, cursor, hover)
        # The rest of the width in the row's style (the cursor's bar goes to the edge).
        extend, _ = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
            False, False,
        )  # fmt: skip
        rest = max(0, width - sum(widths))
        segments.append(Segment(" " * rest, row_style + extend))
        strip = (
            Strip(line_crop(segments, x1, x2, sum(widths) + rest))
            .adjust_cell_length(width, base_style)
            .simplify()
        )
        self._memo[row_key] = ((what, values), strip)
        return strip

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._memo.clear()

    def notify_style_update(self) -> None:
        self._memo.clear()  # a theme or focus change: every colour may differ
        super().notify_style_update()

    def _pointed(self, event: events.MouseEvent) -> None:
        """The row and column under the mouse put on the event, as DataTable
        reads them from a line's styles (a body line drawn by ``_render_line``
        carries none: its row's index changes whenever rows move)."""
        if "row" in event.style.meta:
            return
        offset = event.get_content_offset(self)
        if offset is None:
            return
        x, y = offset
        if self.show_header and y < self.header_height:
            return
        scroll_x, scroll_y = self.scroll_offset
        try:
            row_key, _ = self._get_offsets(y + scroll_y)
        except LookupError:
            return
        if row_key not in self._row_locations:
            return
        row_index = self._row_locations.get(row_key)
        meta: dict[str, Any] = {"row": row_index, "column": 0, "out_of_bounds": True}
        left, x = 0, x + scroll_x
        for index, column in enumerate(self.ordered_columns):
            right = left + column.get_render_width(self)
            if left <= x < right:
                meta = {"row": row_index, "column": index}
                break
            left = right
        event.style = event.style + Style.from_meta(meta)

    async def _on_click(self, event: events.Click) -> None:
        self._pointed(event)  # before DataTable's own handler reads it

    def _on_mouse_move(self, event: events.MouseMove) -> None:
        self._pointed(event)

    async def _on_idle(self, event: events.Idle) -> None:
        """Columns are measured on idle (by DataTable's own handler, which runs
        after this one), after rows were added; lines painted before that (a busy
        machine can paint between ``add_row`` and idle) stay cached at the old
        widths, cut short ("19d  churn"), until the table changes again. If the
        widths moved, the cached lines go."""
        if self._require_update_dimensions or self._updated_cells:  # (else: nothing measured)
            widths = [c.content_width for c in self.columns.values()]
            self.call_next(self._widths_measured, widths)

    def _widths_measured(self, widths: list[int]) -> None:
        if [c.content_width for c in self.columns.values()] != widths:
            self._clear_caches()
            self.refresh()

    @property
    def selected_key(self) -> str | None:
        if not self._rows or self.cursor_row < 0 or self.cursor_row >= len(self._rows):
            return None
        return self._rows[self.cursor_row][0]

    def show(self, rows: Sequence[Row], *, _cut: bool = True) -> None:
        """``rows``: a cell for every column (``self.every``), shown or not."""
        self._columns()
        # DataTable reads a str cell as markup: "[bold]" in a pipeline name
        # would vanish and "[link=...]" would become a link. Every cell here
        # holds data, so a str becomes plain Text.
        if _cut:
            rows = [(key, tuple(_plain(c) for c in cells)) for key, cells in rows]
            self._given = list(rows)
        rows = self._sorted(self._shown_cells(rows))
        try:
            self._show(rows)
        finally:
            self._drop_dead_caches()

    def _drop_dead_caches(self) -> None:
        """DataTable keys its render caches on one update count, bumped by any
        change: what it cached before is never read again, but stays (10,000
        cells, a thousand rows and lines) until pushed out, and every full
        garbage collection walks it: at 200x50 the longest pauses of the
        event loop (bench/tui.py part 3). Dropped as soon as it is dead."""
        if self._update_count != self._cached_at:
            self._cached_at = self._update_count
            self._cell_render_cache.clear()
            self._row_render_cache.clear()
            self._row_renderable_cache.clear()
            self._line_cache.clear()

    def _show(self, rows: list[Row]) -> None:
        old = self._rows
        if [k for k, _ in old] == [k for k, _ in rows]:
            self._update_cells(rows, old)
            self._rows = rows
            return
        keep = self.selected_key
        if len(old) == len(rows) and {k for k, _ in old} == {k for k, _ in rows}:
            # Only the order moved (a pipeline changed state, another read
            # under a sort): the changed cells updated in place and the rows
            # rearranged, the cursor on the same row. Clearing and adding
            # every row measured every cell again. UI CPU (show + repaint) at
            # 200 pipelines, bench/tui.py part 2, the rebuild in the same run:
            # 37 ms against 64 ms at 80x24, 75 against 126 ms at 200x50; most
            # of what is left is repainting every visible cell.
            before = dict(old)
            self._update_cells(rows, [(key, before[key]) for key, _ in rows])
            self._reorder([key for key, _ in rows])
            self._rows = rows
            if keep is not None:
                self.select_key(keep)
            return
        self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        self._rows = rows
        if keep is not None:
            for i, (key, _) in enumerate(rows):
                if key == keep:
                    self.move_cursor(row=i, animate=False)
                    break

    def _shown_cells(self, rows: Sequence[Row]) -> list[Row]:
        """Each row's cells for the columns shown, the flex column's elided to the room left."""
        keys = [k for k, _, _ in self.every]
        picks = [keys.index(k) for k, _ in self.spec if k in keys]
        if len(picks) == len(keys) and self.flex is None:
            return list(rows)
        cut = [
            (key, tuple(cells[i] if i < len(cells) else "" for i in picks)) for key, cells in rows
        ]
        if self.flex is None or not self._width:
            return cut
        shown = [k for k, _ in self.spec]
        if self.flex not in shown:
            return cut
        at = shown.index(self.flex)
        pad = 2 * self.cell_padding
        others = sum(
            max([cell_width(label)] + [cell_width(cells[i]) for _, cells in cut]) + pad
            for i, (_, label) in enumerate(self.spec)
            if i != at
        )
        # The vertical scrollbar's column, and the flex column's own padding.
        room = self._width - others - pad - 1
        if room < 8:
            return cut  # too narrow to say anything: the table scrolls instead
        return [
            (key, (*cells[:at], elide(cells[at], room), *cells[at + 1 :])) for key, cells in cut
        ]

    def _sorted(self, rows: list[Row]) -> list[Row]:
        keys = [key for key, _ in self.spec]
        if self.sort_column not in keys:
            return rows
        i = keys.index(self.sort_column)
        keyed = [
            (sort_key(cells[i] if i < len(cells) else ""), (key, cells)) for key, cells in rows
        ]
        # A stable sort: rows that tie keep the order they came in (worst
        # first); blank cells last either way.
        filled = sorted((k for k in keyed if k[0][0] < BLANK), key=lambda k: k[0],
                        reverse=self.sort_reverse)  # fmt: skip
        return [row for _, row in filled] + [row for k, row in keyed if k[0] >= BLANK]

    def _update_cells(self, rows: Sequence[Row], old: Sequence[Row]) -> None:
        """The cells of ``rows`` that differ from ``old`` (the same keys in the
        same order) updated in place."""
        for (key, cells), (_, before) in zip(rows, old, strict=True):
            if _drawn_alike(cells, before):
                continue
            for (col, _), cell, was in zip(self.spec, cells, before, strict=True):
                if not _drawn_alike((cell,), (was,)):
                    # A cell that grew (33.4x after 0.5x) widens its column.
                    self.update_cell(key, col, cell, update_width=True)

    def _reorder(self, keys: Sequence[str]) -> None:
        """The rows (the same keys) put in the order of ``keys``, as
        ``DataTable.sort`` puts them (it sorts by cell values, not to a given
        order): the row locations rearranged, no cell measured again."""
        self._row_locations = TwoWayDict({RowKey(key): i for i, key in enumerate(keys)})
        self._update_count += 1
        self.refresh()

    def select_key(self, key: str) -> bool:
        for i, (k, _) in enumerate(self._rows):
            if k == key:
                self.move_cursor(row=i, animate=False)
                return True
        return False

    @property
    def keys(self) -> list[str]:
        return [k for k, _ in self._rows]

    @property
    def shown_rows(self) -> list[Row]:
        """What the table holds (also rows scrolled out of view)."""
        return list(self._rows)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}
_DURATION = re.compile(r"(\d+)([smhdy])")
_DURATIONS = re.compile(r"(?:\d+[smhdy])+")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?[%x]?")
#: From this room on a flex cell is elided in the middle (two halves worth reading).
MIDDLE_FROM = 24
#: A blank cell's rank: after every value, however the sort goes.
BLANK = 2


def sort_key(cell: object) -> tuple[int, float, str]:
    """How a cell sorts: numbers, durations and ages (``3m05s``, ``2h``: in
    seconds) and percentages by value, before words (case folded); blank and
    ``-`` last."""
    text = (cell.plain if isinstance(cell, Text) else str(cell)).strip()
    if text in ("", "-"):
        return (BLANK, 0.0, "")
    if text == "now":
        return (0, 0.0, text)
    if _DURATIONS.fullmatch(text):
        return (0, float(sum(int(n) * _UNITS[u] for n, u in _DURATION.findall(text))), text)
    if _NUMBER.fullmatch(text):
        return (0, float(text.rstrip("%x")), text)
    return (1, 0.0, text.casefold())


class RowFilter(NamedTuple):
    """What an operator typed after ``/``: a regex, case-insensitive, as in
    k9s; a leading ``!`` keeps the rows that do not match; a text that is no
    regex (``web(``) is matched as typed, and ``literal`` says so.
    ``field``: a prefix of ``fields`` the text began with (``host:``)."""

    text: str = ""
    pattern: re.Pattern[str] | None = None
    invert: bool = False
    literal: bool = False
    field: str | None = None

    @classmethod
    def parse(cls, text: str, fields: Sequence[str] = ()) -> RowFilter:
        body, invert = (text[1:], True) if text.startswith("!") else (text, False)
        field = next((f for f in fields if body.lower().startswith(f"{f}:")), None)
        if field is not None:
            body = body[len(field) + 1 :].strip()
        if not body:
            return cls(text, None, invert, False, field)
        try:
            return cls(text, re.compile(body, re.IGNORECASE), invert, False, field)
        except (re.error, RecursionError, OverflowError):
            return cls(text, re.compile(re.escape(body), re.IGNORECASE), invert, True, field)

    @property
    def active(self) -> bool:
        return self.pattern is not None

    def matches(self, haystack: str) -> bool:
        if self.pattern is None:
            return True
        return (self.pattern.search(haystack) is not None) != self.invert

    def tally(self, shown: int, total: int, noun: str = "rows") -> Text:
        """``3 of 12 rows · not matching · not a regex: matched as typed``."""
        out = Text(f"{shown} of {total} {noun}", style="bold")
        if self.invert and self.active:
            out.append(" · not matching", style="yellow")
        if self.literal:
            out.append(" · not a regex: matched as typed", style="yellow")
        return out


class FilterBar(Horizontal):
    """The ``/`` filter: a line above the footer (never docked: two widgets
    docked at the bottom cover each other, and the footer won), the input
    and the count of rows it leaves. Shown from ``/`` until ``esc``."""

    DEFAULT_CSS = """
    FilterBar { height: 1; display: none; background: $panel; }
    FilterBar.shown { display: block; }
    FilterBar > Input, FilterBar > Input:focus {
        width: 1fr; height: 1; border: none; padding: 0 1 0 0;
    }
    FilterBar > Static { width: auto; height: 1; padding: 0 1; }
    """

    def __init__(self, *, placeholder: str, input_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.input = SteadyInput(placeholder=placeholder, id=input_id)
        self.counted = Static("", classes="count")

    def compose(self) -> ComposeResult:
        yield Static(Text("/", style="bold"), classes="slash")
        yield self.input
        yield self.counted

    @property
    def shown(self) -> bool:
        return self.has_class("shown")

    def open(self) -> None:
        self.add_class("shown")
        self.input.focus()

    def close(self) -> bool:
        """Cleared and hidden; False if it was not shown."""
        if not self.shown:
            return False
        self.input.value = ""
        self.remove_class("shown")
        self.counted.update("")
        return True

    def count(self, line: Text) -> None:
        self.counted.update(line)


#: Where a name is looked for first, by what happened to it (an event's kind,
#: an action's name); then every kind.
_FIRST = {
    "run": ("pipeline",),
    "retry": ("pipeline",),
    "drift": ("model",),
    "retrain": ("model",),
    "alert": ("endpoint",),
}


def row_target(snap: Snapshot, kind: str, *names: str | None) -> str | None:
    """The screen a row of the events or the audit trail names (``pipeline:etl``),
    or None: the first of ``names`` the snapshot knows as a pipeline, model or
    endpoint (a ``model:fraud`` key as it is), looked for by ``kind`` first."""
    known = {
        "pipeline": {p.name for p in snap.pipelines},
        "model": {m.name for m in snap.models},
        "endpoint": {e.name for e in snap.endpoints},
    }
    order = (*_FIRST.get(kind, ("model", "pipeline")), "pipeline", "model", "endpoint")
    for name in names:
        if not name:
            continue
        prefix, _, rest = name.partition(":")
        if rest and rest in known.get(prefix, set()):
            return name
        for where in order:
            if name in known[where]:
                return f"{where}:{name}"
    return None


def cell_width(cell: object) -> int:
    """The cells a value takes on screen (its widest line)."""
    if isinstance(cell, Text):
        return cell.cell_len
    return cell_len(str(cell))


def elide(cell: object, room: int) -> object:
    """``cell`` in ``room`` cells, its style kept: "…" in the middle, so both
    the subject at the start and the outcome at the end stay (``web-api burning
    its error budget: 44…[page] resolved after 12m``); at the end when the
    room is too small for two useful halves."""
    width = cell_width(cell)
    if width <= room:
        return cell
    text = cell.copy() if isinstance(cell, Text) else Text(str(cell))
    if room < MIDDLE_FROM:
        text.truncate(room, overflow="ellipsis")
        return text
    tail = (room - 1) * 2 // 5
    head = room - 1 - tail
    # Slices by character: cell widths only differ for wide glyphs, which
    # ``safe`` leaves as they are; a row one cell short is fine, one long is cut.
    return Text.assemble(text[:head], "…", text[len(text) - tail :])


def _one_line(cell: object) -> TypeGuard[Text]:
    """A cell ``LiveTable`` draws itself: a Text of one line."""
    return isinstance(cell, Text) and "\n" not in cell.plain


def _drawn_alike(these: tuple[Any, ...], those: tuple[Any, ...]) -> bool:
    """Cells that draw the same: Rich's ``Text ==`` compares words and spans,
    not the Text's own style ("failed" in red equals "failed" in green)."""
    return len(these) == len(those) and all(
        a is b
        or (a == b and (not isinstance(a, Text) or not isinstance(b, Text) or a.style == b.style))
        for a, b in zip(these, those, strict=False)
    )


def _same(these: tuple[Any, ...], those: tuple[Any, ...]) -> bool:
    """The very same cell objects."""
    return len(these) == len(those) and all(a is b for a, b in zip(these, those, strict=False))


#: Plain Texts made from str cells, shared (never changed once made): most
#: cells read the same each refresh (names, states), and making 1,400 Texts
#: anew was a third of a 200-pipeline board's ``show``; a kept one also
#: compares by identity. Emptied when full.
_PLAIN: dict[str, Text] = {}
_PLAIN_KEPT = 16_384


def _plain(cell: object) -> object:
    if not isinstance(cell, str):
        return cell
    text = _PLAIN.get(cell)
    if text is None:
        if len(_PLAIN) >= _PLAIN_KEPT:
            _PLAIN.clear()
        text = _PLAIN[cell] = Text(cell)
    return text


def dim(text: str) -> Text:
    return Text(text, style="dim")


class SteadyInput(Input):
    """An input whose cursor does not blink: over SSH a blink is a redraw every
    half second for nothing, and a steady screen is one a snapshot can compare."""

    def on_mount(self) -> None:
        self.cursor_blink = False
