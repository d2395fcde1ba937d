"""The console's key bindings by id: what ``[tui.keys]`` in opstui.toml may remap.

Kept free of Textual so the config can validate a remap without importing
the TUI (``opstui status`` never loads Textual).
"""

from __future__ import annotations

#: id, default key (Textual's key names), footer label, what the help screen says
KEYS: tuple[tuple[str, str, str, str], ...] = (
    ("open", "enter", "Open", "Open the selected row"),
    ("retry", "r", "Retry", "Retry the selected pipeline's failed run"),
    ("rollback", "b", "Rollback", "Roll back the selected service or model"),
    ("retrain", "t", "Retrain", "Retrain the selected model"),
    ("filter", "slash", "Filter", "Filter rows by name"),
    ("jump", "colon", "Jump", "Jump to a pipeline, model or endpoint by name"),
    ("audit", "a", "Audit", "The audit trail of actions"),
    (
        "timeline",
        "T",
        "Timeline",
        "Timeline: runs, deploys, alerts, drift, actions",
    ),
    ("acknowledge", "A", "Ack", "Acknowledge the selected fault (again: undo)"),
    ("policies", "P", "Policies", "Automation policies: decisions, approvals, flaky stages"),
    ("pause", "p", "Pause", "Pause / resume refreshing"),
    ("help", "question_mark", "Help", "Every key binding"),
    ("quit", "q", "Quit", "Quit"),
)
KEY_IDS = frozenset(k[0] for k in KEYS)
#: How a few of Textual's key names read on the help screen.
SHOWN = {"slash": "/", "colon": ":", "question_mark": "?", "escape": "esc"}


def shown(key: str) -> str:
    return ",".join(SHOWN.get(k, k) for k in key.split(","))
