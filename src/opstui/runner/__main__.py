"""``python -m opstui.runner RUN_ID [--store STORE] [--config PATH]``: the detached executor.

The store comes in ``OPSTUI_STORE`` when ``--store`` is not given (how
``spawn_detached`` passes it: a URL's password stays off the command line).

Started by ``--detach`` (and the TUI) in its own session. It skips the
Typer CLI on purpose: importing and building the CLI cost ~120 ms of the
~400 ms between pressing retry and the run showing as running
(bench/action_latency.py).
"""

from __future__ import annotations

import argparse
import os
import sys

from opstui.errors import OpstuiError
from opstui.runner.execute import main_detached
from opstui.terminal import visible


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opstui.runner")
    parser.add_argument("run_id", type=int)
    parser.add_argument("--store", default=os.environ.get("OPSTUI_STORE"))
    parser.add_argument("--config")
    args = parser.parse_args(argv)
    if not args.store:
        parser.error("no store: pass --store or set OPSTUI_STORE")
    try:
        return main_detached(args.store, args.config, args.run_id)
    except OpstuiError as exc:
        # The runner log is read in a terminal (`tail`): no escape from data reaches it.
        print(f"opstui runner: {visible(str(exc))}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
