"""What the console offers by name: the help screen's rows and the command palette's entries.

Kept out of the app so the list of what an operator can do reads in one
place; the app supplies the callbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from textual.app import SystemCommand

from opstui.config.keys import KEYS, shown
from opstui.runner.planning import RETRYABLE
from opstui.tui.table import TABLE_KEYS
from opstui.views.snapshot import Snapshot


def help_rows(keymap: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(key, id, description) of every binding, as remapped (``keymap``: Textual's ids)."""
    rows = [(shown(keymap.get(f"opstui.{i}", key)), i, desc) for i, key, _, desc in KEYS]
    rows += [
        ("escape", "back", "Back / close / clear the filter"),
        ("tab", "-", "Next panel"),
        ("ctrl+p", "-", "Command palette: every action by name"),
        ("f", "-", "Log: follow new lines (pipeline screen)"),
        ("n / N", "-", "Log: next / previous search match"),
        ("w o s y", "-", "Log: wrap, open in $PAGER, save to a file, copy the line"),
    ]
    # Every table's own keys (tui/table.py), shown as typed.
    glyphs = {"greater_than_sign": ">", "less_than_sign": "<"}
    rows += [(glyphs.get(key, key), "-", f"Table: {what}") for key, _, what in TABLE_KEYS]
    return rows


def jump_targets(snap: Snapshot) -> list[tuple[str, str]]:
    """(key, label) of everything the console can open by name."""
    out = [(f"pipeline:{p.name}", f"pipeline {p.name}") for p in snap.pipelines]
    out += [(f"model:{m.name}", f"model {m.name}") for m in snap.models]
    out += [(f"endpoint:{e.name}", f"endpoint {e.name}") for e in snap.endpoints]
    return out


def palette(
    snap: Snapshot,
    *,
    open_key: Callable[[str], object],
    start_action: Callable[[str, str], object],
    audit: Callable[[], object],
    timeline: Callable[[], object],
    filter_rows: Callable[[], object],
    jump: Callable[[], object],
    help_keys: Callable[[], object],
    pause: Callable[[], object],
    policies: Callable[[], object] = lambda: None,
    why_not: Callable[[str, str], str | None] = lambda action, key: None,
) -> Iterator[SystemCommand]:
    """The palette's entries for what ``snap`` holds: open, retry, roll back,
    retrain by name, each only where ``why_not(action, key)`` has no reason
    against it (the footer's rule: ``tui/plans.unavailable``)."""
    for key, label in jump_targets(snap):
        yield SystemCommand(f"Open {label}", f"Open the {key.partition(':')[0]} screen",
                            lambda key=key: open_key(key))  # fmt: skip
    for p in snap.pipelines:
        key = f"pipeline:{p.name}"
        if p.latest is not None and p.latest.status in RETRYABLE and not why_not("retry", key):
            # Only a run a retry accepts (a succeeded one would be refused).
            yield SystemCommand(f"Retry {p.name}", f"Retry its {p.latest.status} run",
                                lambda key=key: start_action("retry", key))  # fmt: skip
        yield SystemCommand(f"Roll back {p.name}", "Previous good version",
                            lambda key=key: start_action("rollback", key))  # fmt: skip
    for m in snap.models:
        key = f"model:{m.name}"
        if not why_not("retrain", key):
            yield SystemCommand(f"Retrain {m.name}", "Train, gate, promote if better",
                                lambda key=key: start_action("retrain", key))  # fmt: skip
        yield SystemCommand(f"Roll back model {m.name}", "Previous good version",
                            lambda key=key: start_action("rollback", key))  # fmt: skip
    yield SystemCommand("Audit trail", "Every operator action", audit)
    yield SystemCommand(
        "Timeline", "Failures, deploys, rollbacks, alerts, drift, actions", timeline
    )
    yield SystemCommand(
        "Policies", "Automation: decisions, requests for approval, flaky stages", policies
    )
    yield SystemCommand("Filter rows", "Show rows whose name matches", filter_rows)
    yield SystemCommand("Jump to…", "A pipeline, model or endpoint by name", jump)
    yield SystemCommand("Key bindings", "Every key and its id", help_keys)
    yield SystemCommand("Pause / resume refresh", "Freeze the screen", pause)
