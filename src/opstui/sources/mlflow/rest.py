"""The MLflow clients: ``MlflowRest`` (sync, for actions) and ``AsyncMlflowRest``
(for the poller) move the bytes of the calls ``opstui.sources.mlflow.api`` writes.

Every failure, whatever its cause (connection refused, timeout, an HTML
page from a proxy, 401/403, MLflow's ``{"error_code", "message"}``), becomes
one ``MlflowError`` with a one-line operator message. Secret values are
never part of a message: they are masked (``http.mask``) even from text the
server echoes back. Redirects are followed as the poller's are
(``http.Redirects``): bounded, and no credentials to another origin.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import httpx

from opstui.config.endpoints import EndpointDef
from opstui.errors import OpstuiError
from opstui.sources.http import (
    MissingSecret,
    RedirectRefused,
    Redirects,
    TooLarge,
    aread_capped,
    auth_problem,
    connect_reason,
    looks_html,
    mask,
    read_capped,
    secret_headers,
)
from opstui.sources.mlflow.api import (
    Experiment,
    MlflowRun,
    RegisteredModel,
    _Op,
    get_experiment,
    get_registered_model,
    search_runs,
    search_runs_by_id,
    search_runs_since,
    search_versions,
    set_alias_op,
)

API = "/api/2.0/mlflow"
#: At most this many runs newer than the watermark per experiment and poll
#: (the next poll goes on from the advanced watermark), read in pages of
#: ``api.RUN_PAGE``.
RUNS_PER_POLL = 1000
#: Unfinished runs re-read by id per request.
RECHECK_BATCH = 100

T = TypeVar("T")


class MlflowError(OpstuiError):
    """A call to MLflow failed; ``str()`` is one line naming the endpoint and the call.

    ``problem`` is the cause alone (what an endpoint's status shows);
    ``missing`` is True when MLflow itself answered that the thing does not
    exist: the server is fine, the experiment or model is not.
    """

    def __init__(
        self,
        ep: EndpointDef,
        what: str,
        problem: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
    ) -> None:
        self.endpoint = ep.name
        self.what = what
        self.problem = _one_line(mask(problem, ep))
        self.status = status
        self.error_code = error_code
        self.missing = error_code == "RESOURCE_DOES_NOT_EXIST"
        super().__init__(f"MLflow endpoint {ep.name} ({_safe_url(ep)}): {what}: {self.problem}")


# --- transport --------------------------------------------------------------


def _safe_url(ep: EndpointDef) -> str:
    """The endpoint URL without user info or query (either may hold a secret)."""
    url = httpx.URL(ep.url)
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{url.path.rstrip('/')}"


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def request_hops(ep: EndpointDef, op: _Op[Any]) -> Redirects:
    """The request for ``op`` and its redirects: configured headers, and secret
    ones read from the environment now (sent to the endpoint's origin only)."""
    try:
        secrets = secret_headers(ep)
    except MissingSecret as exc:
        raise MlflowError(ep, op.what, str(exc)) from None
    url = httpx.URL(_url(ep, op.path), params=op.params)
    return Redirects(url, ep.headers, secrets, op.method)


def _url(ep: EndpointDef, path: str) -> str:
    return ep.url.rstrip("/") + API + path


def _answer(ep: EndpointDef, op: _Op[T], response: httpx.Response, body: bytes) -> T:
    """Read MLflow's answer to ``op``; anything but the expected JSON raises ``MlflowError``."""
    code = response.status_code
    auth = auth_problem(ep, code)
    if auth:
        raise MlflowError(ep, op.what, auth, status=code)
    try:
        doc = json.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError):
        doc = None
    if 300 <= code < 400:
        # A redirect not followed (no Location, 300, 304): not MLflow's answer.
        raise MlflowError(
            ep, op.what, f"HTTP {code} {response.reason_phrase} (not followed)".strip(), status=code
        )
    if not isinstance(doc, dict):
        html = looks_html(response.headers.get("content-type", ""), body)
        got = "an HTML page" if html else "something else"
        # An HTML 404 is the usual sign of a URL that is not MLflow's root.
        hint = "; is url the MLflow server's root?" if code == 404 else ""
        raise MlflowError(ep, op.what, f"expected MLflow's JSON, got {got} (HTTP {code}){hint}")
    if code >= 400:
        error_code = doc.get("error_code")
        if isinstance(error_code, str):
            message = str(doc.get("message") or "")
            raise MlflowError(
                ep, op.what, f"{error_code}: {message}", status=code, error_code=error_code
            )
        raise MlflowError(ep, op.what, f"HTTP {code} {response.reason_phrase}".strip(), status=code)
    try:
        return op.parse(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MlflowError(
            ep, op.what, f"unexpected answer from MLflow ({type(exc).__name__}: {exc})"
        ) from None


def _transport(ep: EndpointDef, what: str, exc: Exception) -> MlflowError:
    if isinstance(exc, RedirectRefused):
        return MlflowError(ep, what, str(exc))
    if isinstance(exc, TooLarge):
        return MlflowError(ep, what, f"response larger than {ep.max_body:,} bytes (max_body)")
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return MlflowError(ep, what, f"no answer within {ep.timeout:g}s")
    if isinstance(exc, httpx.ConnectError):
        return MlflowError(ep, what, connect_reason(exc))
    return MlflowError(ep, what, f"{type(exc).__name__}: {exc}")


class MlflowRest:
    """Synchronous client (actions: plan and move an alias)."""

    def __init__(self, ep: EndpointDef, client: httpx.Client | None = None) -> None:
        self.ep = ep
        self._own = client is None
        self.client = client or httpx.Client(verify=ep.verify_tls, timeout=ep.timeout)

    def __enter__(self) -> MlflowRest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own:
            self.client.close()

    def call(self, op: _Op[T]) -> T:
        hops = request_hops(self.ep, op)
        try:
            response, body = read_capped(
                self.client, hops, body=op.body, timeout=self.ep.timeout, limit=self.ep.max_body
            )
        except (httpx.HTTPError, TooLarge, RedirectRefused) as exc:
            raise _transport(self.ep, op.what, exc) from None
        return _answer(self.ep, op, response, body)

    def experiment(self, name: str) -> Experiment:
        return self.call(get_experiment(name))

    def recent_runs(self, experiment: Experiment) -> list[MlflowRun]:
        return self.call(search_runs(experiment))

    def registered_model(self, name: str, *, versions: bool = False) -> RegisteredModel:
        model = self.call(get_registered_model(name))
        if versions:
            model = RegisteredModel(model.name, model.aliases, self.call(search_versions(name)))
        return model

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.call(set_alias_op(name, alias, version))


class AsyncMlflowRest:
    """The same calls on an ``httpx.AsyncClient`` (the poller's, shared)."""

    def __init__(self, ep: EndpointDef, client: httpx.AsyncClient) -> None:
        self.ep = ep
        self.client = client

    async def call(self, op: _Op[T]) -> T:
        hops = request_hops(self.ep, op)
        try:
            response, body = await aread_capped(
                self.client, hops, body=op.body, timeout=self.ep.timeout, limit=self.ep.max_body
            )
        except (httpx.HTTPError, TimeoutError, TooLarge, RedirectRefused) as exc:
            raise _transport(self.ep, op.what, exc) from None
        return _answer(self.ep, op, response, body)

    async def experiment(self, name: str) -> Experiment:
        return await self.call(get_experiment(name))

    async def recent_runs(self, experiment: Experiment) -> list[MlflowRun]:
        return await self.call(search_runs(experiment))

    async def runs_since(
        self,
        experiment: Experiment,
        since: float,
        *,
        newer_than: float | None = None,
        limit: int | None = None,
    ) -> tuple[list[MlflowRun], bool]:
        """Runs started at or after ``since`` (seconds), oldest first, following
        page tokens until ``limit`` runs started after ``newer_than`` (the
        watermark; ``since`` by default) are read.

        Returns the runs and whether the search was read to its end.
        """
        out: list[MlflowRun] = []
        token: str | None = None
        start_ms = round(since * 1000)
        limit = limit or RUNS_PER_POLL
        after = since if newer_than is None else newer_than
        newer = 0
        while True:
            page, token = await self.call(search_runs_since(experiment, start_ms, token))
            out += page
            newer += sum(1 for r in page if (r.start_time or 0.0) > after)
            if token is None or not page:
                return out, True
            if newer >= limit:
                return out, False

    async def runs_by_id(self, experiment: Experiment, run_ids: list[str]) -> list[MlflowRun]:
        out: list[MlflowRun] = []
        for i in range(0, len(run_ids), RECHECK_BATCH):
            batch = search_runs_by_id(experiment, run_ids[i : i + RECHECK_BATCH])
            found: list[MlflowRun] = await self.call(batch)
            out += found
        return out

    async def registered_model(self, name: str, *, versions: bool = False) -> RegisteredModel:
        model = await self.call(get_registered_model(name))
        if versions:
            found = await self.call(search_versions(name))
            model = RegisteredModel(model.name, model.aliases, found)
        return model

    async def set_alias(self, name: str, alias: str, version: str) -> None:
        await self.call(set_alias_op(name, alias, version))
