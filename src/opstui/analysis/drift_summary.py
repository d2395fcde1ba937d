"""Reference summaries: what the drift statistics need of a model's training features.

A summary is computed once per model version and kept in the store, so a
drift check reads only the new current window. It is built in one pass over
chunks of rows, in memory bounded by ``SAMPLE_CELLS`` whatever the number of
rows (``Summariser``):

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
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
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
#: Evidently 0.7's ``INTEGER_CARDINALITY_LIMIT`` (``evidently/core/datasets.py``):
#: an integer column (pandas int dtype: integers only, no missing value) with
#: at most this many distinct values is categorical. Evidently infers a
#: column's type from the *current* data, so the check does (``drift._numeric``).
INTEGER_CARDINALITY_LIMIT = 10
#: A column is numeric when at least this share of its present values are
#: numbers; the rest is text, a data-quality finding (``invalid``).
NUMERIC_SHARE = 0.5
#: Text read as "no value" in a numeric column, besides empty cells.
MISSING_TEXT = frozenset({"", "na", "n/a", "nan", "null", "none", "-"})

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


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


# --- reading values ----------------------------------------------------------


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


# --- building a summary ------------------------------------------------------


class _Moments:
    """Exact count, mean, M2 (Chan et al.'s parallel update), min and max.

    Values are held divided by ``scale``, a power of two (so the division is
    exact), 1 unless a value passes ``_SAFE``: squared deviations of values
    near 1e200 overflowed to inf and the reference's std read NaN, which made
    a normalised Wasserstein distance NaN and its verdict "ok" whatever the
    current data did.
    """

    def __init__(self) -> None:
        self.n = 0
        self.scale = 1.0
        self._mean = 0.0  # over scale
        self._m2 = 0.0  # over scale squared
        self.min = math.inf
        self.max = -math.inf

    @property
    def mean(self) -> float:
        return self._mean * self.scale

    @property
    def std(self) -> float:
        return math.sqrt(self._m2 / self.n) * self.scale if self.n else math.nan

    def add(self, x: Floats) -> None:
        if not len(x):
            return
        self.min = min(self.min, float(x.min()))
        self.max = max(self.max, float(x.max()))
        top = max(-self.min, self.max)
        if top > _SAFE and top > self.scale:
            scale = 2.0 ** (math.frexp(top)[1] - 1)  # values over it lie in [-2, 2)
            ratio = scale / self.scale
            self._mean /= ratio
            self._m2 /= ratio * ratio
            self.scale = scale
        if self.scale != 1.0:
            x = x / self.scale
        n, mean = len(x), float(x.mean())
        m2 = float(((x - mean) ** 2).sum())
        total = self.n + n
        delta = mean - self._mean
        self._mean += delta * n / total
        self._m2 += m2 + delta * delta * self.n * n / total
        self.n = total


#: Values up to this size are summed unscaled: (2 x 2^400)^2 x 1e9 rows is far
#: from float64's 1.8e308, and every ordinary column keeps its exact figures.
_SAFE = 2.0**400


class _Distinct:
    """Exact counts per distinct value until there are more than ``limit``."""

    def __init__(self, limit: int = MAX_DISTINCT) -> None:
        self.limit = limit
        self.values: Floats | None = np.empty(0)
        self.counts: Ints = np.empty(0, dtype=np.int64)

    def add(self, x: Floats) -> None:
        if self.values is None or not len(x):
            return
        vals, counts = np.unique(x, return_counts=True)
        merged, inverse = np.unique(np.concatenate([self.values, vals]), return_inverse=True)
        if len(merged) > self.limit:
            self.values = None
            return
        both = np.concatenate([self.counts, counts])
        self.values = merged
        self.counts = np.bincount(inverse, weights=both, minlength=len(merged)).astype(np.int64)


class _Categories:
    """Exact counts per category; past ``MAX_CATEGORIES`` the rarest are pooled."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.missing = 0

    def add(self, labels: Labels) -> None:
        self.missing += labels.missing
        self.counts.update(labels.counts)
        if len(self.counts) > MAX_CATEGORIES:
            kept = self.counts.most_common(MAX_CATEGORIES - 1)
            pooled = sum(self.counts.values()) - sum(c for _, c in kept)
            self.counts = Counter(dict(kept))
            self.counts[OTHER] += pooled


class Summariser:
    """Builds a ``ReferenceSummary`` from chunks of rows (``{column: values}``).

    Column kinds are decided on the first chunk (``categorical`` forces some
    columns to categories); text in a numeric column of a later chunk is
    counted as invalid. Every chunk must have the same columns.
    """

    def __init__(self, *, categorical: Iterable[str] = (), seed: int = SEED) -> None:
        self._forced = frozenset(categorical)
        self._rng = np.random.default_rng(seed)
        self._names: list[str] | None = None
        self._kinds: dict[str, str] = {}
        self.rows = 0
        self._invalid: dict[str, int] = {}
        self._examples: dict[str, list[str]] = {}
        self._missing: dict[str, int] = {}
        self._moments: dict[str, _Moments] = {}
        self._distinct: dict[str, _Distinct] = {}
        self._cats: dict[str, _Categories] = {}
        self._codes: dict[str, dict[str, int]] = {}
        self._capacity = 0
        #: Knot grids shrink for models with many numeric features (see above).
        self._scale = 1.0
        self._keys: Floats = np.empty(0)
        self._sample: dict[str, npt.NDArray[Any]] = {}

    def add(self, chunk: Mapping[str, Sequence[Any] | npt.NDArray[Any]]) -> None:
        names = [str(k) for k in chunk]
        lengths = {len(v) for v in chunk.values()}
        if len(lengths) > 1:
            raise ValueError("columns of a chunk have different lengths")
        n = lengths.pop() if lengths else 0
        if self._names is None:
            self._start(names, chunk)
        elif names != self._names:
            raise ValueError(f"chunk columns {names} differ from the first chunk's {self._names}")
        if n == 0:
            return
        parsed: dict[str, npt.NDArray[Any] | Labels] = {}
        for name in names:
            if self._kinds[name] == NUMERIC:
                x, invalid, bad = as_numbers(chunk[name])
                self._invalid[name] += invalid
                examples = self._examples[name]
                examples.extend(b for b in bad if b not in examples)
                del examples[3:]
                present = x[~np.isnan(x)]
                self._missing[name] += n - len(present) - invalid
                self._moments[name].add(present)
                self._distinct[name].add(present)
                parsed[name] = x
            else:
                labels = read_labels(chunk[name])
                self._cats[name].add(labels)
                parsed[name] = labels
        self._sample_rows(n, parsed)
        self.rows += n

    def _start(self, names: list[str], chunk: Mapping[str, Any]) -> None:
        if len(set(names)) != len(names):
            raise ValueError("duplicate column names")
        self._names = names
        for name in names:
            numeric = name not in self._forced and is_numeric(chunk[name])
            self._kinds[name] = NUMERIC if numeric else CATEGORICAL
        numeric_columns = sum(1 for kind in self._kinds.values() if kind == NUMERIC)
        self._scale = min(1.0, max(1 / 8, FULL_GRID_COLUMNS / max(1, numeric_columns)))
        for name in names:
            self._invalid[name] = self._missing[name] = 0
            self._examples[name] = []
            self._moments[name] = _Moments()
            self._distinct[name] = _Distinct(round(MAX_DISTINCT * self._scale))
            self._cats[name] = _Categories()
            self._codes[name] = {}
        self._capacity = max(classifier_rows(len(names)), SAMPLE_CELLS // max(1, len(names)))

    def _sample_rows(self, n: int, parsed: Mapping[str, Any]) -> None:
        """Keep the rows with the smallest random keys: a uniform sample of
        ``_capacity`` rows whatever the number of chunks (bottom-k sampling)."""
        keys = self._rng.random(n)
        if len(self._keys) >= self._capacity:
            take = np.flatnonzero(keys < self._keys.max())
        else:
            take = np.arange(n)
        if not len(take):
            return
        keys = np.concatenate([self._keys, keys[take]])
        for name, col in parsed.items():
            new = col[take] if isinstance(col, np.ndarray) else self._encode(name, col, take)
            old = self._sample.get(name)
            self._sample[name] = new if old is None else np.concatenate([old, new])
        if len(keys) > self._capacity:
            keep = np.argpartition(keys, self._capacity - 1)[: self._capacity]
            keys = keys[keep]
            self._sample = {k: v[keep] for k, v in self._sample.items()}
        self._keys = keys

    def _encode(self, name: str, labels: Labels, take: Ints) -> npt.NDArray[np.int32]:
        """Codes of the sampled rows' labels (only labels that reach the sample
        get a code, so an identifier-like column cannot grow the table)."""
        codes = self._codes[name]
        values = labels.values
        # All rows of a chunk are taken until the sample is full: no copy then.
        picked = values if len(take) == len(values) else [values[j] for j in take.tolist()]
        code_of: dict[Any, int] = {}
        for value in labels.label_of if picked is values else set(picked):
            label = labels.label_of[value]
            code_of[value] = -1 if label is None else codes.setdefault(label, len(codes))
        return np.fromiter(map(code_of.__getitem__, picked), np.int32, len(picked))

    def finish(self) -> ReferenceSummary:
        if self._names is None:
            raise ValueError("no rows to summarise")
        order = np.argsort(self._keys, kind="stable")
        sample_rows = min(len(order), classifier_rows(len(self._names)))
        head = order[:sample_rows]
        columns: list[ColumnSummary] = []
        sample: dict[str, npt.NDArray[Any]] = {}
        for name in self._names:
            held = self._sample.get(name, np.empty(0))
            if self._kinds[name] == NUMERIC:
                columns.append(self._numeric(name, held))
                sample[name] = held[head].astype(np.float64)
            else:
                col, recode = self._categorical(name)
                columns.append(col)
                sample[name] = recode[held[head] + 1] if len(held) else held.astype(np.int32)
        return ReferenceSummary(self.rows, tuple(columns), sample)

    def _numeric(self, name: str, held: Floats) -> NumericSummary:
        m = self._moments[name]
        distinct = self._distinct[name]
        if distinct.values is not None:
            knots, counts = distinct.values, distinct.counts
            upto = np.cumsum(counts)
            below, sampled = upto - counts, m.n
        else:
            knots, below, upto, sampled = _knots(np.sort(held[~np.isnan(held)]), self._scale)
        return NumericSummary(
            name=name,
            rows=self.rows,
            missing=self._missing[name],
            invalid=self._invalid[name],
            mean=m.mean if m.n else math.nan,
            std=m.std,
            min=m.min if m.n else math.nan,
            max=m.max if m.n else math.nan,
            distinct=None if distinct.values is None else len(distinct.values),
            knots=knots.astype(np.float64),
            below=below.astype(np.int64),
            upto=upto.astype(np.int64),
            sampled=int(sampled),
            examples=tuple(self._examples[name]),
        )

    def _categorical(self, name: str) -> tuple[CategoricalSummary, npt.NDArray[np.int32]]:
        """The summary, with categories most frequent first, and a table that
        turns the sample's first-seen codes (shifted by one; 0 is missing)
        into indexes of those categories."""
        cats = self._cats[name]
        ranked = sorted(cats.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        position = {label: i for i, (label, _) in enumerate(ranked)}
        first_seen = self._codes[name]
        recode = np.full(len(first_seen) + 1, -1, dtype=np.int32)
        other = position.get(OTHER, -1)
        for label, code in first_seen.items():
            recode[code + 1] = position.get(label, other)
        summary = CategoricalSummary(
            name=name,
            rows=self.rows,
            missing=cats.missing,
            categories=tuple(label for label, _ in ranked),
            counts=tuple(count for _, count in ranked),
        )
        return summary, recode


def classifier_rows(columns: int) -> int:
    """Rows of the reference kept for the domain classifier."""
    return min(CLASSIFIER_ROWS, max(1000, CLASSIFIER_CELLS // max(1, columns)))


def _knots(xs: Floats, scale: float = 1.0) -> tuple[Floats, Ints, Ints, int]:
    """Knots of a sorted sample: exact tails, an even rank grid, an even value
    grid (each ``scale`` times its full size)."""
    n = len(xs)
    if n == 0:
        empty = np.empty(0, dtype=np.int64)
        return np.empty(0), empty, empty, 0
    tail = min(round(TAIL_RANKS * scale), n)
    ranks = np.concatenate(
        [
            np.arange(tail),
            np.arange(n - tail, n),
            np.round(np.linspace(0, n - 1, round(BODY_RANKS * scale))).astype(np.int64),
        ]
    )
    points = round(VALUE_POINTS * scale)
    if max(-xs[0], xs[-1]) < 2.0**1000:
        grid = np.linspace(xs[0], xs[-1], points)
    else:  # a span near or past float64's limit (-1.7e308 .. 1.7e308): halve it
        grid = np.clip(np.linspace(xs[0] / 2, xs[-1] / 2, points) * 2, xs[0], xs[-1])
    values = np.concatenate([xs[ranks], grid])
    knots = np.unique(values)
    below = np.searchsorted(xs, knots, side="left")
    upto = np.searchsorted(xs, knots, side="right")
    return knots, below.astype(np.int64), upto.astype(np.int64), n


def summarise(
    chunks: Iterable[Mapping[str, Sequence[Any] | npt.NDArray[Any]]],
    *,
    categorical: Iterable[str] = (),
    seed: int = SEED,
) -> ReferenceSummary:
    """Summarise rows given as an iterable of column chunks (see ``Summariser``)."""
    summariser = Summariser(categorical=categorical, seed=seed)
    for chunk in chunks:
        summariser.add(chunk)
    return summariser.finish()


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
