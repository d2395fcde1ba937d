"""Themes from ``themes/*.toml``: loaded at start, a broken one never stops the console.

A theme file holds Textual's theme fields (name, dark, primary, secondary,
accent, foreground, background, surface, panel, success, warning, error).
``--theme`` (or ``[tui] theme``) names a bundled theme, Textual's own
(``ansi-dark`` and ``ansi-light`` use the terminal's own 16 colours), or a path to a file.
``NO_COLOR`` is Textual's own: it draws in monochrome, and every state keeps
its glyph or word.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from textual.app import App
from textual.theme import Theme

from opstui.tui.render import safe

DEFAULT = "dark"
_FIELDS = {
    "name", "dark", "primary", "secondary", "accent", "foreground", "background", "surface",
    "panel", "boost", "success", "warning", "error",
}  # fmt: skip


def theme_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent.parent
    # Installed: the wheel carries them as opstui/_themes; a checkout has themes/.
    return [here / "_themes", here.parent.parent / "themes"]


def load_theme(path: Path) -> Theme:
    """One theme file; ``ValueError`` with the reason when it cannot be used."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path.name}: {exc}") from None
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ValueError(f"{path.name}: unknown keys {', '.join(unknown)}")
    if not isinstance(data.get("primary"), str):
        raise ValueError(f'{path.name}: primary = "#rrggbb" is required')
    data.setdefault("name", path.stem)
    try:
        theme = Theme(**data)
        theme.to_color_system()  # parses every colour: a bad one fails here, not mid-draw
    except Exception as exc:
        raise ValueError(f"{path.name}: {exc}") from None
    return theme


def bundled() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in theme_dirs():
        if d.is_dir():
            for f in sorted(d.glob("*.toml")):
                found.setdefault(f.stem, f)
    return found


def apply_theme(app: App[Any], wanted: str | None) -> None:
    """Register every bundled theme and switch to ``wanted`` (falling back, with a notice)."""
    problems = []
    for path in bundled().values():
        try:
            app.register_theme(load_theme(path))
        except ValueError as exc:
            problems.append(str(exc))
    choice = wanted or DEFAULT
    if choice.endswith(".toml") or "/" in choice:
        try:
            theme = load_theme(Path(choice).expanduser())
            app.register_theme(theme)
            choice = theme.name
        except ValueError as exc:
            problems.append(str(exc))
            choice = DEFAULT
    if choice not in app.available_themes:
        if wanted:
            names = ", ".join(sorted(app.available_themes))
            problems.append(f"no theme called {choice!r} (themes: {names})")
        choice = DEFAULT if DEFAULT in app.available_themes else "textual-dark"
    app.theme = choice
    for problem in problems:
        app.notify(
            safe(f"theme not loaded: {problem}; using {choice}"),
            severity="warning",
            timeout=8,
            markup=False,
        )
