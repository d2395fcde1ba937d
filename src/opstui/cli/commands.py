"""``opstui init``, ``import`` and ``status``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from opstui.cli.options import ConfigOpt, JsonOpt, StoreOpt
from opstui.cli.output import say, write_json
from opstui.cli.root import app, open_store
from opstui.errors import UsageError


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the config.")] = Path("opstui.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example opstui.toml."""
    from opstui.config import example_config

    if path.exists() and not force:
        raise UsageError(f"{path} already exists", hint="pass --force to overwrite it")
    path.write_text(example_config(), encoding="utf-8")
    say(f"wrote {path}")


_NOUNS = {
    "pipeline": "pipelines",
    "run": "runs",
    "model_version": "model versions",
    "deployment": "deployments",
    "metrics": "metric batches",
    "features": "feature batches",
}


@app.command("import")
def import_(
    paths: Annotated[list[Path], typer.Argument(help="JSONL files, or folders of them.")],
    store: StoreOpt = None,
    config: ConfigOpt = None,
    shift_to_now: Annotated[
        bool,
        typer.Option(
            "--shift-to-now", help="Move all timestamps so the newest one is now (for demos)."
        ),
    ] = False,
) -> None:
    """Load recorded history (the sample_runs/ JSONL format); importing twice adds nothing."""
    from opstui.store.importer import expand_paths, import_files, read_records

    # Validate before creating a store, so a bad file leaves no empty store behind.
    read_records(expand_paths(paths))
    db, _ = open_store(store, config, create=True)
    with db:
        summary = import_files(db, paths, shift_to=time.time() if shift_to_now else None)
    added = ", ".join(f"{n} {_NOUNS[k]}" for k, n in summary.added.items() if n) or "nothing new"
    skipped = sum(summary.skipped.values())
    note = f" ({skipped} already present)" if skipped else ""
    say(f"imported {added} from {summary.files} file(s) into {db.name}{note}")


@app.command()
def status(
    store: StoreOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Only pipelines whose latest run was recorded on this host."),
    ] = None,
) -> None:
    """Latest run of every pipeline. Exit 1 if any pipeline's latest run failed."""
    from opstui.cli.status_view import render_status, status_json
    from opstui.store.dashboard import Dashboard

    db, _ = open_store(store, config, create=False)
    with db:
        now = time.time()
        pipelines = Dashboard(db).read(now)
    if host is not None:
        pipelines = [p for p in pipelines if p.latest is not None and p.latest.host == host]
    if as_json:
        write_json(status_json(pipelines, now, db.name))
    else:
        render_status(pipelines, now, db.name)
    if any(p.failing for p in pipelines):
        raise typer.Exit(1)
