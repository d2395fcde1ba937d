"""The Airflow 3 client: a JWT from ``/auth/token``, then REST API v2 calls.

The user and password are read from the environment variables the
endpoint names (``username_env``, ``password_env``) when a token is needed,
and the token is kept in memory only: never stored, shown or logged. A 401
or 403 on a call with a token takes a new one once (tokens expire).

Every failure (refused, a timeout, an HTML page from a proxy, a 4xx/5xx, a
server that is not Airflow 3) becomes one ``AirflowError``: one line naming
the endpoint, the call and the cause, the variables by name, never a value.
Requests are spaced to ``rate_limit`` a second at most
(``sources.orchestrator.PacedRest``, shared with Prefect's client).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import httpx

from opstui.config.endpoints import EndpointDef
from opstui.sources.orchestrator import PacedRest, SourceError, refusal

API = "/api/v2"
#: The major version of Airflow whose API this reads.
MAJOR = "3"
#: Said when an answer is a web page or a 404: url names something else.
HINT = "; is url the Airflow API server's root?"


class AirflowError(SourceError):
    """A call to Airflow failed; ``problem`` is the cause alone (an endpoint's reason)."""

    product = "Airflow"


def credentials(ep: EndpointDef) -> tuple[str, str]:
    """The user and password, from the variables the endpoint names."""
    values = []
    for role, var in (("user", ep.username_env), ("password", ep.password_env)):
        value = os.environ.get(var or "")
        if not var or value is None:
            raise AirflowError(
                ep, "token", f"the {role} is read from ${var}, which is not set", status=None
            )
        values.append(value)
    return values[0], values[1]


class AsyncAirflowRest(PacedRest):
    """Airflow's calls, on the poller's shared ``httpx.AsyncClient`` or one of its own."""

    error = AirflowError

    def __init__(self, ep: EndpointDef, client: httpx.AsyncClient) -> None:
        super().__init__(ep, client)
        self._token: str | None = None

    async def token(self) -> str:
        """A new token for the endpoint's user."""
        user, password = credentials(self.ep)
        url = self.ep.url.rstrip("/") + "/auth/token"
        response, data = await self._send(
            "POST", url, body={"username": user, "password": password}, what="token", auth=None
        )
        code = response.status_code
        if code in (401, 403):
            raise AirflowError(
                self.ep,
                "token",
                f"HTTP {code}: Airflow refused the user in ${self.ep.username_env} with the "
                f"password in ${self.ep.password_env}",
                status=code,
            )
        doc = self.decoded("token", response, data, empty={}, hint=HINT)
        token = doc.get("access_token") if isinstance(doc, Mapping) else None
        if not isinstance(token, str) or not token:
            raise AirflowError(self.ep, "token", "the answer holds no access_token", status=code)
        self._token = token
        return token

    async def call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """Airflow's JSON answer to ``method path`` (under /api/v2)."""
        url = str(httpx.URL(self.ep.url.rstrip("/") + API + path, params=params or {}))
        for attempt in (1, 2):
            token = self._token or await self.token()
            response, data = await self._send(
                method, url, body=body, what=what, auth=f"Bearer {token}"
            )
            if response.status_code in (401, 403) and attempt == 1:
                self._token = None  # expired or revoked: one new token
                continue
            return _answer(self, what, response, data)
        raise AssertionError("unreachable")

    async def version(self) -> str:
        """Airflow's version; ``AirflowError`` unless it is an Airflow 3."""
        try:
            doc = await self.call("GET", "/version", "version")
        except AirflowError as exc:
            if exc.status != 404:
                raise
            raise AirflowError(
                self.ep,
                "version",
                f"no {API}/version here (HTTP 404): opstui reads Airflow {MAJOR}'s REST API v2; "
                f"is url the root of an Airflow {MAJOR} API server?",
                status=404,
            ) from None
        version = doc.get("version") if isinstance(doc, Mapping) else None
        return self.checked_version(version, MAJOR, "REST API v2")


def _answer(rest: AsyncAirflowRest, what: str, response: httpx.Response, data: bytes) -> Any:
    code = response.status_code
    doc = rest.decoded(what, response, data, empty={}, hint=HINT)
    if code >= 300:
        extra = ""
        if code in (401, 403):
            extra = (
                f" (the token of the user in ${rest.ep.username_env} was refused: check its roles)"
            )
        raise AirflowError(rest.ep, what, refusal(response, doc, extra), status=code)
    return doc
