"""``opstui policies``: automation policies from the command line.

``list`` (each policy's state, mode, last decision, caps used; the requests
waiting for approval), ``run`` (the evaluator, headless), ``pause`` and
``resume`` (every policy, audited with who), ``approve`` and ``reject`` (a
request, audited as the operator; an approval acts as the policy), ``log``
(the decisions, with why), ``flakes`` (the flake ledger). What a policy is:
``config/policies.py``; how it decides: ``policies/decide.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from opstui.cli.options import ConfigOpt, StoreOpt
from opstui.cli.output import say, write_json
from opstui.cli.root import app, open_store
from opstui.errors import UsageError

policies_app = typer.Typer(
    help="Automation policies: list, run, pause, approve, and what they decided.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(policies_app, name="policies")

DAY = 86400.0


def _actor(cfg: Any) -> str:
    from opstui.store.db import local_actor

    return str(cfg.actor or local_actor())


def _show(text: object) -> str:
    from opstui.terminal import visible

    return visible(str(text), newline=" ")


@policies_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Each policy: trigger, action, mode, caps used today, its last decision; then the requests
    waiting for approval."""
    from opstui.policies.decide import ACTED
    from opstui.store import policies as sp
    from opstui.timeutil import human_age

    db, cfg = open_store(store, config, create=False)
    with db:
        now = db.clock()
        rows = sp.decisions(db, since=now - DAY)
        pause = sp.paused(db)
        waiting = sp.pending(db)
    out: list[dict[str, Any]] = []
    for p in cfg.policies.values():
        mine = [r for r in rows if r.policy == p.name]
        acts = [r for r in mine if r.verdict == ACTED]
        last = mine[-1] if mine else None
        out.append({
            "name": p.name, "trigger": p.trigger, "action": p.action, "mode": p.mode,
            "enabled": p.enabled, "acted_today": len(acts), "daily_cap": p.daily_cap,
            "last": None if last is None else {
                "verdict": last.verdict, "why": last.why, "at": last.decided_at,
                "target": last.target},
        })  # fmt: skip
    if as_json:
        write_json({
            "paused": None if pause is None else {"by": pause.decided_by, "why": pause.why,
                                                  "at": pause.decided_at},
            "policies": out,
            "waiting": [{"id": r.id, "policy": r.policy, "target": r.target, "why": r.why,
                         "at": r.decided_at} for r in waiting],
        })  # fmt: skip
        return
    if not cfg.policies:
        say("no policies configured: add [policies.NAME] to opstui.toml (see opstui init)")
        return
    if pause is not None:
        say(_show(f"PAUSED by {pause.decided_by} {human_age(now - pause.decided_at)}: {pause.why}"
                  " (opstui policies resume)"))  # fmt: skip
    for row in out:
        state = row["mode"] if row["enabled"] else "disabled"
        head = f"{row['name']}: {row['trigger']} -> {row['action']} [{state}] " \
               f"{row['acted_today']}/{row['daily_cap']} today"  # fmt: skip
        last = row["last"]
        if last is None:
            tail = "no decision yet"
        else:
            verdict = last["verdict"].replace("_", " ")
            tail = f"{human_age(now - last['at'])}: {verdict}: {last['why']}"
        say(_show(f"{head} · {tail}"))
    if waiting:
        say("waiting for approval (opstui policies approve ID / reject ID):")
        for r in waiting:
            say(_show(f"  {r.id}  {r.policy}  {human_age(now - r.decided_at)}: {r.why}"))


@policies_app.command("run")
def run(
    every: Annotated[float, typer.Option(help="Seconds between evaluations.", min=1.0)] = 15.0,
    once: Annotated[bool, typer.Option("--once", help="Evaluate once and exit.")] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The evaluator, headless: one per store acts (a lease); every decision is said and kept."""
    import contextlib
    import threading

    from opstui.config import load_config, resolve_store_path
    from opstui.policies.loop import run_loop

    cfg = load_config(config)
    if not cfg.policies:
        raise UsageError("no policies are configured",
                         hint="add [policies.NAME] tables to opstui.toml")  # fmt: skip
    stop = threading.Event()
    # Ctrl-C is how a headless evaluator stops: quietly, its lease given back.
    with contextlib.suppress(KeyboardInterrupt):
        run_loop(resolve_store_path(store, cfg), cfg, stop=stop, every=every, once=once,
                 say=lambda line: say(line, flush=True))  # fmt: skip


@policies_app.command("pause")
def pause(
    reason: Annotated[str, typer.Option(help="Why (kept in the trail).")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Stop every policy from acting (they keep deciding, and say they are held)."""
    _pause(store, config, paused=True, reason=reason)


@policies_app.command("resume")
def resume(store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Let policies act again."""
    _pause(store, config, paused=False, reason="")


def _pause(store: str | None, config: Any, *, paused: bool, reason: str) -> None:
    from opstui.store import policies as sp

    db, cfg = open_store(store, config, create=False)
    who = _actor(cfg)
    with db:
        now = sp.paused(db)
        if (now is not None) == paused:
            say("policies are already " + ("paused" if paused else "running"))
            return
        verdict = "paused" if paused else "resumed"
        why = f"{verdict} by {who}" + (f": {reason}" if reason else "")
        sp.record(db, {"policy": sp.ALL, "target": sp.ALL, "verdict": verdict, "why": why},
                  by=who)  # fmt: skip
    say(_show(f"policies {why}"))


@policies_app.command("approve")
def approve(
    request: Annotated[int, typer.Argument(help="The request's id (opstui policies list).")],
    reason: Annotated[str, typer.Option(help="Why (kept in the trail).")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Approve a policy's request: audited as you, then done as the policy."""
    _answer(store, config, request, approve=True, reason=reason)


@policies_app.command("reject")
def reject(
    request: Annotated[int, typer.Argument(help="The request's id (opstui policies list).")],
    reason: Annotated[str, typer.Option(help="Why (kept in the trail).")] = "",
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Reject a policy's request (audited as you); nothing is done."""
    _answer(store, config, request, approve=False, reason=reason)


def _answer(store: str | None, config: Any, request: int, *, approve: bool, reason: str) -> None:
    from opstui.policies.evaluate import answer
    from opstui.policies.loop import line_of

    db, cfg = open_store(store, config, create=False)
    with db:
        done = answer(db, cfg, request, approve=approve, by=_actor(cfg), why=reason)
    say(line_of(done))


@policies_app.command("log")
def log(
    since: Annotated[str, typer.Option(help="A span back from now (2h, 3d).")] = "1d",
    policy: Annotated[str | None, typer.Option(help="Only this policy.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """What policies decided, oldest first, with why (decisions not to act included)."""
    from opstui.store import policies as sp
    from opstui.timeutil import iso, span

    back = span(since, most=366 * DAY)
    if back is None:
        raise UsageError(f"--since {since!r} is not a span",
                         hint="give a span back from now: 90m, 2h, 3d (at most 366d)")  # fmt: skip
    db, _ = open_store(store, config, create=False)
    with db:
        rows = sp.decisions(db, since=db.clock() - back, policy=policy)
    if as_json:
        write_json([r._asdict() for r in rows])
        return
    if not rows:
        say(f"no decisions in the last {since}")
    for r in rows:
        say(_show(f"{iso(r.decided_at)}  {r.policy}  {r.verdict.replace('_', ' ')}  "
                  f"{r.target}: {r.why}"))  # fmt: skip


@policies_app.command("flakes")
def flakes(
    days: Annotated[int, typer.Option(help="Over this many days.", min=1, max=366)] = 14,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The flake ledger: stages whose failures passed when retried (manual and automatic)."""
    from opstui.policies.flaky import ledger

    db, _ = open_store(store, config, create=False)
    with db:
        rows = ledger(db, now=db.clock(), days=days)
    if not rows:
        say(f"no retried stage in the last {days} days")
    for f in rows:
        mark = "flaky" if f.flaky else "     "
        say(_show(f"{mark}  {f.pipeline}/{f.stage}: {f.passed} of {f.retried} retries passed "
                  f"({f.automatic} automatic)"))  # fmt: skip


@policies_app.command("replay")
def replay(
    since: Annotated[str, typer.Option(help="A span back from now (14d, 36h).")] = "14d",
    policy: Annotated[str | None, typer.Option(help="Only this policy.")] = None,
    step: Annotated[float, typer.Option(help="Seconds between evaluations.", min=10.0)] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """What the policies would have done over the recorded history, and what the guard rails
    held back: nothing is written, nothing acts."""
    from opstui.policies import replay as rp
    from opstui.timeutil import iso, span

    back = span(since, most=366 * DAY)
    if back is None:
        raise UsageError(f"--since {since!r} is not a span",
                         hint="give a span back from now: 36h, 14d (at most 366d)")  # fmt: skip
    db, cfg = open_store(store, config, create=False)
    chosen = [p for p in cfg.policies.values() if policy is None or p.name == policy]
    if not chosen:
        known = ", ".join(cfg.policies) or "none configured"
        raise UsageError(f"no policy {policy!r} to replay" if policy else "no policies to replay",
                         hint=f"policies: {known}")  # fmt: skip
    with db:
        until = db.clock()
        start = until - back
        history = rp.load(db, cfg, chosen, start, until)
    report = rp.replay(cfg, chosen, history, since=start, until=until, step=step)
    shown = [d for d in report.decisions if d.verdict not in ("held", "inconclusive")]
    if as_json:
        write_json({
            "since": start, "until": until, "step": step,
            "decisions": [d._asdict() for d in report.decisions],
            "summary": {p.name: dict(report.summary(p.name)) for p in chosen},
        })  # fmt: skip
        return
    say(f"replay of the last {since} ({iso(start)} .. {iso(until)}), an evaluation every "
        f"{step:g}s; nothing was written or done")  # fmt: skip
    for d in shown:
        verdict = rp.SAID.get(d.verdict, d.verdict.replace("_", " "))
        say(_show(f"{iso(d.at)}  {d.policy}  {verdict}: {d.why}"))
    for p in chosen:
        counts = report.summary(p.name)
        parts = [f"{counts[k]} {words}" for k, words in rp.SUMMARY if counts[k]]
        say(_show(f"{p.name}: " + (" · ".join(parts) or "nothing to do")))
