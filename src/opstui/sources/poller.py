"""The poll scheduler: every endpoint on its own interval, none delaying another.

Each endpoint has its own task. A poll re-arms the endpoint's timer when it
finishes, so polls of one endpoint never overlap; a failing endpoint backs
off exponentially (with jitter, so a fleet of pollers does not retry in
step); a semaphore bounds how many requests are in flight, and every request
has its own deadline, so a hanging endpoint holds one slot until its timeout
and delays nobody else.

Store writes never happen on the event loop: observations are collected and
written in batches by a worker thread, and leases (one poller per endpoint
across every opstui sharing the store) are renewed the same way. A busy store
is waited out (observations are kept and written later); a store deleted or
replaced under the poller, a full disk or a read-only store stops it with the
reason and the number of polls not written, instead of polling into nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from opstui.config.endpoints import EndpointDef
from opstui.sources.backoff import backoff
from opstui.sources.fetch import observe
from opstui.sources.http import mask, shown_url
from opstui.sources.probe import REASON_MAX
from opstui.sources.transport import transport_for
from opstui.store import Store, StoreError, local_actor
from opstui.store.endpoints import (
    Observation,
    acquire_leases,
    record_observations,
    release_leases,
)
from opstui.store.failures import FATAL_WRITE_ERRORS, StoreGone
from opstui.store.location import StoreLocation, parse_location
from opstui.store.metrics import read_watermarks
from opstui.store.retention import apply_retention
from opstui.store.status import DOWN

if TYPE_CHECKING:
    from opstui.sources.airflow.poll import AirflowClient, AirflowSnapshot
    from opstui.sources.mlflow.api import MlflowSnapshot
    from opstui.sources.prefect.poll import PrefectClient, PrefectSnapshot

#: Observations kept while the store cannot be written (oldest dropped first).
MAX_PENDING = 100_000
LEASE_TTL = 15.0
#: Seconds between retention passes (one poller across the store does them).
RETENTION_EVERY = 600.0
_RETENTION_LEASE = "__retention__"
#: Lags kept for statistics: two minutes of 500 endpoints polled every second.
LAG_WINDOW = 60_000


@dataclass
class PollStats:
    polls: int = 0
    failures: int = 0
    #: Seconds each recent poll started after its scheduled time (bounded:
    #: a poller runs for days, at hundreds of polls a second).
    lags: deque[float] = field(default_factory=lambda: deque(maxlen=LAG_WINDOW))
    skipped_not_held: int = 0
    #: The latest store writes that failed (the poller keeps going and retries).
    write_errors: deque[str] = field(default_factory=lambda: deque(maxlen=100))


def _not_written(exc: StoreError, polls: int) -> StoreError:
    """``exc`` saying how many polls are lost with it."""
    what = f"{polls} poll{'' if polls == 1 else 's'}"
    if isinstance(exc, StoreGone):
        return exc.not_written(what)
    return type(exc)(f"{exc.message} (not written: {what})", hint=exc.hint)


class Poller:
    """Polls endpoints and writes what it sees into the store."""

    def __init__(
        self,
        store_path: str | os.PathLike[str] | StoreLocation,
        endpoints: Sequence[EndpointDef],
        *,
        max_concurrency: int = 64,
        flush_interval: float = 0.5,
        lease_ttl: float = LEASE_TTL,
        use_leases: bool = True,
        on_observation: Callable[[Observation], None] | None = None,
        seed: int | None = None,
        busy_timeout: float = 30.0,
    ) -> None:
        self.store_path = parse_location(store_path)
        self.endpoints = list(endpoints)
        self.holder = f"{local_actor()}:{os.getpid()}"
        self.max_concurrency = max_concurrency
        self.flush_interval = flush_interval
        self.lease_ttl = lease_ttl
        self.use_leases = use_leases
        self.on_observation = on_observation
        self.stats = PollStats()
        self.held: set[str] = set()
        self._pending: list[Observation] = []
        self._snapshots: list[
            tuple[EndpointDef, MlflowSnapshot | AirflowSnapshot | PrefectSnapshot]
        ] = []
        #: An orchestrator endpoint's client, kept across polls (its token,
        #: the DAGs' task orders).
        self._airflow: dict[str, AirflowClient] = {}
        self._prefect: dict[str, PrefectClient] = {}
        #: Range-query watermarks of observations not yet written (endpoint
        #: -> query -> through): the next poll must not fetch them again
        #: before the writer has stored them.
        self._unwritten_marks: dict[str, dict[str, float]] = {}
        self._rng = random.Random(seed)
        self._store: Store | None = None
        self.busy_timeout = busy_timeout
        #: The store error that stopped ``run`` (a deleted store, a full disk).
        self.fatal: StoreError | None = None
        self._stop: asyncio.Event | None = None
        self._writing: asyncio.Future[None] | None = None

    async def run(
        self, *, stop: asyncio.Event | None = None, duration: float | None = None
    ) -> None:
        """Poll until ``stop`` is set or ``duration`` seconds pass.

        Raises the store error that stopped it early (``self.fatal``), saying
        how many polls were not written.
        """
        stop = self._stop = stop or asyncio.Event()
        self._store = await self._open_store()
        try:
            await self._renew_leases()
            async with self._transports() as transports:
                sem = asyncio.Semaphore(self.max_concurrency)
                tasks = [
                    asyncio.create_task(self._loop(ep, transports[ep.name], sem), name=ep.name)
                    for ep in self.endpoints
                ]
                tasks.append(asyncio.create_task(self._every(self.flush_interval, self._flush)))
                if self.use_leases:
                    tasks.append(
                        asyncio.create_task(self._every(self.lease_ttl / 3, self._renew_leases))
                    )
                    tasks.append(asyncio.create_task(self._every(RETENTION_EVERY, self._retain)))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), duration)
                # Stopping cancels the loops: they sleep with asyncio.sleep,
                # which is cheaper per poll than waiting on an event.
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await self._close()
        if self.fatal is not None:
            raise _not_written(self.fatal, len(self._pending)) from self.fatal

    async def _close(self) -> None:
        """Write what is pending and release the leases, unless the store is lost."""
        assert self._store is not None
        try:
            if self._writing is not None:
                # A write the stop cancelled the flush of: let it finish (its
                # batch goes back to the queue if it failed), then the rest.
                with contextlib.suppress(Exception):
                    await self._writing
            if self.fatal is None:
                await self._flush()
                if self.use_leases:
                    await asyncio.to_thread(release_leases, self._store, holder=self.holder)
        except FATAL_WRITE_ERRORS as exc:
            self.fatal = exc
        finally:
            await asyncio.to_thread(self._store.close)

    async def poll_once(self) -> list[Observation]:
        """Poll every endpoint once, concurrently, regardless of leases."""
        self._store = await self._open_store()
        try:
            async with self._transports() as transports:
                sem = asyncio.Semaphore(self.max_concurrency)

                async def one(ep: EndpointDef) -> Observation:
                    async with sem:
                        return await self._observe(ep, transports[ep.name])

                results = await asyncio.gather(*(one(ep) for ep in self.endpoints))
            self._pending.extend(results)
            await self._flush()
            return list(results)
        finally:
            await asyncio.to_thread(self._store.close)

    async def _open_store(self) -> Store:
        return await asyncio.to_thread(Store, self.store_path, busy_timeout=self.busy_timeout)

    @contextlib.asynccontextmanager
    async def _transports(self) -> AsyncIterator[dict[str, httpx.AsyncBaseTransport]]:
        """One small transport per endpoint, sharing one TLS context.

        A shared pool costs more per request as it grows (httpcore scans it)
        and, past its keep-alive limit, closes a connection on every request
        (bench/poller_load.py measured both); an endpoint needs one
        connection of its own. Loading CA certificates is the expensive part
        of a client, so every verifying transport shares one context.
        """
        context = ssl.create_default_context()
        transports = {
            ep.name: transport_for(context if ep.verify_tls else False) for ep in self.endpoints
        }
        try:
            yield transports
        finally:
            await asyncio.gather(*(t.aclose() for t in transports.values()))

    async def _observe(self, ep: EndpointDef, transport: httpx.AsyncBaseTransport) -> Observation:
        try:
            if ep.kind == "mlflow":
                from opstui.sources.mlflow.poll import observe_mlflow

                # The MLflow client builds JSON requests; the transport's
                # connection stays open across polls (the client is not closed).
                client = httpx.AsyncClient(transport=transport, follow_redirects=False)
                ob, snapshot = await observe_mlflow(client, ep, self._store)
                # Written with the observations, by the writer thread.
                self._snapshots.append((ep, snapshot))
            elif ep.kind == "airflow":
                ob, polled = await self._observe_airflow(ep, transport)
                if polled is not None:
                    self._snapshots.append((ep, polled))
            elif ep.kind == "prefect":
                ob, flows = await self._observe_prefect(ep, transport)
                if flows is not None:
                    self._snapshots.append((ep, flows))
            else:
                ob = await observe(transport, ep, watermarks=await self._watermarks(ep))
                if ob.watermarks:
                    self._unwritten_marks.setdefault(ep.name, {}).update(ob.watermarks)
        except Exception as exc:  # a bug in a reader must not stop the poller
            # The error may quote a server: masked like every reason.
            reason = mask(f"poller error: {exc}", ep)[:REASON_MAX]
            ob = Observation(ep.name, ep.kind, shown_url(ep.url), time.time(), DOWN, reason, None)
        if self.on_observation is not None:
            self.on_observation(ob)
        return ob

    async def _observe_airflow(
        self, ep: EndpointDef, transport: httpx.AsyncBaseTransport
    ) -> tuple[Observation, AirflowSnapshot | None]:
        from opstui.sources.airflow.poll import AirflowClient, observe_airflow
        from opstui.sources.airflow.rest import AsyncAirflowRest

        client = self._airflow.get(ep.name)
        if client is None:
            http = httpx.AsyncClient(transport=transport, follow_redirects=False)
            client = self._airflow[ep.name] = AirflowClient(AsyncAirflowRest(ep, http))
        # The store is read (the watermark, the runs held open) off the loop.
        return await observe_airflow(client, ep, self._store)

    async def _observe_prefect(
        self, ep: EndpointDef, transport: httpx.AsyncBaseTransport
    ) -> tuple[Observation, PrefectSnapshot | None]:
        from opstui.sources.prefect.poll import PrefectClient, observe_prefect
        from opstui.sources.prefect.rest import AsyncPrefectRest

        client = self._prefect.get(ep.name)
        if client is None:
            http = httpx.AsyncClient(transport=transport, follow_redirects=False)
            client = self._prefect[ep.name] = PrefectClient(AsyncPrefectRest(ep, http))
        return await observe_prefect(client, ep, self._store)

    async def _watermarks(self, ep: EndpointDef) -> dict[str, float]:
        """Where each range query of ``ep`` stopped: read from the store at every poll.

        The store's watermark is what any process (this one before a
        restart, or another holding the lease before) stored; this process's
        own observations still waiting for the writer count too.
        """
        if not ep.range_queries or self._store is None:
            return {}
        marks = await asyncio.to_thread(
            read_watermarks, self._store, f"endpoint/{ep.name}", list(ep.range_queries)
        )
        for name, through in self._unwritten_marks.get(ep.name, {}).items():
            marks[name] = max(marks.get(name, through), through)
        return marks

    async def _loop(
        self, ep: EndpointDef, transport: httpx.AsyncBaseTransport, sem: asyncio.Semaphore
    ) -> None:
        """Poll one endpoint forever (until cancelled)."""
        loop = asyncio.get_running_loop()
        # Spread the first polls over one interval so 500 endpoints do not
        # all fire in the same millisecond.
        scheduled = loop.time() + self._rng.uniform(0, min(ep.interval, 1.0))
        failures = 0
        while True:
            await asyncio.sleep(max(0.0, scheduled - loop.time()))
            if self.use_leases and ep.name not in self.held:
                self.stats.skipped_not_held += 1
                scheduled += ep.interval
                continue
            async with sem:
                self.stats.lags.append(loop.time() - scheduled)
                ob = await self._observe(ep, transport)
            self.stats.polls += 1
            self._pending.append(ob)
            failures = failures + 1 if ob.state == DOWN else 0
            self.stats.failures += ob.state == DOWN
            # Re-armed from the schedule, not from now, so lag does not
            # accumulate; a poll that overran its interval runs again at once.
            scheduled = max(scheduled + backoff(ep.interval, failures, self._rng), loop.time())

    async def _every(self, seconds: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except FATAL_WRITE_ERRORS as exc:
                # Retrying cannot bring a deleted store back, free the disk or
                # make a file writable: stop and say so (``run`` raises it).
                self.fatal = exc
                if self._stop is not None:
                    self._stop.set()
                return
            except Exception as exc:
                # A locked store must not end the writer or the lease keeper:
                # polls go on, and the next round tries again.
                self.stats.write_errors.append(f"{type(exc).__name__}: {exc}"[:200])
                if len(self._pending) > MAX_PENDING:
                    del self._pending[:-MAX_PENDING]
                    # Dropped polls may hold range points: fetch again from
                    # what the store has (the writer skips what it holds).
                    self._unwritten_marks.clear()

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        snapshots, self._snapshots = self._snapshots, []
        if self._store is None:
            return
        if not batch and not snapshots:
            # Nothing to write (long intervals, leases held elsewhere): look
            # at the file anyway (a stat), so a deleted store is noticed now.
            self._store.check_same_file()
            return
        # The write runs as a task of its own, shielded: stopping cancels the
        # periodic flush, but a write already in its thread goes on there.
        # Abandoned, it raced the final flush (a newer batch could commit
        # first, or it failed busy with nobody to keep its batch: one poll in
        # 20 lost under load); ``_close`` waits for it instead.
        self._writing = asyncio.ensure_future(self._write(batch, snapshots))
        await asyncio.shield(self._writing)

    async def _write(
        self,
        batch: list[Observation],
        snapshots: list[tuple[EndpointDef, MlflowSnapshot | AirflowSnapshot | PrefectSnapshot]],
    ) -> None:
        assert self._store is not None
        if batch:
            try:
                await asyncio.to_thread(record_observations, self._store, batch, holder=self.holder)
            except Exception:
                # Keep them for the next round, ahead of newer ones.
                self._pending[:0] = batch
                self._snapshots[:0] = snapshots
                raise
        if snapshots:
            from opstui.sources.airflow import sync as airflow_sync
            from opstui.sources.airflow.poll import AirflowSnapshot
            from opstui.sources.mlflow.sync import sync_snapshot
            from opstui.sources.prefect import sync as prefect_sync
            from opstui.sources.prefect.poll import PrefectSnapshot

            for ep, snapshot in snapshots:
                if isinstance(snapshot, AirflowSnapshot):
                    await asyncio.to_thread(airflow_sync.sync_snapshot, self._store, ep, snapshot)
                elif isinstance(snapshot, PrefectSnapshot):
                    await asyncio.to_thread(prefect_sync.sync_snapshot, self._store, ep, snapshot)
                else:
                    await asyncio.to_thread(sync_snapshot, self._store, ep, snapshot)

    async def _retain(self) -> None:
        """One retention pass, by whichever poller holds the retention lease."""
        assert self._store is not None
        held = await asyncio.to_thread(
            acquire_leases,
            self._store,
            [_RETENTION_LEASE],
            holder=self.holder,
            ttl=RETENTION_EVERY,
        )
        if held:
            await asyncio.to_thread(apply_retention, self._store)

    async def _renew_leases(self) -> None:
        names = [ep.name for ep in self.endpoints]
        if not self.use_leases:
            self.held = set(names)
            return
        assert self._store is not None
        self.held = await asyncio.to_thread(
            acquire_leases, self._store, names, holder=self.holder, ttl=self.lease_ttl
        )
