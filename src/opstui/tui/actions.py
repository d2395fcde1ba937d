"""An operator action from the console: plan on a worker, confirm on screen, perform on a worker.

The flow, each step where it belongs:

1. a key (``r``, ``b``, ``t``) or a palette command: the app starts the
   ``action`` job with ``plan_action`` (store reads: never on the event loop);
2. ``plan_action`` asks the same action path as the CLI for the plan of the
   selected row and posts ``PlanReady``; a refused plan (read-only) is
   audited there, after it is on screen;
3. the app shows it (``ConfirmScreen``); the operator's answer starts the
   ``action`` job again with ``perform_action``;
4. ``perform_action`` audits and starts the detached runner (or audits the
   decline) and posts ``ActionStarted``.

A refusal or an error raises out of the worker, and the app's one worker-error
policy tells it (``tui/jobs.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.message import Message

from opstui.config import Config
from opstui.store import Store
from opstui.store.location import StoreLocation
from opstui.tui.jobs import JobFailed
from opstui.tui.messages import ActionStarted, PlanReady

if TYPE_CHECKING:
    from opstui.runner.actions import Proposal
    from opstui.runner.plan import Plan

Post = Callable[[Message], object]


def what_of(plan: Plan) -> str:
    """An action in a failure's words: ``retry of fraud-model``."""
    return f"{plan.action} of {plan.target}"


def plan_action(
    post: Post,
    store_path: StoreLocation,
    config: Config,
    *,
    read_only: bool,
    actor: str,
    action: str,
    key: str,
) -> None:
    """Plan ``action`` on the row ``key`` and post it; audit it here if it is refused."""
    from opstui.runner.actions import ActionRefused, perform, propose
    from opstui.tui.plans import make_plan

    with Store(store_path, create=False) as store:
        plan = make_plan(config, store, action, key)
        proposal = propose(config, plan, read_only=read_only)
        post(PlanReady(proposal))
        if proposal.refused is None:
            return
        # Refused here (read-only): the same path as the CLI's writes the
        # same audit row, after the plan is posted (if the write fails,
        # the operator still sees why nothing ran).
        try:
            perform(store, config, proposal, actor=actor, declined=None, detach=True)
        except ActionRefused:
            return  # audited
        except Exception as exc:
            raise JobFailed(f"audit row of the refused {what_of(plan)}", exc) from exc


def perform_action(
    post: Post,
    store_path: StoreLocation,
    config: Config,
    proposal: Proposal,
    *,
    actor: str,
    confirmed: bool,
) -> None:
    """Audit and start the shown ``proposal`` (or audit its decline); a refusal raises."""
    from opstui.runner.actions import perform

    declined = None if confirmed else "declined in the console"
    with Store(store_path, create=False) as store:
        started = perform(store, config, proposal, actor=actor, declined=declined, detach=True)
    post(ActionStarted(proposal.plan, started.run_id, started.created))
