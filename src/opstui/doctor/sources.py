"""Each configured source polled once, concurrently, on the poller's own
path (``Poller._observe``: the transports, the reading by kind, the same
one-line reasons the console shows), with nothing written: the
observations are judged here and dropped.

Every poll is bounded by the doctor's ``--timeout`` (an endpoint's own
``timeout`` when shorter), and the polls run on a thread of their own
while the other checks run, so a hanging source costs its timeout once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import Sequence

from opstui.config.endpoints import EndpointDef
from opstui.doctor.checks import FAIL, OK, WARN, Check, ago
from opstui.doctor.store import StoreFacts, open_current
from opstui.sources.http import shown_url
from opstui.sources.poller import Poller
from opstui.store.endpoints import Observation
from opstui.store.location import StoreLocation
from opstui.store.status import DEGRADED, DOWN, UP

#: Kinds whose poll reads the store (watermarks, runs held open): polled
#: with it when it opens, so the poll is the incremental one the console makes.
READS_STORE = frozenset({"mlflow", "airflow", "prefect"})
#: Seconds past its timeout a poll is given before the doctor stops waiting.
GRACE = 0.25


class SourcePolls(threading.Thread):
    """One poll of each endpoint, on a thread of its own (``start``, then ``collect``)."""

    def __init__(
        self, endpoints: Sequence[EndpointDef], location: StoreLocation | None, timeout: float
    ) -> None:
        super().__init__(name="opstui-doctor-sources", daemon=True)
        self.endpoints = [
            dataclasses.replace(ep, timeout=min(ep.timeout, timeout)) for ep in endpoints
        ]
        self.location = location
        self.timeout = timeout
        self.results: dict[str, Observation] = {}
        self.error: BaseException | None = None
        self.started_at = 0.0

    def start(self) -> None:
        self.started_at = time.monotonic()
        super().start()

    def run(self) -> None:
        try:
            asyncio.run(self._poll_all())
        except BaseException as exc:
            self.error = exc

    async def _poll_all(self) -> None:
        store = None
        needs_store = any(ep.kind in READS_STORE or ep.range_queries for ep in self.endpoints)
        if needs_store and self.location is not None:
            store = await asyncio.to_thread(open_current, self.location)
        poller = Poller(self.location or "opstui.db", self.endpoints, use_leases=False)
        # Read by the kinds that poll incrementally; never written: the doctor
        # does not flush what it observes.
        poller._store = store
        try:
            async with poller._transports() as transports:

                async def one(ep: EndpointDef) -> None:
                    try:
                        async with asyncio.timeout(ep.timeout + GRACE):
                            ob = await poller._observe(ep, transports[ep.name])
                    except TimeoutError:
                        ob = Observation(
                            ep.name, ep.kind, shown_url(ep.url), time.time(), DOWN,
                            f"no answer within {ep.timeout:g}s", None,
                        )  # fmt: skip
                    self.results[ep.name] = ob

                await asyncio.gather(*(one(ep) for ep in self.endpoints))
        finally:
            if store is not None:
                with contextlib.suppress(Exception):
                    store.close()

    def collect(self) -> dict[str, Observation]:
        """The observations made by the deadline: the longest timeout and a second."""
        longest = max((ep.timeout for ep in self.endpoints), default=0.0)
        deadline = self.started_at + longest + GRACE + 0.5
        self.join(max(0.0, deadline - time.monotonic()))
        return dict(self.results)


def source_checks(
    endpoints: Sequence[EndpointDef],
    observed: dict[str, Observation],
    facts: StoreFacts,
    *,
    config_name: str,
    error: BaseException | None = None,
    timeout: float,
    now: float | None = None,
) -> list[Check]:
    at = time.time() if now is None else now
    out = []
    for ep in endpoints:
        name = f"source {ep.name}"
        shown = shown_url(ep.url)
        polled = _polled(ep.name, facts, at)
        ob = observed.get(ep.name)
        if ob is None:
            why = (
                f"the poll failed: {type(error).__name__}: {error}"
                if error is not None
                else f"no verdict within {min(ep.timeout, timeout):g}s"
            )
            fix = f"check that {shown} answers, or fix [endpoints.{ep.name}] in {config_name}"
            out.append(Check(name, FAIL, f"{ep.kind} {shown}: {why}{polled}", fix))
            continue
        latency = f", {ob.latency_ms:.0f} ms" if ob.latency_ms is not None else ""
        reason = f": {ob.reason}" if ob.reason else ""
        detail = f"{ep.kind} {shown}: {ob.state}{reason}{latency}{polled}"
        if ob.state == UP:
            out.append(Check(name, OK, detail))
        elif ob.state == DEGRADED:
            fix = (
                f"the console shows it degraded for this reason: fix it at the source, "
                f"or fix [endpoints.{ep.name}] in {config_name}"
            )
            out.append(Check(name, WARN, detail, fix))
        else:
            out.append(Check(name, FAIL, detail, _down_fix(ep, ob, config_name)))
    return out


def _down_fix(ep: EndpointDef, ob: Observation, config_name: str) -> str:
    reason = ob.reason or ""
    secrets = [*ep.secret_headers.values(), *filter(None, (ep.username_env, ep.password_env))]
    if "unauthorized" in reason or "forbidden" in reason or "not set" in reason:
        names = ", ".join(f"${v}" for v in secrets)
        where = f"export {names} with a valid credential" if names else "configure credentials"
        return f"{where} (secret_headers / username_env in [endpoints.{ep.name}])"
    if reason.startswith("no answer within"):
        return (
            f"{shown_url(ep.url)} did not answer in time: check that its server is not hung "
            f"or overloaded, or raise endpoints.{ep.name}.timeout in {config_name}"
        )
    return (
        f"check that {shown_url(ep.url)} is up and reachable from this host, "
        f"or fix [endpoints.{ep.name}] in {config_name}"
    )


def _polled(name: str, facts: StoreFacts, now: float) -> str:
    if not facts.opened:
        return ""
    row = facts.statuses.get(name)
    if row is None:
        last = "; never polled into this store"
    else:
        by = f" by {row.polled_by}" if row.polled_by else ""
        last = f"; last poll {ago(now - row.last_attempt_at)} ago{by} ({row.state})"
    lease = facts.leases.get(name)
    if lease is not None:
        holder, expires = lease
        when = "held" if expires >= now else "expired"
        last += f", lease {when} by {holder}"
    return last
