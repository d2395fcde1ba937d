"""``opstui run``, ``retry``, ``rollback``, ``retrain`` and ``actions``.

Each action prints its plan, asks for confirmation naming the target and
environment (``--yes`` skips it; with no terminal and no ``--yes`` it
refuses), leaves an audit row, and runs inline or detached (``--detach``,
which survives the terminal closing).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from opstui.cli import complete
from opstui.cli.options import ConfigOpt, StoreOpt
from opstui.cli.output import cell, prompt, say, write_json
from opstui.cli.root import app, open_store

if TYPE_CHECKING:
    from collections.abc import Callable

    from opstui.config import Config
    from opstui.runner.plan import Plan
    from opstui.runner.process import StageOutcome
    from opstui.store import Store

YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the plan and change nothing.")]
DetachOpt = Annotated[
    bool,
    typer.Option(
        "--detach", help="Run in its own session (survives an SSH drop); print the run id."
    ),
]
ReadOnlyOpt = Annotated[
    bool, typer.Option("--read-only", help="Refuse every action (an audit row says so).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the plan / result as JSON.")]


def _ask(plan: Plan, yes: bool) -> str | None:
    """The operator's answer: None when confirmed, else why not."""
    if yes:
        return None
    if not sys.stdin.isatty():
        return "no terminal to ask on and no --yes"
    answer = prompt(f"{plan.question} [y/N] ").strip().lower()
    return None if answer in ("y", "yes") else "declined at the prompt"


def _echo(stream: str, line: str) -> None:
    # Stage output is shown as it streams, escaped like every line: a stage
    # cannot drive the operator's terminal.
    say(line, err=stream == "stderr", flush=True)


def _progress(name: str, outcome: StageOutcome | None) -> None:
    from opstui.store import status as st

    if outcome is None:
        say(f"▶ {name}", flush=True)
    else:
        mark = st.GLYPHS.get(outcome.status, "?")
        note = f": {outcome.message}" if outcome.message else ""
        say(f"{mark} {name} {outcome.status}{note}", flush=True)


@dataclass(frozen=True)
class Flags:
    """The options every action command shares."""

    yes: bool
    dry_run: bool
    detach: bool
    read_only: bool
    as_json: bool


def _act(
    make_plan: Callable[[Store, Config], Plan],
    *,
    store: str | None,
    config: Path | None,
    create: bool,
    flags: Flags,
) -> None:
    db, cfg = open_store(store, config, create=create)
    with db:
        _perform(db, cfg, make_plan(db, cfg), flags)


def _perform(store: Store, cfg: Config, plan: Plan, flags: Flags) -> None:
    """Show the plan, ask (unless refused), then perform it: the console's path too."""
    from opstui.runner.actions import perform, propose
    from opstui.store import local_actor
    from opstui.store import status as st

    as_json = flags.as_json
    if not as_json:
        for line in plan.lines():  # each line is one line: a newline in a name is escaped
            say(line)
    if flags.dry_run:
        if as_json:
            write_json({"plan": plan.as_dict(), "dry_run": True})
        else:
            say("dry run: nothing was changed")
        return
    proposal = propose(cfg, plan, read_only=flags.read_only)
    started = perform(
        store,
        cfg,
        proposal,
        actor=cfg.actor or local_actor(),
        declined=None if proposal.refused else _ask(plan, flags.yes),
        detach=flags.detach,
        echo=None if as_json else _echo,
        on_stage=None if as_json else _progress,
    )
    result = {
        "run_id": started.run_id,
        "joined": not started.created,
        "detached": flags.detach and started.created,
        "status": started.status,
        "action_id": started.action_id,
    }
    if as_json:
        write_json(result)
    elif not started.created:
        say(f"run {started.run_id} is already doing this; joined it instead of starting another")
    elif flags.detach:
        say(f"started run {started.run_id} (detached); watch it with `opstui status`")
    else:
        say(f"run {started.run_id} {started.status}")
    if started.status not in (None, st.SUCCEEDED):
        raise typer.Exit(1)


