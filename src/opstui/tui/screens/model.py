"""A model: its versions and gate verdicts, deployments, and the last drift check by feature.

At every size the verdicts keep their columns: narrow, the versions' metrics
and the deployments' who elide (and go, at 60 columns), the features' limit
and since go before a value could be cut, and the line over the selected
feature's bins says them. The versions and deployments take the rows they
hold up to a share, the drift table the rest; the drift history is an hour a
bar, as many hours as the width holds (up to a week).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.events import Resize
from textual.widgets import DataTable, Footer, Static

from opstui.timeutil import clock_time
from opstui.tui.messages import RefreshWanted
from opstui.tui.render import (
    age,
    chart,
    deploy_glyph,
    endpoints_health,
    last_deploy,
    safe,
    status_text,
)
from opstui.tui.screens.base import Detail
from opstui.tui.table import LiveTable, Row, dim
from opstui.tui.widgets import Panel
from opstui.views.snapshot import Snapshot, SnapshotReader


class ModelData(NamedTuple):
    versions: list[Any]
    deployments: list[Any]
    drift: Any  # drift.records.DriftCheck | None
    #: The drift checks of the hours the history shows (store.drift.CheckRow), newest first.
    checks: tuple[Any, ...] = ()
    #: When it was read: the history's last hour ends here.
    now: float = 0.0


#: The drift history under the features: a bar an hour, this many hours at
#: 80 columns and up to ``HISTORY_MAX`` on a wide screen.
HISTORY_HOURS = 48
HISTORY_MAX = 7 * 24
#: Marks the legend line names.
MARKS_LISTED = 3
#: A table's least height: its header, a row, its border.
TABLE_LEAST = 4


def history_hours(width: int) -> int:
    """The drift history's hours for a screen this wide: a bar an hour between
    the label and the words after the marks ("  168h, an hour a bar"), the
    line's padding left out."""
    return max(1, min(HISTORY_MAX, width - 2 - 9 - 23))


