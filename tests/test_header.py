"""The top line's right end: sources, host, store, in what room there is."""

from __future__ import annotations

from rich.text import Text

from opstui.tui.header import Where, fit, right_end
from opstui.views.endpoints import EndpointReport


def _ep(name: str, state: str) -> EndpointReport:
    return EndpointReport(name, "prometheus", "http://x", state, None, None, None, None, None, None)


WHERE = Where("team.db", "ci-runner-3")
EPS = [_ep("prom-web", "up"), _ep("airflow", "down"), _ep("mlflow", "stale")]


def test_wide_names_each_source_with_its_state() -> None:
    for width in (200, 120):
        line = right_end(WHERE, EPS, width).plain
        assert line == "prom-web ● airflow ✗ mlflow ? · ci-runner-3 · team.db"


def test_narrow_counts_sources_worst_first_and_keeps_the_store() -> None:
    line = right_end(WHERE, EPS, 80).plain
    assert line == "src 1 down 1 stale 1 up · team.db"
    assert len(line) <= 80 * 0.45


def test_the_health_stays_longest_then_the_store() -> None:
    assert right_end(WHERE, EPS, 60).plain == "src 1 down 1 stale 1 up"
    assert right_end(WHERE, EPS, 40).plain == "team.db"
    long = right_end(Where("x" * 50 + ".db", "h"), [], 40).plain
    assert long.endswith("…") and len(long) == 18
    # No sources: nothing said of them (the endpoints panel says how to add one).
    assert right_end(WHERE, [], 80).plain == "ci-runner-3 · team.db"


def test_hostile_names_are_escaped() -> None:
    line = right_end(Where("a\x1b[2Jb.db", "h\x07"), [_ep("x\x1b]52;c;Zm9v\x07", "up")], 200)
    assert "\x1b" not in line.plain and "\x07" not in line.plain


def test_fit_elides_the_left_and_keeps_the_right_at_the_edge() -> None:
    left = Text("4 failing 1 endpoint burning since 09:22: 1 failed, 1 alert firing, 1 drifting")
    line = fit(left, Text("src 1 down · team.db"), 80)
    assert line.cell_len == 78
    assert line.plain.endswith("src 1 down · team.db")
    assert "…" in line.plain and line.plain.startswith("4 failing")
    short = fit(Text("all healthy"), Text("team.db"), 80)
    assert short.plain.startswith("all healthy ") and short.plain.endswith(" team.db")
    assert short.cell_len == 78


def test_plan_lines_wrap_under_their_text_never_to_column_zero() -> None:
    from rich.console import Console

    from opstui.tui.render import Hanging

    console = Console(width=40, record=True)
    lines = [
        "Retry fraud-model in production",
        '  validate   run: python -c "import sys; print(sys.argv)" --flag-one --flag-two',
        "  change:    " + "x" * 60,  # a word longer than the line: folded, indented
    ]
    console.print(Hanging(lines))
    out = console.export_text().splitlines()
    assert out[0] == "Retry fraud-model in production"
    assert out[1].startswith("  validate   run: python")
    # Every continuation starts under the text after its label (column 13).
    for line in out[2:]:
        if not line.startswith("  change:"):
            assert line.startswith(" " * 13) and line[13] != " ", line
    assert "".join(line.strip() for line in out).count("x") == 60
    assert max(len(line) for line in out) <= 40
