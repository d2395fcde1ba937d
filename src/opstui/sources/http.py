"""What every endpoint reader shares: secret headers, capped bodies, redirects,
masking, and the one-line reasons for HTTP failures, so a refused connection,
a 401 or a redirect loop reads the same whether the endpoint is a health check
or an MLflow server.

Secrets: a server's words (reason phrase, error body, JSON error message) go
through ``mask`` before they become a reason that is stored or shown, because
a server may echo the request's headers back. A redirect to another origin
gets none of the endpoint's credentials.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import os
import re
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from opstui.config.endpoints import EndpointDef


class TooLarge(Exception):
    """The body grew past the endpoint's ``max_body``."""


class MissingSecret(Exception):
    """A secret header's environment variable is not set; names only the variable."""


def secret_headers(ep: EndpointDef) -> dict[str, str]:
    """Header values from the environment, read now; never stored or shown."""
    out = {}
    for header, variable in ep.secret_headers.items():
        value = os.environ.get(variable)
        if not value:
            raise MissingSecret(f"header {header} needs ${variable}, which is not set")
        out[header] = value
    return out


#: Values shorter than this are not masked: masking two or three characters
#: would garble every reason, and such a value guards nothing anyway.
_MIN_SECRET = 4
#: A cut-off start of a secret this long is masked too, where a quotation
#: was cut (a bad exposition line, a protocol error quote 40 to 60 bytes of
#: the server's text): a token cut in half must not show its first half.
_MIN_PREFIX = 8
#: What follows a quotation that was cut short: a closing quote, an
#: ellipsis, or the end of the text.
_CUT = ("'", '"', "...", "…")
#: Header and query parameter names that carry credentials even when set in
#: plain ``headers`` or the URL (against the README's advice).
_CREDENTIAL_NAME = re.compile(
    r"authorization|cookie|token|secret|passw|api[-_]?key|access[-_]?key|auth|session|signature",
    re.IGNORECASE,
)
#: ``Bearer <token>``, ``Basic <base64>``: the token alone is a secret too.
_SCHEME_TOKEN = re.compile(r"([A-Za-z][\w.-]*)\s+(\S.*)")


