"""``[policies.NAME]``: what parses, with its defaults, and what is refused in one line."""

from __future__ import annotations

import pytest

from opstui.config.load import parse_config
from opstui.errors import ConfigError

BASE = """
[environments.staging]
[environments.production]
[pipelines.billing-worker]
kind = "devops"
environment = "production"
stages = [{ name = "test", run = ["true"] }]
[pipelines.fraud-model]
kind = "mlops"
environment = "production"
stages = [{ name = "train", run = ["true"] }]
[models.fraud]
pipeline = "fraud-model"
[endpoints.web-api]
url = "http://127.0.0.1:9/metrics"
kind = "health"
service = "billing-worker"
"""

GOOD = (
    BASE
    + """
[policies.retry-flaky]
trigger = "run_failed"
pipeline = "billing-worker"
stages = ["test"]
flaky_only = true
action = "retry"

[policies.retrain-fraud]
trigger = "drift"
model = "fraud"
windows = 4
action = "retrain"

[policies.rollback-burn]
trigger = "burn"
endpoint = "web-api"
within = "20m"
action = "rollback"
mode = "shadow"
m_of_n = [2, 3]
cooldown = "1h"
daily_cap = 1
environments = ["production"]

[policies.nightly]
trigger = "schedule"
every = "24h"
model = "fraud"
action = "retrain"
approval = false
"""
)


def test_policies_parse_with_their_defaults() -> None:
    policies = parse_config(GOOD).policies
    assert list(policies) == ["retry-flaky", "retrain-fraud", "rollback-burn", "nightly"]
    retry = policies["retry-flaky"]
    assert (retry.trigger, retry.pipeline, retry.stages, retry.flaky_only) == (
        "run_failed", "billing-worker", ("test",), True,
    )  # fmt: skip
    assert (retry.m, retry.n, retry.cooldown, retry.daily_cap, retry.mode) == (1, 1, 900, 3, "act")
    assert retry.actor == "policy:retry-flaky"
    assert not retry.needs_approval("production", ("production",))  # a retry: no approval
    retrain = policies["retrain-fraud"]
    assert retrain.windows == 4
    assert retrain.needs_approval("production", ("production",))  # by default
    assert not retrain.needs_approval("staging", ("production",))
    burn = policies["rollback-burn"]
    assert (burn.within, burn.m, burn.n, burn.cooldown, burn.daily_cap) == (1200, 2, 3, 3600, 1)
    assert burn.shadow and burn.may_act_in("production") and not burn.may_act_in("staging")
    nightly = policies["nightly"]
    assert nightly.every == 86400 and not nightly.needs_approval("production", ("production",))


@pytest.mark.parametrize(
    ("policy", "words"),
    [
        ('trigger = "sometimes"\naction = "retry"', '"policies.p.trigger"'),
        ('trigger = "burn"\nendpoint = "web-api"\naction = "retrain"', "trigger burn can"),
        ('trigger = "burn"\naction = "rollback"', 'needs endpoint = "NAME"'),
        ('trigger = "burn"\nendpoint = "nope"\naction = "rollback"', "not a [endpoints] entry"),
        ('trigger = "drift"\naction = "retrain"', 'needs model = "NAME"'),
        ('trigger = "drift"\nmodel = "churn"\naction = "retrain"', "'churn', which is not"),
        ('trigger = "schedule"\nmodel = "fraud"\naction = "retrain"', "every ="),
        ('trigger = "schedule"\nevery = "1h"\naction = "retry"', 'needs pipeline = "NAME"'),
        ('trigger = "run_failed"\naction = "retry"\nm_of_n = [3, 2]', "1 <= M <= N"),
        ('trigger = "run_failed"\naction = "retry"\ncooldown = "soon"', "a duration like"),
        ('trigger = "run_failed"\naction = "retry"\ncooldown = "90d"', "at most 30d"),
        ('trigger = "run_failed"\naction = "retry"\nmode = "yolo"', '"act" or "shadow"'),
        ('trigger = "run_failed"\naction = "retry"\ndaily_cap = 0', "daily_cap"),
        ('trigger = "run_failed"\naction = "retry"\nenvironments = ["prod"]', "'prod', not an"),
        ('action = "retry"', "trigger"),
        ('trigger = "run_failed"\naction = "retry"\nretries = 3', "retries"),
    ],
)
def test_a_bad_policy_is_one_line_naming_the_key(policy: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + "[policies.p]\n" + policy + "\n")
    message = str(info.value)
    assert words in message, message
    assert "\n" not in message
