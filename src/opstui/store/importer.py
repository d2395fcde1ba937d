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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opstui.errors import OpstuiError
from opstui.store import fields
from opstui.store import metrics as store_metrics
from opstui.store import models as store_models
from opstui.store import runs as store_runs
from opstui.store.db import Store, Transaction
from opstui.store.import_records import TYPES, _Bad, _check, _identity

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
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
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
        run_id = int(cur.fetchone()[0])
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
