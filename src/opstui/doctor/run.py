"""All the checks, in the order they print; and the clock check."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from opstui.config import Config, resolve_store_path
from opstui.doctor.checks import OK, SKIP, WARN, Check, ago, guarded
from opstui.doctor.local import config_check, python_check, terminal_check
from opstui.doctor.sources import SourcePolls, source_checks
from opstui.doctor.store import StoreFacts, store_check
from opstui.store.location import StoreLocation, parse_location

#: A store time this far past this machine's clock is a skew worth naming.
SKEW_LIMIT = 60.0


def run_doctor(
    store: str | None = None,
    config: str | os.PathLike[str] | None = None,
    *,
    timeout: float = 5.0,
) -> list[Check]:
    """Every check, each line a verdict; nothing raised, nothing written."""
    checks = guarded("python", python_check)
    loaded: list[Config | None] = [None]

    def configured() -> list[Check]:
        loaded[0], found = config_check(config)
        return found

    checks += guarded("config", configured)
    cfg = loaded[0]
    where: list[StoreLocation] = []

    def locate() -> list[Check]:
        where.append(parse_location(resolve_store_path(store, cfg or Config())))
        return []

    located = guarded("store", locate)
    endpoints = list(cfg.endpoints.values()) if cfg is not None else []
    polls = SourcePolls(endpoints, where[0] if where else None, timeout)
    if endpoints:
        polls.start()
    facts = StoreFacts()
    if located:
        checks += located
    else:

        def of_store() -> list[Check]:
            found, facts_found = store_check(where[0])
            facts.__dict__.update(facts_found.__dict__)
            return found

        checks += guarded("store", of_store)
    if cfg is None:
        checks.append(Check("sources", SKIP, "the config did not load: sources unknown"))
    elif not endpoints:
        checks.append(Check("sources", SKIP, "none configured ([endpoints] in the config)"))
    else:
        observed = polls.collect()
        name = str(cfg.path.absolute()) if cfg.path else "opstui.toml"
        checks += guarded(
            "sources",
            lambda: source_checks(
                endpoints, observed, facts, config_name=name, error=polls.error, timeout=timeout
            ),
        )
    checks += guarded("terminal", terminal_check)
    checks += guarded("clock", lambda: clock_check(facts))
    return checks


def clock_check(facts: StoreFacts, now: float | None = None) -> list[Check]:
    """This machine's clock against the newest times other hosts wrote into
    the store: one in the future by more than a minute is a skew."""
    at = time.time() if now is None else now
    if not facts.opened:
        return [Check("clock", SKIP, "the store was not read: nothing to compare with")]
    if not facts.stamps:
        return [Check("clock", SKIP, "no run or poll times in the store yet")]
    newest, host, what = max(facts.stamps, key=lambda s: s[0])
    by = f" by {host}" if host else ""
    ahead = newest - at
    stamp = datetime.fromtimestamp(newest, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if ahead > SKEW_LIMIT:
        who = f"{host}'s" if host else "the writer's"
        return [
            Check(
                "clock",
                WARN,
                f"{what} written{by} is {stamp}, {ago(ahead)} ahead of this clock: this clock "
                f"is {ahead:.0f} s behind {who} (or {who} is ahead)",
                "sync both clocks with NTP (timedatectl status, chronyc tracking): heartbeats, "
                "staleness and lost runs are judged by time",
            )
        ]
    return [
        Check("clock", OK, f"newest store time {ago(at - newest)} ago ({what}{by}), none ahead")
    ]
