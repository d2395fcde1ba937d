"""Dialogs: confirm an action, the key bindings, jump to a name."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from opstui.tui.render import Hanging, safe
from opstui.tui.table import LiveTable, SteadyInput

_DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 76; max-width: 100%; height: auto; max-height: 100%;
    border: thick $accent; background: $surface; padding: 0 1;
}}
"""


class ConfirmScreen(ModalScreen[bool]):
    """The plan from the action path, its target and environment; y runs it, n / esc does not.

    With a refusal (read-only), the plan is still shown, and why it cannot run.
    """

    DEFAULT_CSS = (
        _DIALOG_CSS.format(name="ConfirmScreen")
        + """
    ConfirmScreen #question { text-style: bold; }
    ConfirmScreen #plan { height: auto; max-height: 14; overflow-y: auto; }
    ConfirmScreen #keys { color: $text-muted; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "yes", "Yes, do it"),
        Binding("n,escape", "no", "No"),
    ]

    def __init__(self, plan: Any, refusal: str | None) -> None:
        super().__init__()
        self.plan = plan
        self.refusal = refusal

    def compose(self) -> ComposeResult:
        plan = self.plan
        env = plan.environment.upper() if plan.environment else "no environment"
        with Vertical():
            yield Static(Text(safe(plan.question)), id="question")
            yield Static(Text(f"target: {plan.target}   environment: {env}"), id="target")
            yield Static(Hanging(safe(line) for line in plan.lines()), id="plan")
            if self.refusal:
                yield Static(Text(f"Unavailable: {self.refusal}", style="bold red"), id="refusal")
                yield Static("esc closes; nothing was changed (the refusal is audited)", id="keys")
            else:
                yield Static("y runs it (detached, progress on the dashboard) · n / esc cancels",
                             id="keys")  # fmt: skip

    def action_yes(self) -> None:
        if self.refusal is None:
            self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


class ApproveScreen(ModalScreen[bool]):
    """Approve a policy's request: what it will do, as whom; y approves, n / esc does not."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="ApproveScreen")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "yes", "Yes, approve"),
        Binding("n,escape", "no", "No"),
    ]

    def __init__(self, policy: str, why: str) -> None:
        super().__init__()
        self.policy = policy
        self.why = why

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(f"Approve policy {safe(self.policy)}?", style="bold"))
            yield Static(Hanging([safe(self.why)]))
            yield Static(Text(f"Approved by you (audited), then done as policy:{safe(self.policy)} "
                              "through the same plan and guards as your own keys.",
                              style="dim"))  # fmt: skip
            yield Static("y approves · n / esc cancels (n on the row rejects the request)")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = (
        _DIALOG_CSS.format(name="HelpScreen")
        + """
    HelpScreen LiveTable { height: auto; max-height: 20; scrollbar-size-horizontal: 0; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Keys (remap by id in [tui.keys] of opstui.toml)", style="bold"))
            # Narrow, the ids (needed only to remap a key) go and what a key
            # does keeps the room, elided rather than cut.
            table = LiveTable([("key", "KEY"), ("id", "ID", 64), ("does", "DOES")],
                              flex="does", show_cursor=False)  # fmt: skip
            # Plain Text: a key remapped to "[" is not markup.
            table.show([(f"{i}", (Text(k), Text(ident), Text(d)))
                        for i, (k, ident, d) in enumerate(self.rows)])  # fmt: skip
            yield table

    def action_close(self) -> None:
        self.dismiss(None)


class JumpScreen(ModalScreen[str | None]):
    """Type part of a name; enter jumps to the highlighted match."""

    DEFAULT_CSS = (
        _DIALOG_CSS.format(name="JumpScreen")
        + """
    JumpScreen OptionList { height: auto; max-height: 12; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, targets: list[tuple[str, str]]) -> None:
        super().__init__()
        self.targets = targets

    def compose(self) -> ComposeResult:
        with Vertical():
            yield SteadyInput(placeholder="jump to… (pipeline, model or endpoint name)", id="jump")
            yield OptionList(*self._options(""), id="matches")

    def _options(self, needle: str) -> list[Option]:
        return [Option(safe(label), id=key) for key, label in matching(self.targets, needle)][:50]

    def on_input_changed(self, event: Input.Changed) -> None:
        matches = self.query_one(OptionList)
        matches.clear_options()
        matches.add_options(self._options(event.value))
        if matches.option_count:
            matches.highlighted = 0

    def on_input_submitted(self, event: Input.Submitted) -> None:
        matches = self.query_one(OptionList)
        if matches.highlighted is not None and matches.option_count:
            self.dismiss(matches.get_option_at_index(matches.highlighted).id)
        else:
            self.dismiss(None)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def key_down(self) -> None:
        self.query_one(OptionList).action_cursor_down()

    def key_up(self) -> None:
        self.query_one(OptionList).action_cursor_up()

    def action_close(self) -> None:
        self.dismiss(None)


def matching(targets: list[tuple[str, str]], needle: str) -> list[tuple[str, str]]:
    """The targets whose ``kind name`` holds every word typed (``endpoint web``,
    ``model:fraud``, ``web``), case-insensitive: a name equal to what was
    typed first, then names that begin with it, then the rest, each in the
    order given."""
    words = needle.lower().replace(":", " ").split()
    if not words:
        return list(targets)
    ranked = []
    for i, (key, label) in enumerate(targets):
        kind, _, name = key.partition(":")
        haystack = f"{kind} {name}".lower()
        if not all(w in haystack for w in words):
            continue
        last = words[-1]
        rank = 0 if name.lower() == last else 1 if name.lower().startswith(last) else 2
        ranked.append((rank, i, (key, label)))
    return [target for _, _, target in sorted(ranked)]


class AckScreen(ModalScreen[tuple[str, float] | None]):
    """Acknowledge a fault: an optional note and how long (``30m``, ``2h``,
    ``1d``; 1h if left as is). Enter acknowledges, esc does not."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="AckScreen")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(f"Acknowledge {safe(self.what)}", style="bold"))
            yield Static(Text("note: what you are doing about it (optional)", style="dim"))
            yield SteadyInput(placeholder="e.g. rolled back, watching the error rate", id="note")
            yield Static(Text("for how long: 30m, 2h, 1d (at most 7d)", style="dim"))
            yield SteadyInput(value="1h", placeholder="1h", id="for")
            yield Static("", id="error")
            yield Static(Text("enter acknowledges · esc cancels", style="dim"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "note":
            self.query_one("#for", Input).focus()
            return
        seconds = duration(self.query_one("#for", Input).value)
        if seconds is None:
            self.query_one("#error", Static).update(
                Text("for how long? a number and s, m, h or d (1h), up to 7d", style="red")
            )
            return
        self.dismiss((self.query_one("#note", Input).value.strip(), seconds))

    def action_close(self) -> None:
        self.dismiss(None)


def duration(text: str) -> float | None:
    """``90s``, ``30m``, ``2h``, ``1d`` (a bare number is minutes) in seconds;
    None for anything else or beyond 7 days."""
    from opstui.timeutil import span

    return span(text, most=7 * 86400)
