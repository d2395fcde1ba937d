"""``opstui models``: each model's versions, where it serves, and its latest drift check.

The JSON shape is public like ``status --json``'s: versioned by ``schema``;
fields may be added, never renamed or removed without a new ``schema``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opstui.cli import complete
from opstui.cli.options import ConfigOpt, JsonOpt, StoreOpt
from opstui.cli.output import cell, say, write_json
from opstui.cli.root import app, open_store
from opstui.errors import UsageError

if TYPE_CHECKING:
    from opstui.store.rows import ModelVersionRow
    from opstui.views.models import ModelReport

JSON_SCHEMA = 1
#: Versions the table shows per model (newest first); --json has them all.
SHOWN_VERSIONS = 5


@app.command()
def models(
    model: Annotated[
        str | None, typer.Argument(help="One model (default: all).", autocompletion=complete.models)
    ] = None,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Models: versions with metrics and gate verdicts, what serves each environment,
    the latest drift check."""
    from opstui.views.models import known_models, model_reports

    db, cfg = open_store(store, config, create=False)
    now = time.time()
    with db:
        names = known_models(db, cfg.models)
        if model is not None:
            if model not in names:
                raise UsageError(
                    f"no model named {model!r} in {db.name}",
                    hint="`opstui models` lists the models the store knows",
                )
            names = [model]
        reports = model_reports(db, names)
    if as_json:
        write_json(models_json(reports, now, db.name))
    elif not reports:
        say(
            f"No models in {db.name} yet. Record a version (opstui record model ...), "
            "sync an MLflow registry (opstui poll), or load the sample history: "
            "opstui import sample_runs/"
        )
    else:
        render_models(reports, now)


def models_json(reports: list[ModelReport], now: float, store: str) -> dict[str, Any]:
    from opstui.timeutil import iso
    from opstui.views.models import gate_verdict

    def version(v: ModelVersionRow) -> dict[str, Any]:
        return {
            "version": v.version,
            "status": v.status,
            "created_at": iso(v.created_at),
            "run_id": v.run_id,
            "metrics": v.metrics,
            "params": v.params,
            "data_hash": v.data_hash,
            "code_version": v.code_version,
            "gate_verdict": gate_verdict(v),
            "gate": v.gate,
        }

    def model(m: ModelReport) -> dict[str, Any]:
        check = m.drift
        return {
            "name": m.name,
            "latest_version": m.latest.version if m.latest else None,
            "versions": [version(v) for v in m.versions],
            "deployments": [
                {
                    "environment": d.environment,
                    "version": d.version,
                    "alias": m.aliases.get(d.environment),
                    "action": d.action,
                    "actor": d.actor,
                    "deployed_at": iso(d.deployed_at),
                    "replaced_version": d.replaced_version,
                }
                for d in m.deployed
            ],
            "drift": None
            if check is None
            else {
                "computed_at": iso(check.computed_at),
                "version": check.version,
                "drifted": check.drifted,
                "drift_share": check.drift_share,
                "features": check.features,
                "drifted_features": list(m.drifted),
                "window_start": iso(check.window_start),
                "window_end": iso(check.window_end),
                "window_rows": check.window_rows,
                "classifier_auc": check.classifier_auc,
            },
        }

    return {
        "schema": JSON_SCHEMA,
        "generated_at": iso(now),
        "store": store,
        "models": [model(m) for m in reports],
    }


def _metrics(v: ModelVersionRow, limit: int = 2) -> str:
    return " ".join(
        f"{k}={x:.4g}" if isinstance(x, float) else f"{k}={x}"
        for k, x in list(v.metrics.items())[:limit]
    )


def _short_hash(value: str | None) -> str:
    """``sha256:8b7a83e0…`` -> ``8b7a83e0``: enough to tell two datasets apart."""
    if not value:
        return "-"
    return value.rsplit(":", 1)[-1][:8]


def render_models(reports: list[ModelReport], now: float) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from opstui.timeutil import human_age
    from opstui.views.models import gate_verdict

    console = Console()
    verdict_style = {"pass": "green", "fail": "bold red"}
    for i, m in enumerate(reports):
        if i:
            console.print()
        title = Text("MODEL ", style="bold")
        title.append_text(cell(m.name, "bold"))
        console.print(title)
        if m.versions:
            table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
            table.add_column("VER", no_wrap=True, overflow="ellipsis", max_width=8)
            table.add_column("STATUS", no_wrap=True)
            table.add_column("GATE", no_wrap=True)
            table.add_column("METRICS", no_wrap=True, overflow="ellipsis", max_width=24)
            table.add_column("DATA", no_wrap=True, overflow="ellipsis", max_width=8)
            table.add_column("CODE", no_wrap=True, overflow="ellipsis", max_width=11)
            table.add_column("AGE", justify="right", no_wrap=True)
            for v in m.versions[:SHOWN_VERSIONS]:
                verdict = gate_verdict(v)
                table.add_row(
                    cell(v.version),
                    cell(v.status),
                    cell(verdict or "-", verdict_style.get(verdict or "", "dim")),
                    cell(_metrics(v) or "-"),
                    cell(_short_hash(v.data_hash)),
                    cell(v.code_version or "-"),
                    human_age(now - v.created_at).removesuffix(" ago"),
                )
            console.print(table)
            older = len(m.versions) - SHOWN_VERSIONS
            if older > 0:
                noun = "version" if older == 1 else "versions"
                console.print(Text(f"  ... {older} older {noun} (--json has all)", style="dim"))
        else:
            console.print(Text("  no versions recorded", style="dim"))
        if m.deployed:
            for d in m.deployed:
                alias = m.aliases.get(d.environment)
                via = f" (alias {alias})" if alias else ""
                age = human_age(now - d.deployed_at)
                console.print(
                    cell(
                        f"  {d.environment}: v{d.version}{via}, {d.action} {age} "
                        f"by {d.actor or '?'}"
                    ),
                    soft_wrap=True,
                )
        else:
            console.print(Text("  not deployed", style="dim"))
        check = m.drift
        if check is None:
            console.print(Text("  drift: never checked", style="dim"))
        else:
            worst = ", ".join(m.drifted[:3]) + (", ..." if len(m.drifted) > 3 else "")
            line = (
                f"  drift: {'DRIFT' if check.drifted else 'ok'} on v{check.version}, "
                f"{check.drifted_features} of {check.features} features "
                f"({check.drift_share * 100:.0f}%), {human_age(now - check.computed_at)}"
                + (f": {worst}" if worst else "")
            )
            console.print(cell(line, "bold red" if check.drifted else ""), soft_wrap=True)
