"""Operator actions: one path for the CLI and the console.

    plan_*  ->  propose (read-only?)  ->  show, ask  ->  perform: audit row, start  ->  outcome

``plan_*`` functions (``planning``) resolve the pipeline once
(``runner.plan``): the plan holds every stage's argument list, working
directory, environment names and timeout, and the digest of the config, and
refuse what cannot work (a run that did not fail, no earlier good version)
before anything is written. ``propose`` is the one read-only check; the caller shows the plan
and asks; ``perform`` takes the answer, stores the plan with the audit row
and starts the run, which executes those stored stages (``execute``). A
refusal or a declined confirmation still leaves an audit row; a request
identical to one in flight joins that run instead of starting another.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from opstui.config import Config
from opstui.errors import OpstuiError
from opstui.runner.execute import execute
from opstui.runner.plan import Plan
from opstui.runner.process import StageOutcome
from opstui.store import Store
from opstui.store import actions as store_actions
from opstui.store.location import StoreLocation


class ActionRefused(OpstuiError):
    """Read-only mode, or the operator did not confirm. Audited."""


@dataclass(frozen=True)
class Started:
    run_id: int
    created: bool  # False: joined a run already in flight
    action_id: int
    status: str | None = None  # final status when executed inline


def refusal(config: Config, plan: Plan, *, read_only: bool) -> str | None:
    """Why ``plan`` may not run here, or None."""
    if read_only:
        return "read-only session (--read-only)"
    if config.read_only:
        return f"read-only by configuration ({config.path}: read_only = true)"
    env = config.environments.get(plan.environment or "")
    if env is not None and env.read_only:
        return (
            f"environment {env.name} is read-only "
            f"({config.path}: environments.{env.name}.read_only = true)"
        )
    return None


@dataclass(frozen=True)
class Proposal:
    """A plan and the one answer to "may it run here?", given before it is shown."""

    plan: Plan
    refused: str | None  # why it may not (read-only), or None


def propose(config: Config, plan: Plan, *, read_only: bool) -> Proposal:
    return Proposal(plan, refusal(config, plan, read_only=read_only))


def _audit_fields(plan: Plan, actor: str) -> dict[str, Any]:
    return {
        "actor": actor,
        "action": plan.action,
        "target": plan.target,
        "environment": plan.environment,
        "plan": plan.as_dict(),
    }


def _refuse(store: Store, plan: Plan, actor: str, reason: str, text: str) -> NoReturn:
    store_actions.record_action(
        store, status=store_actions.REFUSED, outcome=reason, **_audit_fields(plan, actor)
    )
    raise ActionRefused(text, hint="nothing was changed")


def perform(
    store: Store,
    config: Config,
    proposal: Proposal,
    *,
    actor: str,
    declined: str | None,
    detach: bool,
    echo: Callable[[str, str], None] | None = None,
    on_stage: Callable[[str, StageOutcome | None], None] | None = None,
) -> Started:
    """Audit and start a shown and answered ``proposal``; execute inline unless ``detach``.

    ``declined`` is the operator's answer: None when confirmed, else why not
    (declined, no terminal to ask on). A refused or declined proposal still
    leaves an audit row. The plan's stages are what runs: nothing here
    resolves the pipeline again.
    """
    plan = proposal.plan
    if proposal.refused is not None:
        _refuse(store, plan, actor, proposal.refused,
                f"refused to {plan.action} {plan.target}: {proposal.refused}")  # fmt: skip
    if declined is not None:
        _refuse(store, plan, actor, declined,
                f"{plan.action} of {plan.target} not confirmed: {declined}")  # fmt: skip
    run_id, created, action_id = store_actions.start_action_run(
        store,
        pipeline=plan.pipeline,
        kind=plan.kind,
        stages=[s.name for s in plan.stages],
        trigger=plan.trigger,
        actor=actor,
        request=plan.request,
        params=plan.params,
        parent_run_id=plan.parent_run_id,
        action=_audit_fields(plan, actor),
    )
    if not created:
        return Started(run_id, False, action_id)
    if detach:
        try:
            spawn_detached(store.location, config.path, run_id)
        except OSError as exc:
            why = f"the runner could not be started: {exc.strerror or exc}"
            store_actions.close_unstarted(store, run_id, why)
            raise OpstuiError(
                f"{plan.action} of {plan.target}: {why}",
                hint=f"run {run_id} is recorded failed; retry once the cause is fixed",
            ) from exc
        return Started(run_id, True, action_id)
    status = execute(store, config, run_id, echo=echo, on_stage=on_stage)
    return Started(run_id, True, action_id, status)


def runner_log(store: StoreLocation) -> Path:
    """Where a detached runner appends its own errors."""
    if store.path is not None:
        path = store.path.absolute()
        return path.with_name(path.name + ".runner.log")
    from opstui.paths import state_dir

    return state_dir() / "runner.log"


def spawn_detached(store: StoreLocation, config_path: Path | None, run_id: int) -> None:
    """Start the executor for ``run_id`` in its own session: it survives an SSH drop.

    The store goes in ``OPSTUI_STORE``, not the command line (``ps`` shows
    every user a URL's password). The runner's own errors (not its stages'
    output, which goes to the store) are appended to ``<store>.runner.log``
    beside an SQLite store, or to ``runner.log`` in opstui's state directory
    (``$XDG_STATE_HOME/opstui``) for a PostgreSQL one.
    """
    argv = [
        sys.executable,
        # -P: the operator's working directory is not put first on sys.path,
        # so a stray inspect.py (or any module name) there cannot break the runner.
        "-P",
        "-m",
        "opstui.runner",
        str(run_id),
    ]
    if config_path is not None:
        argv += ["--config", str(config_path.resolve())]
    log_path = runner_log(store)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # Owner-only, like the store: a runner's error can quote a command line.
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "ab") as log:
        subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
            env={**os.environ, "OPSTUI_STORE": store.for_child()},
        )
