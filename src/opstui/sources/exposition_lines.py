"""Reading one line of the Prometheus text exposition format: the tokenizer.

A sample line becomes a ``Sample``; a ``# HELP`` or ``# TYPE`` line is
checked (and a type kept); a line that cannot be read raises ``_BadLine``
with the reason an operator sees. ``opstui.sources.exposition`` reads a
whole scrape with these and never raises.

The parser is a hand-written scanner with a few small regular expressions,
none with nested quantifiers, so its cost is linear in the input whatever
the input is; ``tests/test_exposition.py`` times it on 10,000 lines (about
30 ms on a small shared machine) and on pathological lines.

Deliberate leniencies, shared with Prometheus' own scraper or with
``prometheus_client``'s parser: an unknown escape in a label value (``\\t``)
is kept as written; blanks around label tokens are accepted. Not supported:
OpenMetrics (exemplars, ``# EOF``) and quoted UTF-8 metric names
(``{"my.metric"}``), which are reported as bad lines.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["Sample"]

METRIC_TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# A label name, "=", the opening quote and the value's run of plain characters;
# the caller looks at what stopped the run (a closing quote, an escape, the end).
_LABEL_HEAD = re.compile(r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"([^"\\]*)')
_PLAIN_RUN = re.compile(r'[^"\\]+')
# The ``{name=`` and ``,name=`` pieces of a label set split at its quotes (the fast path).
_FIRST_LABEL_KEY = re.compile(r"[{][ ]*([a-zA-Z_][a-zA-Z0-9_]*)[ ]*=[ ]*")
_LABEL_KEY = re.compile(r"[ ]*,[ ]*([a-zA-Z_][a-zA-Z0-9_]*)[ ]*=[ ]*")

_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EXCERPT = 60


class Sample(NamedTuple):
    """One sample line: metric name, labels, value and the optional timestamp."""

    name: str
    labels: dict[str, str]
    value: float
    timestamp: float | None  # seconds since the epoch; the format sends milliseconds


class _BadLine(Exception):
    """A line that cannot be read; the message is the reason an operator sees."""


def _excerpt(text: str) -> str:
    """A short, printable quotation of a bad line for an error message."""
    if len(text) > _EXCERPT:
        return repr(text[:_EXCERPT]) + "..."
    return repr(text)


def _comment(line: str, types: dict[str, str]) -> None:
    """``# HELP``, ``# TYPE`` or any other comment (ignored)."""
    body = line[1:].lstrip(" \t")
    keyword = body[:4]
    rest = body[4:]
    if keyword not in ("HELP", "TYPE") or (rest and rest[0] not in " \t"):
        return  # a plain comment, "#HELPER" included
    fields = rest.lstrip(" \t").replace("\t", " ").split(" ", 1)
    name = fields[0]
    if not name:
        raise _BadLine(f"# {keyword} without a metric name")
    if _METRIC_NAME.fullmatch(name) is None:
        raise _BadLine(f"# {keyword} names an invalid metric name {_excerpt(name)}")
    if keyword == "HELP":
        return  # the text is for people; nothing here reads it
    kind = fields[1].strip(" ") if len(fields) > 1 else ""
    if not kind:
        raise _BadLine(f"# TYPE {name} without a type")
    if kind not in METRIC_TYPES:
        raise _BadLine(
            f"# TYPE {name} has unknown type {_excerpt(kind)} "
            "(expected counter, gauge, histogram, summary or untyped)"
        )
    if name in types:
        raise _BadLine(f"second # TYPE line for {name} (kept the first: {types[name]})")
    types[name] = kind


