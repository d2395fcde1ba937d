"""Reference summaries: what the drift statistics need of a model's training features.

A summary is computed once per model version and kept in the store, so a
drift check reads only the new current window. It is built in one pass over
chunks of rows, in memory bounded by ``SAMPLE_CELLS`` whatever the number of
rows (``drift_summariser.Summariser``; reading a column's values is
``drift_values``):

- exact for every column: rows, missing values, mean, standard deviation
  (numpy's ``std``, ddof 0, as Evidently normalises by), min, max;
- a numeric column's distribution as a **CDF on knots**: for each knot value,
  the share of values below it and at or below it. When a column has at most
  ``MAX_DISTINCT`` distinct values, every one of them is a knot with its exact
  count, and the summary *is* the distribution (integers, flags, small
  references). Otherwise the knots are the ``TAIL_RANKS`` smallest and
  largest values, ``BODY_RANKS`` evenly spaced order statistics and
  ``VALUE_POINTS`` evenly spaced values between min and max, and the CDF is
  linear between knots.

  Why knots and not "1,000 quantiles": Wasserstein distance integrates
  ``|F_ref - F_cur|``, so its error is the area between the true and the
  interpolated CDF. Evenly spaced quantiles alone leave the tails coarse,
  and a heavy tail (a log-normal amount) then costs 1e-2 of normalised
  distance; exact tails bring it to ~3e-5 on 100,000 rows. The value grid
  keeps the CDF tight where the rank grid is sparse (the right-hand body of
  a skewed column), which is what the Jensen-Shannon histogram edges probe:
  worst error there ~8e-5 in the tests behind this choice, against Evidently's
  1e-3 tolerance. About 110 KB per numeric column before compression; a
  model with more than ``FULL_GRID_COLUMNS`` numeric features gets a grid
  (and distinct-value limit) shrunk in proportion, down to an eighth, so a
  1,000-feature reference (knots and classifier sample) stores about 20 MB,
  at about 1e-3 of precision.
- a categorical column's exact category counts (the ``MAX_CATEGORIES`` most
  frequent; the rest pooled as ``OTHER``, which only identifier-like columns
  reach);
- a uniform sample of ``sample_rows`` whole rows for the domain classifier.

Above ``SAMPLE_CELLS`` cells, the knots come from a uniform sample of rows
(bottom-k random keys from a generator seeded with ``SEED``, so the same input
in the same order always gives the same summary); the exact statistics above
still see every row. Under it, the summary is computed from every value.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

NUMERIC = "numeric"
CATEGORICAL = "categorical"
FORMAT = "drift-summary-npz/1"

TAIL_RANKS = 256
BODY_RANKS = 2048
VALUE_POINTS = 2048
FULL_GRID_COLUMNS = 64
MAX_DISTINCT = 4096
MAX_CATEGORIES = 10_000
#: Categories beyond ``MAX_CATEGORIES`` are counted here.
OTHER = "(other)"
#: Cells (rows x columns) held to compute knots: 16 MB of float64, exact
#: knots for references of up to 100,000 rows of 20 features.
SAMPLE_CELLS = 2_000_000
#: Rows kept for the domain classifier, at most; fewer for wide tables.
CLASSIFIER_ROWS = 20_000
CLASSIFIER_CELLS = 2_000_000
SEED = 20_261_115


Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


def power_of_two_scale(top: float) -> float:
    """The power of two that brings values up to ``top`` into [-2, 2).

    Dividing by a power of two is exact, so a column scaled by it keeps its
    figures; used where sums of squares or differences of values near
    float64's limit would overflow.
    """
    return 2.0 ** (math.frexp(top)[1] - 1)


class NumericSummary(NamedTuple):
    name: str
    rows: int
    missing: int
    #: Text that is not a number, counted apart from missing values.
    invalid: int
    mean: float
    std: float
    min: float
    max: float
    #: Distinct values when at most ``MAX_DISTINCT``, else None.
    distinct: int | None
    knots: Floats
    #: Sampled values below / at or below each knot.
    below: Ints
    upto: Ints
    #: How many values the knot counts come from (all of them, or a sample).
    sampled: int
    #: A few of the texts counted in ``invalid``.
    examples: tuple[str, ...] = ()

    @property
    def present(self) -> int:
        """Values the statistics use: rows that hold a number."""
        return self.rows - self.missing - self.invalid

    @property
    def kind(self) -> str:
        return NUMERIC

    @property
    def exact(self) -> bool:
        """The knots hold every value with its exact count."""
        return self.distinct is not None and self.sampled == self.present

    def values(self) -> Floats:
        """Every value, sorted; only for an exact summary (small references)."""
        return np.repeat(self.knots, self.upto - self.below)


class CategoricalSummary(NamedTuple):
    name: str
    rows: int
    missing: int
    #: Categories, most frequent first, and their counts.
    categories: tuple[str, ...]
    counts: tuple[int, ...]

    @property
    def present(self) -> int:
        return self.rows - self.missing

    @property
    def kind(self) -> str:
        return CATEGORICAL

    @property
    def invalid(self) -> int:
        return 0


ColumnSummary = NumericSummary | CategoricalSummary


class ReferenceSummary(NamedTuple):
    rows: int
    columns: tuple[ColumnSummary, ...]
    #: Rows for the domain classifier: float64 for numeric columns, category
    #: codes (index into ``categories``, -1 when missing) for categorical ones.
    sample: dict[str, npt.NDArray[Any]]

    def column(self, name: str) -> ColumnSummary | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


# --- storing a summary -------------------------------------------------------


def encode(summary: ReferenceSummary) -> bytes:
    """The summary as a compressed ``.npz`` (no pickles): arrays of every
    numeric column concatenated, and a JSON header with the rest."""
    meta: list[dict[str, Any]] = []
    knots, below, upto = [], [], []
    for c in summary.columns:
        if isinstance(c, NumericSummary):
            meta.append(
                {
                    "kind": NUMERIC,
                    **{k: _finite(getattr(c, k)) for k in ("mean", "std", "min", "max")},
                    **{
                        k: getattr(c, k)
                        for k in ("name", "rows", "missing", "invalid", "distinct", "sampled")
                    },
                    "examples": list(c.examples),
                    "knots": len(c.knots),
                }
            )
            knots.append(c.knots)
            below.append(c.below)
            upto.append(c.upto)
        else:
            meta.append({"kind": CATEGORICAL, **c._asdict()})
    header = {"format": FORMAT, "rows": summary.rows, "columns": meta}
    arrays: dict[str, npt.NDArray[Any]] = {
        "header": np.array(json.dumps(header)),
        "knots": np.concatenate(knots) if knots else np.empty(0),
        "below": np.concatenate(below) if below else np.empty(0, dtype=np.int64),
        "upto": np.concatenate(upto) if upto else np.empty(0, dtype=np.int64),
    }
    for i, c in enumerate(summary.columns):
        arrays[f"sample{i}"] = summary.sample[c.name]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def decode(payload: bytes) -> ReferenceSummary:
    with np.load(io.BytesIO(payload), allow_pickle=False) as data:
        header = json.loads(str(data["header"]))
        if header.get("format") != FORMAT:
            raise ValueError(f"reference summary format {header.get('format')!r} is not known")
        knots, below, upto = data["knots"], data["below"], data["upto"]
        columns: list[ColumnSummary] = []
        sample: dict[str, npt.NDArray[Any]] = {}
        at = 0
        for i, m in enumerate(header["columns"]):
            kind = m.pop("kind")
            if kind == NUMERIC:
                size = m.pop("knots")
                part = slice(at, at + size)
                at += size
                stats = {
                    k: math.nan if m[k] is None else m[k] for k in ("mean", "std", "min", "max")
                }
                m["examples"] = tuple(m.get("examples", ()))
                columns.append(
                    NumericSummary(
                        **{**m, **stats}, knots=knots[part], below=below[part], upto=upto[part]
                    )
                )
            else:
                m["categories"], m["counts"] = tuple(m["categories"]), tuple(m["counts"])
                columns.append(CategoricalSummary(**m))
            sample[columns[-1].name] = data[f"sample{i}"]
    return ReferenceSummary(header["rows"], tuple(columns), sample)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None
