"""Importing recorded history from JSONL (the ``sample_runs/`` format).

Every line is one JSON object with a ``type``; the format is documented in
the README ("History files"). An import is all or nothing: every file is
parsed and validated first, and any bad line is reported as ``file:line:
reason`` with nothing written; then everything is applied in one transaction.
Importing the same files twice adds nothing: runs, deployments, metric
batches and feature batches carry a ``key``; pipelines and model versions
are identified by name.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opstui.errors import OpstuiError
from opstui.store import fields
from opstui.store import metrics as store_metrics
from opstui.store import models as store_models
from opstui.store import runs as store_runs
from opstui.store import status as st
from opstui.store.db import Store, Transaction
from opstui.timeutil import parse_time

TYPES = ("pipeline", "run", "model_version", "deployment", "metrics", "features")
MAX_REPORTED = 20


class ImportFailed(OpstuiError):
    """One or more lines of the input are bad; nothing was imported."""


@dataclass
class Record:
    where: str  # "file:line"
    data: dict[str, Any]


@dataclass
class ImportSummary:
    added: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TYPES, 0))
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TYPES, 0))
    files: int = 0
    shifted_by: float = 0.0


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


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files to import: each path, or every ``*.jsonl`` in a directory, sorted."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(p.glob("*.jsonl"))
            if not found:
                raise ImportFailed(
                    f"{p} holds no .jsonl files", hint="pass JSONL files or their folder"
                )
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise ImportFailed(f"{p} does not exist")
    return files


def read_records(files: Iterable[Path]) -> list[Record]:
    """Parse and validate every line; raise ``ImportFailed`` listing bad lines."""
    records: list[Record] = []
    errors: list[str] = []
    seen: dict[tuple[str, ...], str] = {}
    for path in files:
        try:
            handle = path.open(encoding="utf-8")
        except OSError as exc:
            raise ImportFailed(f"cannot read {path}: {exc.strerror}") from None
        with handle:
            try:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    where = f"{path}:{number}"
                    try:
                        data = json.loads(line)
                    except json.JSONDecodeError as exc:
                        errors.append(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})")
                        continue
                    except RecursionError:
                        errors.append(
                            f"{where}: the line nests deeper than {fields.DEPTH_MAX} levels"
                        )
                        continue
                    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
                        errors.append(f"{where}: not valid JSON ({exc})")
                        continue
                    if not isinstance(data, dict):
                        errors.append(f"{where}: expected a JSON object, got {type(data).__name__}")
                        continue
                    try:
                        record = Record(where, _check(data))
                    except _Bad as exc:
                        errors.append(f"{where}: {exc}")
                        continue
                    identity = _identity(record.data)
                    if identity in seen:
                        errors.append(f"{where}: duplicates the record on {seen[identity]}")
                        continue
                    seen[identity] = where
                    records.append(record)
            except UnicodeDecodeError:
                errors.append(f"{path}: not UTF-8 text")
    if errors:
        more = f" (and {len(errors) - MAX_REPORTED} more)" if len(errors) > MAX_REPORTED else ""
        raise ImportFailed(
            f"{len(errors)} bad line(s), nothing was imported{more}:",
            details=tuple(errors[:MAX_REPORTED]),
        )
    return records


def _latest_time(records: list[Record]) -> float | None:
    latest: float | None = None
    for r in records:
        d = r.data
        times = [d.get(k) for k in ("created_at", "started_at", "finished_at", "deployed_at")]
        if d["type"] == "metrics" and d["points"]:
            times.append(max(p[0] for p in d["points"]))
        for t in times:
            if isinstance(t, float) and (latest is None or t > latest):
                latest = t
    return latest


def _shift(records: list[Record], by: float) -> None:
    where = ""

    def sh(t: float | None) -> float | None:
        if t is None:
            return None
        if fields.time_problem("time", t + by):
            raise ImportFailed(
                f"{where}: --shift-to-now moves its time {t:.0f} out of range "
                f"({fields.TIME_RANGE}); nothing was imported"
            )
        return t + by

    for r in records:
        where = r.where
        d = r.data
        for k in ("created_at", "started_at", "finished_at", "heartbeat_at", "deployed_at"):
            if k in d:
                d[k] = sh(d[k])
        if d["type"] == "run":
            for s in d["stages"]:
                s["started_at"], s["finished_at"] = sh(s["started_at"]), sh(s["finished_at"])
                s["logs"] = [(sh(ts), stream, line) for ts, stream, line in s["logs"]]
        elif d["type"] == "metrics":
            d["points"] = [(sh(t), v) for t, v in d["points"]]


def import_files(
    store: Store, paths: Iterable[str | Path], *, shift_to: float | None = None
) -> ImportSummary:
    """Import JSONL history into ``store`` atomically; see the module docstring.

    With ``shift_to`` every timestamp moves so the newest one lands there
    (the demo uses it so two-week-old sample history looks current).
    """
    files = expand_paths(paths)
    records = read_records(files)
    summary = ImportSummary(files=len(files))
    if shift_to is not None:
        latest = _latest_time(records)
        if latest is not None:
            summary.shifted_by = shift_to - latest
            _shift(records, summary.shifted_by)
    by_type: dict[str, list[Record]] = {t: [] for t in TYPES}
    for r in records:
        by_type[r.data["type"]].append(r)
    try:
        _apply(store, by_type, summary)
    except (sqlite3.Error, OverflowError, ValueError, UnicodeError) as exc:
        # Validation should have caught it; the transaction rolled back.
        names = ", ".join(str(f) for f in files[:3]) + (" ..." if len(files) > 3 else "")
        raise ImportFailed(f"cannot store {names} ({exc}); nothing was imported") from None
    return summary


def _apply(store: Store, by_type: dict[str, list[Record]], summary: ImportSummary) -> None:
    now = store.clock()
    with store.write() as tx:
        for r in by_type["pipeline"]:
            d = r.data
            existed = tx.execute("SELECT 1 FROM pipelines WHERE name = ?", (d["name"],)).fetchone()
            store_runs.ensure_pipeline(
                tx, d["name"], kind=d.get("kind"), stages=d.get("stages"), now=now
            )
            _count(summary, "pipeline", not existed)
        run_ids = _apply_runs(tx, by_type["run"], summary, now)
        for r in sorted(by_type["model_version"], key=lambda r: r.data["created_at"]):
            d = r.data
            _, created = store_models.add_model_version(
                tx,
                d["model"],
                version=d["version"],
                run_id=_ref(tx, run_ids, d.get("run"), r),
                status=d.get("status", "candidate"),
                data_hash=d.get("data_hash"),
                code_version=d.get("code_version"),
                params=d.get("params"),
                metrics=d.get("metrics"),
                gate=d.get("gate"),
                created_at=d["created_at"],
            )
            _count(summary, "model_version", created)
        for r in sorted(by_type["deployment"], key=lambda r: r.data["deployed_at"]):
            d = r.data
            replaces = None
            if d.get("replaces"):
                row = tx.execute(
                    "SELECT id FROM deployments WHERE key = ?", (d["replaces"],)
                ).fetchone()
                if row is None:
                    raise ImportFailed(
                        f'{r.where}: "replaces" names unknown deployment {d["replaces"]!r}'
                    )
                replaces = int(row[0])
            _, created = store_models.add_deployment(
                tx,
                environment=d["environment"],
                target=d["target"],
                version=d["version"],
                target_kind=d.get("target_kind", "service"),
                status=d.get("status", "succeeded"),
                action=d.get("action", "deploy"),
                actor=d.get("actor"),
                run_id=_ref(tx, run_ids, d.get("run"), r),
                deployed_at=d["deployed_at"],
                key=d["key"],
                replaces_id=replaces,
                message=d.get("message"),
            )
            _count(summary, "deployment", created)
        for r in by_type["metrics"]:
            d = r.data
            if tx.execute("SELECT 1 FROM imported WHERE key = ?", (d["key"],)).fetchone():
                _count(summary, "metrics", False)
                continue
            sid = store_metrics.ensure_series(tx, d["source"], d["name"], d.get("labels"))
            run_id = _ref(tx, run_ids, d.get("run"), r)
            store_metrics.insert_samples(tx, ((sid, t, v, run_id, None) for t, v in d["points"]))
            tx.execute("INSERT INTO imported(key, imported_at) VALUES (?, ?)", (d["key"], now))
            _count(summary, "metrics", True)
        for r in by_type["features"]:
            d = r.data
            _, created = store_models.add_feature_batch(
                tx,
                d["model"],
                d["columns"],
                kind=d.get("kind", "current"),
                version=d.get("version"),
                run_id=_ref(tx, run_ids, d.get("run"), r),
                created_at=d["created_at"],
                key=d["key"],
            )
            _count(summary, "features", created)


def _count(summary: ImportSummary, kind: str, created: bool) -> None:
    (summary.added if created else summary.skipped)[kind] += 1


def _ref(tx: Transaction, run_ids: dict[str, int], key: str | None, r: Record) -> int | None:
    if key is None:
        return None
    if key in run_ids:
        return run_ids[key]
    row = tx.execute("SELECT id FROM runs WHERE key = ?", (key,)).fetchone()
    if row is None:
        raise ImportFailed(f"{r.where}: refers to run {key!r}, which is in no file nor the store")
    run_ids[key] = int(row[0])
    return run_ids[key]


def _apply_runs(
    tx: Transaction, records: list[Record], summary: ImportSummary, now: float
) -> dict[str, int]:
    run_ids: dict[str, int] = {}
    new: list[Record] = []
    pipelines: dict[str, int] = {}
    for r in sorted(records, key=lambda r: r.data["created_at"]):
        d = r.data
        found = tx.execute("SELECT id FROM runs WHERE key = ?", (d["key"],)).fetchone()
        if found:
            run_ids[d["key"]] = int(found[0])
            _count(summary, "run", False)
            continue
        name = d["pipeline"]
        if name not in pipelines:
            pipelines[name] = store_runs.ensure_pipeline(tx, name, now=now)
        status = d["status"]
        cur = tx.execute(
            """INSERT INTO runs(pipeline_id, key, status, trigger, actor, attempt, created_at,
                   started_at, finished_at, heartbeat_at, heartbeat_timeout, host, message,
                   params, rev)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                pipelines[name],
                d["key"],
                status,
                d.get("trigger", "manual"),
                d.get("actor"),
                d.get("attempt", 1),
                d["created_at"],
                d.get("started_at"),
                d.get("finished_at"),
                d.get("heartbeat_at") or d.get("finished_at") or d.get("started_at"),
                float(d.get("heartbeat_timeout") or 60.0),
                d.get("host"),
                d.get("message"),
                json.dumps(d.get("params") or {}),
                tx.rev,
            ),
        )
        run_id = int(cur.lastrowid or 0)
        run_ids[d["key"]] = run_id
        stage_rows = []
        for pos, s in enumerate(d["stages"]):
            stage_rows.append(
                (
                    run_id,
                    s["name"],
                    pos,
                    s["status"],
                    s.get("attempt", 1),
                    s.get("exit_code"),
                    s["started_at"],
                    s["finished_at"],
                    s.get("message"),
                )
            )
        try:
            tx.conn.executemany(
                """INSERT INTO stage_runs(run_id, name, position, status, attempt, exit_code,
                       started_at, finished_at, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                stage_rows,
            )
        except Exception as exc:
            raise ImportFailed(f"{r.where}: cannot store its stages ({exc})") from None
        logs = []
        for s in d["stages"]:
            if not s["logs"]:
                continue
            (sid,) = tx.execute(
                "SELECT id FROM stage_runs WHERE run_id = ? AND name = ?", (run_id, s["name"])
            ).fetchone()
            start = s["started_at"] or d["created_at"]
            end = s["finished_at"] or start
            n = len(s["logs"])
            for i, (ts, stream, line) in enumerate(s["logs"]):
                when = ts if ts is not None else start + (end - start) * (i + 1) / (n + 1)
                logs.append((sid, when, stream, line))
        tx.conn.executemany(
            "INSERT INTO log_lines(stage_run_id, ts, stream, line) VALUES (?, ?, ?, ?)", logs
        )
        new.append(r)
        _count(summary, "run", True)
    # Parents are linked once every run exists, so file order does not matter.
    for r in new:
        parent = r.data.get("parent")
        if parent is None:
            continue
        parent_id = run_ids.get(parent)
        if parent_id is None:
            row = tx.execute("SELECT id FROM runs WHERE key = ?", (parent,)).fetchone()
            if row is None:
                raise ImportFailed(f"{r.where}: parent run {parent!r} is in no file nor the store")
            parent_id = int(row[0])
        tx.execute(
            "UPDATE runs SET parent_run_id = ? WHERE id = ?", (parent_id, run_ids[r.data["key"]])
        )
    return run_ids
