"""Alertmanager: the client opstui sends its alerts with (API v2).

``post_alerts`` sends firing and resolved alerts (``POST /api/v2/alerts``);
``firing_alerts`` reads what Alertmanager holds now (``GET /api/v2/alerts``),
for checks and tests. Synchronous: it runs in worker threads, never on the
console's event loop.

What Alertmanager 0.25 does with what it is sent (checked on the real one):

- A firing alert without ``endsAt`` gets ``endsAt`` = now + its
  ``resolve_timeout`` (5 minutes by default): one not sent again within that
  time resolves itself. A sender re-sends what still fires.
- Resolving is posting the same labels with ``endsAt`` = now; the alert
  leaves ``GET /api/v2/alerts`` at once (it keeps no history). An ``endsAt``
  in the past for an alert it never saw is accepted (200) and never listed.
- Labels are the identity: the same labels posted twice are one alert.
  A label with an empty value is no label at all (as in Prometheus); an
  alert left with no label is refused (400), and so is one whose
  ``endsAt`` is before its ``startsAt``.

Every failure is one ``AlertmanagerError`` line: what, the cause, the fix.
Redirects are not followed (a 3xx is an error naming where it leads): an
alert is not sent anywhere but where the config says.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import httpx

from opstui.errors import OpstuiError
from opstui.sources.http import TooLarge, add_capped, connect_reason, shown_url
from opstui.terminal import visible
from opstui.timeutil import iso

ALERTS_PATH = "/api/v2/alerts"
#: Where the operator sets the address (named in every error's fix).
CONFIG_HINT = "[notify] alertmanager in opstui.toml"
#: Prometheus' label name rule (Alertmanager refuses others with a 400).
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
#: A label value's length at most, after cleaning.
MAX_LABEL_VALUE = 1024
#: An annotation's length at most (a description may be a paragraph).
MAX_ANNOTATION = 4096
#: Alertmanager's own words in an error, at most.
MAX_REASON = 200
#: The body of an answer read at most (the alert list of a busy Alertmanager
#: is a few MB; an answer past this is not Alertmanager's).
MAX_BODY = 32 * 1024 * 1024

#: Characters a value never carries: C0 and C1 controls, DEL, surrogates (no
#: encoder writes them), bidi controls and the line/paragraph separators
#: (they reorder or split what a receiver shows). Tab, CR and LF apart.
_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_BREAKS = re.compile(r"[\t\r\n]+")


class AmAlert(NamedTuple):
    """One alert as opstui sends it."""

    labels: Mapping[str, str]  # alertname, service, environment, severity, subject ...
    annotations: Mapping[str, str]  # summary, description
    starts_at: float  # unix seconds UTC
    ends_at: float | None = None  # None while firing; set (now) to resolve
    generator_url: str | None = None


class AlertmanagerError(OpstuiError):
    """Sending to or reading from Alertmanager failed; ``str()`` is one line:
    the Alertmanager, the cause, the fix. ``status`` is the HTTP status when
    it answered."""

    def __init__(
        self, url: str, problem: str, fix: str | None = None, *, status: int | None = None
    ) -> None:
        self.url = url
        self.problem = problem
        self.status = status
        where = f"Alertmanager {visible(_cut(shown_url(url)))}" if url else "Alertmanager"
        super().__init__(f"{where}: {problem}", hint=fix)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}; {self.hint}"
        return self.message


def post_alerts(
    url: str,
    alerts: Sequence[AmAlert],
    *,
    timeout: float = 5.0,
    client: httpx.Client | None = None,
) -> None:
    """Send ``alerts`` in one ``POST {url}/api/v2/alerts``; nothing when there
    are none. Every alert is checked (and its values cleaned) before anything
    is sent: one bad alert sends none. Raises ``AlertmanagerError``."""
    base = _base(url)
    body = [_payload(base, alert) for alert in alerts]
    if not body:
        return
    content = json.dumps(body, ensure_ascii=False).encode("utf-8")
    _call(base, "POST", content, timeout=timeout, client=client, what="sending alerts")


def firing_alerts(
    url: str, *, timeout: float = 5.0, client: httpx.Client | None = None
) -> list[dict[str, Any]]:
    """The alerts Alertmanager holds now (``GET {url}/api/v2/alerts``): every
    one not resolved, silenced and inhibited ones included (their
    ``status.state`` says so), as Alertmanager's JSON objects."""
    base = _base(url)
    data = _call(base, "GET", None, timeout=timeout, client=client, what="reading alerts")
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if not isinstance(doc, list) or not all(isinstance(a, dict) for a in doc):
        raise AlertmanagerError(
            base,
            "the answer to GET /api/v2/alerts is not a list of alerts",
            "is the URL an Alertmanager's?",
        )
    return doc