def secret_values(ep: EndpointDef) -> tuple[list[str], list[str]]:
    """What ``mask`` hides for ``ep``: (exact values, values whose cut-off start is hidden too).

    The values of the variables ``secret_headers`` names (read now, like a
    poll), the token after an auth scheme (``Bearer x`` -> ``x``), a Basic
    credential decoded (``user:password`` and the password), credential-looking
    plain headers and query parameters, and a password in the URL. Longest
    first, so a token is masked whole before any part of it.
    """
    raw = [os.environ.get(var, "") for var in ep.secret_headers.values()]
    raw += [v for k, v in ep.headers.items() if _CREDENTIAL_NAME.search(k)]
    try:
        parts = urlsplit(ep.url)
    except ValueError:  # a URL the config would have refused: nothing more to find
        parts = urlsplit("")
    raw += [v for k, v in parse_qsl(parts.query) if _CREDENTIAL_NAME.search(k)]
    tokens = [parts.password or ""]
    for value in raw:
        m = _SCHEME_TOKEN.fullmatch(value.strip())
        if m is None:
            tokens.append(value)
            continue
        tokens.append(m[2])
        if m[1].lower() == "basic":
            try:
                decoded = base64.b64decode(m[2], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                continue
            tokens += [decoded, decoded.partition(":")[2]]

    def usable(values: list[str]) -> list[str]:
        return sorted({v for v in values if len(v) >= _MIN_SECRET}, key=len, reverse=True)

    return usable(raw), usable(tokens)


def mask(text: str, ep: EndpointDef) -> str:
    """``text`` with every secret of ``ep`` replaced by ``***``.

    Applied to a server's words before they are stored or shown (and before
    they are cut to length). A token is masked wherever it stands, and so is a
    cut-off start of one, at least ``_MIN_PREFIX`` characters long, that ends
    a quotation (``'abc-tok'...``) or the text.
    """
    whole, tokens = secret_values(ep)
    for value in whole:
        text = text.replace(value, "***")
    for token in tokens:
        text = text.replace(token, "***")
        head = token[: min(len(token), _MIN_PREFIX)]
        if head in text:
            text = _mask_cut(text, token, head)
    return text


def _mask_cut(text: str, token: str, head: str) -> str:
    out = []
    i = 0
    while (start := text.find(head, i)) >= 0:
        end = start + len(head)
        while end < len(text) and end - start < len(token) and text[end] == token[end - start]:
            end += 1
        # Elsewhere the same first characters are a word that happens to
        # start the token ("redirect" of "redirect-7f3a..."): left alone.
        if end == len(text) or text.startswith(_CUT, end):
            out += [text[i:start], "***"]
        else:
            out.append(text[i:end])
        i = end
    return "".join(out) + text[i:]


@functools.lru_cache(maxsize=4096)
def shown_url(url: str) -> str:
    """``url`` without user info: what is stored and shown of an endpoint's URL.

    The config refuses credentials in a URL; this keeps them out of the store
    for an ``EndpointDef`` built some other way, and out of redirect reasons.
    """
    return _USERINFO.sub(r"\1", url, count=1)


#: ``scheme://`` then user info up to the last "@" before the path, query or fragment.
_USERINFO = re.compile(r"^([A-Za-z][\w+.-]*://)[^/?#]*@")

#: Redirects followed in one request: enough for http -> https -> a trailing
#: slash -> a login-free canonical host; more is a misconfiguration, and every
#: hop spends the same deadline.
MAX_REDIRECTS = 5
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
#: Plain headers that carry credentials: dropped on a hop to another origin,
#: like every secret header (httpx drops Authorization only).
_DROPPED_ACROSS_ORIGINS = frozenset({"authorization", "proxy-authorization", "cookie"})


class RedirectRefused(Exception):
    """A redirect not followed: a loop, too many, a downgrade to http, a bad Location."""


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)


class Redirects:
    """One request's hops: where it goes next and which headers go there.

    Secret headers go only to the endpoint's own origin (scheme, host, port),
    or to the same host upgraded from http on 80 to https on 443 (httpx
    allows that one too). A hop from https to http is refused: the config
    asked for an answer over TLS.
    """

    def __init__(
        self,
        url: httpx.URL,
        headers: Mapping[str, str],
        secrets: Mapping[str, str],
        method: str = "GET",
    ) -> None:
        self.url = url
        self.method = method
        self._origin = _origin(url)
        self._headers = dict(headers)
        self._secrets = dict(secrets)
        self._seen = [url]

    def trusted(self, url: httpx.URL) -> bool:
        """May ``url`` get the endpoint's credentials?"""
        there = _origin(url)
        if there == self._origin:
            return True
        scheme, host, port = self._origin
        return (scheme, port) == ("http", 80) and there == ("https", host, 443)

    def headers(self) -> dict[str, str]:
        """The headers for a request to ``self.url``."""
        if self.trusted(self.url):
            return {**self._headers, **self._secrets}
        return {k: v for k, v in self._headers.items() if k.lower() not in _DROPPED_ACROSS_ORIGINS}

    def follow(self, status: int, location: str | None) -> bool:
        """True when a response of ``status`` is a redirect to follow (``self.url`` is
        then where to); False when it is the answer. Raises ``RedirectRefused``."""
        if status not in _REDIRECT_CODES or not location:
            return False
        here = self.url
        try:
            there = here.join(location.strip())
        except (httpx.InvalidURL, ValueError):
            raise RedirectRefused(
                f"HTTP {status} at {shown_url(str(here))} redirects to an invalid URL"
            ) from None
        there = there.copy_with(fragment=None)
        if there.scheme not in ("http", "https") or not there.host:
            raise RedirectRefused(
                f"HTTP {status} at {shown_url(str(here))} redirects to {shown_url(str(there))}, "
                "not an http(s) URL"
            )
        if here.scheme == "https" and there.scheme == "http":
            raise RedirectRefused(
                f"HTTP {status} at {shown_url(str(here))} redirects from https to "
                f"{shown_url(str(there))}: refused (set url to the http address if that is meant)"
            )
        if there in self._seen:
            raise RedirectRefused(
                f"redirect loop: {shown_url(str(here))} redirects to {shown_url(str(there))}, "
                "already visited"
            )
        if len(self._seen) > MAX_REDIRECTS:
            raise RedirectRefused(
                f"too many redirects (more than {MAX_REDIRECTS}), the last at "
                f"{shown_url(str(here))}"
            )
        # A POST turned into a GET elsewhere would "succeed" without doing
        # what was asked; only 307 and 308 keep the method and the body.
        if self.method not in ("GET", "HEAD") and status not in (307, 308):
            raise RedirectRefused(
                f"HTTP {status} at {shown_url(str(here))} redirects a {self.method} to "
                f"{shown_url(str(there))}: not followed (set url to where it leads)"
            )
        self._seen.append(there)
        self.url = there
        return True


