"""``opstui drift``: per-feature and dataset drift of a model's serving data.

    opstui drift fraud                       # check, print, exit 1 if the dataset drifts
    opstui drift fraud --json
    opstui drift --watch --interval 60       # every model, again and again
    opstui drift set-reference fraud train.csv --version 7

``MODEL`` may be a model or the pipeline that trains it. Without ``MODEL``
every model with current feature batches is checked.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer
from typer.core import TyperGroup

from opstui.cli import complete
from opstui.cli.options import ConfigOpt, StoreOpt
from opstui.cli.output import say, say_block, write_json
from opstui.cli.root import app, open_store
from opstui.errors import OpstuiError

if TYPE_CHECKING:
    from opstui.config import Config
    from opstui.drift.records import DriftCheck
    from opstui.store import Store


class _CheckByDefault(TyperGroup):
    """``opstui drift [MODEL] [options]`` means ``opstui drift check ...``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["check", *args]
        return super().parse_args(ctx, args)


drift_app = typer.Typer(
    cls=_CheckByDefault,
    help="Drift of models' serving features from their training features. "
    "`opstui drift MODEL` checks one model (exit 1 if its dataset drifts).",
)
app.add_typer(drift_app, name="drift")


@drift_app.command("check")
def check(
    model: Annotated[
        str | None,
        typer.Argument(
            help="Model, or the pipeline that trains it [default: every model].",
            autocompletion=complete.models_or_pipelines,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (see README).")] = False,
    version: Annotated[
        str | None,
        typer.Option(help="Reference version [default: production's, else the newest]."),
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Check again every --interval.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between checks with --watch.")] = 60.0,
    count: Annotated[
        int | None, typer.Option(help="With --watch: stop after this many checks.")
    ] = None,
    backfill: Annotated[
        bool,
        typer.Option(
            "--backfill", help="First check the window ending at each batch not yet checked."
        ),
    ] = False,
    classifier: Annotated[
        bool, typer.Option("--classifier/--no-classifier", help="Run the domain classifier.")
    ] = True,
    save: Annotated[
        bool, typer.Option("--save/--no-save", help="Store the check (history, since when).")
    ] = True,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Check drift, print per-feature results and the dataset verdict.

    Exit 1 when a dataset drifts, 2 when a model cannot be checked."""
    if not 0 < interval < 1e9:  # NaN and inf too: time.sleep raises on them
        raise OpstuiError("--interval must be a positive number of seconds")
    from opstui.store.failures import FATAL_WRITE_ERRORS

    db, cfg = open_store(store, config, create=False)
    options = _Options(model, as_json, watch, version, backfill, classifier, save)
    with db:
        done = 0
        while True:
            try:
                # A watch runs for days: a store deleted or replaced meanwhile
                # would be read (and written) as if all were well.
                db.check_same_file()
                code = _check_once(db, cfg, options)
            except OpstuiError as exc:
                if not watch or isinstance(exc, FATAL_WRITE_ERRORS):
                    # A lost store, a full disk or a read-only file does not
                    # pass like a thin window or a busy store: stop, saying why.
                    raise
                # A watch outlives a bad moment (a thin window, a busy store).
                say_block(f"opstui: {exc}", err=True)
                code = exc.exit_code
            done += 1
            if not watch or (count is not None and done >= count):
                break
            options = options._replace(backfill=False)
            if not as_json:
                say()
            sys.stdout.flush()
            time.sleep(interval)
    if code:
        raise typer.Exit(code)


class _Options(NamedTuple):
    model: str | None
    as_json: bool
    watch: bool
    version: str | None
    backfill: bool
    classifier: bool
    save: bool


def _check_once(db: Store, cfg: Config, o: _Options) -> int:
    import dataclasses

    from opstui.cli.drift_view import check_json, render_check
    from opstui.drift.check import backfill, compute_drift, settings_for
    from opstui.drift.records import SCHEMA
    from opstui.drift.reference import resolve_model
    from opstui.store import drift as store_drift
    from opstui.store import models as store_models

    model = o.model
    names = (
        [resolve_model(db, cfg, model)]
        if model is not None
        else [m for m in store_models.model_names(db) if store_drift.current_batch_times(db, m)]
    )
    results: list[DriftCheck] = []
    errors: list[tuple[str, str]] = []
    for name in names:
        try:
            settings = settings_for(cfg, name)
            if not o.classifier:
                settings = dataclasses.replace(settings, classifier=False)
            if o.backfill:
                backfill(db, name, settings=settings, version=o.version)
            results.append(
                compute_drift(db, name, settings=settings, version=o.version, save=o.save)
            )
        except OpstuiError as exc:
            from opstui.store.failures import FATAL_WRITE_ERRORS

            # One model's bad data is that model's error; a lost store is everyone's.
            if model is not None or isinstance(exc, FATAL_WRITE_ERRORS):
                raise
            errors.append((name, str(exc)))
    now = time.time()
    if o.as_json:
        doc: dict[str, Any]
        if model is not None:
            doc = check_json(results[0], now)
        else:
            doc = {
                "schema": SCHEMA,
                "models": [check_json(r, now) for r in results],
                "errors": [{"model": n, "error": e} for n, e in errors],
            }
        write_json(doc, indent=None if o.watch else 2)  # a line per check
    else:
        if not names:
            say("no model has current feature batches to check")
        for r in results:
            render_check(r, now)
        for name, error in errors:
            say(f"opstui: {name}: {error}", err=True)
    if any(r.dataset.is_drifted for r in results):
        return 1
    return 2 if errors else 0


@drift_app.command("set-reference")
def set_reference(
    model: Annotated[str, typer.Argument(help="Model name.", autocompletion=complete.models)],
    file: Annotated[Path, typer.Argument(help="CSV of the training features, header first.")],
    version: Annotated[
        str | None,
        typer.Option(help="Model version trained on them [default: production, else newest]."),
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Summarise a training-features CSV (any size) as a model version's reference."""
    from opstui.cli.feature_csv import read_chunks
    from opstui.drift import reference
    from opstui.drift.check import settings_for

    chunks = read_chunks(file)
    first = next(chunks)  # reads the header: a bad file leaves no store behind
    db, cfg = open_store(store, config, create=True)
    with db:
        settings = settings_for(cfg, model)

        def rows() -> Any:
            yield first
            yield from chunks

        info = reference.set_reference(
            db, model, rows(), version=version, source=str(file), settings=settings
        )
    say(f"reference of {model} version {info.version}: {info.rows:,} rows summarised")
