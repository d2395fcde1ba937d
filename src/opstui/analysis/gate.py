"""The promotion gate: does a candidate model beat production by enough?

Pure arithmetic, no IO, so a training script, the runner and tests share one
rule. The result is stored with the model version (``gate``), so an operator
can read why a version was or was not promoted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class GateResult:
    passed: bool
    metric: str
    candidate: float | None
    production: float | None
    min_improvement: float
    lower_is_better: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_gate(
    metric: str,
    candidate: Mapping[str, Any],
    production: Mapping[str, Any] | None,
    *,
    min_improvement: float = 0.0,
    lower_is_better: bool = False,
) -> GateResult:
    """Compare ``candidate[metric]`` with ``production[metric]`` (same held-out data)."""

    def result(passed: bool, reason: str, cand: float | None, prod: float | None) -> GateResult:
        return GateResult(passed, metric, cand, prod, min_improvement, lower_is_better, reason)

    cand = _number(candidate.get(metric))
    if cand is None:
        return result(False, f"candidate has no {metric} metric", None, None)
    if production is None:
        return result(True, "no production version yet: the first version is promoted", cand, None)
    prod = _number(production.get(metric))
    if prod is None:
        return result(True, f"production has no {metric}: the candidate is promoted", cand, None)
    gain = (prod - cand) if lower_is_better else (cand - prod)
    verdict = ">=" if gain >= min_improvement else "<"
    reason = (
        f"{metric} {cand:.4f} vs production {prod:.4f}: "
        f"{'improves' if gain >= 0 else 'worsens'} by {abs(gain):.4f}, "
        f"{verdict} the required {min_improvement:.4f}"
    )
    return result(gain >= min_improvement, reason, cand, prod)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)
