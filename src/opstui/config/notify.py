"""``[notify]``: where opstui sends its alerts, and which.

With ``alertmanager = "http://127.0.0.1:9093"`` opstui's alerts (paging and
ticket burns, failed deploys in a production environment, persistent drift)
go to a Prometheus Alertmanager with the labels ``alertname``, ``service``,
``environment``, ``severity`` and ``subject`` (plus ``[notify.labels]``),
and are resolved there when they clear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from opstui.config.schema import Spec

#: Prometheus' label names.
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
#: Labels opstui sets itself: [notify.labels] may not replace them.
OWN_LABELS = frozenset({"alertname", "service", "environment", "severity", "subject", "source"})


def _check_url(value: Any) -> str | None:
    try:
        parts = urlsplit(value)
    except ValueError:
        return "an http:// or https:// URL, e.g. http://127.0.0.1:9093"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "an http:// or https:// URL, e.g. http://127.0.0.1:9093"
    if parts.username or parts.password:
        return "a URL without a user or password in it"
    return None


def _check_labels(value: Any) -> str | None:
    for k, v in value.items():
        if not LABEL_NAME.fullmatch(k) or k in OWN_LABELS:
            return (
                "a table of label = value, names like team or runbook_url, "
                f"not {', '.join(sorted(OWN_LABELS))} (opstui sets those) (not {k!r})"
            )
        if not isinstance(v, str):
            return f'a table of label = "text" (not {k} = {v!r})'
    return None


def _check_envs(value: Any) -> str | None:
    if not value or not all(isinstance(v, str) and v for v in value):
        return 'a list of environment names, e.g. ["production"]'
    return None


def notify_schema() -> dict[str, Any]:
    return {
        "alertmanager": Spec((str,), "an http:// or https:// URL", check=_check_url),
        "resend": Spec((int, float), "a number of seconds", minimum=10),
        "production": Spec((list,), "a list of environment names", check=_check_envs),
        "labels": Spec((dict,), "a table of label = value", check=_check_labels),
        "timeout": Spec((int, float), "a number of seconds", minimum=0.5),
    }


@dataclass(frozen=True)
class NotifyDef:
    """``[notify]`` as validated."""

    alertmanager: str | None = None
    #: Firing alerts are sent again this often (Alertmanager resolves an
    #: alert it has not heard of for its resolve_timeout, 5m by default).
    resend: float = 60.0
    #: A failed deploy pages only in these environments.
    production: tuple[str, ...] = ("production",)
    labels: dict[str, str] = field(default_factory=dict)
    timeout: float = 5.0


def parse_notify(data: dict[str, Any]) -> NotifyDef:
    return NotifyDef(
        alertmanager=data.get("alertmanager"),
        resend=float(data.get("resend", NotifyDef.resend)),
        production=tuple(data.get("production", NotifyDef.production)),
        labels=dict(data.get("labels", {})),
        timeout=float(data.get("timeout", NotifyDef.timeout)),
    )
