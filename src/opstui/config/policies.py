"""``[policies.NAME]``: automation with guard rails, the MLOps maturity levels as configuration.

A policy is a trigger, a condition held over evaluations, and an action
taken through the same plan -> guard -> audit -> run path as an operator's,
with the actor ``policy:NAME``::

    [policies.retry-flaky-tests]
    trigger = "run_failed"        # a run of `pipeline` failed (at one of `stages`)
    pipeline = "billing-worker"
    stages = ["test"]
    flaky_only = true             # only at stages the flake ledger marks flaky
    action = "retry"

    [policies.rollback-fast-burn]
    trigger = "burn"              # `endpoint` burning at `severity` within `within` of a deploy
    endpoint = "web-api"
    within = "30m"
    action = "rollback"
    mode = "shadow"               # says "would have acted", never acts

    [policies.retrain-fraud]
    trigger = "drift"             # `model` drifting `windows` checks in a row
    model = "fraud"
    windows = 3
    action = "retrain"            # approval required by default (production)

Guard rails, each with a default: ``m_of_n = [M, N]`` (the condition held in
M of the last N evaluations: [1, 1]), ``cooldown`` after acting ("15m"),
``daily_cap`` per target (3, then a human decides), ``approval`` (true for
a rollback or a retrain in a production environment), ``environments``
where it may act (all), ``enabled`` (true), ``mode`` ("act" or "shadow").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opstui.config.schema import Spec
from opstui.timeutil import span

TRIGGERS = ("run_failed", "burn", "drift", "schedule")
ACTIONS = ("retry", "rollback", "retrain", "notify")
MODES = ("act", "shadow")
#: What each trigger may do, and the target key it needs ("" : none required).
ALLOWED: dict[str, tuple[str, ...]] = {
    "run_failed": ("retry", "rollback", "notify"),
    "burn": ("rollback", "notify"),
    "drift": ("retrain", "notify"),
    "schedule": ("retrain", "retry", "notify"),
}
TARGET = {"run_failed": "pipeline", "burn": "endpoint", "drift": "model", "schedule": ""}
#: The longest duration a policy key takes (a cooldown, a window after a deploy).
MOST = 30 * 86400.0


def _words(options: tuple[str, ...]) -> str:
    return " or ".join(f'"{o}"' for o in options)


def _one_of(options: tuple[str, ...], *, required: bool = False) -> Spec:
    words = _words(options)
    return Spec((str,), words, required=required, check=lambda v: None if v in options else words)


def _duration(value: Any) -> str | None:
    if span(value, most=MOST) is None:
        return 'a duration like "90s", "15m", "2h" or "1d" (at most 30d)'
    return None


def _m_of_n(value: Any) -> str | None:
    ok = (
        len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        and 1 <= value[0] <= value[1] <= 100
    )
    return None if ok else "[M, N] with 1 <= M <= N <= 100, e.g. [2, 3]"


def _names(value: Any) -> str | None:
    if not value or not all(isinstance(v, str) and v for v in value):
        return 'a list of names, e.g. ["production"]'
    return None


def policy_schema() -> dict[str, Any]:
    duration = 'a duration like "15m"'
    return {
        "trigger": _one_of(TRIGGERS, required=True),
        "action": _one_of(ACTIONS, required=True),
        "pipeline": Spec((str,), "a pipeline name"),
        "endpoint": Spec((str,), "the name of an [endpoints] entry"),
        "model": Spec((str,), "the name of a [models] entry"),
        "stages": Spec((list,), "a list of stage names", check=_names),
        "flaky_only": Spec((bool,), "true or false"),
        "within": Spec((str,), duration, check=_duration),
        "severity": _one_of(("page", "ticket")),
        "windows": Spec((int,), "a number of drift checks", minimum=1),
        "every": Spec((str,), duration, check=_duration),
        "mode": _one_of(MODES),
        "approval": Spec((bool,), "true or false"),
        "environments": Spec((list,), "a list of environment names", check=_names),
        "m_of_n": Spec((list,), "[M, N], e.g. [2, 3]", check=_m_of_n),
        "cooldown": Spec((str,), duration, check=_duration),
        "daily_cap": Spec((int,), "a number of actions a day", minimum=1),
        "enabled": Spec((bool,), "true or false"),
    }


@dataclass(frozen=True)
class PolicyDef:
    """``[policies.NAME]`` as validated (``check_policy`` ties it to the rest)."""

    name: str
    trigger: str
    action: str
    #: What it watches and acts on: a pipeline (run_failed, schedule retry),
    #: an endpoint (burn: its service is rolled back), a model (drift,
    #: schedule retrain). None: every pipeline (run_failed only).
    pipeline: str | None = None
    endpoint: str | None = None
    model: str | None = None
    stages: tuple[str, ...] = ()
    flaky_only: bool = False
    within: float = 1800.0
    severity: str = "page"
    windows: int = 3
    every: float | None = None
    mode: str = "act"
    #: None: the default (required for a rollback or retrain in production).
    approval: bool | None = None
    environments: tuple[str, ...] = ()
    m: int = 1
    n: int = 1
    cooldown: float = 900.0
    daily_cap: int = 3
    enabled: bool = True

    @property
    def actor(self) -> str:
        return f"policy:{self.name}"

    @property
    def shadow(self) -> bool:
        return self.mode == "shadow"

    def needs_approval(self, environment: str | None, production: tuple[str, ...]) -> bool:
        """Whether a human approves each action first: as configured, else for
        a rollback or a retrain in a production environment."""
        if self.approval is not None:
            return self.approval
        return self.action in ("rollback", "retrain") and (environment or "production") in (
            production
        )

    def may_act_in(self, environment: str | None) -> bool:
        return not self.environments or (environment or "") in self.environments


def parse_policy(name: str, raw: dict[str, Any]) -> PolicyDef:
    m_of_n = raw.get("m_of_n", [1, 1])
    every = raw.get("every")
    return PolicyDef(
        name=name,
        trigger=raw["trigger"],
        action=raw["action"],
        pipeline=raw.get("pipeline"),
        endpoint=raw.get("endpoint"),
        model=raw.get("model"),
        stages=tuple(raw.get("stages", ())),
        flaky_only=bool(raw.get("flaky_only", False)),
        within=_seconds(raw, "within", 1800.0),
        severity=raw.get("severity", "page"),
        windows=int(raw.get("windows", 3)),
        every=span(every, most=MOST) if every is not None else None,
        mode=raw.get("mode", "act"),
        approval=raw.get("approval"),
        environments=tuple(raw.get("environments", ())),
        m=int(m_of_n[0]),
        n=int(m_of_n[1]),
        cooldown=_seconds(raw, "cooldown", 900.0),
        daily_cap=int(raw.get("daily_cap", 3)),
        enabled=bool(raw.get("enabled", True)),
    )


def _seconds(raw: dict[str, Any], key: str, default: float) -> float:
    value = raw.get(key)
    seconds = span(value, most=MOST) if isinstance(value, str) else None
    return default if seconds is None else seconds


def policy_problem(p: PolicyDef, known: dict[str, set[str]]) -> tuple[str, str] | None:
    """What is wrong with ``p`` given the names the config defines (``known``:
    "endpoints", "models", "environments" -> names), as (key, problem and
    fix), or None. Pipelines are not checked: one mirrored from Airflow or
    Prefect is known only to the store."""
    if p.action not in ALLOWED[p.trigger]:
        return "action", (f"trigger {p.trigger} can {_words(ALLOWED[p.trigger])}, not {p.action!r}")
    need = TARGET[p.trigger]
    if p.trigger == "schedule":
        if p.every is None:
            return "every", 'a schedule needs every = "24h" (how often)'
        need = "model" if p.action == "retrain" else "pipeline" if p.action == "retry" else ""
    if need == "model" and p.model is None:
        return "model", f'trigger {p.trigger} with action {p.action} needs model = "NAME"'
    if need == "endpoint" and p.endpoint is None:
        return "endpoint", 'trigger burn needs endpoint = "NAME" (what it serves is rolled back)'
    if need == "pipeline" and p.pipeline is None and p.trigger == "schedule":
        return "pipeline", 'a scheduled retry needs pipeline = "NAME"'
    for key, value, table in (
        ("endpoint", p.endpoint, "endpoints"),
        ("model", p.model, "models"),
    ):
        if value is not None and value not in known[table]:
            defined = ", ".join(sorted(known[table])) or "none"
            return key, f"names {value!r}, which is not a [{table}] entry (defined: {defined})"
    for env in p.environments:
        if known["environments"] and env not in known["environments"]:
            defined = ", ".join(sorted(known["environments"]))
            return "environments", f"names {env!r}, not an [environments] entry ({defined})"
    return None
