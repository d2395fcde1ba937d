"""A DataTable that takes a whole new set of rows every refresh, cheaply.

Rebuilding a table of 10,000 pipelines every second would cost more than the
store read; most refreshes change a few cells or none. ``show`` compares each
row with what is on screen, updates only the cells that changed, and rebuilds
only when rows came, went or moved. The cursor stays on the same row (by
key) across a rebuild, so an operator's selection does not jump.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual import events
from textual.widgets import DataTable, Input

Row = tuple[str, tuple[Any, ...]]


class LiveTable(DataTable[Any]):
    DEFAULT_CSS = """
    LiveTable { height: 1fr; }
    """

    def __init__(self, columns: Sequence[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        #: (key, label) of each column
        self.spec = list(columns)
        self._rows: list[Row] = []

    def on_mount(self) -> None:
        self._columns()

    def _columns(self) -> None:
        # Data can arrive before on_mount has run (the first refresh races
        # the screen's mount): columns come first either way.
        if not self.columns:
            for key, label in self.spec:
                self.add_column(label, key=key)

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

    def show(self, rows: Sequence[Row]) -> None:
        self._columns()
        # DataTable reads a str cell as markup: "[bold]" in a pipeline name
        # would vanish and "[link=...]" would become a link. Every cell here
        # holds data, so a str becomes plain Text.
        rows = [(key, tuple(_plain(c) for c in cells)) for key, cells in rows]
        old = self._rows
        if [k for k, _ in old] == [k for k, _ in rows]:
            for (key, cells), (_, before) in zip(rows, old, strict=True):
                if cells == before:
                    continue
                for (col, _), cell, was in zip(self.spec, cells, before, strict=True):
                    if cell != was:
                        # A cell that grew (33.4x after 0.5x) widens its column.
                        self.update_cell(key, col, cell, update_width=True)
            self._rows = rows
            return
        keep = self.selected_key
        self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        self._rows = rows
        if keep is not None:
            for i, (key, _) in enumerate(rows):
                if key == keep:
                    self.move_cursor(row=i, animate=False)
                    break

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


def _plain(cell: object) -> object:
    return Text(cell) if isinstance(cell, str) else cell


def dim(text: str) -> Text:
    return Text(text, style="dim")


class SteadyInput(Input):
    """An input whose cursor does not blink: over SSH a blink is a redraw every
    half second for nothing, and a steady screen is one a snapshot can compare."""

    def on_mount(self) -> None:
        self.cursor_blink = False
