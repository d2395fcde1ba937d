"""A console over the bundled sample history, with a frozen clock, for the TUI tests.

The sample history ends at ``SAMPLE_END``; the clock stands 30 minutes
later, so ages on screen are the same on every run (snapshots compare them).
The config gives the sample pipelines real, tiny stage commands so actions
started from the console run for real through the detached runner.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opstui.config import Config, parse_config
from opstui.store import Store
from opstui.store.importer import import_files
from opstui.tui.app import OpstuiApp

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_END = datetime(2026, 11, 15, 12, tzinfo=UTC).timestamp()
FROZEN = SAMPLE_END + 1800

_OK = '["{python}", "-c", "print(\'ok\')"]'
#: For screenshots: the plan shows commands, and {python} is this machine's path.
PORTABLE = '["echo", "ok"]'
_STAGES = {
    "devops": ["plan", "build", "test", "release", "deploy", "monitor"],
    "mlops": ["data", "validate", "train", "evaluate", "deploy", "monitor"],
}


def _pipeline(name: str, kind: str, run: str) -> str:
    stages = ", ".join(f'{{ name = "{s}", run = {run} }}' for s in _STAGES[kind])
    return (
        f'[pipelines.{name}]\nkind = "{kind}"\nenvironment = "production"\n'
        f"stages = [{stages}]\n"
        f"[pipelines.{name}.rollback]\n"
        'run = ["{python}", "-c", "print(\'rolling back to {version}\')"]\n'
    )


def config_text(run: str = _OK) -> str:
    return (
        'actor = "tester@console"\n'
        "[environments.staging]\n[environments.production]\n"
        + "".join(
            _pipeline(n, k, run)
            for n, k in [
                ("web-api", "devops"),
                ("billing-worker", "devops"),
                ("churn-model", "mlops"),
                ("fraud-model", "mlops"),
            ]
        )
        + '[models.churn]\npipeline = "churn-model"\n[models.fraud]\npipeline = "fraud-model"\n'
    )


def sample_store(tmp: Path, name: str = "opstui.db") -> Path:
    path = tmp / name
    with Store(path, clock=lambda: FROZEN) as store:
        import_files(store, [ROOT / "sample_runs"])
    return path


def sample_config(tmp: Path, extra: str = "", *, portable: bool = False) -> Config:
    path = tmp / "opstui.toml"
    path.write_text(config_text(PORTABLE if portable else _OK) + extra)
    return parse_config(path.read_text(), path)


def make_app(
    tmp: Path,
    *,
    store: Path | None = None,
    config: Config | None = None,
    clock: Callable[[], float] | None = None,
    **kwargs: Any,
) -> OpstuiApp:
    kwargs.setdefault("poll", False)
    return OpstuiApp(
        store if store is not None else sample_store(tmp),
        config if config is not None else sample_config(tmp),
        clock=clock or (lambda: FROZEN),
        **kwargs,
    )
