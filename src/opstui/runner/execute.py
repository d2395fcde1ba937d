"""Executing a queued run: its stages in order, then the action's effects.

``execute`` is what ``opstui run`` does inline and what ``python -m opstui.runner``
does in a detached session (``--detach``, the TUI's path): it claims the
queued run (so two runners never execute one run), beats its heartbeat,
runs or reuses each stage, records the outcome, applies the action's effect
(a rollback's deployment row) and closes the audit row.

What runs is the plan stored with the action's audit row, not a new
reading of opstui.toml. Before the first stage the runner resolves the
stages again from the config it loaded and refuses the run (failed, its
audit row refused, no effect applied) if they differ from the confirmed
ones, or if the config is gone or unreadable. The stored plan alone is not
enough to run: the values of a stage's environment variables (which may be
secrets), the variables withheld from stages and an MLflow endpoint's
credentials are not stored, so they come from the config, and a config that
no longer matches the plan is a reason to stop, not to guess.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from types import FrameType
from typing import Any

from opstui.config import CommandDef, Config, load_config
from opstui.errors import OpstuiError, UsageError
from opstui.runner import airflow, prefect, registry
from opstui.runner.plan import (
    StagePlan,
    difference,
    fill_argv,
    plan_values,
    resolve_pipeline,
    resolve_stages,
    stages_for,
)
from opstui.runner.process import StageOutcome, run_stage
from opstui.store import Store, history
from opstui.store import actions as store_actions
from opstui.store import models as store_models
from opstui.store import runs as store_runs
from opstui.store import status as st
from opstui.store.failures import FATAL_WRITE_ERRORS, StoreError, StoreGone
from opstui.store.location import StoreLocation
from opstui.store.rows import RunRow

HEARTBEAT_SECONDS = 5.0


class PlanChanged(UsageError):
    """What the config would run now is not the confirmed plan: nothing runs."""


def secret_variables(config: Config) -> frozenset[str]:
    """Environment variables that hold endpoint secrets (``secret_headers``)."""
    return frozenset(var for ep in config.endpoints.values() for var in ep.secret_headers.values())


def stage_env(
    command: CommandDef, context: Mapping[str, object], withheld: frozenset[str] = frozenset()
) -> dict[str, str]:
    # A stage does not inherit the poller's tokens: a stage that runs `env`
    # (or crashes printing its environment) would store them in its log.
    # A command that needs one names it in pass_secrets.
    hidden = withheld - set(command.pass_secrets)
    inherited = {k: v for k, v in os.environ.items() if k not in hidden}
    env = {**inherited, **command.env, "PYTHONUNBUFFERED": "1"}
    for key, value in context.items():
        if value is not None:
            env[f"OPSTUI_{key.upper()}"] = str(value)
    return env


@contextlib.contextmanager
def _heartbeat(store_path: StoreLocation, run_id: int, gone: threading.Event) -> Iterator[None]:
    # Its own connection: the main thread may hold the store's lock while a
    # stage's output is written, and the beat must not wait behind it.
    stop = threading.Event()

    def beat() -> None:
        try:
            # Never create: a store deleted before this opens is gone, not new.
            own = Store(store_path, create=False)
        except StoreError:
            gone.set()
            return
        with own:
            while not stop.wait(HEARTBEAT_SECONDS):
                try:
                    store_runs.heartbeat(own, run_id)
                except StoreGone:
                    # Deleted or replaced under us: nothing this run does can
                    # be recorded any more. A silent stage would otherwise run
                    # on unseen; cancelling stops it, and the next write of
                    # the main connection raises StoreGone with the reason.
                    gone.set()
                    return
                except Exception:  # a missed beat (a busy store) is not fatal
                    continue

    thread = threading.Thread(target=beat, name=f"opstui-heartbeat-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def _stop_signals(flag: threading.Event) -> Iterator[None]:
    """SIGTERM, SIGINT and SIGHUP stop the current stage and cancel the run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        flag.set()

    sigs = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {s: signal.signal(s, handler) for s in sigs}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def execute(
    store: Store,
    config: Config,
    run_id: int,
    *,
    echo: Callable[[str, str], None] | None = None,
    on_stage: Callable[[str, StageOutcome | None], None] | None = None,
) -> str:
    """Execute queued run ``run_id``; return its final status."""
    params = store_actions.claim_run(
        store, run_id, pid=os.getpid(), heartbeat_timeout=3 * HEARTBEAT_SECONDS
    )
    run = history.get_run(store, run_id)
    cancel = threading.Event()
    final: str | None = None
    message: str | None = None
    try:
        try:
            stages, envs = _confirmed_stages(store, config, run, params)
        except PlanChanged as exc:
            return _refuse(store, run_id, str(exc))
        context = {
            **params.get("context", {}),
            "run_id": run_id,
            "pipeline": run.pipeline,
            "attempt": run.attempt,
            "parent_run_id": run.parent_run_id,
            "store": store.location.for_child(),
            "config": str(config.path.resolve()) if config.path else None,
            "config_dir": str(config.base_dir),
            "python": sys.executable,
        }
        reuse: dict[str, int] = params.get("reuse", {})
        withheld = secret_variables(config)
        with _heartbeat(store.location, run_id, cancel), _stop_signals(cancel):
            for stage in stages:
                if cancel.is_set():
                    final, message = st.CANCELLED, "cancelled: the runner was stopped"
                    break
                if stage.name in reuse:
                    note = f"reused from run {run.parent_run_id}"
                    store_actions.reuse_stage(store, run_id, stage.name, reuse[stage.name], note)
                    if on_stage:
                        on_stage(stage.name, StageOutcome(st.SUCCEEDED, 0, note))
                    continue
                outcome = _run_one(
                    store,
                    run_id,
                    stage.command(envs[stage.name]),
                    stage.name,
                    context,
                    cancel=cancel,
                    echo=echo,
                    on_stage=on_stage,
                    work=registry.stage_work(store, config, params)
                    or airflow.stage_work(config, params)
                    or prefect.stage_work(config, params),
                    withheld=withheld,
                )
                if outcome.status != st.SUCCEEDED:
                    if outcome.status in (st.TIMED_OUT, st.CANCELLED):
                        final = outcome.status
                    break
    except BaseException as exc:
        # The runner itself failed (bad config since the plan, store error):
        # close the run so it does not sit "running" until it goes stale.
        # Not when the store itself failed (deleted, full, read-only): that
        # write would fail the same way; the run reads lost once we exit.
        if not isinstance(exc, FATAL_WRITE_ERRORS):
            final, message = st.FAILED, f"runner error: {exc}"
            _finish(store, run_id, final, message, params)
        raise
    return _finish(store, run_id, final, message, params)


