from __future__ import annotations

import pytest

from opstui.analysis.gate import evaluate_gate


def test_candidate_must_beat_production_by_the_margin() -> None:
    ok = evaluate_gate("auc", {"auc": 0.93}, {"auc": 0.92}, min_improvement=0.005)
    assert ok.passed
    assert "improves by 0.0100, >= the required 0.0050" in ok.reason
    short = evaluate_gate("auc", {"auc": 0.922}, {"auc": 0.92}, min_improvement=0.005)
    assert not short.passed
    worse = evaluate_gate("auc", {"auc": 0.90}, {"auc": 0.92})
    assert not worse.passed
    assert "worsens by 0.0200" in worse.reason


def test_lower_is_better() -> None:
    assert evaluate_gate(
        "log_loss", {"log_loss": 0.30}, {"log_loss": 0.35}, lower_is_better=True
    ).passed
    assert not evaluate_gate(
        "log_loss", {"log_loss": 0.40}, {"log_loss": 0.35}, lower_is_better=True
    ).passed


@pytest.mark.parametrize(
    ("candidate", "production", "passed", "reason"),
    [
        ({"auc": 0.9}, None, True, "no production version yet"),
        ({}, {"auc": 0.9}, False, "candidate has no auc"),
        ({"auc": float("nan")}, {"auc": 0.9}, False, "candidate has no auc"),
        ({"auc": 0.9}, {"f1": 0.9}, True, "production has no auc"),
    ],
)
def test_missing_metrics(candidate, production, passed, reason) -> None:
    result = evaluate_gate("auc", candidate, production)
    assert result.passed is passed
    assert reason in result.reason
