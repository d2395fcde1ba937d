"""Deployments: what went where, and what each environment runs now.

A deployment row says "this version of this service or model went to this
environment". What an environment runs now is its latest *succeeded*
deployment: a failed deploy leaves the previous version serving, and a
rollback is one more deployment whose ``replaces_id`` names what it replaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opstui.errors import UsageError
from opstui.store import fields
from opstui.store.db import Store, Transaction, local_actor
from opstui.store.query import where
from opstui.store.rows import DeploymentRow

DEPLOY_STATUSES = frozenset({"succeeded", "failed", "in_progress"})


def add_deployment(
    tx: Transaction,
    *,
    environment: str,
    target: str,
    version: str,
    target_kind: str = "service",
    status: str = "succeeded",
    action: str = "deploy",
    actor: str | None = None,
    run_id: int | None = None,
    deployed_at: float,
    key: str | None = None,
    replaces_id: int | None = None,
    message: str | None = None,
) -> tuple[int, bool]:
    """Record a deployment; return ``(id, created)``.

    ``replaces_id`` defaults to what the environment ran until now (its
    latest succeeded deployment), so every rollback names what it replaced.
    """
    if target_kind not in ("service", "model"):
        raise UsageError(f"deployment target kind must be service or model, not {target_kind!r}")
    if status not in DEPLOY_STATUSES:
        raise UsageError(
            f"deployment status must be one of {', '.join(sorted(DEPLOY_STATUSES))}, not {status!r}"
        )
    if action not in ("deploy", "rollback"):
        raise UsageError(f"deployment action must be deploy or rollback, not {action!r}")
    fields.name(environment, "environment")
    fields.name(target, "deployment target")
    fields.name(version, "deployed version")
    fields.optional_name(actor, "actor")
    fields.optional_name(key, "deployment key")
    fields.optional_int64(run_id, "run id")
    fields.optional_int64(replaces_id, "replaced deployment id")
    deployed_at = fields.timestamp(deployed_at, "deployment time")
    if message is not None:
        message = fields.free_text(message)
    if key is not None:
        found = tx.execute("SELECT id FROM deployments WHERE key = ?", (key,)).fetchone()
        if found:
            return int(found[0]), False
    if replaces_id is None:
        current = _current(tx, target_kind, target, environment, before=deployed_at)
        replaces_id = current[0] if current else None
    cur = tx.execute(
        """INSERT INTO deployments(key, environment, target_kind, target, version, run_id,
               actor, deployed_at, status, action, replaces_id, message)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
        (
            key,
            environment,
            target_kind,
            target,
            version,
            run_id,
            actor or local_actor(),
            deployed_at,
            status,
            action,
            replaces_id,
            message,
        ),
    )
    return int(cur.fetchone()[0]), True


def _current(
    tx: Transaction, target_kind: str, target: str, environment: str, *, before: float
) -> tuple[int, str] | None:
    row = tx.execute(
        """SELECT id, version FROM deployments
           WHERE target_kind = ? AND target = ? AND environment = ? AND status = 'succeeded'
             AND deployed_at <= ?
           ORDER BY deployed_at DESC, id DESC LIMIT 1""",
        (target_kind, target, environment, before),
    ).fetchone()
    return (int(row[0]), str(row[1])) if row else None


_DEPLOYMENT_COLUMNS = """d.id, d.environment, d.target_kind, d.target, d.version, d.status,
    d.action, d.actor, d.deployed_at, d.run_id, d.replaces_id, p.version, d.message"""


def _deployment(r: Sequence[Any]) -> DeploymentRow:
    return DeploymentRow(*r)


def _readable(rows: list[Any]) -> list[DeploymentRow]:
    out = []
    for r in rows:
        problem = fields.time_problem("deployed_at", r[8])
        if problem:
            fields.skipped(f"deployment {r[0]} of {r[3]!r} to {r[1]!r}", problem)
        else:
            out.append(_deployment(r))
    return out


def current_deployments(store: Store, target: str | None = None) -> list[DeploymentRow]:
    """What runs where now: the latest succeeded deployment per target and environment.

    A deployment whose time cannot be shown is never "the latest" (one at
    year 3 billion would stay current for ever); it is named instead.
    """
    one_target, params = where(("target = ?", target or None))
    sql = f"""
        SELECT {_DEPLOYMENT_COLUMNS} FROM deployments d
        LEFT JOIN deployments p ON p.id = d.replaces_id
        WHERE d.id IN (
            SELECT (SELECT id FROM deployments x
                    WHERE x.target_kind = k.target_kind AND x.target = k.target
                      AND x.environment = k.environment AND x.status = 'succeeded'
                      AND x.deployed_at BETWEEN {fields.TIME_MIN!r} AND {fields.TIME_MAX!r}
                    ORDER BY x.deployed_at DESC, x.id DESC LIMIT 1)
            FROM (SELECT DISTINCT target_kind, target, environment FROM deployments {one_target}) k)
        ORDER BY d.target, d.environment"""
    # The same covering-index scan as the DISTINCT above, for naming bad rows.
    bad_only, _ = where(
        f"d.deployed_at NOT BETWEEN {fields.TIME_MIN!r} AND {fields.TIME_MAX!r}",
        ("d.target = ?", target or None),
    )
    bad_sql = f"""SELECT {_DEPLOYMENT_COLUMNS} FROM deployments d
        LEFT JOIN deployments p ON p.id = d.replaces_id {bad_only} LIMIT 20"""
    with store.lock:
        rows = store.query(sql, params)
        bad = store.query(bad_sql, params)
    _readable(bad)
    return _readable(rows)


def deployment_history(
    store: Store, target: str, environment: str | None = None, *, limit: int = 50
) -> list[DeploymentRow]:
    """Deployments of ``target`` (optionally one environment), newest first."""
    clause, params = where(("d.target = ?", target), ("d.environment = ?", environment))
    rows = store.query(
        f"""SELECT {_DEPLOYMENT_COLUMNS} FROM deployments d
            LEFT JOIN deployments p ON p.id = d.replaces_id
            {clause} ORDER BY d.deployed_at DESC, d.id DESC LIMIT ?""",
        [*params, limit],
    )
    return _readable(rows)
