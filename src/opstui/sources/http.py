"""What every endpoint reader shares: secret headers, capped bodies, and the
one-line reasons for HTTP failures, so a refused connection or a 401 reads the
same whether the endpoint is a health check or an MLflow server.
"""

from __future__ import annotations

import os
import socket

from opstui.endpoint_config import EndpointDef


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