@app.command("run")
def run_pipeline(
    pipeline: Annotated[
        str,
        typer.Argument(
            help="Pipeline defined in opstui.toml.", autocompletion=complete.pipelines_to_run
        ),
    ],
    environment: Annotated[
        str | None,
        typer.Option(
            "--environment",
            "-e",
            help="For {environment} in commands.",
            autocompletion=complete.environments,
        ),
    ] = None,
    version: Annotated[str | None, typer.Option(help="For {version} in commands.")] = None,
    detach: DetachOpt = False,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    read_only: ReadOnlyOpt = False,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run a pipeline's stages in order as subprocesses."""
    from opstui.runner.planning import plan_run

    _act(
        lambda db, cfg: plan_run(cfg, pipeline, environment=environment, version=version),
        store=store,
        config=config,
        create=True,
        flags=Flags(yes, dry_run, detach, read_only, as_json),
    )


@app.command()
def retry(
    run_id: Annotated[
        int, typer.Argument(help="The failed run to retry.", autocompletion=complete.failed_runs)
    ],
    from_stage: Annotated[
        str | None, typer.Option("--from", help="Resume at this stage [default: the failed one].")
    ] = None,
    detach: DetachOpt = False,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    read_only: ReadOnlyOpt = False,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Retry a failed run: reuse the stages that succeeded, resume at the failed one."""
    from opstui.runner.planning import plan_retry

    _act(
        lambda db, cfg: plan_retry(cfg, db, run_id, from_stage=from_stage),
        store=store,
        config=config,
        create=False,
        flags=Flags(yes, dry_run, detach, read_only, as_json),
    )


@app.command()
def rollback(
    environment: Annotated[
        str,
        typer.Argument(
            help="Environment to roll back, e.g. production.",
            autocompletion=complete.environments,
        ),
    ],
    pipeline: Annotated[
        str | None,
        typer.Option(help="Service (pipeline) to roll back.", autocompletion=complete.pipelines),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model to roll back.", autocompletion=complete.models)
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Version [default: the previous good one].")
    ] = None,
    detach: DetachOpt = False,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    read_only: ReadOnlyOpt = False,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Put an environment back on the previous good version."""
    from opstui.runner.planning import plan_rollback

    _act(
        lambda db, cfg: plan_rollback(cfg, db, environment, pipeline=pipeline, model=model, to=to),
        store=store,
        config=config,
        create=False,
        flags=Flags(yes, dry_run, detach, read_only, as_json),
    )


@app.command()
def retrain(
    model: Annotated[
        str,
        typer.Argument(
            help="Model defined in [models] of opstui.toml.",
            autocompletion=complete.models_to_retrain,
        ),
    ],
    detach: DetachOpt = False,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
    read_only: ReadOnlyOpt = False,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Retrain a model; the new version is promoted only if it passes the gate."""
    from opstui.runner.planning import plan_retrain

    _act(
        lambda db, cfg: plan_retrain(cfg, db, model),
        store=store,
        config=config,
        create=True,
        flags=Flags(yes, dry_run, detach, read_only, as_json),
    )


@app.command()
def actions(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The audit trail of operator actions."""
    from opstui.store.actions import list_actions
    from opstui.timeutil import human_age, iso

    db, _ = open_store(store, config, create=False)
    with db:
        rows = list_actions(db, limit=limit)
    if as_json:
        doc = [
            {
                "id": r.id,
                "at": iso(r.ts),
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "environment": r.environment,
                "status": r.status,
                "outcome": r.outcome,
                "run_id": r.run_id,
                "finished_at": iso(r.finished_at),
                "plan": r.plan,
            }
            for r in rows
        ]
        write_json({"schema": 1, "actions": doc})
        return
    from rich.console import Console
    from rich.table import Table

    if not rows:
        say("No actions recorded yet.")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in ("ID", "WHEN", "ACTOR", "ACTION", "TARGET", "ENV", "STATUS", "RUN", "OUTCOME"):
        table.add_column(name, no_wrap=name != "OUTCOME", overflow="fold")
    now = time.time()
    for r in rows:
        table.add_row(
            str(r.id),
            human_age(now - r.ts),
            *map(cell, (r.actor, r.action, r.target, r.environment, r.status)),
            str(r.run_id or ""),
            cell(r.outcome),
        )
    Console().print(table)