class _SampleReader:
    """Reads sample lines: a fast path for the usual line, the careful scanner otherwise.

    The fast path takes lines without a backslash or a tab, which is nearly
    every line a client library writes. With no escapes, splitting the line
    at its quotes from the ``{`` on leaves alternating pieces: ``{name=``,
    a value, ``,name=``, a value, ..., ``} value [timestamp]``. The name
    pieces repeat from line to line, so each distinct piece is checked once
    and cached for the rest of the parse. A line the fast path is not sure
    of goes to the careful scanner (``_sample``), which reads the same lines
    to the same samples (a property test checks that) and words the error
    for the bad ones.
    """

    def __init__(self) -> None:
        self._names: set[str] = set()
        self._first_keys: dict[str, str] = {}  # '{name=' piece -> label name
        self._keys: dict[str, str] = {}  # ',name=' piece -> label name

    def read(self, line: str) -> Sample:
        if "\\" in line or "\t" in line:
            return _sample(line)
        brace = line.find("{")
        if brace == -1:
            tokens = line.split(" ")
            name = tokens[0]
            tokens[0] = ""
            labels: dict[str, str] = {}
        else:
            name = line[:brace].rstrip(" ")
            pieces = line[brace:].split('"')
            count = len(pieces)
            if count % 2 == 0:
                return _sample(line)  # an odd number of quotes: one is not closed
            last = pieces[-1]
            close = last.find("}")
            if close == -1:
                return _sample(line)
            trailer = last[:close].strip(" ")
            if count == 1:
                if trailer != "{":
                    return _sample(line)
                labels = {}
            else:
                if trailer and trailer != ",":
                    return _sample(line)
                keys = self._label_names(pieces)
                if keys is None:
                    return _sample(line)
                labels = dict(zip(keys, pieces[1::2], strict=True))
                if len(labels) != len(keys):
                    return _sample(line)  # a label given twice
            tokens = last[close + 1 :].split(" ")
        if name not in self._names:
            if _METRIC_NAME.fullmatch(name) is None:
                return _sample(line)
            self._names.add(name)
        if len(tokens) == 2 and not tokens[0]:
            # "} 1.5": the usual line, one blank and a value, read here to save two calls.
            token = tokens[1]
            if token.isascii() and token.isprintable() and "_" not in token:
                try:
                    return Sample(name, labels, float(token), None)
                except ValueError:
                    pass
            return _sample(line)
        try:
            value, stamp = _numbers(name, [t for t in tokens if t])
        except _BadLine:
            return _sample(line)
        return Sample(name, labels, value, stamp)

    def _label_names(self, pieces: list[str]) -> list[str] | None:
        """The label names of a label set split at its quotes; None if one is malformed."""
        first = self._first_keys.get(pieces[0])
        if first is None:
            match = _FIRST_LABEL_KEY.fullmatch(pieces[0])
            if match is None:
                return None
            first = self._first_keys[pieces[0]] = match.group(1)
        names = [first]
        cache = self._keys
        for key in pieces[2:-1:2]:
            label = cache.get(key)
            if label is None:
                match = _LABEL_KEY.fullmatch(key)
                if match is None:
                    return None
                label = cache[key] = match.group(1)
            names.append(label)
        return names


def _sample(line: str) -> Sample:
    """The careful scanner: reads any sample line, or says what is wrong with it."""
    match = _METRIC_NAME.match(line)
    if match is None:
        raise _BadLine(f"expected a metric name or a comment, found {_excerpt(line)}")
    name = match.group()
    pos = match.end()
    end = len(line)
    labels: dict[str, str] = {}
    if pos < end and line[pos] not in " \t{":
        raise _BadLine(
            f"unexpected {line[pos]!r} after metric name {name} at column {pos + 1}: "
            f"{_excerpt(line)}"
        )
    pos = _skip_blanks(line, pos)
    if pos < end and line[pos] == "{":
        pos = _labels(line, pos + 1, labels)
    rest = line[pos:]
    if "\t" in rest:
        rest = rest.replace("\t", " ")
    value, timestamp = _numbers(name, [t for t in rest.split(" ") if t])
    return Sample(name, labels, value, timestamp)


