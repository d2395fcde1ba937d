"""``opstui record``: report runs from any script, without Python.

    RUN=$(opstui record start web-api --stages build,test)
    opstui record stage "$RUN" build start
    make 2>&1 | opstui record log "$RUN" build --tee; rc=${PIPESTATUS[0]}
    opstui record stage "$RUN" build end --exit-code "$rc"
    opstui record finish "$RUN"

Every call refreshes the run's heartbeat. A shell cannot beat in the
background, so runs recorded this way read as lost only after
``record.heartbeat_timeout`` (default 1 h) of silence; ``record log`` beats
while lines flow.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from opstui.cli.options import ConfigOpt, StoreOpt
from opstui.cli.output import say, say_block
from opstui.cli.root import app, open_store
from opstui.errors import UsageError
from opstui.store import fields

record_app = typer.Typer(
    help="Record runs, stages, logs, metrics and deployments from shell scripts.",
    no_args_is_help=True,
)
app.add_typer(record_app, name="record")

RunArg = Annotated[int, typer.Argument(help="Run id printed by `opstui record start`.")]
WhyOpt = Annotated[str | None, typer.Option(help="One line saying why.")]
ProducedByOpt = Annotated[int | None, typer.Option(help="Run that produced it.")]
NameValuesOpt = Annotated[list[str] | None, typer.Option(help="name=value, repeatable.")]


class StageEvent(StrEnum):
    start = "start"
    end = "end"
    skip = "skip"


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} {item!r} must look like key=value")
        out[key] = value
    return out


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{what} must be a number, got {text!r}") from None


@record_app.command("start")
def start(
    pipeline: Annotated[str, typer.Argument(help="Pipeline name (created if new).")],
    stages: Annotated[
        str | None, typer.Option(help="Comma-separated stage names, in order.")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="devops or mlops.")] = None,
    trigger: Annotated[str, typer.Option(help="What started it: push, schedule, ...")] = "manual",
    actor: Annotated[str | None, typer.Option(help="Who started it [default: user@host].")] = None,
    parent: Annotated[int | None, typer.Option(help="Run id this run retries.")] = None,
    key: Annotated[
        str | None,
        typer.Option(help="Idempotency key (e.g. the CI build id); reuses its run if it exists."),
    ] = None,
    heartbeat_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds of silence before the run reads as lost [default: config]."),
    ] = None,
    pid: Annotated[
        int | None,
        typer.Option(
            help="PID of the script doing the run (pass $$): once it is gone, readers on "
            "this host show the run lost at once instead of after the heartbeat timeout."
        ),
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Start a run and print its id."""
    from opstui.store import runs

    if kind is not None and kind not in ("devops", "mlops"):
        raise UsageError(f"--kind must be devops or mlops, not {kind!r}")
    stage_list = [s.strip() for s in stages.split(",") if s.strip()] if stages else None
    db, cfg = open_store(store, config, create=True)
    with db:
        run_id, _ = runs.create_run(
            db,
            pipeline,
            stages=stage_list,
            kind=kind,
            trigger=trigger,
            actor=actor or cfg.actor,
            parent_run_id=parent,
            key=key,
            heartbeat_timeout=heartbeat_timeout or cfg.record_heartbeat_timeout,
            pid=pid,
        )
    say(run_id)


