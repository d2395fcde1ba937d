"""Reading a column's values for the drift statistics: numbers (text that is
a number counts; text that is not is ``invalid``, a data-quality finding),
category labels, and which kind a column is (as Evidently infers it).

The reference summary (``drift_summary``) and the current window
(``drift.compare``) read values the same way, through these functions.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from opstui.analysis.drift_summary import Floats

#: Evidently 0.7's ``INTEGER_CARDINALITY_LIMIT`` (``evidently/core/datasets.py``):
#: an integer column (pandas int dtype: integers only, no missing value) with
#: at most this many distinct values is categorical. Evidently infers a
#: column's type from the *current* data, so the check does (``drift_numeric._numeric``).
INTEGER_CARDINALITY_LIMIT = 10
#: A column is numeric when at least this share of its present values are
#: numbers; the rest is text, a data-quality finding (``invalid``).
NUMERIC_SHARE = 0.5
#: Text read as "no value" in a numeric column, besides empty cells.
MISSING_TEXT = frozenset({"", "na", "n/a", "nan", "null", "none", "-"})


def as_numbers(values: Sequence[Any] | npt.NDArray[Any]) -> tuple[Floats, int, list[str]]:
    """``values`` as float64 with NaN for missing; also the count and a few
    examples of text that is not a number (those become NaN too).

    Numbers that arrive as text (``"12.5"``, a CSV cell) are read as numbers.
    Infinities count as missing, as Evidently drops them.
    """
    arr = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if arr.dtype.kind in "iuf":
        out = arr.astype(np.float64)
        out[~np.isfinite(out)] = np.nan
        return out, 0, []
    try:
        out = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError):
        return _numbers_slowly(values)
    out[~np.isfinite(out)] = np.nan
    return out, 0, []


def _numbers_slowly(values: Sequence[Any] | npt.NDArray[Any]) -> tuple[Floats, int, list[str]]:
    out = np.empty(len(values), dtype=np.float64)
    bad: list[str] = []
    invalid = 0
    for i, v in enumerate(values):
        try:
            out[i] = float(v) if v is not None else math.nan
        except (ValueError, TypeError):
            out[i] = math.nan
            if str(v).strip().lower() not in MISSING_TEXT:
                invalid += 1
                if len(bad) < 3:
                    bad.append(str(v)[:40])
    out[~np.isfinite(out)] = np.nan
    return out, invalid, bad


class Labels(NamedTuple):
    """A categorical column read once: counts per label, and each raw value's label."""

    counts: Counter[str]
    missing: int
    #: Raw value -> label (None: missing); values are counted first and only
    #: the distinct ones are turned into labels, so a million rows of four
    #: categories cost a ``Counter``, not a million conversions.
    label_of: dict[Any, str | None]
    values: list[Any]

    def labels(self, rows: Iterable[int] | None = None) -> list[str | None]:
        label_of, values = self.label_of, self.values
        if rows is None:
            return [label_of[v] for v in values]
        return [label_of[values[i]] for i in rows]


def read_labels(values: Sequence[Any] | npt.NDArray[Any]) -> Labels:
    """Category labels as text; None, NaN and empty text are missing."""
    items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    try:
        raw = Counter(items)
    except TypeError:  # unhashable values (lists in JSON): compare their text
        items = [v if v is None else str(v) for v in items]
        raw = Counter(items)
    counts: Counter[str] = Counter()
    missing = 0
    label_of: dict[Any, str | None] = {}
    for value, n in raw.items():
        label = label_of[value] = _label(value)
        if label is None:
            missing += n
        else:
            counts[label] += n
    return Labels(counts, missing, label_of, items)


def as_categories(values: Sequence[Any] | npt.NDArray[Any]) -> list[str | None]:
    """Category labels as text, row by row; None, NaN and empty text are missing."""
    return read_labels(values).labels()


def _label(v: Any) -> str | None:
    if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
        return None
    return v if isinstance(v, str) else str(v)


def is_numeric(values: Sequence[Any] | npt.NDArray[Any]) -> bool:
    """Whether a column reads as numbers: every value present is a number or
    numeric text, and none is a boolean (flags are categories)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        return True
    if isinstance(values, np.ndarray) and values.dtype.kind == "b":
        return False
    items = values.tolist() if isinstance(values, np.ndarray) else values
    if any(isinstance(v, bool) for v in items):
        return False
    x, invalid, _ = as_numbers(items)
    numbers = int(np.count_nonzero(~np.isnan(x)))
    # Mostly numbers with some text ("unknown") is a numeric column with a
    # data-quality problem, not a column of categories.
    return numbers >= NUMERIC_SHARE * (numbers + invalid)


def is_integer_typed(values: Sequence[Any] | npt.NDArray[Any], x: Floats) -> bool:
    """Whether pandas would give ``values`` (``x`` as read by ``as_numbers``)
    an int dtype: integers only, none missing; integer text counts (a CSV)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        return True
    if isinstance(values, np.ndarray) and values.dtype.kind != "O":
        return False
    if np.isnan(x).any() or not np.all(x == np.round(x)):
        return False
    items = values.tolist() if isinstance(values, np.ndarray) else values
    return all(
        (isinstance(v, (int, np.integer)) and not isinstance(v, bool))
        or (isinstance(v, str) and _INTEGER_TEXT.fullmatch(v) is not None)
        for v in items
    )


_INTEGER_TEXT = re.compile(r"\s*[+-]?\d+\s*")