def _labels(line: str, pos: int, labels: dict[str, str]) -> int:
    """Read ``name="value",...}`` from ``pos`` into ``labels``; return the index after ``}``."""
    end = len(line)
    first = True
    while True:
        pos = _skip_blanks(line, pos)
        if pos >= end:
            raise _BadLine("label set not closed with '}'")
        if line[pos] == "}":
            return pos + 1
        head = _LABEL_HEAD.match(line, pos)
        if head is None:
            what = "a label set cannot start with ','" if first and line[pos] == "," else ""
            raise _BadLine(
                f"bad label syntax at column {pos + 1}{': ' + what if what else ''}: "
                f"{_excerpt(line[pos:])}"
            )
        first = False
        label = head.group(1)
        value = head.group(2)
        pos = head.end()
        if pos >= end or line[pos] != '"':
            value, pos = _escaped_value(line, pos, value, label)
        else:
            pos += 1
        if label in labels:
            raise _BadLine(f"label {label} given twice")
        labels[label] = value
        pos = _skip_blanks(line, pos)
        if pos >= end:
            raise _BadLine("label set not closed with '}'")
        if line[pos] == ",":
            pos += 1
            pos = _skip_blanks(line, pos)
            if pos < end and line[pos] == ",":
                raise _BadLine(f"two commas in a row at column {pos + 1}")
        elif line[pos] != "}":
            raise _BadLine(
                f"expected ',' or '}}' after label {label} at column {pos + 1}: "
                f"{_excerpt(line[pos:])}"
            )


def _skip_blanks(line: str, pos: int) -> int:
    end = len(line)
    while pos < end and line[pos] in " \t":
        pos += 1
    return pos


def _plain_run_end(line: str, pos: int) -> int:
    """The end of the run of characters other than quote and backslash at ``pos``."""
    match = _PLAIN_RUN.match(line, pos)
    return pos + 1 if match is None else match.end()


def _escaped_value(line: str, pos: int, start: str, label: str) -> tuple[str, int]:
    """Finish a label value that holds escapes; return it and the index after its quote."""
    parts = [start]
    end = len(line)
    while True:
        if pos >= end:
            raise _BadLine(f"unterminated quote in the value of label {label}")
        ch = line[pos]
        if ch == '"':
            return "".join(parts), pos + 1
        if ch == "\\":
            if pos + 1 >= end:
                raise _BadLine(f"unterminated quote in the value of label {label}")
            escaped = line[pos + 1]
            parts.append(_ESCAPES.get(escaped, "\\" + escaped))
            pos += 2
        else:
            stop = _plain_run_end(line, pos)
            parts.append(line[pos:stop])
            pos = stop


def _number_token(token: str) -> bool:
    # float() and int() accept what the format does not: underscores ("1_0"),
    # non-ASCII digits and whitespace other than the blanks already split on.
    return token.isascii() and token.isprintable() and "_" not in token


def _numbers(name: str, tokens: list[str]) -> tuple[float, float | None]:
    """The value and the optional timestamp (milliseconds, returned in seconds)."""
    if not tokens:
        raise _BadLine(f"no value for {name}")
    if len(tokens) > 2:
        raise _BadLine(f"unexpected text after the value of {name}: {_excerpt(' '.join(tokens))}")
    token = tokens[0]
    try:
        if not _number_token(token):
            raise ValueError(token)
        value = float(token)
    except ValueError:
        raise _BadLine(f"value of {name} is not a number: {_excerpt(token)}") from None
    if len(tokens) == 1:
        return value, None
    stamp = tokens[1]
    try:
        if not _number_token(stamp):
            raise ValueError(stamp)
        millis = int(stamp)
    except ValueError:
        raise _BadLine(
            f"timestamp of {name} is not an integer (milliseconds): {_excerpt(stamp)}"
        ) from None
    if not _INT64_MIN <= millis <= _INT64_MAX:
        raise _BadLine(f"timestamp of {name} is out of range: {_excerpt(stamp)}")
    return value, millis / 1000
