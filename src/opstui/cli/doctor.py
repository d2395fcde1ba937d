"""``opstui doctor``: one screen of checks of this setup, each ok / warn /
fail / skip with one line of fix; ``--json`` the same as a document.

The checks are ``opstui.doctor`` (Textual-free); this prints them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from opstui.cli.options import ConfigOpt, StoreOpt
from opstui.cli.output import say, write_json
from opstui.cli.root import app

JSON_SCHEMA = 1


@app.command()
def doctor(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {schema, ok, checks: [{name, verdict, ...}]}.")
    ] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=0.05,
            help="Seconds each source's poll may take (its own timeout when shorter).",
        ),
    ] = 5.0,
) -> None:
    """Check this setup: Python and packages, the config, the store, each
    source (one poll), the terminal, the clock.

    Exits 0 when every check is ok (or skipped), 1 when any warns or fails,
    2 on a bad option. The terminal is judged only when stdout is one (a pipe
    or CI skips it). Nothing is written to the store.
    """
    from opstui.doctor import run_doctor

    checks = run_doctor(store, config, timeout=timeout)
    healthy = all(c.healthy for c in checks)
    if as_json:
        write_json(
            {
                "schema": JSON_SCHEMA,
                "ok": healthy,
                "checks": [
                    {"name": c.name, "verdict": c.verdict, "detail": c.detail, "fix": c.fix or None}
                    for c in checks
                ],
            }
        )
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            say(f"{c.verdict:<5} {c.name:<{width}}  {c.detail}")
            if not c.healthy and c.fix:
                say(f"{'':<5} {'':<{width}}  fix: {c.fix}")
    if not healthy:
        raise typer.Exit(1)
