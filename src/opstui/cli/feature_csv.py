"""Reading feature rows from a CSV file with a header row, in chunks.

Used by ``opstui record features`` and ``opstui drift set-reference``; the
latter reads references of millions of rows, so rows come in chunks and a
file is never held whole. Stdlib only.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from opstui.errors import UsageError

CHUNK_ROWS = 100_000


def read_chunks(path: Path, *, rows: int = CHUNK_ROWS) -> Iterator[dict[str, list[str | None]]]:
    """Chunks of ``{column: cells}``; an empty cell is None, others stay text."""
    reader = None
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header:
                raise UsageError(f"{path} is empty; expected a header row of feature names")
            if len(set(header)) != len(header):
                dup = next(h for h in header if header.count(h) > 1)
                raise UsageError(f"{path}: column {dup!r} appears twice in the header")
            chunk: list[list[str]] = []
            yielded = False
            for number, row in enumerate(reader, start=2):
                if len(row) != len(header):
                    raise UsageError(
                        f"{path}:{number}: {len(row)} fields, the header has {len(header)}"
                    )
                chunk.append(row)
                if len(chunk) >= rows:
                    yield _columns(header, chunk)
                    chunk, yielded = [], True
            if chunk or not yielded:  # a header alone is a batch of no rows
                yield _columns(header, chunk)
    except csv.Error as exc:
        # E.g. a cell over the csv module's 128 KiB limit: a feature cell is
        # a number or a category, so the file is not what it should be.
        line = reader.line_num if reader is not None else 1
        raise UsageError(
            f"{path}:{line}: not a feature CSV ({exc})",
            hint="feature cells are numbers or short categories",
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text", hint="export the CSV as UTF-8") from None


def _columns(header: list[str], rows: list[list[str]]) -> dict[str, list[str | None]]:
    return {name: [row[i] or None for row in rows] for i, name in enumerate(header)}
