"""``opstui incident``: the timeline of an incident, for the postmortem.

What happened, oldest first (a postmortem reads forward): failures and
recoveries, deploys and rollbacks, alerts firing and resolving, drift, and
the operators' actions with their outcomes; then what was done, what is
still open, and how long the alerts fired. Plain text for a terminal,
``--markdown`` for the postmortem document, ``--json`` for tools.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from opstui.cli.options import ConfigOpt, StoreOpt
from opstui.cli.output import say, write_json
from opstui.cli.root import app, open_store
from opstui.errors import UsageError

if TYPE_CHECKING:
    from opstui.store.alerts import AlertRow
    from opstui.store.timeline import TimelineEvent

#: The longest window: the alerts are kept as long as the metrics (35 days).
MOST = 35 * 86400.0
SINCE_HELP = "Start: a span back from now (2h, 30m, 3d) or a UTC time (2026-12-05T06:00:00Z)."


def _moment(text: str, what: str, now: float) -> float:
    from opstui.timeutil import parse_time, span

    back = span(text, most=MOST)
    if back is not None:
        return now - back
    try:
        return parse_time(text)
    except ValueError:
        raise UsageError(
            f"{what} {text!r} is neither a span nor a time",
            hint="give a span back from now (90m, 2h, 3d; at most 35d) "
            "or a UTC time like 2026-12-05T06:00:00Z",
        ) from None


@app.command()
def incident(
    since: Annotated[str, typer.Option(help=SINCE_HELP)] = "2h",
    until: Annotated[str | None, typer.Option(help="End, the same way [default: now].")] = None,
    service: Annotated[
        str | None,
        typer.Option(help="Only what concerns this service, model, pipeline or endpoint."),
    ] = None,
    environment: Annotated[str | None, typer.Option(help="Only this environment.")] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="A Markdown postmortem section.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many events.", min=1)] = 2000,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The timeline of an incident: what broke, what was done, how it ended."""
    from opstui.store.alerts import alert_history
    from opstui.store.timeline import timeline

    db, cfg = open_store(store, config, create=False)
    with db:
        now = db.clock()
        start = _moment(since, "--since", now)
        end = now if until is None else _moment(until, "--until", now)
        if end <= start:
            raise UsageError(
                "--until is not after --since", hint="give an end later than the start"
            )
        served = {n: s for n, ep in cfg.endpoints.items() if (s := cfg.served(ep)) is not None}
        events = timeline(db, since=start, until=end, service=service,
                          environment=environment, limit=limit, served=served)  # fmt: skip
        alerts = [
            a
            for a in alert_history(db, since=start, until=end)
            if (service is None or service in (a.service, a.subject))
            and (environment is None or a.environment == environment)
        ]
        still = [a for a in _open_before(db, end) if a not in alerts and _concerns(a, service)]
    events.reverse()  # oldest first
    report = _Report(start, end, now, service, environment, events, alerts + still, limit)
    if as_json:
        write_json(report.as_json())
    elif markdown:
        for line in report.markdown():
            say(line)
    else:
        for line in report.text():
            say(line)


def _open_before(db: Any, end: float) -> list[AlertRow]:
    from opstui.store.alerts import open_alerts

    return [a for a in open_alerts(db) if a.fired_at <= end]


def _concerns(a: AlertRow, service: str | None) -> bool:
    return service is None or service in (a.service, a.subject)


