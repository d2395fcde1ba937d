"""Checking one JSONL history record before anything is written.

Each record type (pipeline, run, model_version, deployment, metrics,
features) has its required and optional keys, their kinds and ranges, and
its times normalised to epoch seconds here; ``_Bad`` carries the reason a
line is refused, which ``importer`` reports as ``file:line: reason``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from opstui.store import fields
from opstui.store import models as store_models
from opstui.store import status as st
from opstui.timeutil import parse_time

TYPES = ("pipeline", "run", "model_version", "deployment", "metrics", "features")


class _Bad(Exception):
    pass


def _req(d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if key not in d or d[key] is None:
        raise _Bad(f'{what} is missing "{key}"')
    value = d[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
        raise _Bad(f'{what}: "{key}" has the wrong type ({type(value).__name__})')
    if isinstance(value, str) and key not in _FREE_TEXT and len(value) > fields.NAME_MAX:
        raise _Bad(
            f'{what}: "{key}" is {len(value):,} characters long (at most {fields.NAME_MAX:,})'
        )
    return value


def _opt(d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if d.get(key) is None:
        return None
    return _req(d, key, kind, what)


#: Fields of free text, whose length is not a name's.
_FREE_TEXT = frozenset({"message"})


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _time(d: Mapping[str, Any], key: str, what: str, *, required: bool = False) -> float | None:
    if d.get(key) is None:
        if required:
            raise _Bad(f'{what} is missing "{key}"')
        return None
    try:
        seconds = parse_time(d[key])
    except ValueError as exc:
        raise _Bad(f'{what}: "{key}": {exc}') from None
    if fields.time_problem(key, seconds):
        # Readers turn every time into a date: one beyond datetime's years made
        # `opstui status` fail for the whole store.
        raise _Bad(f'{what}: "{key}" {fields.show(d[key])} is out of range ({fields.TIME_RANGE})')
    return seconds


def _one_of(d: Mapping[str, Any], key: str, allowed: Iterable[str], what: str, default: str) -> str:
    value = d.get(key, default)
    allowed = sorted(allowed)
    if value not in allowed:
        raise _Bad(f'{what}: "{key}" must be one of {", ".join(allowed)}, not {fields.show(value)}')
    return str(value)


def _check(rec: dict[str, Any]) -> dict[str, Any]:
    """Validate one record and normalise its times to epoch seconds."""
    kind = rec.get("type")
    if kind not in TYPES:
        raise _Bad(f'"type" must be one of {", ".join(TYPES)}, not {fields.show(kind)}')
    # Whatever a reader would choke on, anywhere in the line: deep nesting,
    # lone surrogates (SQLite cannot encode them), integers beyond int64, NaN.
    # Feature cells may be missing (NaN is stored as null), so they are
    # checked on their own below.
    try:
        for key, value in rec.items():
            if key != "columns":
                fields.check_tree(value, f"{kind}: {json.dumps(key[:40])}")
    except fields.BadValue as exc:
        raise _Bad(str(exc)) from None
    out = dict(rec)
    if kind == "pipeline":
        _req(rec, "name", str, "pipeline")
        _opt(rec, "kind", str, "pipeline")
        stages = _opt(rec, "stages", list, "pipeline") or []
        if not all(isinstance(s, str) for s in stages):
            raise _Bad('pipeline: "stages" must be a list of names')
    elif kind == "run":
        _req(rec, "key", str, "run")
        _req(rec, "pipeline", str, "run")
        _one_of(rec, "status", st.RUN_STATUSES, "run", "")
        _opt(rec, "parent", str, "run")
        _opt(rec, "attempt", int, "run")
        _opt(rec, "params", dict, "run")
        for k in ("trigger", "actor", "host", "message"):
            _opt(rec, k, str, "run")
        timeout = _opt(rec, "heartbeat_timeout", (int, float), "run")
        if timeout is not None and not 0 < timeout <= fields.TIME_MAX:
            raise _Bad('run: "heartbeat_timeout" must be a positive number of seconds')
        for k in ("created_at", "started_at", "finished_at", "heartbeat_at"):
            out[k] = _time(rec, k, "run")
        if out["created_at"] is None:
            out["created_at"] = out["started_at"]
        if out["created_at"] is None:
            raise _Bad('run needs "created_at" or "started_at"')
        stages = []
        for i, s in enumerate(_opt(rec, "stages", list, "run") or []):
            what = f"run stage {i}"
            if not isinstance(s, dict):
                raise _Bad(f"{what} must be an object")
            _req(s, "name", str, what)
            _one_of(s, "status", st.STAGE_STATUSES, what, "")
            _opt(s, "exit_code", int, what)
            _opt(s, "attempt", int, what)
            stage = dict(s)
            stage["started_at"] = _time(s, "started_at", what)
            stage["finished_at"] = _time(s, "finished_at", what)
            logs: list[tuple[float | None, str, str]] = []
            for j, line in enumerate(_opt(s, "logs", list, what) or []):
                if isinstance(line, str):
                    logs.append((None, "log", line))
                elif isinstance(line, dict) and isinstance(line.get("line"), str):
                    logs.append(
                        (
                            _time(line, "ts", f"{what} log {j}"),
                            str(line.get("stream", "log")),
                            line["line"],
                        )
                    )
                else:
                    raise _Bad(f'{what} log {j} must be a string or {{"line": ...}}')
            stage["logs"] = logs
            stages.append(stage)
        out["stages"] = stages
    elif kind == "model_version":
        _req(rec, "model", str, "model_version")
        _req(rec, "version", str, "model_version")
        _one_of(rec, "status", store_models.MODEL_STATUSES, "model_version", "candidate")
        for k in ("params", "metrics", "gate"):
            _opt(rec, k, dict, "model_version")
        _opt(rec, "run", str, "model_version")
        out["created_at"] = _time(rec, "created_at", "model_version", required=True)
    elif kind == "deployment":
        for k in ("key", "environment", "target", "version"):
            _req(rec, k, str, "deployment")
        _one_of(rec, "target_kind", ("service", "model"), "deployment", "service")
        _one_of(rec, "status", store_models.DEPLOY_STATUSES, "deployment", "succeeded")
        _one_of(rec, "action", ("deploy", "rollback"), "deployment", "deploy")
        _opt(rec, "replaces", str, "deployment")
        _opt(rec, "run", str, "deployment")
        out["deployed_at"] = _time(rec, "deployed_at", "deployment", required=True)
    elif kind == "metrics":
        for k in ("key", "source", "name"):
            _req(rec, k, str, "metrics")
        _opt(rec, "labels", dict, "metrics")
        points = _req(rec, "points", list, "metrics")
        clean = []
        for i, p in enumerate(points):
            if (
                not isinstance(p, list)
                or len(p) != 2
                or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in p)
            ):
                raise _Bad(f"metrics point {i} must be [unix_seconds, value], got {fields.show(p)}")
            if fields.time_problem("time", p[0]):
                raise _Bad(
                    f"metrics point {i}: time {p[0]!r} is out of range ({fields.TIME_RANGE})"
                )
            clean.append((float(p[0]), float(p[1])))
        out["points"] = clean
    elif kind == "features":
        for k in ("key", "model"):
            _req(rec, k, str, "features")
        _one_of(rec, "kind", store_models.FEATURE_KINDS, "features", "current")
        _opt(rec, "version", str, "features")
        columns = _req(rec, "columns", dict, "features")
        lengths = {len(v) if isinstance(v, list) else -1 for v in columns.values()}
        if -1 in lengths or len(lengths) > 1 or not columns:
            raise _Bad('features: "columns" must map names to lists of equal length')
        _check_cells(columns)
        out["created_at"] = _time(rec, "created_at", "features", required=True)
    return out


def _check_cells(columns: Mapping[str, list[Any]]) -> None:
    for column, cells in columns.items():
        if len(column) > fields.NAME_MAX:
            raise _Bad(f"features: a column name is {len(column):,} characters long")
        for i, cell in enumerate(cells):
            if isinstance(cell, dict | list):
                raise _Bad(
                    f"features: column {column[:40]!r} row {i} is a {type(cell).__name__}, "
                    "not a number, text or null"
                )
        try:
            # NaN and infinities are allowed: stored as missing values.
            fields.check_tree(cells, f"features column {column[:40]!r}", finite_only=False)
            fields.check_tree(column, "features: a column name")
        except fields.BadValue as exc:
            raise _Bad(str(exc)) from None


def _identity(d: Mapping[str, Any]) -> tuple[str, ...]:
    """What makes a record the same record on a second import."""
    if d["type"] == "pipeline":
        return ("pipeline", d["name"])
    if d["type"] == "model_version":
        return ("model_version", d["model"], d["version"])
    return (d["type"], d["key"])