@record_app.command("stage")
def stage(
    run: RunArg,
    name: Annotated[str, typer.Argument(help="Stage name.")],
    event: Annotated[StageEvent, typer.Argument(help="start, end or skip.")],
    exit_code: Annotated[
        int | None, typer.Option("--exit-code", help="With end: 0 succeeded, else failed.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(help="With end: succeeded, failed, timed_out or cancelled (overrides)."),
    ] = None,
    message: WhyOpt = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Mark a stage started, ended (with its exit code) or skipped."""
    from opstui.store import runs
    from opstui.store import status as st

    db, _ = open_store(store, config, create=False)
    with db:
        if event is StageEvent.start:
            runs.start_stage(db, run, name)
        elif event is StageEvent.skip:
            runs.finish_stage(db, run, name, status=st.SKIPPED, message=message)
        else:
            runs.finish_stage(db, run, name, status=status, exit_code=exit_code, message=message)


@record_app.command("log")
def log(
    run: RunArg,
    name: Annotated[str, typer.Argument(help="Stage whose log the lines join.")],
    stream: Annotated[str, typer.Option(help="stdout, stderr or log.")] = "stdout",
    tee: Annotated[bool, typer.Option("--tee", help="Also copy the lines to stdout.")] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Append lines from standard input to a stage's log, as they arrive."""
    from opstui.store import runs

    db, _ = open_store(store, config, create=False)
    with db:
        stage_id = runs.stage_id(db, run, name)
        lines: queue.Queue[str | None] = queue.Queue(maxsize=10_000)

        def pump() -> None:
            # A thread reads stdin so the main loop can flush on a timer even
            # while the producer is silent (a build compiling for minutes).
            for text in sys.stdin:
                lines.put(text)
            lines.put(None)

        threading.Thread(target=pump, name="opstui-record-log", daemon=True).start()
        batch: list[tuple[int, float, str, str]] = []
        last_flush = time.monotonic()
        done = False
        while not done:
            try:
                item = lines.get(timeout=0.5)
            except queue.Empty:
                item = ""
            if item is None:
                done = True
            elif item:
                if tee:  # lines from a build: escaped like every line printed
                    say_block(item, end="", flush=True)
                batch.append((stage_id, time.time(), stream, item))
            if batch and (done or len(batch) >= 500 or time.monotonic() - last_flush >= 0.5):
                runs.append_logs(db, batch, run_id=run, refuse_finished=True)
                batch = []
                last_flush = time.monotonic()


@record_app.command("finish")
def finish(
    run: RunArg,
    status: Annotated[
        str | None,
        typer.Option(help="succeeded, failed, cancelled or timed_out [default: from stages]."),
    ] = None,
    exit_code: Annotated[
        int | None, typer.Option("--exit-code", help="0 succeeded, anything else failed.")
    ] = None,
    message: WhyOpt = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Finish a run and print its final status."""
    from opstui.store import runs
    from opstui.store import status as st

    if status is None and exit_code is not None:
        fields.int64(exit_code, "--exit-code")
        status = st.SUCCEEDED if exit_code == 0 else st.FAILED
        if exit_code and message is None:
            message = f"exited with code {exit_code}"
    db, _ = open_store(store, config, create=False)
    with db:
        say(runs.finish_run(db, run, status=status, message=message))


@record_app.command("heartbeat")
def heartbeat(run: RunArg, store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Tell readers the run is still alive."""
    from opstui.store import runs

    db, _ = open_store(store, config, create=False)
    with db:
        runs.heartbeat(db, run)


@record_app.command("metric")
def metric(
    name: Annotated[str, typer.Argument(help="Metric name.")],
    value: Annotated[str, typer.Argument(help="Numeric value.")],
    run: Annotated[int | None, typer.Option(help="Run the value belongs to.")] = None,
    source: Annotated[
        str | None, typer.Option(help="Series source [default: pipeline/<run's pipeline>].")
    ] = None,
    label: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    step: Annotated[int | None, typer.Option(help="Training step or epoch.")] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Record one metric value."""
    from opstui.store import history, metrics, runs

    number = fields.finite(_number(value, "metric value"), "metric value")
    labels = _pairs(label, "--label")
    db, _ = open_store(store, config, create=run is None)
    with db:
        if source is None:
            if run is None:
                raise UsageError("a metric needs --run or --source")
            source = f"pipeline/{history.get_run(db, run).pipeline}"
        with db.write() as tx:
            if run is not None:
                runs.check_open(tx, db, run)
            sid = metrics.ensure_series(tx, source, name, labels)
            metrics.insert_samples(tx, [(sid, time.time(), number, run, step)])


@record_app.command("deploy")
def deploy(
    environment: Annotated[str, typer.Argument(help="Environment, e.g. production.")],
    target: Annotated[str, typer.Argument(help="Service or model name.")],
    version: Annotated[str, typer.Argument(help="Version deployed.")],
    model: Annotated[bool, typer.Option("--model", help="The target is a model.")] = False,
    status: Annotated[str, typer.Option(help="succeeded, failed or in_progress.")] = "succeeded",
    rollback: Annotated[bool, typer.Option("--rollback", help="This is a rollback.")] = False,
    run: Annotated[int | None, typer.Option(help="Run that deployed it.")] = None,
    message: Annotated[str | None, typer.Option(help="One line of context.")] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Record a deployment of a version to an environment."""
    from opstui.store import models, runs

    db, cfg = open_store(store, config, create=True)
    with db, db.write() as tx:
        if run is not None:
            runs.check_open(tx, db, run)
        models.add_deployment(
            tx,
            environment=environment,
            target=target,
            version=version,
            target_kind="model" if model else "service",
            status=status,
            action="rollback" if rollback else "deploy",
            actor=cfg.actor,
            run_id=run,
            deployed_at=time.time(),
            message=message,
        )


@record_app.command("model-version")
def model_version(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str | None, typer.Option(help="Version [default: next integer].")] = None,
    run: ProducedByOpt = None,
    metric: NameValuesOpt = None,
    param: NameValuesOpt = None,
    data_hash: Annotated[str | None, typer.Option(help="Hash of the training data.")] = None,
    code_version: Annotated[str | None, typer.Option(help="Git commit or tag.")] = None,
    status: Annotated[str, typer.Option(help="candidate, production, archived, rejected.")] = (
        "candidate"
    ),
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Record a model version and print it."""
    from opstui.store import models, runs

    metrics = {k: _number(v, f"metric {k}") for k, v in _pairs(metric, "--metric").items()}
    db, _ = open_store(store, config, create=True)
    with db, db.write() as tx:
        if run is not None:
            runs.check_open(tx, db, run)
        made, _ = models.add_model_version(
            tx,
            model,
            version=version,
            run_id=run,
            status=status,
            data_hash=data_hash,
            code_version=code_version,
            params=_pairs(param, "--param"),
            metrics=metrics,
            created_at=time.time(),
        )
    say(made)


@record_app.command("features")
def features(
    model: Annotated[str, typer.Argument(help="Model name.")],
    file: Annotated[Path, typer.Argument(help="CSV file with a header row.")],
    kind: Annotated[str, typer.Option(help="current (serving) or reference (training).")] = (
        "current"
    ),
    version: Annotated[str | None, typer.Option(help="Model version of a reference.")] = None,
    run: ProducedByOpt = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Record a batch of feature rows from a CSV file."""
    from opstui.cli.feature_csv import read_chunks
    from opstui.store import models, runs

    columns: dict[str, list[object]] = {}
    for chunk in read_chunks(file):
        for name, cells in chunk.items():
            columns.setdefault(name, []).extend(_cell(c) for c in cells)
    db, _ = open_store(store, config, create=True)
    with db, db.write() as tx:
        if run is not None:
            runs.check_open(tx, db, run)
        batch_id, _ = models.add_feature_batch(
            tx, model, columns, kind=kind, version=version, run_id=run, created_at=time.time()
        )
    say(f"recorded {len(next(iter(columns.values())))} rows as batch {batch_id}")


def _cell(text: str | None) -> object:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text