class _Report:
    def __init__(
        self,
        start: float,
        end: float,
        now: float,
        service: str | None,
        environment: str | None,
        events: list[TimelineEvent],
        alerts: list[AlertRow],
        limit: int,
    ) -> None:
        self.start, self.end, self.now = start, end, now
        self.service, self.environment = service, environment
        self.events, self.alerts, self.limit = events, alerts, limit

    @property
    def title(self) -> str:
        from opstui.timeutil import human_duration, iso

        scope = self.service or "every service"
        if self.environment:
            scope += f" in {self.environment}"
        return (
            f"Incident timeline: {scope}, {iso(self.start)} to {iso(self.end)} "
            f"({human_duration(self.end - self.start)})"
        )

    def actions(self) -> list[TimelineEvent]:
        return [e for e in self.events if e.kind == "action" or e.what == "rolled back"]

    def counts(self) -> list[str]:
        def n(pred: Any) -> int:
            return sum(1 for e in self.events if pred(e))

        def of(count: int, one: str, many: str) -> str:
            return f"{count} {one if count == 1 else many}"

        out = [
            of(n(lambda e: e.kind == "alert" and e.what == "firing"), "alert", "alerts")
            + f" fired, {n(lambda e: e.kind == 'alert' and e.what == 'resolved')} resolved",
            of(n(lambda e: e.kind == "run" and e.what != "recovered"), "run", "runs")
            + f" failed, {n(lambda e: e.what == 'recovered')} recovered",
            of(n(lambda e: e.kind == "deploy" and e.what != "rolled back"), "deploy", "deploys")
            + ", "
            + of(n(lambda e: e.what == "rolled back"), "rollback", "rollbacks"),
            of(n(lambda e: e.kind == "action"), "operator action", "operator actions"),
        ]
        if len(self.events) >= self.limit:
            out.append(f"the first {self.limit} events only (--limit)")
        return out

    def firing(self) -> list[str]:
        """How long each alert fired; those still firing say so."""
        from opstui.timeutil import human_duration

        out = []
        for a in sorted(self.alerts, key=lambda a: a.fired_at):
            if a.resolved_at is None:
                out.append(
                    f"{a.summary} [{a.severity}]: still firing, for "
                    f"{human_duration(self.now - a.fired_at)}"
                )
            else:
                out.append(
                    f"{a.summary} [{a.severity}]: fired for "
                    f"{human_duration(a.resolved_at - a.fired_at)}"
                )
        return out

    # -- plain text --------------------------------------------------------------

    def when(self, at: float) -> str:
        """The clock time; with the date when the window spans days."""
        from opstui.timeutil import clock_time, to_datetime

        first, last = to_datetime(self.start), to_datetime(self.end)
        day = to_datetime(at)
        if first is None or last is None or day is None or first.date() == last.date():
            return clock_time(at)
        return f"{day:%Y-%m-%d} {clock_time(at)}"

    def text(self) -> list[str]:
        lines = [self.title, "  " + "; ".join(self.counts())]
        if not self.events:
            lines.append("Nothing happened in this window.")
        else:
            lines.append("")
            for e in self.events:
                who = f" ({e.actor})" if e.actor and e.kind != "action" else ""
                where = ""
                if e.environment and f"in {e.environment}" not in e.summary:
                    where = f" [{e.environment}]"
                lines.append(f"{self.when(e.at)}  {e.kind:<6}  {e.summary}{where}{who}")
        firing = self.firing()
        if firing:
            lines += ["", "Alerts:"] + [f"  {line}" for line in firing]
        return lines

    # -- Markdown ----------------------------------------------------------------

    def markdown(self) -> list[str]:
        from opstui.timeutil import iso

        lines = [f"## {_md(self.title)}", ""]
        lines += [f"- {_md(c)}" for c in self.counts()]
        lines += ["", "### Timeline", ""]
        if not self.events:
            lines.append("Nothing happened in this window.")
        else:
            lines += ["| Time (UTC) | Kind | What | Detail | Environment | Who |",
                      "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
            for e in self.events:
                cells = (iso(e.at) or "", e.kind, e.what, e.summary, e.environment or "",
                         e.actor or "")  # fmt: skip
                lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
        actions = self.actions()
        lines += ["", "### Actions taken", ""]
        if actions:
            lines += [f"- {_md(iso(e.at) or '')}: {_md(e.summary)}" for e in actions]
        else:
            lines.append("None recorded.")
        firing = self.firing()
        if firing:
            lines += ["", "### Alerts", ""] + [f"- {_md(line)}" for line in firing]
        return lines

    # -- JSON --------------------------------------------------------------------

    def as_json(self) -> dict[str, Any]:
        from opstui.timeutil import iso

        return {
            "schema": 1,
            "since": iso(self.start),
            "until": iso(self.end),
            "service": self.service,
            "environment": self.environment,
            "events": [
                {
                    "at": iso(e.at),
                    "kind": e.kind,
                    "what": e.what,
                    "subject": e.subject,
                    "summary": e.summary,
                    "service": e.service,
                    "environment": e.environment,
                    "actor": e.actor,
                    "severity": e.severity,
                    "ref": e.ref,
                }
                for e in self.events
            ],
            "alerts": [
                {
                    "key": a.key,
                    "kind": a.kind,
                    "subject": a.subject,
                    "severity": a.severity,
                    "service": a.service,
                    "environment": a.environment,
                    "summary": a.summary,
                    "fired_at": iso(a.fired_at),
                    "resolved_at": iso(a.resolved_at),
                }
                for a in self.alerts
            ],
        }


def _md(text: str) -> str:
    """A Markdown table cell or list item from data: one line, its pipes,
    backticks and angle brackets escaped so it cannot break the table or
    smuggle HTML into a rendered postmortem."""
    from opstui.terminal import visible

    out = visible(" ".join(text.split()))
    for ch in "\\|`<*[]":
        out = out.replace(ch, "\\" + ch)
    return out
