"""Strict validation of ``opstui.toml`` against its schema (``SCHEMA`` in
``load``, built of ``schema``'s shapes): an unknown key is an error that
names it with the closest known key; a value of the wrong type, below its
minimum, nan, inf or past 64 bits is an error that names the key; input
nested deeper than any setting is refused before anything walks it.
"""

from __future__ import annotations

import difflib
import math
from typing import Any

from opstui.config.schema import Items, Named, Spec
from opstui.errors import ConfigError


def _fail(where: str, dotted: str, words: str, value: Any) -> ConfigError:
    return ConfigError(
        f'{where}: "{dotted}" must be {words}, got {type(value).__name__} {_shown(value)!r}'
    )


def _shown(value: Any) -> Any:
    """The value as an error may quote it: a URL's password never is."""
    if isinstance(value, str) and "@" in value and "://" in value:
        scheme, _, rest = value.partition("://")
        userinfo, at, host = rest.partition("@")
        if at and "/" not in userinfo:
            return f"{scheme}://***@{host}"
    return value


def validate(data: dict[str, Any], schema: dict[str, Any], where: str, prefix: str) -> None:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema), n=1)
            hint = f' (did you mean "{prefix}{close[0]}"?)' if close else ""
            known = ", ".join(f'"{prefix}{k}"' for k in schema)
            raise ConfigError(
                f'{where}: unknown key "{dotted}"{hint}',
                hint=None if close else f"known keys here: {known}",
            )
        _validate_value(value, schema[key], where, dotted)
    for key, spec in schema.items():
        if isinstance(spec, Spec) and spec.required and key not in data:
            raise ConfigError(f'{where}: "{prefix}{key}" is required ({spec.words})')


#: TOML's integers are 64-bit; tomllib reads any length, and SQLite and
#: float arithmetic fail on what does not fit.
_INT_LIMIT = 2**63


def _unusable_number(value: Any) -> str | None:
    """Why a number anywhere in ``value`` is nonsense (nan, inf, 1e400, an int past 64 bits).

    Checked for every key, whatever its schema says: no setting means
    anything with nan (every comparison with it is false, so a minimum lets
    it through) or inf (a timeout that never fires, a sleep that overflows).
    """
    # A loop, not recursion: arrays nested thousands deep are valid TOML.
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return f"a finite number, got {item}"
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) >= _INT_LIMIT:
            # Not printed: str() of an int refuses past 4,300 digits.
            return f"a number that fits in 64 bits, got one of {item.bit_length()} bits"
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return None


def _validate_value(value: Any, spec: Any, where: str, dotted: str) -> None:
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise ConfigError(f'{where}: "{dotted}" must be a table ([{dotted}])')
        validate(value, spec, where, f"{dotted}.")
    elif isinstance(spec, Named):
        if not isinstance(value, dict):
            raise ConfigError(f'{where}: "{dotted}" must be a table of named entries')
        for name, entry in value.items():
            if not isinstance(entry, dict):
                raise ConfigError(f'{where}: "{dotted}.{name}" must be a table ([{dotted}.{name}])')
            validate(entry, spec.schema, where, f"{dotted}.{name}.")
    elif isinstance(spec, Items):
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(f'{where}: "{dotted}" must be an array of tables ([[{dotted}]])')
        for i, item in enumerate(value):
            validate(item, spec.schema, where, f"{dotted}[{i}].")
    else:
        # bool is an int in Python; never accept it for a number.
        if not isinstance(value, spec.types) or (
            isinstance(value, bool) and bool not in spec.types
        ):
            raise _fail(where, dotted, spec.words, value)
        unusable = _unusable_number(value)
        if unusable:
            raise ConfigError(f'{where}: "{dotted}" must be {unusable}')
        if spec.minimum is not None and value < spec.minimum:
            raise ConfigError(f'{where}: "{dotted}" must be at least {spec.minimum}, got {value}')
        if spec.check is not None:
            problem = spec.check(value)
            if problem:
                raise _fail(where, dotted, problem, value)


#: Deeper than any setting nests; deeper input is refused before anything
#: walks it recursively.
MAX_DEPTH = 16


def too_deep(where: str) -> ConfigError:
    return ConfigError(
        f"{where} nests arrays or tables more than {MAX_DEPTH} deep",
        hint="no opstui setting is nested like that; is this the right file?",
    )


def nesting_depth(data: object) -> int:
    deepest = 0
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest
