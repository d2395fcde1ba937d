"""The store-wide timeline: what happened, when, to what, and who did it.

Read, not written: each kind of event already has a home the store keeps as
history, so the timeline is a union of them, lossless by construction and
there for stores written before it existed:

- ``run``: a run that failed or timed out, and the first success after a
  failure (``recovered``), from ``runs`` (every run is kept);
- ``deploy``: deploys, rollbacks and MLflow alias moves, succeeded or failed,
  from ``deployments``;
- ``alert``: opstui's alerts firing and resolving, per endpoint and
  severity, from ``alerts`` (``store/alerts.py``);
- ``drift``: a model's drift starting and clearing (a check whose verdict
  differs from the one before), from ``drift_checks``;
- ``action``: operator actions (retry, rollback, retrain) and
  acknowledgements with their outcome, from the audit trail ``actions``;
- ``policy``: what automation policies decided, acting or not and why
  (held by a guard rail, awaiting approval, shadow mode's would-act, an
  approval, a pause), from ``policy_decisions`` (``store/policies.py``).

Each event carries the service and environment it belongs to where the
store knows them, so an incident's timeline can be cut to one service.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple

from opstui.store import fields
from opstui.store import status as st
from opstui.store.alerts import alert_history
from opstui.store.db import Store

KINDS = ("run", "deploy", "alert", "drift", "action", "policy")
_FAILED = (st.FAILED, st.TIMED_OUT)


class TimelineEvent(NamedTuple):
    at: float
    #: One of ``KINDS``.
    kind: str
    #: What happened, in a word: failed, recovered, deployed, rolled back,
    #: alias moved, deploy failed, firing, resolved, started, cleared, and
    #: the action's name for actions.
    what: str
    #: The pipeline, endpoint, model or service it happened to.
    subject: str
    #: One line, from data: escape it before it reaches a terminal.
    summary: str
    service: str | None = None
    environment: str | None = None
    actor: str | None = None
    #: ``fault``, ``warn`` or ``ok``: how a screen colours it.
    severity: str = "ok"
    #: Where it comes from: ``run:12``, ``deployment:3``, ``alert:4``,
    #: ``drift:9``, ``action:7``.
    ref: str = ""

    def about(self, service: str) -> bool:
        """Whether it concerns ``service`` (a service, model, pipeline or endpoint name)."""
        return service in (self.service, self.subject)


def timeline(
    store: Store,
    *,
    since: float,
    until: float | None = None,
    service: str | None = None,
    environment: str | None = None,
    kinds: Collection[str] = KINDS,
    limit: int = 500,
    served: Mapping[str, tuple[str, str, str]] | None = None,
) -> list[TimelineEvent]:
    """Events in [since, until], newest first, at most ``limit`` of them.

    ``served`` maps an endpoint to what it serves (``Config.served``), so an
    alert or acknowledgement on an endpoint belongs to its service.
    """
    hi = 1e300 if until is None else until
    served = served or {}
    out: list[TimelineEvent] = []
    # Each source is cut at ``limit`` on its own; the merge is cut again.
    # A service filter reads more of each (it drops rows after reading).
    cap = limit if service is None and environment is None else max(limit * 20, 5000)
    readers = {
        "run": _runs,
        "deploy": _deployments,
        "alert": _alerts,
        "drift": _drift,
        "action": _actions,
        "policy": _policies,
    }
    for kind, read in readers.items():
        if kind in kinds:
            # (A row a reader skips is noted to the caller's collector.)
            out.extend(read(store, since, hi, cap, served))
    if service is not None:
        out = [e for e in out if e.about(service)]
    if environment is not None:
        out = [e for e in out if e.environment == environment]
    out.sort(key=lambda e: (e.at, e.ref), reverse=True)
    return out[:limit]


def _text(value: Any) -> str | None:
    return None if value is None else " ".join(fields.free_text(str(value)).split())


def _env_of(params: Any) -> str | None:
    try:
        env = json.loads(params or "{}").get("environment")
    except (ValueError, AttributeError):
        return None
    return env if isinstance(env, str) else None


def _runs(
    store: Store, since: float, hi: float, cap: int, served: Mapping[str, Any]
) -> list[TimelineEvent]:
    # The run before each one in the window, by the pipeline's order
    # (created_at, id), tells a recovery from one more success.
    rows = store.query(
        """SELECT r.id, p.name, r.status, r.trigger, r.actor, r.finished_at, r.message,
                  r.params, m.name,
                  (SELECT q.status FROM runs q
                   WHERE q.pipeline_id = r.pipeline_id AND q.finished_at IS NOT NULL
                     AND (q.created_at < r.created_at
                          OR (q.created_at = r.created_at AND q.id < r.id))
                   ORDER BY q.created_at DESC, q.id DESC LIMIT 1),
                  (SELECT s.name FROM stage_runs s
                   WHERE s.run_id = r.id AND s.status IN ('failed', 'timed_out')
                   ORDER BY s.position LIMIT 1)
           FROM runs r JOIN pipelines p ON p.id = r.pipeline_id
           LEFT JOIN models m ON m.id = (
               SELECT min(id) FROM models WHERE pipeline_id = p.id)
           WHERE r.finished_at >= ? AND r.finished_at <= ?
             AND r.status IN ('failed', 'timed_out', 'succeeded')
           ORDER BY r.finished_at DESC, r.id DESC LIMIT ?""",
        (since, hi, cap * 4),
    )
    out = []
    for rid, pipeline, status, trigger, actor, at, message, params, model, prev, stage in rows:
        failed = status in _FAILED
        if not failed and prev not in _FAILED:
            continue
        what = "recovered" if not failed else status.replace("_", " ")
        text = f"{pipeline} #{rid} {what}"
        if failed and stage:
            text += f" at {stage}"
        if trigger and trigger != "manual":
            text += f" ({trigger})"
        if failed and message:
            text += f": {message}"
        out.append(
            TimelineEvent(
                float(at), "run", what, str(pipeline), _text(text) or "",
                service=str(model or pipeline), environment=_env_of(params),
                actor=_text(actor), severity="fault" if failed else "ok", ref=f"run:{rid}",
            )
        )  # fmt: skip
        if len(out) >= cap:
            break
    return out


def _deployments(
    store: Store, since: float, hi: float, cap: int, served: Mapping[str, Any]
) -> list[TimelineEvent]:
    rows = store.query(
        """SELECT d.id, d.target, d.environment, d.version, d.status,
                  d.action, d.actor, d.deployed_at, d.message,
                  (SELECT version FROM deployments p WHERE p.id = d.replaces_id)
           FROM deployments d WHERE d.deployed_at >= ? AND d.deployed_at <= ?
           ORDER BY d.deployed_at DESC, d.id DESC LIMIT ?""",
        (since, hi, cap),
    )
    out = []
    for did, target, env, version, status, action, actor, at, message, was in rows:
        alias = str(actor or "").startswith("mlflow/")
        if status == "failed":
            what, severity = f"{action} failed", "fault"
        elif action == "rollback":
            what, severity = "rolled back", "warn"
        elif alias:
            what, severity = "alias moved", "ok"
        else:
            what, severity = "deployed", "ok"
        if status == "in_progress":
            what = f"{action} started"
        moved = f"{was} -> {version}" if was else str(version)
        text = f"{target} {what} {moved} in {env}"
        if alias and message:
            text += f" ({message})"
        out.append(
            TimelineEvent(
                float(at), "deploy", what, str(target), _text(text) or "", service=str(target),
                environment=str(env), actor=_text(actor), severity=severity,
                ref=f"deployment:{did}",
            )
        )  # fmt: skip
    return out


def _alerts(
    store: Store, since: float, hi: float, cap: int, served: Mapping[str, Any]
) -> list[TimelineEvent]:
    out = []
    for a in alert_history(store, since=since, until=hi, limit=cap):
        service = a.service or _service_of(a.subject, served)
        if since <= a.fired_at <= hi:
            out.append(
                TimelineEvent(
                    a.fired_at, "alert", "firing", a.subject,
                    _text(f"{a.summary} [{a.severity}] firing") or "", service=service,
                    environment=a.environment, actor=a.fired_by,
                    severity="fault" if a.severity == "page" else "warn", ref=f"alert:{a.id}",
                )
            )  # fmt: skip
        if a.resolved_at is not None and since <= a.resolved_at <= hi:
            lasted = _duration(a.resolved_at - a.fired_at)
            out.append(
                TimelineEvent(
                    a.resolved_at, "alert", "resolved", a.subject,
                    _text(f"{a.summary} [{a.severity}] resolved after {lasted}") or "",
                    service=service, environment=a.environment, actor=a.resolved_by,
                    severity="ok", ref=f"alert:{a.id}:resolved",
                )
            )  # fmt: skip
    return out


def _drift(
    store: Store, since: float, hi: float, cap: int, served: Mapping[str, Any]
) -> list[TimelineEvent]:
    rows = store.query(
        """SELECT c.id, m.name, c.version, c.computed_at, c.drifted, c.drifted_features, c.features,
                  (SELECT q.drifted FROM drift_checks q
                   WHERE q.model_id = c.model_id AND q.id < c.id
                   ORDER BY q.id DESC LIMIT 1)
           FROM drift_checks c JOIN models m ON m.id = c.model_id
           WHERE c.computed_at >= ? AND c.computed_at <= ?
           ORDER BY c.computed_at DESC, c.id DESC LIMIT ?""",
        (since, hi, cap * 4),
    )
    out = []
    for cid, model, version, at, drifted, n_drifted, n_features, prev in rows:
        now_drifting, was = bool(drifted), bool(prev)
        if now_drifting == was:
            continue
        if now_drifting:
            text = f"{model} v{version} drift started"
            if n_drifted is not None and n_features:
                text += f": {n_drifted}/{n_features} features drifted"
        else:
            text = f"{model} v{version} drift cleared"
        out.append(
            TimelineEvent(
                float(at), "drift", "started" if now_drifting else "cleared", str(model),
                _text(text) or "", service=str(model),
                severity="warn" if now_drifting else "ok", ref=f"drift:{cid}",
            )
        )  # fmt: skip
        if len(out) >= cap:
            break
    return out


def _actions(
    store: Store, since: float, hi: float, cap: int, served: Mapping[str, Any]
) -> list[TimelineEvent]:
    rows = store.query(
        """SELECT id, ts, actor, action, target, environment, status, outcome, plan
           FROM actions WHERE ts >= ? AND ts <= ? ORDER BY ts DESC, id DESC LIMIT ?""",
        (since, hi, cap),
    )
    # A pipeline's actions belong to its model, as its runs do.
    models = {
        str(p): str(m)
        for p, m in store.query(
            """SELECT p.name, min(m.name) FROM models m JOIN pipelines p ON p.id = m.pipeline_id
               GROUP BY p.name"""
        )
    }
    out = []
    for aid, at, actor, action, what, env, status, outcome, plan in rows:
        target = str(what)
        if action in ("acknowledge", "unacknowledge"):
            # ``endpoint:web-api`` or ``pipeline:etl``: the row's thing.
            subject = target.partition(":")[2] or target
            until = _plan_until(plan)
            text = f"{actor} {action}d {subject}"
            if until is not None and action == "acknowledge":
                text += f" for {_duration(until - float(at))}"
            if outcome:
                text += f": {outcome}"
            severity, word = "ok", f"{action}d"
        else:
            subject = target
            where = f" in {env}" if env else ""
            text = f"{actor} {action} {target}{where} {status}"
            if outcome:
                text += f": {outcome}"
            severity = {"failed": "fault", "refused": "warn", "started": "warn"}.get(
                str(status), "ok"
            )
            word = f"{action} {status}"
        out.append(
            TimelineEvent(
                float(at), "action", _text(word) or str(action), subject, _text(text) or "",
                service=models.get(subject) or _service_of(subject, served), environment=_text(env),
                actor=_text(actor), severity=severity, ref=f"action:{aid}",
            )
        )  # fmt: skip
    return out


#: How a policy's verdict colours the timeline.
_VERDICT_SEVERITY = {"acted": "warn", "awaiting_approval": "warn", "refused": "fault",
                     "rejected": "warn", "paused": "warn"}  # fmt: skip


def _policies(
    store: Store, since: float, hi: float, cap: int, served: Mapping[str, Any]
) -> list[TimelineEvent]:
    rows = store.query(
        """SELECT id, decided_at, policy, target, verdict, why, environment, service,
                  decided_by, action
           FROM policy_decisions WHERE decided_at >= ? AND decided_at <= ?
           ORDER BY decided_at DESC, id DESC LIMIT ?""",
        (since, hi, cap),
    )
    out = []
    for did, at, policy, target, verdict, why, env, service, by, _action in rows:
        if not isinstance(at, int | float):
            continue
        subject = str(target).partition(":")[2] or str(target)
        # Who: the policy, or the operator who paused, approved or rejected.
        human = verdict in ("paused", "resumed", "approved", "rejected")
        who = _text(by) if human else f"policy:{policy}"
        name = "every policy" if policy == "*" else f"policy {policy}"
        out.append(
            TimelineEvent(
                float(at), "policy", str(verdict).replace("_", " "), subject,
                _text(f"{name}: {why}") or "",
                service=_text(service) or _service_of(subject, served), environment=_text(env),
                actor=who, severity=_VERDICT_SEVERITY.get(str(verdict), "ok"),
                ref=f"policy:{did}",
            )
        )  # fmt: skip
    return out


def _plan_until(plan: Any) -> float | None:
    try:
        until = json.loads(plan or "{}").get("until")
    except (ValueError, AttributeError):
        return None
    return float(until) if isinstance(until, int | float) else None


def _service_of(subject: str, served: Mapping[str, Sequence[str]]) -> str:
    """What an endpoint serves, else the subject itself."""
    what = served.get(subject)
    return str(what[1]) if what else subject


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
