"""Cells as the console draws them: Rich text, readable without colour.

Every state has a glyph or a word besides its colour (NO_COLOR terminals,
16-colour themes and colour-blind operators read the same table), and every
string that came from outside (log lines, messages, names) goes through
``safe`` so an escape sequence is shown, never interpreted.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from opstui.store import status as st
from opstui.store.rows import DeploymentRow, RunRow
from opstui.terminal import visible
from opstui.timeutil import human_age

if TYPE_CHECKING:
    from opstui.store.acks import Ack
    from opstui.views.endpoints import EndpointReport

# Theme variables resolve these in the app's CSS; here they are Rich styles
# that hold in 16 colours (the ANSI names map onto any palette).
STATUS_STYLE = {
    st.FAILED: "bold red",
    st.TIMED_OUT: "bold red",
    st.LOST: "bold magenta",
    st.UNKNOWN: "cyan",
    st.RUNNING: "bold yellow",
    st.QUEUED: "yellow",
    st.PENDING: "dim",
    st.SUCCEEDED: "green",
    st.SKIPPED: "dim",
    st.CANCELLED: "dim",
    "never_run": "dim",
}
ENDPOINT_STYLE = {
    "up": "green",
    "degraded": "yellow",
    "down": "bold red",
    "burning": "bold red",
    "recovering": "yellow",
    "stale": "magenta",
    "unknown": "dim",
}
SEVERITY_STYLE = {"fault": "bold red", "warn": "yellow", "ok": ""}


def safe(text: str | None) -> str:
    """``text`` with every control character made visible (``\\x1b``), tabs as spaces.

    A cell is one line, so a newline reads as a space; the escaping is the
    CLI's own (opstui.terminal), so the console and ``opstui status`` agree.
    """
    return visible(text, newline=" ") if text else ""


def age(seconds: float | None) -> str:
    """``42s``: an age in a column headed AGE (the "ago" would cost every row 4 cells)."""
    return human_age(seconds).removesuffix(" ago")


def status_text(status: str) -> Text:
    return Text(status.replace("_", " "), style=STATUS_STYLE.get(status, ""))


#: Stage bars drawn, by what they show: a few dozen patterns cover every run,
#: and a board of 200 pipelines drew 200 each refresh (a fifth of its time).
#: Shared: never changed after it is made (``elide`` copies).
_STAGE_BARS: dict[tuple[bool, tuple[str, ...], bool], Text] = {}
_STAGE_BARS_KEPT = 4096


def stage_bar(run: RunRow | None, width: int | None = None) -> Text:
    """One glyph per stage in lifecycle order, each in its status colour."""
    if run is None:
        return Text(no_wrap=True, overflow="ellipsis")
    before, shown, after = run.stage_window(width)
    key = (before, tuple(s.status for s in shown), after)
    out = _STAGE_BARS.get(key)
    if out is not None:
        return out
    out = Text(no_wrap=True, overflow="ellipsis")
    if before:
        out.append("…", style="dim")
    for status in key[1]:
        out.append(st.GLYPHS.get(status, "·"), style=STATUS_STYLE.get(status, ""))
    if after:
        out.append("…", style="dim")
    if len(_STAGE_BARS) < _STAGE_BARS_KEPT:
        _STAGE_BARS[key] = out
    return out


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: tuple[float, ...] | list[float], width: int = 12) -> str:
    """The last ``width`` values as block characters, scaled to their own maximum."""
    vals = [v for v in values if not math.isnan(v)][-width:]
    if not vals:
        return ""
    top = max(vals)
    if top <= 0:
        return _BARS[0] * len(vals)
    return "".join(_BARS[min(7, int(v / top * 7.999))] for v in vals)


def chart(values: tuple[float | None, ...] | list[float | None], width: int) -> str:
    """One bar per value (the last ``width``), gaps where there was no data."""
    vals = list(values)[-width:]
    present = [v for v in vals if v is not None and not math.isnan(v)]
    top = max(present, default=0.0)
    out = []
    for v in vals:
        if v is None or math.isnan(v):
            out.append(" ")
        elif top <= 0:
            out.append(_BARS[0])
        else:
            out.append(_BARS[min(7, int(v / top * 7.999))])
    return "".join(out)


def pct(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    if ratio == 0:
        return "0%"
    return f"{ratio * 100:.2f}%" if ratio < 0.1 else f"{ratio * 100:.1f}%"


def burn(value: float | None) -> Text:
    if value is None:
        return Text("-", style="dim")
    style = "bold red" if value >= 14.4 else "yellow" if value >= 1 else ""
    return Text(f"{value:.1f}x", style=style)


def endpoints_health(endpoints: Iterable[EndpointReport]) -> Text:
    """``web-api burning 4.20% · web-api-health up``: the state (and the
    5-minute error ratio) of the endpoints serving what a screen shows."""
    out = Text()
    for e in endpoints:
        out.append(" · " if out else "")
        out.append(f"{safe(e.name)} ")
        out.append(e.state, style=ENDPOINT_STYLE.get(e.state, ""))
        ratio = e.ratios.get("5m")
        if ratio is not None:
            out.append(f" {pct(ratio)}")
    return out


def ack_note(ack: Ack | None, now: float) -> Text:
    """``acknowledged by dana@ops 4m ago, until 15:03:00Z: restarting it``."""
    if ack is None:
        return Text()
    from opstui.timeutil import clock_time

    said = f": {ack.note}" if ack.note else ""
    return Text(
        safe(f"acknowledged by {ack.actor} {human_age(now - ack.at)}, until "
             f"{clock_time(ack.until)}{said}"),
        style="cyan",
    )  # fmt: skip


def deploy_glyph(d: DeploymentRow) -> tuple[str, str]:
    """A deployment as a chart mark and its style: failed ``✗``, rolled back
    ``▼``, deployed (an alias move too) ``▲``."""
    if d.status == "failed":
        return "✗", "bold red"
    if d.action == "rollback":
        return "▼", "bold yellow"
    return "▲", "bold green"


def last_deploy(d: DeploymentRow, now: float, *, version_prefix: str = "") -> Text:
    """``; last ▼ v4 3h ago by dana@ops``: a screen's most recent deployment
    when none falls in the window its chart shows."""
    glyph, style = deploy_glyph(d)
    out = Text().append("; last ", "dim").append(glyph, style)
    who = d.actor or "?"
    out.append(safe(f" {version_prefix}{d.version} {age(now - d.deployed_at)} ago by {who}"), "dim")
    return out


class Hanging:
    """Lines wrapped to the width they are drawn at, each continuation indented
    under the text after its label (``  train      python train.py --epochs``
    goes on under ``python``), so a long command in a plan never runs back to
    column 0 where it would read as a step of its own."""

    def __init__(self, lines: Iterable[str], style: str = "") -> None:
        self.lines = list(lines)
        self.style = style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(8, options.max_width)
        for line in self.lines:
            label = _LABEL.match(line)
            indent = len(label.group(0)) if label else 2
            indent = indent if indent <= width // 2 else 2
            wrapped = textwrap.wrap(line, width, subsequent_indent=" " * indent,
                                    break_on_hyphens=False, drop_whitespace=True)  # fmt: skip
            for piece in wrapped or [""]:
                yield Text(piece, style=self.style, no_wrap=True, overflow="fold")


#: A plan line's label: leading spaces, a word (``validate``, ``change:``), spaces.
_LABEL = re.compile(r"^\s+\S+\s+")
