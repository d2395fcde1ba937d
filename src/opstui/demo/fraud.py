"""The demo's card transactions: what serving sees, and what is really fraud.

At ``level`` 0 the features have the distributions of the fraud model's
bundled history (``sample_runs/``, whose references are level 0). A fraud
ring at work raises ``level`` towards 1: larger amounts, night-time traffic,
younger accounts, more electronics and gaming, and from 0.6 on a merchant
category no earlier model has seen (``crypto_exchange``). Labels come from a
fixed logistic rule, the ground truth of this small world, so a model
trained on recent data really does beat one trained before the ring.

numpy only: serving (in the demo process) and the training stages share it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Columns = dict[str, list[Any]]
Array = npt.NDArray[Any]

NUMERIC = ("amount", "distance_km", "account_age_days", "n_tx_24h")
CATEGORICAL = ("hour_of_day", "merchant_category", "country", "device")
FEATURES = ("amount", "hour_of_day", "distance_km", "account_age_days", "n_tx_24h",
            "merchant_category", "country", "device")  # fmt: skip

_HOURS = np.array([2, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 7, 8, 7, 6, 6, 7, 8, 9, 9, 8, 6, 4, 3], float)
_NIGHT = np.array([5, 6, 6, 6, 5, 3] + [0] * 16 + [2, 4], float)
_COUNTRIES = {"US": 62, "GB": 10, "DE": 8, "FR": 6, "BR": 5, "IN": 5, "MX": 4}
_DEVICES = {"mobile": 58, "desktop": 34, "tablet": 8}
#: Log-odds a merchant category adds to a transaction being fraud.
_RISK = {"crypto_exchange": 3.5, "gaming": 1.8, "electronics": 1.2, "online_retail": 0.6,
         "travel": 0.5}  # fmt: skip


def _merchants(level: float) -> dict[str, float]:
    return {
        "grocery": 28 - 10 * level,
        "restaurants": 18.0,
        "fuel": 12 - 4 * level,
        "online_retail": 22 + 8 * level,
        "electronics": 10 + 4 * level,
        "travel": 7.0,
        "gaming": 3 + 3 * level,
        "crypto_exchange": 6 * level if level >= 0.6 else 0.0,
    }


def _pick(rng: np.random.Generator, n: int, weights: Mapping[str, float]) -> list[str]:
    names = list(weights)
    p = np.array([weights[k] for k in names], float)
    return [names[i] for i in rng.choice(len(names), n, p=p / p.sum()).tolist()]


def transactions(rng: np.random.Generator, n: int, level: float) -> Columns:
    """``n`` transactions of a world where the fraud ring is at ``level`` (0..1)."""
    sigma = 0.9  # of the log-normal amount; its sd / mean is sqrt(e^sigma^2 - 1)
    scale = 1 + (0.375 + 0.625 * level) * math.sqrt(math.exp(sigma**2) - 1) if level else 1.0
    hours = _HOURS + level * _NIGHT
    return {
        "amount": np.round(rng.lognormal(3.6, sigma, n) * scale, 2).tolist(),
        "hour_of_day": rng.choice(24, n, p=hours / hours.sum()).tolist(),
        "distance_km": np.round(rng.lognormal(1.5, 1.2, n), 3).tolist(),
        "account_age_days": (rng.exponential(700 * (1 - 0.5 * level), n).astype(int) + 1).tolist(),
        "n_tx_24h": rng.poisson(2.5 + level, n).tolist(),
        "merchant_category": _pick(rng, n, _merchants(level)),
        "country": _pick(rng, n, _COUNTRIES),
        "device": _pick(rng, n, _DEVICES),
    }


def _numbers(values: Sequence[Any], fill: float) -> Array:
    # Missing values (the history has some) become ``fill``: the rule and the
    # models both need a number.
    return np.array([fill if v is None else float(v) for v in values], float)


def is_fraud(rng: np.random.Generator, cols: Mapping[str, Sequence[Any]]) -> Array:
    """The ground truth: chargebacks that arrive days later, drawn from a fixed rule."""
    amount = np.maximum(_numbers(cols["amount"], 36.0), 0.01)
    z = (
        -4.6
        + 1.8 * (np.log(amount) - 3.6)
        + 2.2 * (_numbers(cols["hour_of_day"], 12) < 6)
        + 0.5 * (_numbers(cols["n_tx_24h"], 2.5) - 2.5)
        - 1.2 * np.log1p(_numbers(cols["account_age_days"], 700) / 365)
        + np.array([_RISK.get(str(m), 0.0) for m in cols["merchant_category"]])
        + 0.6 * (_numbers(cols["distance_km"], 4.5) > 40)
    )
    chance: Array = 1 / (1 + np.exp(-z))
    return (rng.random(len(z)) < chance).astype(np.int64)


def design(cols: Mapping[str, Sequence[Any]]) -> Array:
    """The model's input: log1p of the numbers, then the categories as text."""
    out = np.empty((len(cols[FEATURES[0]]), len(NUMERIC) + len(CATEGORICAL)), dtype=object)
    for i, name in enumerate(NUMERIC):
        out[:, i] = np.log1p(np.maximum(_numbers(cols[name], np.nan), 0.0))
    for i, name in enumerate(CATEGORICAL, start=len(NUMERIC)):
        out[:, i] = ["missing" if v is None else str(v) for v in cols[name]]
    return out
