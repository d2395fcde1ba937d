"""The Prefect 3 client: REST calls under the endpoint's ``url`` (the API base, ``.../api``).

A Prefect server has no auth by default. One started with
``PREFECT_SERVER_API_AUTH_STRING="user:password"`` wants HTTP Basic auth:
when the endpoint names both ``username_env`` and ``password_env``, they are
read from the environment at each call and sent as ``Authorization: Basic``,
never stored, shown or logged.

Prefect on SQLite answers 503 while its database is busy (its own services
write to it too), having written nothing; 429 and 502 are passing too. Each is
retried a few times after a short pause, as Prefect's own client does,
before it fails the call.

Every failure (refused, a timeout, an HTML page from a proxy, a 4xx/5xx, a
server that is not Prefect 3) becomes one ``PrefectError``: one line naming
the endpoint, the call and the cause, the variables by name, never a value.
Requests are spaced to ``rate_limit`` a second at most.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from typing import Any

import httpx

from opstui.config.endpoints import EndpointDef
from opstui.sources.orchestrator import PacedRest, SourceError, refusal

#: The major version of Prefect whose API this reads.
MAJOR = "3"
#: Said when an answer is a web page or a 404: url names something else.
HINT = "; is url Prefect's API base (http://host:4200/api)?"
#: Answers that say "busy, nothing done: ask again".
RETRY_CODES = frozenset({429, 502, 503})
#: Tries of a call answered with one of them, and the pause before each retry.
TRIES = 4
PAUSE = 0.25


class PrefectError(SourceError):
    """A call to Prefect failed; ``problem`` is the cause alone (an endpoint's reason)."""

    product = "Prefect"


def basic_auth(ep: EndpointDef, what: str) -> str | None:
    """The ``Authorization`` value from the variables the endpoint names, or None
    when it names none (a server without auth)."""
    if not ep.username_env and not ep.password_env:
        return None
    values = []
    for role, var in (("user", ep.username_env), ("password", ep.password_env)):
        value = os.environ.get(var or "")
        if not var or value is None:
            raise PrefectError(ep, what, f"the {role} is read from ${var}, which is not set")
        values.append(value)
    token = base64.b64encode(f"{values[0]}:{values[1]}".encode()).decode("ascii")
    return f"Basic {token}"


class AsyncPrefectRest(PacedRest):
    """Prefect's calls, on the poller's shared ``httpx.AsyncClient`` or one of its own."""

    error = PrefectError

    async def call(self, method: str, path: str, what: str, *, body: Any = None) -> Any:
        """Prefect's JSON answer to ``method path`` (under the endpoint's url)."""
        url = self.ep.url.rstrip("/") + path
        for attempt in range(1, TRIES + 1):
            auth = basic_auth(self.ep, what)
            response, data = await self._send(method, url, body=body, what=what, auth=auth)
            if response.status_code in RETRY_CODES and attempt < TRIES:
                await asyncio.sleep(PAUSE * attempt)
                continue
            return _answer(self, what, response, data)
        raise AssertionError("unreachable")

    async def version(self) -> str:
        """Prefect's version; ``PrefectError`` unless it is a Prefect 3."""
        version = await self.call("GET", "/admin/version", "version")
        return self.checked_version(
            version, MAJOR, "REST API", hint="; is url Prefect's API (.../api)?"
        )


def _answer(rest: AsyncPrefectRest, what: str, response: httpx.Response, data: bytes) -> Any:
    code = response.status_code
    if code < 300:
        return rest.decoded(what, response, data, empty=None, hint=HINT)
    ep, extra = rest.ep, ""
    if code == 401:
        extra = " (Prefect wants Basic auth: set username_env and password_env)"
        if ep.username_env:
            extra = (
                f" (Prefect wants Basic auth: set username_env and password_env, or check "
                f"${ep.username_env} and ${ep.password_env})"
            )
    elif code == 404 and what == "version":
        extra = " (is url Prefect's API base, http://host:4200/api?)"
    raise PrefectError(ep, what, refusal(response, _detail_doc(data), extra), status=code)


def _detail_doc(data: bytes) -> Any:
    try:
        return json.loads(data) if data.strip() else None
    except (ValueError, UnicodeDecodeError):
        return None
