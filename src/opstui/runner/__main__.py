"""``python -m opstui.runner RUN_ID --store PATH [--config PATH]``: the detached executor.

Started by ``--detach`` (and the TUI) in its own session. It skips the
Typer CLI on purpose: importing and building the CLI cost ~120 ms of the
~400 ms between pressing retry and the run showing as running
(bench/action_latency.py).
"""

from __future__ import annotations

import argparse
import sys

from opstui.errors import OpstuiError
from opstui.runner.execute import main_detached
from opstui.terminal import visible


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opstui.runner")
    parser.add_argument("run_id", type=int)
    parser.add_argument("--store", required=True)
    parser.add_argument("--config")
    args = parser.parse_args(argv)
    try:
        return main_detached(args.store, args.config, args.run_id)
    except OpstuiError as exc:
        # The runner log is read in a terminal (`tail`): no escape from data reaches it.
        print(f"opstui runner: {visible(str(exc))}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
