"""A poll's request and the observation it becomes.

``_get`` sends the GET straight on the transport (redirects followed,
the body capped); ``_http_problem`` says what is wrong with an HTTP answer;
``_observation`` makes the ``Observation``. Secret header values are read
from the environment at poll time and never appear in a reason (only the
variable's name does): every reason is masked in ``_observation``, the one
place an observation is made, because it may quote the server (a reason
phrase, a Prometheus API error, a malformed line) and a server may echo the
request's headers.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import httpx

from opstui import __version__
from opstui.config.endpoints import EndpointDef
from opstui.sources.http import (
    Redirects,
    add_capped,
    auth_problem,
    mask,
    secret_headers,
    shown_url,
)
from opstui.store.endpoints import Observation

Samples = tuple[tuple[str, Mapping[str, str], float], ...]
#: Characters of a reason kept (after masking: a cut must not halve a token
#: before the mask can recognise it).
REASON_MAX = 300


#: Sent with every poll; an endpoint's own headers override them.
DEFAULT_HEADERS = {"User-Agent": f"opstui/{__version__}", "Accept-Encoding": "gzip, deflate"}
# Parsing a URL is a good part of a request's cost; an endpoint's is parsed once.
_parsed_url = functools.lru_cache(maxsize=4096)(httpx.URL)


async def _get(
    transport: httpx.AsyncBaseTransport, ep: EndpointDef, url: str | httpx.URL
) -> tuple[httpx.Response, bytes]:
    """GET ``url`` straight on the transport, following redirects (``Redirects``).

    A poll needs none of the rest of what ``httpx.AsyncClient.send`` adds
    (auth flows, and a cookie jar it parses every response into, which a
    poller should not keep anyway), and that layer cost more CPU than the
    request itself (bench/poller_load.py). Raises ``RedirectRefused`` for a
    loop, too many hops or a downgrade to http.
    """
    hops = Redirects(
        _parsed_url(url) if isinstance(url, str) else url,
        {**DEFAULT_HEADERS, **ep.headers},
        secret_headers(ep),
    )
    t = ep.timeout
    # No per-read timer: ``observe``'s deadline bounds the whole exchange,
    # every hop included.
    extensions = {"timeout": {"connect": t, "read": None, "write": t, "pool": t}}
    while True:
        request = httpx.Request("GET", hops.url, headers=hops.headers(), extensions=extensions)
        response = await transport.handle_async_request(request)
        response.request = request
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                add_capped(body, chunk, ep.max_body)
        finally:
            await response.aclose()
        if not hops.follow(response.status_code, response.headers.get("location")):
            return response, bytes(body)


def _observation(
    ep: EndpointDef,
    at: float,
    state: str,
    reason: str | None,
    latency_ms: float | None,
    *,
    samples: Samples = (),
) -> Observation:
    if reason is not None:
        reason = mask(reason, ep)[:REASON_MAX]
    return Observation(ep.name, ep.kind, shown_url(ep.url), at, state, reason, latency_ms, samples)


def _http_problem(ep: EndpointDef, response: httpx.Response) -> str | None:
    code = response.status_code
    auth = auth_problem(ep, code)
    if auth:
        return auth
    if code >= 400:
        return f"HTTP {code} {response.reason_phrase}".strip()
    if code >= 300:
        # A redirect ``_get`` did not follow is no answer: a health check
        # must not read up on it.
        why = "without a Location to follow" if "location" not in response.headers else ""
        return f"HTTP {code} {response.reason_phrase} {why or '(not followed)'}".strip()
    return None