def _confirmed_stages(
    store: Store, config: Config, run: RunRow, params: dict[str, Any]
) -> tuple[tuple[StagePlan, ...], dict[str, dict[str, str]]]:
    """The confirmed plan's stages, if the config still resolves to them.

    The one check between confirm and run: the stages are resolved again
    from the config the runner loaded and compared with the stored ones. An
    edit elsewhere in the file (an endpoint, a threshold) changes the
    digest but not what runs, and does not stop the run. Also returns each
    stage's environment values, which the plan names but does not store.
    """
    plan = store_actions.confirmed_plan(store, run.id)
    if plan is None or "stages" not in plan:
        raise PlanChanged(f"no confirmed plan is stored with run {run.id}; plan again") from None
    try:
        confirmed = tuple(StagePlan.from_dict(s) for s in plan["stages"])
    except (KeyError, TypeError, ValueError) as exc:
        why = f"the plan stored with run {run.id} is unreadable ({exc}); plan again"
        raise PlanChanged(why) from None
    stage_set = params.get("stage_set", "stages")
    try:
        pipeline = resolve_pipeline(config, run.pipeline)
    except OpstuiError:
        why = f"pipeline {run.pipeline} is no longer configured"
    else:
        values = plan_values(config, run.pipeline, params.get("context", {}), run.parent_run_id)
        now = resolve_stages(pipeline, stage_set, values)
        changed = difference(confirmed, now)
        if changed is None:
            envs = {s.name: dict(s.command.env) for s in stages_for(pipeline, stage_set)}
            return confirmed, envs
        why = changed
    where = config.path or "opstui.toml"
    # "Differs from", not "changed after": a console plans from the config it
    # loaded at start, so the edit may predate the plan.
    raise PlanChanged(f"{where} differs from the one the plan was made from: {why}; plan again")


