"""Where the demo keeps things in its directory, and its small state files.

Stdlib only: every stage process of the demo's pipelines imports this, and
they should start fast. State files are JSON written aside and renamed, so a
reader (another process) never sees half a file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Environment variable naming the demo directory (stages find it from
#: OPSTUI_CONFIG_DIR, which the runner sets, when this is unset).
ENV_DIR = "OPSTUI_DEMO_DIR"


@dataclass(frozen=True)
class Layout:
    root: Path
    #: A team store (``postgresql://...``) the demo writes into instead of
    #: its own ``opstui.db``.
    store_url: str | None = None

    @property
    def store(self) -> Path | str:
        return self.store_url or self.root / "opstui.db"

    @property
    def store_setting(self) -> str:
        """The store as ``opstui.toml`` names it (relative to the demo directory)."""
        return self.store_url or "opstui.db"

    @property
    def config(self) -> Path:
        return self.root / "opstui.toml"

    @property
    def lock(self) -> Path:
        return self.root / "demo.lock"

    @property
    def world(self) -> Path:
        """What the simulator and the serving side tell the pipelines."""
        return self.root / "world"

    @property
    def state(self) -> Path:
        return self.world / "state.json"

    @property
    def traffic(self) -> Path:
        return self.world / "traffic.json"

    def commit(self, pipeline: str, version: str) -> Path:
        return self.world / "commits" / f"{pipeline}-{version}.json"

    def flag(self, name: str) -> Path:
        """A one-shot event (a bad extract, a flaky test): the first stage to
        take it (``take_flag``) gets it, so two runs never both do."""
        return self.world / f"{name}.flag"

    def build(self, pipeline: str, version: str) -> Path:
        return self.root / "builds" / pipeline / version

    def serving(self, target: str) -> Path:
        """What production runs now: a service's manifest or a model's artifact."""
        return self.root / "serving" / target

    def work(self, pipeline: str, run_id: int) -> Path:
        return self.root / "work" / pipeline / f"run-{run_id}"

    @classmethod
    def from_env(cls) -> Layout:
        """The demo directory of a stage process."""
        raw = os.environ.get(ENV_DIR) or os.environ.get("OPSTUI_CONFIG_DIR")
        if not raw:
            raise RuntimeError("not run by the demo: OPSTUI_CONFIG_DIR is not set")
        return cls(Path(raw))


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return default


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    partial.replace(path)


def raise_flag(path: Path, note: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(note, encoding="utf-8")


def take_flag(path: Path) -> str | None:
    """Consume a one-shot flag; None when it is not raised (or another took it)."""
    taken = path.with_name(f"{path.name}.{os.getpid()}")
    try:
        path.rename(taken)  # atomic: exactly one taker
    except FileNotFoundError:
        return None
    note = taken.read_text(encoding="utf-8")
    taken.unlink()
    return note


def speed(layout: Layout) -> float:
    value = read_json(layout.state, {}).get("speed", 1.0)
    return float(value) if isinstance(value, int | float) and value > 0 else 1.0
