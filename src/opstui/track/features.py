"""Feature data in the shapes a pipeline holds it (a mapping of columns, a
list of row dicts, a DataFrame), as the store takes it: ``{column: values}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opstui.errors import UsageError


def as_columns(data: Any) -> dict[str, list[Any]]:
    """Normalise feature data to ``{column: values}``."""
    if hasattr(data, "to_dict"):
        return {str(k): list(v) for k, v in data.to_dict(orient="list").items()}
    if isinstance(data, Mapping):
        return {str(k): list(v) for k, v in data.items()}
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        rows = list(data)
        if rows and all(isinstance(r, Mapping) for r in rows):
            names: dict[str, None] = {}
            for r in rows:
                names.update(dict.fromkeys(str(k) for k in r))
            return {n: [r.get(n) for r in rows] for n in names}
    raise UsageError(
        "feature data must be a mapping of column to values, a list of row dicts, "
        f"or a DataFrame, not {type(data).__name__}"
    )