def _refuse(store: Store, run_id: int, reason: str) -> str:
    """End a claimed run that must not run: failed, its audit row refused, no effect."""
    status = store_runs.finish_run(store, run_id, status=st.FAILED, message=reason)
    store_actions.finish_actions_for_run(store, run_id, store_actions.REFUSED, reason)
    return status


def refuse_unreadable(store: Store, run_id: int, config_path: str | None, exc: Exception) -> str:
    """The runner could not load the config: refuse the run, with the cause."""
    store_actions.claim_run(store, run_id, pid=os.getpid(), heartbeat_timeout=3 * HEARTBEAT_SECONDS)
    where = config_path or "opstui.toml"
    return _refuse(store, run_id, f"{where} could not be read after the plan was confirmed: "
                   f"{exc}; plan again")  # fmt: skip


def _run_one(
    store: Store,
    run_id: int,
    command: CommandDef,
    name: str,
    context: dict[str, Any],
    *,
    cancel: threading.Event,
    echo: Callable[[str, str], None] | None,
    on_stage: Callable[[str, StageOutcome | None], None] | None,
    work: Callable[[], StageOutcome] | None = None,
    withheld: frozenset[str] = frozenset(),
) -> StageOutcome:
    stage_id = store_runs.start_stage(store, run_id, name)
    if on_stage:
        on_stage(name, None)
    ctx = {**context, "stage": name}
    if work is not None:  # the executor does the stage itself (an MLflow alias move)
        outcome = work()
    elif not command.argv:
        outcome = StageOutcome(st.SUCCEEDED, 0, "no command configured: recorded in the store")
    else:
        outcome = run_stage(
            store,
            run_id,
            stage_id,
            command,
            argv=fill_argv(command.argv, ctx),
            env=stage_env(command, ctx, withheld),
            cancelled=cancel.is_set,
            echo=echo,
        )
    store_runs.finish_stage(
        store,
        run_id,
        name,
        status=outcome.status,
        exit_code=outcome.exit_code,
        message=outcome.message,
    )
    if on_stage:
        on_stage(name, outcome)
    return outcome


def _finish(
    store: Store, run_id: int, final: str | None, message: str | None, params: dict[str, Any]
) -> str:
    try:
        status = store_runs.finish_run(store, run_id, status=final, message=message)
    except UsageError:  # already finished (e.g. by a second error path)
        status = history.get_run(store, run_id).status
    _apply_effects(store, run_id, status, params.get("effects", {}))
    outcome = f"run {run_id} {status}"
    store_actions.finish_actions_for_run(
        store,
        run_id,
        store_actions.SUCCEEDED if status == st.SUCCEEDED else store_actions.FAILED,
        outcome,
    )
    return status


def _apply_effects(store: Store, run_id: int, status: str, effects: dict[str, Any]) -> None:
    deployment = effects.get("deployment")
    if not deployment:
        return
    run = history.get_run(store, run_id)
    with store.write() as tx:
        store_models.add_deployment(
            tx,
            environment=deployment["environment"],
            target=deployment["target"],
            target_kind=deployment["target_kind"],
            version=deployment["version"],
            status="succeeded" if status == st.SUCCEEDED else "failed",
            action=deployment.get("action", "deploy"),
            actor=run.actor,
            run_id=run_id,
            deployed_at=store.clock(),
            replaces_id=deployment.get("replaces_id"),
            message=None if status == st.SUCCEEDED else f"rollback run {run_id} {status}",
        )
        if (
            status == st.SUCCEEDED
            and deployment["target_kind"] == "model"
            and deployment["environment"] == "production"
        ):
            store_models.set_production_version(tx, deployment["target"], deployment["version"])


def main_detached(store_path: str, config_path: str | None, run_id: int) -> int:
    """Entry of ``python -m opstui.runner``: run in a detached session, log nothing to a tty."""
    with Store(store_path) as store:
        try:
            config = load_config(config_path)
        except OpstuiError as exc:  # gone or unreadable since the plan: nothing runs
            refuse_unreadable(store, run_id, config_path, exc)
            return 1
        status = execute(store, config, run_id)
    return 0 if status == st.SUCCEEDED else 1
