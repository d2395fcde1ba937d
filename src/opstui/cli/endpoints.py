"""``opstui endpoints`` and ``opstui poll``."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from opstui.cli.options import ConfigOpt, JsonOpt, StoreOpt
from opstui.cli.output import cell, say, write_json
from opstui.cli.root import app, open_store
from opstui.errors import UsageError

if TYPE_CHECKING:
    from opstui.analysis.rates import BurnAlert


def _pct(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio * 100:.2f}%" if ratio < 0.1 else f"{ratio * 100:.1f}%"


def _alerts_line(alerts: Sequence[BurnAlert]) -> str:
    """``page 1h/5m ok · ticket 3d/6h partial (5m of 3d)``: each pair's status."""
    parts = []
    for a in alerts:
        status = (
            f"partial ({a.partial})" if a.partial else a.status.upper() if a.firing else a.status
        )
        parts.append(f"{a.severity} {a.long_window}/{a.short_window} {status}")
    return " · ".join(parts)


@app.command()
def endpoints(
    as_json: JsonOpt = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Each endpoint: state, last success, error rate per window, SLO burn. Exit 1 if any is
    down, burning, recovering or stale."""
    from opstui.analysis.rates import WINDOWS
    from opstui.store import status as st
    from opstui.timeutil import human_age, iso
    from opstui.views.endpoints import SHOWN, EndpointReport, endpoint_reports

    db, cfg = open_store(store, config, create=False)
    if not cfg.endpoints:
        raise UsageError(
            "no endpoints are configured",
            hint="add [endpoints.NAME] tables to opstui.toml (see `opstui init`)",
        )
    now = time.time()
    with db:
        reports = endpoint_reports(db, cfg, now)
    if as_json:
        doc = {
            "schema": 1,
            "generated_at": iso(now),
            "endpoints": [
                {
                    "name": r.name,
                    "kind": r.kind,
                    "url": r.url,
                    "state": r.state,
                    "reason": r.reason,
                    "last_success_at": iso(r.last_success_at),
                    "last_attempt_at": iso(r.last_attempt_at),
                    "latency_ms": r.latency_ms,
                    "latency_p50_seconds": r.latency_p50,
                    "latency_p99_seconds": r.latency_p99,
                    "polled_by": r.polled_by,
                    "slo": r.slo,
                    "error_ratio": r.ratios,
                    "history_seconds": r.coverage,
                    "burn_rate": r.burn,
                    "alerts": [
                        {
                            "severity": a.severity,
                            "long_window": a.long_window,
                            "short_window": a.short_window,
                            "threshold": a.threshold,
                            "long_burn": a.long_burn,
                            "short_burn": a.short_burn,
                            "firing": a.firing,
                            "status": a.status,
                            "long_history_seconds": a.long_history,
                            "partial": a.partial,
                        }
                        for a in r.alerts
                    ],
                }
                for r in reports
            ],
        }
        write_json(doc)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("ENDPOINT", no_wrap=True, max_width=20, overflow="ellipsis")
        table.add_column("STATE", no_wrap=True)
        table.add_column("SEEN", justify="right", no_wrap=True)
        for window in SHOWN:
            table.add_column(f"ERR {window}", justify="right", no_wrap=True)
        table.add_column("BURN 1h", justify="right", no_wrap=True)
        table.add_column("P99", justify="right", no_wrap=True)
        starred = False

        def star(r: EndpointReport, window: str, shown: str) -> str:
            # A window reaching back before the history: the value is that of
            # the history there is (as PromQL's), and says so.
            nonlocal starred
            if shown == "-" or r.coverage.get(window, WINDOWS[window]) >= WINDOWS[window]:
                return shown
            starred = True
            return f"{shown}*"

        for r in reports:
            burn = r.burn.get("1h")
            table.add_row(
                cell(r.name),
                cell(r.state),
                human_age(now - r.last_success_at) if r.last_success_at else "never",
                *(star(r, w, _pct(r.ratios.get(w))) for w in SHOWN),
                star(r, "1h", "-" if burn is None else f"{burn:.1f}x"),
                "-" if r.latency_p99 is None else f"{r.latency_p99 * 1000:.0f}ms",
            )
        console = Console()
        console.print(table)
        if starred:
            console.print(cell("* less history than the window: the value of the history there is"))
        for r in reports:
            if r.reason:
                console.print(cell(f"{r.name}: {r.reason}"))
            if r.alerts:
                console.print(cell(f"{r.name}: burn alerts {_alerts_line(r.alerts)}"))
    # Recovering still burns its budget over the long windows: the workbook's
    # alert still fires, so a cron job still hears it (the line says why).
    if any(r.state in (st.DOWN, st.BURNING, st.RECOVERING, st.STALE) for r in reports):
        raise typer.Exit(1)


@app.command()
def poll(
    once: Annotated[
        bool, typer.Option("--once", help="Poll every endpoint once and exit.")
    ] = False,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds [default: run until Ctrl-C].")
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Poll the configured endpoints (headless) and write what they say into the store."""
    import asyncio
    import threading

    from opstui.config import load_config, resolve_store_path
    from opstui.notify.send import judge_loop
    from opstui.sources.poller import Poller
    from opstui.store import status as st
    from opstui.store.db import local_actor
    from opstui.store.endpoints import Observation

    cfg = load_config(config)
    if not cfg.endpoints:
        raise UsageError(
            "no endpoints are configured",
            hint="add [endpoints.NAME] tables to opstui.toml (see `opstui init`)",
        )
    path = resolve_store_path(store, cfg)
    last: dict[str, str] = {}

    def report(ob: Observation) -> None:
        # Print changes only: a quiet poller is a healthy one.
        if last.get(ob.endpoint) != ob.state:
            last[ob.endpoint] = ob.state
            why = f": {ob.reason}" if ob.reason else ""
            say(f"{ob.endpoint}: {ob.state}{why}", flush=True)

    poller = Poller(path, list(cfg.endpoints.values()), on_observation=report)
    # opstui's alerts are judged beside the polls (the timeline's firing and
    # resolved events; Alertmanager with [notify] alertmanager).
    stop = threading.Event()
    judge = threading.Thread(
        target=judge_loop,
        args=(path, cfg),
        kwargs={
            "by": cfg.actor or local_actor(),
            "stop": stop,
            "say": lambda line: say(line, flush=True),
        },
        name="opstui-alerts",
        daemon=True,
    )
    if once:
        results = asyncio.run(poller.poll_once())
        stop.set()  # one judgement, then out
        judge.start()
        judge.join()
        if any(ob.state == st.DOWN for ob in results):
            raise typer.Exit(1)
        return
    judge.start()
    # Ctrl-C is how a headless poller is stopped: leave quietly, leases released.
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(poller.run(duration=duration))
    finally:
        stop.set()
        judge.join(timeout=10)
