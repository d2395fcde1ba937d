"""Where a run store is: an SQLite file, or a PostgreSQL database named by URL.

``--store``, ``OPSTUI_STORE`` and the config's ``store =`` take either. A
URL (``postgresql://USER@HOST:PORT/DB?sslmode=require``) is kept as text
from the first moment: turned into a ``Path`` it would lose a slash and
name a local file (``./postgresql:/...``), the one outcome that must never
happen. Any other ``scheme://`` is refused rather than read as a file name.

The password is never part of what opstui keeps or shows: libpq finds it
itself (``PGPASSWORD``, ``~/.pgpass``, a service file), or the URL names
an environment variable holding it (``?password_env=OPSTUI_PG_PASSWORD``,
our only parameter, taken out before the URL reaches libpq). ``display``
is the URL without any password, for every message and the console's title.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from opstui.errors import UsageError
from opstui.terminal import visible

POSTGRES_SCHEMES = ("postgresql", "postgres")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: Query parameters of a URL that are never shown.
_SECRET_PARAMS = frozenset({"password", "sslpassword"})
PASSWORD_ENV = "password_env"


class BadStoreUrl(UsageError):
    """A store URL that cannot be used as it is."""


@dataclass(frozen=True)
class StoreLocation:
    """A parsed ``--store``: exactly one of ``path`` and ``url`` is set."""

    path: Path | None = None
    #: The URL as libpq takes it: our own ``password_env`` taken out.
    url: str | None = None
    #: The environment variable holding the password, when the URL names one.
    password_env: str | None = None
    #: The URL without any password: what messages and the console show.
    display: str = ""

    @property
    def is_postgres(self) -> bool:
        return self.url is not None

    @property
    def file(self) -> Path:
        """The SQLite file (only for a file store)."""
        assert self.path is not None, "a PostgreSQL store has no file"
        return self.path

    def missing_file(self) -> bool:
        """True for a file store whose file is not there (deleted, moved)."""
        return self.path is not None and not self.path.exists()

    def __str__(self) -> str:
        return self.display

    def for_child(self) -> str:
        """What a child process is given (in ``OPSTUI_STORE``, never on its
        command line, where ``ps`` would show a password in the URL)."""
        if self.path is not None:
            return str(self.path.absolute())
        assert self.url is not None
        if self.password_env is None:
            return self.url
        scheme, netloc, path, query, fragment = urlsplit(self.url)
        pairs = [*parse_qsl(query, keep_blank_values=True), (PASSWORD_ENV, self.password_env)]
        return urlunsplit((scheme, netloc, path, urlencode(pairs), fragment))


def is_url(text: str) -> bool:
    """Whether ``--store`` text is a URL (of any scheme) rather than a path."""
    return _SCHEME.match(text) is not None


def parse_location(where: str | os.PathLike[str] | StoreLocation) -> StoreLocation:
    """``where`` as a ``StoreLocation``; ``BadStoreUrl`` for a URL opstui cannot use."""
    if isinstance(where, StoreLocation):
        return where
    if not isinstance(where, str):
        path = Path(where)
        return StoreLocation(path=path, display=str(path))
    found = _SCHEME.match(where)
    if found is None:
        path = Path(where).expanduser()
        return StoreLocation(path=path, display=str(path))
    scheme = found.group(1).lower()
    if scheme not in POSTGRES_SCHEMES:
        raise BadStoreUrl(
            f"store URL {_shown(where)} has scheme {scheme!r}, which opstui cannot use",
            hint="give a file path for an SQLite store, or postgresql://USER@HOST:PORT/DB",
        )
    return _postgres(where)


def _postgres(text: str) -> StoreLocation:
    try:
        scheme, netloc, path, query, fragment = urlsplit(text)
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
        # Reading .port validates it (a non-number, or beyond 65535, raises).
        port = urlsplit(text).port
    except ValueError:
        raise BadStoreUrl(
            f"store URL {_shown(text)} cannot be read (its port or parameters are malformed)",
            hint="write it as postgresql://USER@HOST:PORT/DB?sslmode=require",
        ) from None
    del port
    env = [v for k, v in pairs if k == PASSWORD_ENV]
    if len(env) > 1 or (env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env[0])):
        raise BadStoreUrl(
            f"store URL {_shown(text)}: password_env must name one environment variable",
            hint="e.g. ?password_env=OPSTUI_PG_PASSWORD",
        )
    rest = [(k, v) for k, v in pairs if k != PASSWORD_ENV]
    url = urlunsplit((scheme, netloc, path, urlencode(rest, quote_via=quote), fragment))
    return StoreLocation(
        url=url, password_env=env[0] if env else None, display=_shown(text, keep_env=True)
    )


def _shown(text: str, *, keep_env: bool = False) -> str:
    """``text`` without a password, whatever its shape.

    Worked on the text itself, not on a parse (a URL too odd to parse must
    not leak either): everything between the first ``:`` of the part before
    the last ``@`` and that ``@`` goes, and so do ``password=`` parameters.
    Hiding more than a password (an ``@`` in a parameter) is the safe error.
    """
    found = _SCHEME.match(text)
    scheme = found.group(1) if found else "postgresql"
    rest = text[found.end() :] if found else text
    if "@" in rest:
        userinfo, _, after = rest.rpartition("@")
        rest = f"{userinfo.split(':', 1)[0]}@{after}"
    base, _, query = rest.partition("?")
    pairs = [
        p
        for p in query.split("&")
        if p
        and p.split("=", 1)[0].lower() not in _SECRET_PARAMS
        and (keep_env or p.split("=", 1)[0] != PASSWORD_ENV)
    ]
    shown = f"{scheme}://{unquote(base)}" + (f"?{'&'.join(pairs)}" if pairs else "")
    # One line, whatever the text held (a newline, an escape sequence).
    return visible(shown[:200], newline=" ")
