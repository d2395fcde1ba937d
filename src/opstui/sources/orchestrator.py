"""What the orchestrator clients share (``airflow.rest``, ``prefect.rest``).

One error shape (``SourceError``: one line naming the product, the
endpoint, the call and the cause, secrets masked), one paced send
(``PacedRest._send``: at most ``rate_limit`` requests a second, the capped
and redirect-checked read of ``http.aread_capped``, the server's clock
from its ``Date`` header), ``observe`` (one poll as an observation), and
``call_once`` to use a client from synchronous code (planning, a runner's
stage, a console worker thread).
What differs, the auth and what an answer means, stays in each client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Protocol, TypeVar

import httpx

from opstui.config.endpoints import EndpointDef
from opstui.errors import OpstuiError
from opstui.sources.http import (
    MissingSecret,
    RedirectRefused,
    Redirects,
    TooLarge,
    aread_capped,
    connect_reason,
    looks_html,
    mask,
    secret_headers,
    shown_url,
)
from opstui.sources.records import Skipped, Stage
from opstui.store import Store
from opstui.store.db import local_actor
from opstui.store.endpoints import Observation
from opstui.store.orchestrator_sync import (
    Listing,
    OrchestratedRun,
    OrchestratedStage,
    SyncResult,
    sync_runs,
)
from opstui.store.status import DEGRADED, DOWN, UP

T = TypeVar("T")
R = TypeVar("R", bound="PacedRest")


class SourceError(OpstuiError):
    """A call to an orchestrator failed; ``problem`` is the cause alone (an endpoint's reason)."""

    product: ClassVar[str] = "orchestrator"

    def __init__(self, ep: EndpointDef, what: str, problem: str, *, status: int | None = None):
        self.endpoint = ep.name
        self.what = what
        self.problem = " ".join(mask(problem, ep).split())[:300]
        self.status = status
        where = f"{self.product} endpoint {ep.name} ({shown_url(ep.url)})"
        super().__init__(f"{where}: {what}: {self.problem}")


class PacedRest:
    """A client on an ``httpx.AsyncClient`` (the poller's, shared, or one of its own)."""

    error: ClassVar[type[SourceError]] = SourceError

    def __init__(self, ep: EndpointDef, client: httpx.AsyncClient) -> None:
        self.ep = ep
        self.client = client
        self._next_at = 0.0
        #: The server's clock at its last answer (its ``Date`` header), epoch seconds.
        self.server_time: float | None = None

    async def _pace(self) -> None:
        wait = self._next_at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._next_at = max(self._next_at, time.monotonic()) + 1.0 / self.ep.rate_limit

    async def _send(
        self, method: str, url: str, *, body: Any, what: str, auth: str | None
    ) -> tuple[httpx.Response, bytes]:
        """One request (``auth``: its Authorization, sent to the endpoint's origin only)."""
        fail = self.error
        try:
            secrets = secret_headers(self.ep)
        except MissingSecret as exc:
            raise fail(self.ep, what, str(exc)) from None
        if auth is not None:
            secrets["Authorization"] = auth
        hops = Redirects(httpx.URL(url), self.ep.headers, secrets, method)
        await self._pace()
        try:
            response, data = await aread_capped(
                self.client, hops, body=body, timeout=self.ep.timeout, limit=self.ep.max_body
            )
        except RedirectRefused as exc:
            raise fail(self.ep, what, str(exc)) from None
        except TooLarge:
            raise fail(
                self.ep, what, f"response larger than {self.ep.max_body:,} bytes (max_body)"
            ) from None
        except (TimeoutError, httpx.TimeoutException):
            raise fail(self.ep, what, f"no answer within {self.ep.timeout:g}s") from None
        except httpx.ConnectError as exc:
            raise fail(self.ep, what, connect_reason(exc)) from None
        except httpx.HTTPError as exc:
            raise fail(self.ep, what, f"{type(exc).__name__}: {exc}") from None
        date = response.headers.get("date")
        if date:
            with contextlib.suppress(TypeError, ValueError, IndexError):
                self.server_time = parsedate_to_datetime(date).timestamp()
        return response, data

    def checked_version(self, version: object, major: str, reads: str, *, hint: str = "") -> str:
        """``version`` if it is this product's ``major``, else the error naming
        what was found (``reads``: what opstui reads, "REST API v2")."""
        fail, product = self.error, self.error.product
        if not isinstance(version, str) or not version:
            raise fail(self.ep, "version", f"the answer names no version{hint}")
        if version.split(".", 1)[0] != major:
            raise fail(
                self.ep,
                "version",
                f"this is {product} {version[:40]}; opstui reads {product} {major}'s {reads}",
            )
        return version

    def decoded(
        self, what: str, response: httpx.Response, data: bytes, *, empty: Any, hint: str = ""
    ) -> Any:
        """The JSON of an answer (``empty`` for none), or the error saying what came
        instead; an HTML page or a 404 adds ``hint`` (where url should point)."""
        try:
            return json.loads(data) if data.strip() else empty
        except (ValueError, UnicodeDecodeError):
            html = looks_html(response.headers.get("content-type", ""), data)
            got = "an HTML page" if html else "something else"
            code = response.status_code
            raise self.error(
                self.ep,
                what,
                f"expected {self.error.product}'s JSON, got {got} "
                f"(HTTP {code}){hint if html or code == 404 else ''}",
                status=response.status_code,
            ) from None


def refusal(response: httpx.Response, doc: Any, extra: str = "") -> str:
    """``HTTP 404 Not Found (extra): detail``: a refused call in one line, with
    the server's own ``detail`` (text, or its JSON cut to 200 characters)."""
    detail = doc.get("detail") if isinstance(doc, Mapping) else None
    said = detail if isinstance(detail, str) else json.dumps(detail)[:200] if detail else ""
    reason = f"HTTP {response.status_code} {response.reason_phrase}".strip() + extra
    return f"{reason}: {said}" if said else reason


class Polled(Protocol):
    """A poll's snapshot: what it read, and the records it skipped."""

    @property
    def skipped(self) -> Sequence[Skipped]: ...


P = TypeVar("P", bound=Polled)


async def observe(
    ep: EndpointDef, snapshot: Callable[[], Awaitable[P]]
) -> tuple[Observation, P | None]:
    """One poll as an ``Observation``: down with the cause on a ``SourceError``,
    degraded naming the first record skipped, else up; and its snapshot."""
    at = time.time()
    begun = time.perf_counter()
    try:
        snap = await snapshot()
    except SourceError as exc:
        down = Observation(ep.name, ep.kind, shown_url(ep.url), at, DOWN, exc.problem, None)
        return down, None
    latency = (time.perf_counter() - begun) * 1000
    state, reason = UP, None
    if snap.skipped:
        state = DEGRADED
        first = snap.skipped[0]
        more = f" (+{len(snap.skipped) - 1} more)" if len(snap.skipped) > 1 else ""
        reason = f"skipped {first.what}: {first.why}{more}"
    return Observation(ep.name, ep.kind, shown_url(ep.url), at, state, reason, latency), snap


def call_once(
    ep: EndpointDef,
    make: Callable[[EndpointDef, httpx.AsyncClient], R],
    work: Callable[[R], Awaitable[T]],
    *,
    check: Callable[[R], Awaitable[object]] | None = None,
) -> T:
    """``work`` on a client of its own (``make``), after ``check`` (its version),
    from synchronous code: none of its callers has an event loop running."""

    async def main() -> T:
        async with httpx.AsyncClient(verify=ep.verify_tls, follow_redirects=False) as http:
            rest = make(ep, http)
            if check is not None:
                await check(rest)
            return await work(rest)

    return asyncio.run(main())


def heartbeat_timeout(ep: EndpointDef) -> float:
    """A mirrored run that is running is refreshed by every poll: three missed
    polls mean trouble (then ``unknown`` while the source is down)."""
    return max(60.0, 3 * ep.interval + ep.timeout)


def stage_rows(stages: Sequence[Stage]) -> tuple[OrchestratedStage, ...]:
    return tuple(
        OrchestratedStage(
            s.name, s.position, s.status, s.attempt, s.started_at, s.finished_at, s.message
        )
        for s in stages
    )


def sync(
    store: Store,
    ep: EndpointDef,
    runs: Sequence[OrchestratedRun],
    *,
    watermark: str,
    through: float | None,
    listing: Listing | None,
) -> SyncResult:
    """A poll's runs into the store; the watermark ``watermark`` moves to
    ``through`` (None: stays) and ``listing`` (None: not read to the end)
    makes and marks the endpoint's pipelines, in the same transaction."""
    mark = None if through is None else (ep.source, watermark, through)
    return sync_runs(store, runs, watermark=mark, by=local_actor(), source=ep.name, listing=listing)
