"""The top line of every screen: what is wrong (left), where this console is looking (right).

The right end says which store this is, on which host the console runs, and
the health of each source it reads (every configured endpoint: Prometheus,
MLflow, Airflow, Prefect, health checks), so an operator on a shared server
knows at a glance whether a quiet board is quiet or blind. Narrow, the
sources are counted by state and the store's name goes first; the left end
gives way (elided with "…"), never the right, which holds no more than
``SHARE`` of the line. No Textual here: screens put the Text on screen.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from rich.text import Text

from opstui.tui.render import ENDPOINT_STYLE, safe

if TYPE_CHECKING:
    from opstui.views.endpoints import EndpointReport

#: The most of the line the right end takes: on the board, on a detail screen.
SHARE = 0.45
DETAIL_SHARE = 0.2
#: A source's state at a glance (its word too, when counted).
GLYPH = {
    "up": "●",
    "degraded": "◐",
    "recovering": "◐",
    "burning": "▲",
    "down": "✗",
    "stale": "?",
    "unknown": "?",
}
#: Counted worst first.
ORDER = ("down", "burning", "stale", "unknown", "degraded", "recovering", "up")


class Where(NamedTuple):
    """What the header says of this console: its store, its host, read-only."""

    store: str
    host: str
    read_only: bool = False

    @classmethod
    def here(cls, store: str, read_only: bool = False) -> Where:
        return cls(store, hostname(), read_only)


def hostname() -> str:
    """This machine's short name: "ci-runner-3", not the domain after it."""
    return socket.gethostname().split(".")[0] or "?"


def sources(endpoints: Sequence[EndpointReport], *, counted: bool = False) -> Text:
    """Each source by name with its state's glyph (``prom ● airflow ✗``), or
    ``counted`` by state, worst first (``src 1 down 2 up``); nothing without sources."""
    if not endpoints:
        return Text()  # the endpoints panel says how to configure one
    out = Text(no_wrap=True)
    if counted:
        out.append("src")
        states = [e.state for e in endpoints]
        for state in ORDER:
            n = states.count(state)
            if n:
                out.append(f" {n} {state}", style=ENDPOINT_STYLE.get(state, ""))
        return out
    for i, e in enumerate(endpoints):
        if i:
            out.append(" ")
        out.append(safe(e.name))
        out.append(f" {GLYPH.get(e.state, '?')}", style=ENDPOINT_STYLE.get(e.state, ""))
    return out


def right_end(
    where: Where, endpoints: Sequence[EndpointReport], width: int, share: float = SHARE
) -> Text:
    """``sources · host · store`` in at most ``share`` of ``width``. What gives
    way first: the host, then each source's name (counted instead), then the
    store; the sources' health stays longest (a blind board is the worst news).
    A detail screen gives it less (``DETAIL_SHARE``): its title says what it is."""
    room = int(width * share)
    store = Text(safe(where.store), style="bold")
    host = Text(safe(where.host), style="dim")
    each, counted = sources(endpoints), sources(endpoints, counted=True)
    for parts in (
        (each, host, store),
        (each, store),
        (counted, host, store),
        (counted, store),
        (counted,),
        (store,),
    ):
        line = Text(" · ", style="dim").join(p for p in parts if p.cell_len)
        if 0 < line.cell_len <= room:
            return line
    line = store.copy()
    line.truncate(max(1, room), overflow="ellipsis")
    return line


def fit(left: Text, right: Text, width: int) -> Text:
    """One line of ``width`` cells: ``left`` elided to leave room for ``right``
    at the right edge (the line's own padding: two cells)."""
    width = max(1, width - 2)
    room = width - right.cell_len - 1
    if room < 8:
        line = left.copy()
        line.truncate(width, overflow="ellipsis")
        return line
    line = left.copy()
    line.no_wrap = True
    line.truncate(room, overflow="ellipsis", pad=True)
    line.append(" ")
    line.append_text(right)
    return line
