"""Judging, settling and sending opstui's alerts, as one step a console or
``opstui poll`` takes after each read.

Every step settles the store (``store/alerts.settle``: the timeline's
firing and resolved events) whether or not an Alertmanager is configured.
With ``[notify] alertmanager``, every open alert is posted when something
changed and again every ``resend`` seconds (Alertmanager resolves an alert
not heard of for its ``resolve_timeout``), and alerts resolved in the last
``RESOLVED_FOR`` seconds are posted with their ``endsAt``: a resolution
that did not get through the first time does on a later step. Several
consoles posting the same alerts is harmless: Alertmanager merges alerts
with the same labels.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from opstui.config import Config
from opstui.errors import OpstuiError
from opstui.notify.judge import judge
from opstui.sources.alertmanager import AlertmanagerError, AmAlert, post_alerts
from opstui.store.alerts import AlertRow, Settled, recently_resolved, settle
from opstui.store.db import Store
from opstui.store.location import StoreLocation
from opstui.timeutil import iso
from opstui.views.snapshot import Snapshot, SnapshotReader

#: Seconds a resolution is sent again after the alert resolved.
RESOLVED_FOR = 600.0
ALERTNAMES = {"burn": "OpstuiErrorBudgetBurn", "deploy": "OpstuiDeployFailed",
              "drift": "OpstuiModelDrift"}  # fmt: skip


class Step(NamedTuple):
    settled: Settled
    #: Alerts posted to Alertmanager this step (0: none configured, or not due).
    sent: int = 0
    #: Why the post failed (the store is settled all the same; the next step
    #: posts again).
    error: AlertmanagerError | None = None


def to_am(a: AlertRow, config: Config) -> AmAlert:
    labels = dict(config.notify.labels)
    labels.update(
        alertname=ALERTNAMES.get(a.kind, "OpstuiAlert"), severity=a.severity,
        subject=a.subject, source="opstui",
    )  # fmt: skip
    if a.service:
        labels["service"] = a.service
    if a.environment:
        labels["environment"] = a.environment
    description = f"opstui: fired at {iso(a.fired_at)} by {a.fired_by or '?'}"
    if a.resolved_at is not None:
        description += f", resolved at {iso(a.resolved_at)} by {a.resolved_by or '?'}"
    # Alertmanager refuses an alert whose end is not after its start, and
    # ends a firing one at its own now + resolve_timeout: a start stamped by a
    # clock ahead of this machine's would be refused, and a resolution stamped
    # ahead would stay listed until then: neither is ever later than now.
    now = time.time()
    starts = min(a.fired_at, now)
    ends = None if a.resolved_at is None else max(min(a.resolved_at, now), starts + 0.01)
    return AmAlert(labels, {"summary": a.summary, "description": description},
                   starts, ends)  # fmt: skip


class Notifier:
    """One process's alert steps; not thread-safe (one step at a time)."""

    def __init__(self, config: Config, *, by: str) -> None:
        self.config = config
        self.by = by
        self._sent_at: float | None = None

    def step(self, store: Store, snap: Snapshot) -> Step:
        """Settle the store; post to Alertmanager if configured and due.

        A failed post is returned in ``Step.error``, not raised: what was
        settled is news either way.
        """
        judgement = judge(snap, self.config)
        settled = settle(store, judgement.wanted, undecided=judgement.undecided, by=self.by)
        url = self.config.notify.alertmanager
        now = store.clock()  # the clock the alerts were stamped with
        if url is None:
            return Step(settled)
        due = self._sent_at is None or now - self._sent_at >= self.config.notify.resend
        if not (due or settled.fired or settled.resolved):
            return Step(settled)
        rows = settled.open + recently_resolved(store, since=now - RESOLVED_FOR)
        alerts = [to_am(a, self.config) for a in rows]
        try:
            post_alerts(url, alerts, timeout=self.config.notify.timeout)
        except AlertmanagerError as exc:
            return Step(settled, 0, exc)
        self._sent_at = now
        return Step(settled, len(alerts))


def judge_loop(
    where: str | Path | StoreLocation,
    config: Config,
    *,
    by: str,
    stop: threading.Event,
    every: float = 5.0,
    say: Callable[[str], None],
) -> None:
    """``opstui poll``'s alert judge, on a thread until ``stop`` is set: each
    step reads the board as the console does and settles and sends; each
    change is said (``alert firing: ...``), and a failure once until it
    changes (a down Alertmanager every 5 s would drown the poller's lines)."""
    reader = SnapshotReader(where, config)
    notifier = Notifier(config, by=by)
    told: str | None = None
    store: Store | None = None
    try:
        while True:
            try:
                # One connection for the loop's life, opened again after a
                # failure (a PostgreSQL restart, a store not there yet).
                if store is None:
                    store = Store(where, create=False)
                step = notifier.step(store, reader.snapshot())
                for a in step.settled.fired:
                    say(f"alert firing: {a.summary} [{a.severity}]")
                for a in step.settled.resolved:
                    say(f"alert resolved: {a.summary} [{a.severity}]")
                if step.error is not None:
                    raise step.error
                told = None
            except Exception as exc:  # the loop outlives any one step's failure
                why = str(exc) if isinstance(exc, OpstuiError) else f"{type(exc).__name__}: {exc}"
                line = " ".join(f"alerts: {why}".split())
                if line != told:
                    say(line)
                told = line
                if store is not None and not isinstance(exc, AlertmanagerError):
                    store.close()
                    store = None
            if stop.wait(every):
                return
    finally:
        reader.close()
        if store is not None:
            store.close()
