"""``[drift]`` and ``[models.NAME.drift]`` in opstui.toml: windows and thresholds.

``[drift]`` sets defaults for every model; a model's own table overrides
them key by key. The keys are the fields of ``analysis.drift_results.DriftSettings``
(a test checks the two agree); this module stays stdlib-only like the rest
of the config.
"""

from __future__ import annotations

from typing import Any

from opstui.config.schema import Spec


def _share(value: Any) -> str | None:
    return None if 0 <= value <= 1 else "a share between 0 and 1"


def _pvalue(value: Any) -> str | None:
    return None if 0 < value < 1 else "a p-value between 0 and 1, e.g. 0.05"


def _auc(value: Any) -> str | None:
    return None if 0.5 <= value <= 1 else "an ROC AUC between 0.5 and 1, e.g. 0.55"


def _names(value: Any) -> str | None:
    return None if all(isinstance(v, str) for v in value) else "a list of feature names"


def drift_schema() -> dict[str, Spec]:
    """The keys of a drift table."""
    number = (int, float)
    return {
        "window_rows": Spec((int,), "a number of rows", minimum=1),
        "window_seconds": Spec(number, "a number of seconds (0: no time limit)", minimum=0),
        "min_rows": Spec((int,), "a number of rows", minimum=2),
        "small_sample": Spec((int,), "a number of rows", minimum=0),
        "wasserstein": Spec(number, "a normalised distance, e.g. 0.1", minimum=0),
        "jensenshannon": Spec(number, "a distance, e.g. 0.1", minimum=0),
        "ks_pvalue": Spec(number, "a p-value", check=_pvalue),
        "chisquare_pvalue": Spec(number, "a p-value", check=_pvalue),
        "psi": Spec(number, "a PSI value, e.g. 0.25", minimum=0),
        "psi_warn": Spec(number, "a PSI value, e.g. 0.1", minimum=0),
        "psi_bins": Spec((int,), "a number of bins", minimum=2),
        "drift_share": Spec(number, "a share", check=_share),
        "classifier": Spec((bool,), "true or false"),
        "classifier_auc": Spec(number, "an ROC AUC", check=_auc),
        "classifier_rows": Spec((int,), "a number of rows", minimum=10),
        "retrain_after": Spec((int,), "a number of windows", minimum=1),
        "missing_tolerance": Spec(number, "a share", check=_share),
        "out_of_range": Spec(number, "a share", check=_share),
        "categorical": Spec((list,), "a list of feature names", check=_names),
        "numeric": Spec((list,), "a list of feature names", check=_names),
        "ignore": Spec((list,), "a list of feature names", check=_names),
    }