def top_height(room: int, top: int, drift: int) -> int:
    """The versions and deployments' height in ``room`` rows (the drift table
    takes the rest): the rows they hold, up to what leaves the drift table
    its rows or, when those do not fit, three fifths of the room."""
    drift_h = min(drift, max(TABLE_LEAST, room * 3 // 5))
    return max(TABLE_LEAST, min(top, room - drift_h))


class ModelScreen(Detail):
    kind = "model"
    DEFAULT_CSS = """
    ModelScreen #top { height: 8; }
    ModelScreen #panel-drift { height: 1fr; }
    ModelScreen #history { height: auto; padding: 0 1; }
    ModelScreen #dist { height: 5; border: round $primary-muted; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield Static(f"Model {safe(self.target)}", id="title")
        yield Static("", id="note")
        # The gate's verdict and the age are never cut: the metrics and who
        # elide, last, and go when too narrow to say anything.
        self.versions = LiveTable(
            [
                ("version", "VER"),
                ("status", "STATUS"),
                ("gate", "GATE"),
                ("metrics", "METRICS", 34),
            ],
            flex="metrics",
        )
        self.deployed = LiveTable(
            [("env", "ENV"), ("version", "VER"), ("age", "AGE"), ("action", "BY", 30)],
            flex="action",
        )
        self.features = LiveTable(
            [
                ("feature", "FEATURE"),
                ("method", "TEST"),
                ("value", "VALUE"),
                ("limit", "LIMIT", 66),
                ("drift", "DRIFT"),
                ("since", "SINCE", 62),
                ("note", "NOTE"),
            ],
            flex="note",
        )
        #: The last read drawn (a resize draws it again), and the hours it read.
        self._shown: tuple[ModelData, Snapshot] | None = None
        self.hours = HISTORY_HOURS
        self._history_lines = 2
        with Horizontal(id="top"):
            yield Panel("versions", self.versions)
            yield Panel("deployments", self.deployed)
        yield Panel("drift", self.features, id="panel-drift")
        yield Static("", id="history")
        yield Static("", id="dist")
        yield Footer()

    def on_mount(self) -> None:
        self.features.focus()
        self._check: Any = None
        self.hours = history_hours(self.app.size.width)
        # The title line is drawn from what is set here (``Detail.set_title``).
        self.set_title(f"Model {safe(self.target)}")

    def on_resize(self, event: Resize) -> None:
        hours = history_hours(event.size.width)
        more, self.hours = hours > self.hours, hours
        if self._shown is not None:
            self.show_extra(*self._shown)
        if more:
            self.post_message(RefreshWanted())

    def _fit(self) -> None:
        """The versions and deployments' height for the screen's and what they hold."""
        history = self.query_one("#history", Static)
        # The title, the note, the footer, the bins' box and the history's lines.
        used = 3 + 5 + (self._history_lines if history.display else 0)
        top = max(len(self.versions.keys), len(self.deployed.keys), 1) + 3
        drift = max(len(self.features.keys), 1) + 3
        h = top_height(self.size.height - used, top, drift)
        box = self.query_one("#top", Horizontal)
        if box.styles.height is None or box.styles.height.value != h:
            box.styles.height = h

    def load(self, console: SnapshotReader) -> ModelData:
        from opstui.store.deployments import deployment_history
        from opstui.store.drift import checks, latest_check
        from opstui.store.models import model_versions

        store = console.store
        now = console.clock()
        check = None
        recent: tuple[Any, ...] = ()
        if latest_check(store, self.target) is not None:
            from opstui.drift.records import latest

            check = latest(store, self.target)
            since = now - self.hours * 3600
            recent = tuple(
                c for c in checks(store, self.target, limit=500) if c.computed_at >= since
            )
        return ModelData(
            model_versions(store, self.target),
            deployment_history(store, self.target),
            check,
            recent,
            now,
        )

    def show_extra(self, data: ModelData, snap: Snapshot) -> None:
        from opstui.analysis.drift_results import METHOD_LABELS

        self._shown = (data, snap)
        now = self.clock()
        rows: list[Row] = []
        for v in reversed(data.versions):
            metrics = ", ".join(
                f"{k}={val:.3g}" if isinstance(val, float) else f"{k}={val}"
                for k, val in list(v.metrics.items())[:2]
            )
            gate = v.gate or {}
            verdict = gate.get("verdict", gate.get("passed"))
            gate_text = (
                Text("pass", style="green")
                if verdict in (True, "pass", "passed")
                else Text("fail", style="red")
                if verdict in (False, "fail", "failed")
                else dim("-")
            )
            rows.append((v.version, (v.version, status_text(v.status), gate_text, safe(metrics))))
        self.versions.show(rows)
        self.deployed.show(
            [
                (
                    str(d.id),
                    (
                        d.environment[:4],
                        d.version,
                        age(now - d.deployed_at),
                        f"{d.action} {safe(d.actor) or ''}".strip(),
                    ),
                )
                for d in data.deployments
            ]
        )
        quiet = self._history(data)
        check = data.drift
        self._check = check
        serving = endpoints_health(e for e in snap.endpoints if e.serves("model", self.target))
        if check is None:
            if quiet is not None:
                # Nothing drifted or deployed lately: said on the note line,
                # and the panels keep the room (80x24).
                self.query_one("#history", Static).display = False
                serving = serving.append(" · " if serving else "").append_text(quiet)
                serving.truncate(max(20, self.size.width - 2), overflow="ellipsis")
            if not self.stale:
                self.query_one("#note", Static).update(serving)
            # In the NOTE column, which elides: in FEATURE it would widen
            # that column and push the others off a narrow screen.
            blank = ("",) * 6
            self.features.show([("none", (*blank, dim("no drift checks yet: opstui drift MODEL")))])
            self._fit()
            return
        ds = check.dataset
        # The retrain first after the count: at 80 columns the line elides its end.
        note = Text(f"drift {ds.drifted}/{ds.checked} features", no_wrap=True)
        if check.retrain is not None:
            note.append(" · RETRAIN SUGGESTED (t)", style="bold yellow")
        note.append(f" · share {ds.share:.2f}, dataset drifts at {ds.threshold:.2f}")
        c = check.classifier
        if c is not None:
            note.append(
                f" · classifier AUC {c.auc:.2f} {'>' if c.alert else '<='} {c.limit:.2f}",
                style="bold yellow" if c.alert else "",
            )
        if serving:
            note.append(" · ").append_text(serving)
        note.truncate(max(10, self.size.width - 2), overflow="ellipsis")
        self.query_one("#note", Static).update(note)
        rows = []
        for f in sorted(check.features, key=lambda f: (not f.drifted, f.name)):
            v = f.verdict
            since = check.began.get(f.name)
            rows.append(
                (
                    f.name,
                    (
                        safe(f.name),
                        METHOD_LABELS.get(f.method or "", f.method or "-"),
                        "-" if v is None or v.value is None else f"{v.value:.3f}",
                        "-" if v is None or v.threshold is None else f"{v.threshold:g}",
                        Text("DRIFT", style="bold red") if f.drifted else dim("ok"),
                        age(now - since) if since else "",
                        safe(f.problem or "; ".join(f.notes)),
                    ),
                )
            )
        self.features.show(rows)
        self._fit()
        self._draw_distribution(self.features.selected_key)

    def _history(self, data: ModelData) -> Text | None:
        """The share of features drifted, a bar an hour, and under it a mark in
        the hour of each deployment, rollback or alias move of the model. A quiet
        model (no check, no deploy in the hours shown) gets one line, returned:
        the note line takes it when it has room (no drift check to sum up)."""
        hours = history_hours(self.size.width)
        room = max(20, self.size.width - 2)
        now = data.now or self.clock()
        shares: list[float | None] = [None] * hours
        drifted = [False] * hours
        for c in data.checks:
            i = hours - 1 - int((now - c.computed_at) // 3600)
            if 0 <= i < hours:
                shares[i] = max(shares[i] or 0.0, c.drift_share)
                drifted[i] = drifted[i] or c.drifted
        cells: list[tuple[str, str] | None] = [None] * hours
        rank = {"▲": 0, "▼": 1, "✗": 2}
        marked = []
        for d in data.deployments:  # newest first
            ago = int((now - d.deployed_at) // 3600)
            i = hours - 1 - ago
            if ago < 0 or i < 0:
                continue
            marked.append(d)
            mark = deploy_glyph(d)
            old = cells[i]
            if old is None or rank[mark[0]] > rank[old[0]]:
                cells[i] = mark
        checked = any(v is not None for v in shares)
        box = self.query_one("#history", Static)
        if not checked and not marked:
            line = self._last_deploy(data, f"last {hours}h: no drift check, no deploy", now, room)
            box.update(line)
            box.display = True
            self._history_lines = 1
            return line
        box.display = True
        self._history_lines = 2
        text = Text("drift    ")
        if checked:
            bars = chart(shares, hours)
            for bar, bad in zip(bars, drifted, strict=True):
                text.append(bar, "bold red" if bad else "green")
            top = max(v for v in shares if v is not None)
            text.append(f"  share, max {top:.2f}", "dim")
        else:
            text.append(f"no checks in the last {hours}h", "dim")
        text.append("\ndeploys  ")
        if not marked:
            text.append_text(self._last_deploy(data, f"none in the last {hours}h", now, room - 9))
            box.update(text)
            return None
        for cell in cells:
            text.append(" " if cell is None else cell[0], "" if cell is None else cell[1])
        text.append(f"  {hours}h, an hour a bar", "dim")
        legend = Text("\n         ")
        for listed, d in enumerate(marked[:MARKS_LISTED]):
            glyph, style = deploy_glyph(d)
            item = safe(
                f" {clock_time(d.deployed_at)[:5]}Z {d.environment[:4]} v{d.version} "
                f"{d.actor or '?'}"
            )
            if listed and len(legend) + len(item) + 3 > room:
                break
            legend.append(" · " if listed else "").append(glyph, style).append(item)
        text.append_text(legend)
        self._history_lines = 3
        box.update(text)
        return None

    def _last_deploy(self, data: ModelData, said: str, now: float, room: int) -> Text:
        """``said``, then the model's last deployment (none in the hours shown)."""
        line = Text(said, "dim")
        if data.deployments:
            line.append_text(last_deploy(data.deployments[0], now, version_prefix="v"))
        line.truncate(room, overflow="ellipsis")
        return line

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table is self.features and event.row_key is not None:
            self._draw_distribution(event.row_key.value)

    def _draw_distribution(self, feature: str | None) -> None:
        """Reference and current shares of the feature's bins, as two rows of bars."""
        check = getattr(self, "_check", None)
        box = self.query_one("#dist", Static)
        found = next((f for f in check.features if f.name == feature), None) if check else None
        js = found.result("jensenshannon") if found else None
        shares = dict(js.details) if js is not None else {}
        if not shares.get("reference"):
            box.update(dim("select a feature to see its reference and current distributions"))
            return
        ref, cur = shares["reference"], shares["current"]
        top = max([*ref, *cur, 1e-12])
        width = max(1, min(len(ref), 60))
        # One line (the box has three): the verdict first, as a narrow drift
        # table drops its LIMIT and SINCE columns.
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{safe(feature)}: ", style="bold")
        v = found.verdict if found else None
        if v is not None and v.value is not None:
            limit = "" if v.threshold is None else f" (limit {v.threshold:g})"
            text.append(f"{v.value:.3f}{limit}")
        since = self._check.began.get(feature) if self._check is not None and feature else None
        if since:
            text.append(f", drifting for {age(self.clock() - since)}")
        text.append(" · bins of the reference (top) and now (bottom)", style="dim")
        text.truncate(max(10, self.size.width - 4), overflow="ellipsis")
        text.append("\n")
        text.append("ref " + _bars(ref[:width], top) + "\n", style="green")
        text.append(
            "now " + _bars(cur[:width], top), style="bold red" if found and found.drifted else ""
        )
        box.update(text)


def _bars(shares: list[float], top: float) -> str:
    """Bars on one shared scale, so the two rows compare."""
    blocks = " ▁▂▃▄▅▆▇█"
    return "".join(blocks[min(8, round(s / top * 8))] * 2 for s in shares)