def read_capped(
    client: httpx.Client, hops: Redirects, *, body: Any, timeout: float, limit: int
) -> tuple[httpx.Response, bytes]:
    """Send ``hops``' request (JSON ``body``), following its redirects; the
    last response and its body, at most ``limit`` bytes (``TooLarge``)."""
    while True:
        with client.stream(
            hops.method, hops.url, json=body, headers=hops.headers(), timeout=timeout
        ) as response:
            data = bytearray()
            for chunk in response.iter_bytes():
                add_capped(data, chunk, limit)
        if not hops.follow(response.status_code, response.headers.get("location")):
            return response, bytes(data)


async def aread_capped(
    client: httpx.AsyncClient, hops: Redirects, *, body: Any, timeout: float, limit: int
) -> tuple[httpx.Response, bytes]:
    """``read_capped`` on an async client. The deadline covers every hop, so
    a server that drips bytes slowly is bounded too (httpx's per-read
    timeout alone would not)."""
    async with asyncio.timeout(timeout):
        while True:
            async with client.stream(
                hops.method, hops.url, json=body, headers=hops.headers(), timeout=timeout
            ) as response:
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    add_capped(data, chunk, limit)
            if not hops.follow(response.status_code, response.headers.get("location")):
                return response, bytes(data)


def add_capped(body: bytearray, chunk: bytes, limit: int) -> None:
    """Append ``chunk``; raise ``TooLarge`` past ``limit`` bytes."""
    body += chunk
    if len(body) > limit:
        raise TooLarge


def auth_problem(ep: EndpointDef, code: int) -> str | None:
    """The reason for a 401 or 403, naming the token's variable, never its value."""
    if code not in (401, 403):
        return None
    names = ", ".join(f"${v}" for v in ep.secret_headers.values())
    hint = f"check the token in {names}" if names else "no credentials configured"
    word = "unauthorized" if code == 401 else "forbidden"
    return f"HTTP {code} {word} ({hint})"


def looks_html(content_type: str, body: bytes) -> bool:
    return "html" in content_type or body.lstrip()[:15].lower().startswith((b"<!doctype", b"<html"))


def connect_reason(exc: BaseException) -> str:
    """Why a connection failed, in one line.

    httpx's async transport says "All connection attempts failed" and keeps
    the OS's reason further down the chain of causes (bounded: a chain can
    loop back on itself).
    """
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return f"cannot resolve the host: {seen.strerror}"
        seen = seen.__cause__ or seen.__context__
    return f"cannot connect: {exc}"[:200]