def _base(url: str) -> str:
    """``url`` checked (http or https, a host) without its trailing slashes."""
    text = url.strip() if isinstance(url, str) else ""
    try:
        parsed = httpx.URL(text)
    except (httpx.InvalidURL, ValueError, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise AlertmanagerError(
            "",
            f"'{visible(_cut(str(url)))}' is not an http(s) URL",
            f"set {CONFIG_HINT} to http://host:9093",
        )
    if parsed.query or parsed.fragment:
        raise AlertmanagerError(
            text, "the URL has a query or a fragment", f"set {CONFIG_HINT} to the base URL only"
        )
    return text.rstrip("/")


def _names(base: str, pairs: Mapping[str, str], what: str, limit: int) -> dict[str, str]:
    """``pairs`` with names checked and values cleaned; empty values left out
    (Alertmanager drops an empty label too)."""
    out: dict[str, str] = {}
    for name, value in pairs.items():
        if not isinstance(name, str) or not LABEL_NAME.fullmatch(name):
            raise AlertmanagerError(
                base,
                f"{what} name '{visible(_cut(str(name), 80))}' is not a Prometheus label name",
                "use letters, digits and _, not starting with a digit",
            )
        cleaned = _clean(value, limit, keep_lines=what == "annotation")
        if cleaned:
            out[name] = cleaned
    return out


def _payload(base: str, alert: AmAlert) -> dict[str, Any]:
    labels = _names(base, alert.labels, "label", MAX_LABEL_VALUE)
    annotations = _names(base, alert.annotations, "annotation", MAX_ANNOTATION)
    if not labels:
        raise AlertmanagerError(
            base, "an alert has no label with a value", "give it at least alertname"
        )
    starts = iso(alert.starts_at)
    if starts is None:
        raise AlertmanagerError(
            base, f"alert {_name(labels)} has no valid start time ({alert.starts_at!r})"
        )
    out: dict[str, Any] = {"labels": labels, "annotations": annotations, "startsAt": starts}
    if alert.ends_at is not None:
        ends = iso(alert.ends_at)
        if ends is None:
            raise AlertmanagerError(
                base, f"alert {_name(labels)} has no valid end time ({alert.ends_at!r})"
            )
        if alert.ends_at < alert.starts_at:
            raise AlertmanagerError(
                base,
                f"alert {_name(labels)} ends ({ends}) before it starts ({starts})",
                "resolve with an end time at or after the start",
            )
        out["endsAt"] = ends
    if alert.generator_url:
        out["generatorURL"] = _clean(alert.generator_url, MAX_ANNOTATION, keep_lines=False)
    return out


def _clean(value: object, limit: int, *, keep_lines: bool) -> str:
    """``value`` as text without control characters, at most ``limit`` long.

    A line break or tab in a label value becomes one space (a label is one
    line: it names the alert); an annotation keeps its lines."""
    text = value if isinstance(value, str) else str(value)
    text = _CONTROL.sub("", text)
    if keep_lines:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    else:
        text = _BREAKS.sub(" ", text).strip()
    return text[:limit]


def _name(labels: Mapping[str, str]) -> str:
    return visible(_cut(labels.get("alertname", "?"), 80))


def _cut(text: str, limit: int = MAX_REASON) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _call(
    base: str,
    method: str,
    content: bytes | None,
    *,
    timeout: float,
    client: httpx.Client | None,
    what: str,
) -> bytes:
    """One request to ``{base}/api/v2/alerts``; the body of a 2xx answer."""
    endpoint = base + ALERTS_PATH
    deadline = time.monotonic() + timeout
    own = client is None
    http = httpx.Client(timeout=timeout) if client is None else client
    headers = {"Accept": "application/json"}
    if content is not None:
        headers["Content-Type"] = "application/json"
    try:
        with http.stream(
            method,
            endpoint,
            content=content,
            headers=headers,
            timeout=timeout,
            follow_redirects=False,
        ) as response:
            data = bytearray()
            for chunk in response.iter_bytes():
                add_capped(data, chunk, MAX_BODY)
                # httpx's timeout bounds each read; this bounds them all
                # (a server dripping bytes).
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the answer took too long")
    except TooLarge:
        raise AlertmanagerError(
            base,
            f"{what}: the answer is larger than {MAX_BODY // 2**20} MB",
            "is the URL an Alertmanager's?",
        ) from None
    except httpx.TimeoutException:
        raise AlertmanagerError(
            base,
            f"{what}: no answer within {timeout:g}s",
            f"is it running and reachable? ({CONFIG_HINT})",
        ) from None
    except httpx.ConnectError as exc:
        reason = connect_reason(exc)
        fix = "check the host" if reason.startswith("cannot resolve") else "is it running?"
        raise AlertmanagerError(base, visible(reason), f"{fix} ({CONFIG_HINT})") from None
    except httpx.HTTPError as exc:
        raise AlertmanagerError(
            base,
            f"{what}: {visible(_cut(str(exc) or type(exc).__name__))}",
            f"is the URL an Alertmanager's? ({CONFIG_HINT})",
        ) from None
    finally:
        if own:
            http.close()
    status = response.status_code
    if 300 <= status < 400:
        location = response.headers.get("location", "")
        there = visible(_cut(shown_url(location))) if location else "nowhere"
        raise AlertmanagerError(
            base,
            f"{what}: HTTP {status} redirects to {there}; not followed",
            f"set {CONFIG_HINT} to the address it leads to",
            status=status,
        )
    if not 200 <= status < 300:
        said = _server_words(bytes(data))
        reason = f"HTTP {status} {response.reason_phrase}".rstrip()
        raise AlertmanagerError(
            base,
            f"{what}: {visible(reason)}" + (f": {said}" if said else ""),
            _fix_for(status),
            status=status,
        )
    return bytes(data)


def _server_words(data: bytes) -> str:
    """Alertmanager's error in one line: its JSON string or ``message``, or the text."""
    text = data.decode("utf-8", errors="replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, str):
        text = doc
    elif isinstance(doc, dict) and isinstance(doc.get("message"), str):
        text = doc["message"]
    text = " ".join(text.split())
    return visible(_cut(text))


def _fix_for(status: int) -> str:
    if status in (401, 403):
        return "Alertmanager has no authentication of its own: check the proxy in front of it"
    if status == 404:
        return f"is the URL an Alertmanager's, with its path prefix? ({CONFIG_HINT})"
    if status == 400:
        return "Alertmanager refused the alerts as sent"
    if status >= 500:
        return "check Alertmanager's log"
    return f"check {CONFIG_HINT}"
