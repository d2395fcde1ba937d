"""Reading the Prometheus text exposition format (version 0.0.4).

That is what ``prometheus_client`` and most exporters serve on ``/metrics``:

    # HELP http_requests_total Requests served.
    # TYPE http_requests_total counter
    http_requests_total{method="GET",code="200"} 1027 1395066363000

``parse_exposition`` never raises: an endpoint may answer with anything (an
HTML error page, a truncated body, a proxy's banner), and one bad line must
not hide the good ones. Each line it cannot read is skipped and reported as
``"line N: reason"``.

The scanner that reads each line is ``opstui.sources.exposition_lines``.

Deliberate leniencies, shared with Prometheus' own scraper: ``\\r\\n``
line ends and leading blanks are accepted; ``# TYPE`` lines need not
precede their samples (more, and what is not supported, in
``exposition_lines``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from opstui.sources.exposition_lines import (
    Sample,
    _BadLine,
    _comment,
    _excerpt,
    _number_token,
    _SampleReader,
)

__all__ = [
    "Exposition",
    "counter_total",
    "histogram_buckets",
    "parse_exposition",
]


@dataclass
class Exposition:
    """What one scrape held: its samples, the declared types, and the lines skipped."""

    samples: list[Sample] = field(default_factory=list)
    #: ``# TYPE`` declarations, metric family name -> type.
    types: dict[str, str] = field(default_factory=dict)
    #: ``"line N: reason"`` for the first ``max_errors`` bad lines, then one
    #: ``"... and N more"`` entry.
    errors: list[str] = field(default_factory=list)
    #: Every bad line, including those not listed in ``errors``.
    error_count: int = 0


def parse_exposition(text: str, *, max_errors: int = 20) -> Exposition:
    """Parse exposition ``text``; bad lines are skipped and reported, never raised."""
    exp = Exposition()
    samples = exp.samples
    reader = _SampleReader()
    cap = max(0, max_errors)
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line:
            continue
        first = line[0]
        if first in " \t":
            line = line.lstrip(" \t")
            if not line:
                continue
            first = line[0]
        try:
            if first == "#":
                _comment(line, exp.types)
            else:
                samples.append(reader.read(line))
        except _BadLine as exc:
            exp.error_count += 1
            if exp.error_count <= cap:
                exp.errors.append(f"line {number}: {exc}")
        except Exception as exc:  # a bug here must not cost the operator the whole scrape
            exp.error_count += 1
            if exp.error_count <= cap:
                reason = _excerpt(f"{type(exc).__name__}: {exc}")
                exp.errors.append(f"line {number}: unreadable ({reason})")
    if exp.error_count > cap:
        exp.errors.append(f"... and {exp.error_count - cap} more")
    return exp


# -- reading a parsed exposition ------------------------------------------------------------------


def _counter_series_name(exp: Exposition, name: str) -> str | None:
    """The sample name that carries counter ``name``'s value, if any sample has it.

    ``name_total`` wins over the bare ``name`` so a target exposing both (old
    and new client libraries side by side) is not counted twice. A bare
    ``X_created`` next to ``X_total`` is the creation time of ``X``, never a count.
    """
    base = name[: -len("_total")] if name.endswith("_total") else name
    present = {s.name for s in exp.samples if s.name == base or s.name == base + "_total"}
    if base + "_total" in present:
        return base + "_total"
    if base in present:
        if base.endswith("_created") and any(
            s.name == base[: -len("_created")] + "_total" for s in exp.samples
        ):
            return None
        return base
    return None


def counter_total(
    exp: Exposition,
    name: str,
    *,
    where: Callable[[dict[str, str]], bool] | None = None,
) -> float | None:
    """Sum of counter ``name`` over its label sets for which ``where(labels)`` holds.

    ``name`` may be given with or without ``_total``. None when the counter is
    not in the exposition at all; 0.0 when it is but no label set matches
    (client libraries create a labelled series at its first increment, so
    "no 5xx series yet" means no 5xx responses yet).
    """
    series = _counter_series_name(exp, name)
    if series is None:
        return None
    total = 0.0
    for s in exp.samples:
        if s.name == series and (where is None or where(s.labels)):
            total += s.value
    return total


def histogram_buckets(exp: Exposition, name: str) -> dict[float, float] | None:
    """Cumulative bucket counts of histogram ``name`` by upper bound ``le``, summed over
    label sets (``+Inf`` included, as ``math.inf``); None when it has no buckets.

    ``name`` may be given with or without ``_bucket``. Buckets whose ``le`` is
    missing or not a number are skipped.
    """
    base = name[: -len("_bucket")] if name.endswith("_bucket") else name
    series = base + "_bucket"
    counts: dict[float, float] = {}
    for s in exp.samples:
        if s.name != series:
            continue
        le = s.labels.get("le")
        if le is None:
            continue
        try:
            if not _number_token(le):
                raise ValueError(le)
            bound = float(le)
        except ValueError:
            continue
        if math.isnan(bound):
            continue
        counts[bound] = counts.get(bound, 0.0) + s.value
    if not counts:
        return None
    return dict(sorted(counts.items()))
