"""``[drift]`` and ``[models.NAME.drift]`` in opstui.toml: windows and thresholds.

``[drift]`` sets defaults for every model; a model's own table overrides
them key by key. The keys are the fields of ``analysis.drift.DriftSettings``
(a test checks the two agree); this module stays stdlib-only like the rest
of the config.
"""

from __future__ import annotations

from typing import Any


def _share(value: Any) -> str | None:
    return None if 0 <= value <= 1 else "a share between 0 and 1"


def _pvalue(value: Any) -> str | None:
    return None if 0 < value < 1 else "a p-value between 0 and 1, e.g. 0.05"


def _auc(value: Any) -> str | None:
    return None if 0.5 <= value <= 1 else "an ROC AUC between 0.5 and 1, e.g. 0.55"


def _names(value: Any) -> str | None:
    return None if all(isinstance(v, str) for v in value) else "a list of feature names"


def drift_schema(spec: Any) -> dict[str, Any]:
    """The keys of a drift table; ``spec`` is config.Spec (avoids an import cycle)."""
    number = (int, float)
    return {
        "window_rows": spec((int,), "a number of rows", minimum=1),
        "window_seconds": spec(number, "a number of seconds (0: no time limit)", minimum=0),
        "min_rows": spec((int,), "a number of rows", minimum=2),
        "small_sample": spec((int,), "a number of rows", minimum=0),
        "wasserstein": spec(number, "a normalised distance, e.g. 0.1", minimum=0),
        "jensenshannon": spec(number, "a distance, e.g. 0.1", minimum=0),
        "ks_pvalue": spec(number, "a p-value", check=_pvalue),
        "chisquare_pvalue": spec(number, "a p-value", check=_pvalue),
        "psi": spec(number, "a PSI value, e.g. 0.25", minimum=0),
        "psi_warn": spec(number, "a PSI value, e.g. 0.1", minimum=0),
        "psi_bins": spec((int,), "a number of bins", minimum=2),
        "drift_share": spec(number, "a share", check=_share),
        "classifier": spec((bool,), "true or false"),
        "classifier_auc": spec(number, "an ROC AUC", check=_auc),
        "classifier_rows": spec((int,), "a number of rows", minimum=10),
        "retrain_after": spec((int,), "a number of windows", minimum=1),
        "missing_tolerance": spec(number, "a share", check=_share),
        "out_of_range": spec(number, "a share", check=_share),
        "categorical": spec((list,), "a list of feature names", check=_names),
        "numeric": spec((list,), "a list of feature names", check=_names),
        "ignore": spec((list,), "a list of feature names", check=_names),
    }
