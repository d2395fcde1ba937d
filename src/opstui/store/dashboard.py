"""The dashboard read model: every pipeline with its latest run, incrementally.

``Dashboard.read()`` is called on every refresh (once a second in the TUI).
Its cost follows what changed, not what the store holds:

* ``PRAGMA data_version`` tells, without touching a table, whether any other
  connection committed since the last read; if not, no query runs at all.
* Otherwise only pipelines whose runs changed after the last revision seen are
  read again, found through the ``runs_rev`` index; each one's latest run is
  one probe of the ``runs_pipeline_created`` index.

The first read visits every pipeline once (one index probe each).

A run the reader cannot show (a time beyond year 9999 from an old store or a
hand-written insert) is skipped and named (``fields.skipped``); its
pipeline shows its newest readable run instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opstui.store import fields
from opstui.store import status as st
from opstui.store.db import Store, host_name
from opstui.store.rows import PipelineRow, RunRow, StageRow

_RUN_COLUMNS = """r.id, r.status, r.trigger, r.actor, r.attempt, r.parent_run_id, r.key,
    r.created_at, r.started_at, r.finished_at, r.heartbeat_at, r.heartbeat_timeout,
    r.host, r.pid, r.message,
    CASE WHEN r.trigger = 'mlflow' OR r.key LIKE 'airflow:%' OR r.key LIKE 'prefect:%'
        THEN r.params END"""
# A run mirrored from another system names its endpoint, name and id in its
# params (store/mlflow_sync.py: "mlflow"; store/orchestrator_sync.py:
# "source"): read here, not by SQL's JSON functions, which differ between
# SQLite and PostgreSQL and fail the whole read on one hand-edited params
# that does not parse.

_PIPELINE_COLUMNS = "id, name, kind, stages, removed_at, removed_note"

#: How many older runs a pipeline whose latest run is unreadable looks back.
_LOOK_BACK = 20


def process_gone(host: str | None, pid: int | None) -> bool:
    """True when the recording process ran on this host and is dead."""
    if pid is None or host != host_name() or not 0 < pid <= fields.MAX_PID:
        # Not a process (0 or less would name a process group): nothing to ask.
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by someone else
    return False


def _chunks(ids: Sequence[int], size: int = 900) -> Iterable[Sequence[int]]:
    # SQLite limits bound variables per statement; 900 is safe everywhere.
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def stages_by_run(store: Store, run_ids: Sequence[int]) -> dict[int, list[StageRow]]:
    """Stage rows of each run, in pipeline order (as recorded: not yet derived)."""
    out: dict[int, list[StageRow]] = {rid: [] for rid in run_ids}
    make = StageRow._make
    for chunk in _chunks(run_ids):
        marks = ",".join("?" * len(chunk))
        # Columns in StageRow's field order, then run_id. Sorted here rather
        # than by SQL: the index is (run_id, name), so ORDER BY position would
        # cost a temporary b-tree for what is six rows per run.
        rows = fields.fetch_all(
            store.conn,
            f"""SELECT id, name, position, status, attempt, exit_code, started_at,
                       finished_at, message, reused_from_id, run_id
                FROM stage_runs WHERE run_id IN ({marks})""",
            chunk,
        )
        for r in rows:
            out[r[10]].append(make(r[:10]))
    for stages in out.values():
        stages.sort(key=_position)
    return out


def _position(stage: StageRow) -> int:
    return stage.position


def run_problem(r: Sequence[Any], stages: Iterable[StageRow]) -> str | None:
    """Why a row of ``_RUN_COLUMNS`` with its stages cannot be shown, or None."""
    for column, value in zip(_RUN_TIMES, r[7:11], strict=True):
        problem = fields.time_problem(column, value)
        if problem:
            return problem
    lo, hi = fields.TIME_MIN, fields.TIME_MAX
    for s in stages:
        # Inline, as this runs for every stage of every run read.
        a, b = s.started_at, s.finished_at
        if (a is not None and not lo <= a <= hi) or (b is not None and not lo <= b <= hi):
            problem = fields.time_problem("started_at", a) or fields.time_problem("finished_at", b)
            return f"stage {s.name!r}: {problem}"
    return None


_RUN_TIMES = ("created_at", "started_at", "finished_at", "heartbeat_at")


def source_health(store: Store) -> dict[str, st.SourceHealth]:
    """Each polled endpoint's last recorded state, by name (a small table)."""
    rows = fields.fetch_all(
        store.conn,
        "SELECT name, state, last_attempt_at, last_success_at FROM endpoint_status",
    )
    out = {}
    for name, state, attempt, success in rows:
        times = (attempt, *(() if success is None else (success,)))
        if all(isinstance(t, int | float) for t in times):
            out[name] = st.SourceHealth(name, state, float(attempt), success)
    return out


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _origin(params: object) -> tuple[str | None, str | None, str | None, str | None]:
    """(kind, endpoint, name, id) of a run mirrored from another system, from its params."""
    if not isinstance(params, str):
        return None, None, None, None
    try:
        doc = fields.loads_object(params, "params")
    except fields.Unreadable:
        return None, None, None, None
    mlflow, source = doc.get("mlflow"), doc.get("source")
    if isinstance(mlflow, dict):
        return (
            "mlflow",
            _text(mlflow.get("endpoint")),
            _text(mlflow.get("run_name")),
            _text(mlflow.get("run_id")),
        )
    if isinstance(source, dict):
        return (
            _text(source.get("kind")),
            _text(source.get("endpoint")),
            _text(source.get("name")),
            _text(source.get("id")),
        )
    return None, None, None, None


def build_run(
    pipeline: str,
    kind: str | None,
    r: Sequence[Any],
    stages: Iterable[StageRow],
    now: float,
    *,
    sources: Mapping[str, st.SourceHealth] | None = None,
    removed: str | None = None,
) -> RunRow:
    """Turn a row of ``_RUN_COLUMNS`` and its stage rows into a ``RunRow``.

    ``sources``: the state of the endpoints external runs come from; a stale
    external run whose source is down (or not polled) reads ``unknown``, as
    does one whose pipeline its source no longer has (``removed``: why).
    """
    recorded = r[1]
    timeout = r[11] if r[11] is not None else 60.0
    status = st.effective_run_status(
        recorded,
        r[10],
        timeout,
        now,
        process_gone=recorded in (st.RUNNING, st.QUEUED) and process_gone(r[12], r[13]),
    )
    source_kind, source, source_name, source_id = _origin(r[15])
    reason = None
    if status == st.LOST and source is not None and sources is not None:
        reason = st.source_unknown_reason(sources.get(source), timeout, now)
        if reason is None and removed is not None:
            reason = removed  # no source can tell any more what became of it
        if reason is not None:
            status = st.UNKNOWN
    if status in (st.LOST, st.UNKNOWN):
        stages = (s._replace(status=st.effective_stage_status(s.status, status)) for s in stages)
    return RunRow(
        r[0],
        pipeline,
        kind,
        status,
        recorded,
        r[2],  # trigger
        r[3],  # actor
        r[4],  # attempt
        r[5],  # parent_run_id
        r[6],  # key
        r[7],  # created_at
        r[8],  # started_at
        r[9],  # finished_at
        r[10],  # heartbeat_at
        r[14],  # message
        tuple(stages),
        source,
        source_name,
        source_id,
        reason,
        _text(r[12]),  # host
        source_kind,
    )


def _board_order(p: PipelineRow) -> tuple[bool, int, float, str]:
    run = p.latest
    newest = 0.0
    if run is not None and run.status in st.FAULTS:
        newest = -(run.finished_at or run.heartbeat_at or run.started_at or run.created_at)
    return (p.removed_note is not None, st.rank(p.status), newest, p.name)


class Dashboard:
    """Latest run of every pipeline, kept current by incremental reads.

    Not thread-safe: one ``Dashboard`` per reader (the TUI's refresh worker
    owns one). Rows it returns are immutable and safe to hand to another
    thread.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._rev = 0
        self._token: object = None
        # pipeline id -> (name, kind, declared stages, removed at, removed note)
        self._pipelines: dict[
            int, tuple[str, str | None, tuple[str, ...], float | None, str | None]
        ] = {}
        # pipeline id -> raw latest run and its stages (None: never ran)
        self._latest: dict[int, tuple[Sequence[Any], list[StageRow]] | None] = {}
        # pipeline id -> row as last built; finished runs do not depend on the
        # clock, so only running ones are rebuilt on a read with no changes.
        self._rows: dict[int, PipelineRow] = {}
        # pipeline id -> what its last read skipped, and why (kept until the
        # pipeline is read again: every read reports them)
        # (kind: "stages" or "runs") -> pipeline id -> notes
        self._notes: dict[str, dict[int, list[tuple[str, str]]]] = {"stages": {}, "runs": {}}
        #: How many pipelines the last read had to query (0 when nothing changed).
        self.last_read_changed = 0
        # endpoint name -> its last recorded state (read again on any change)
        self._sources: dict[str, st.SourceHealth] = {}

    def read(self, now: float | None = None) -> list[PipelineRow]:
        """Every pipeline, faults first (newest first), then running, then by
        name; those their source no longer has (``removed_note``) last."""
        now = self.store.clock() if now is None else now
        self._sync()
        for pid, (name, kind, stages, removed_at, removed) in self._pipelines.items():
            row = self._rows.get(pid)
            if row is not None and (
                row.latest is None or row.latest.recorded_status not in st.ACTIVE
            ):
                continue
            raw = self._latest.get(pid)
            latest = None
            if raw:
                latest = build_run(
                    name, kind, raw[0], raw[1], now, sources=self._sources, removed=removed
                )
            self._rows[pid] = PipelineRow(pid, name, kind, stages, latest, removed_at, removed)
        out = list(self._rows.values())
        # Faults newest first (a new failure lands on top), the rest by name;
        # pipelines their source no longer has go last: history, not faults.
        out.sort(key=_board_order)
        for what, why in self._all_notes():
            fields.skipped(what, why)
        return out

    def _all_notes(self) -> list[tuple[str, str]]:
        return [n for by_pid in self._notes.values() for notes in by_pid.values() for n in notes]

    @property
    def skipped(self) -> list[str]:
        """What the last read skipped, as ``skipped run 17 of web-api: why``."""
        return [f"skipped {what}: {why}" for what, why in self._all_notes()]

    def _sync(self) -> None:
        store = self.store
        with store.lock:
            token = store.change_token()
            if token == self._token:
                self.last_read_changed = 0
                return
            with store.read() as conn:
                row = conn.execute("SELECT value FROM counters WHERE name = 'rev'").fetchone()
                # The counter's table is not STRICT: a hand edit can leave text
                # (or no row). Read everything then; the next write's
                # "value + 1" makes it a number again.
                rev = row[0] if row is not None and isinstance(row[0], int) else 0
                if self._rev == 0:
                    pipelines = fields.fetch_all(conn, f"SELECT {_PIPELINE_COLUMNS} FROM pipelines")
                    changed = [p[0] for p in pipelines]
                else:
                    pipelines = fields.fetch_all(
                        conn,
                        f"SELECT {_PIPELINE_COLUMNS} FROM pipelines WHERE rev > ?",
                        (self._rev,),
                    )
                    changed = [p[0] for p in pipelines]
                    # INDEXED BY: without statistics SQLite's planner prefers
                    # to walk a pipeline index for DISTINCT, reading every
                    # run. PostgreSQL's has statistics and no such clause.
                    hint = "INDEXED BY runs_rev" if store.dialect == "sqlite" else ""
                    changed += [
                        r[0]
                        for r in conn.execute(
                            f"SELECT pipeline_id FROM runs {hint} WHERE rev > ?",
                            (self._rev,),
                        )
                    ]
                stale = sorted(set(changed))
                for pid in stale:
                    self._rows.pop(pid, None)
                    self._notes["runs"].pop(pid, None)
                for p in pipelines:
                    self._notes["stages"].pop(p[0], None)
                    removed_at = p[4] if isinstance(p[4], int | float) else None
                    note = None if p[5] is None else fields.free_text(str(p[5]))[:200]
                    self._pipelines[p[0]] = (p[1], p[2], self._declared(p), removed_at, note)
                self._refresh_latest(stale, every=self._rev == 0)
                self._sources = source_health(store)
                self._rev = int(rev)
            self._token = token
        self.last_read_changed = len(set(changed))

    def _refresh_latest(self, pipeline_ids: list[int], *, every: bool) -> None:
        conn = self.store.conn
        # Latest run id of each pipeline: one statement, one index probe per
        # pipeline (runs_pipeline_created), instead of a statement each.
        latest_sql = """SELECT p.id, (SELECT r.id FROM runs r WHERE r.pipeline_id = p.id
                                      ORDER BY r.created_at DESC, r.id DESC LIMIT 1)
                        FROM pipelines p"""
        pairs: list[tuple[int, int | None]] = []
        if every:
            pairs = conn.execute(latest_sql).fetchall()
        else:
            for chunk in _chunks(pipeline_ids):
                marks = ",".join("?" * len(chunk))
                pairs += conn.execute(f"{latest_sql} WHERE p.id IN ({marks})", chunk).fetchall()
        run_ids = [rid for _, rid in pairs if rid is not None]
        runs: dict[int, Sequence[Any]] = {}
        for chunk in _chunks(run_ids):
            marks = ",".join("?" * len(chunk))
            for row in fields.fetch_all(
                conn, f"SELECT {_RUN_COLUMNS} FROM runs r WHERE r.id IN ({marks})", chunk
            ):
                runs[row[0]] = row
        stages = stages_by_run(self.store, run_ids)
        for pid, rid in pairs:
            latest = (runs[rid], stages[rid]) if rid is not None else None
            if latest is not None and run_problem(*latest) is not None:
                latest = self._readable_latest(pid, latest)
            self._latest[pid] = latest

    def _declared(self, p: Sequence[Any]) -> tuple[str, ...]:
        """A pipeline's declared stages; unreadable ones are left out, and said so."""
        try:
            names = fields.loads(p[3], "stages", [])
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise fields.Unreadable("stages is not a JSON list of names")
        except fields.Unreadable as exc:
            self._note("stages", p[0], f"the declared stages of pipeline {p[1]!r}", str(exc))
            return ()
        return tuple(names)

    def _readable_latest(
        self, pid: int, latest: tuple[Sequence[Any], list[StageRow]]
    ) -> tuple[Sequence[Any], list[StageRow]] | None:
        """The newest run of a pipeline that can be shown, when its latest cannot.

        Only reached when a bad row is there: each step back is one probe of
        the ``runs_pipeline_created`` index.
        """
        name = self._pipelines.get(pid, ("?",))[0]
        conn = self.store.conn
        for _ in range(_LOOK_BACK):
            row, stages = latest
            problem = run_problem(row, stages)
            if problem is None:
                return latest
            self._note("runs", pid, f"run {row[0]} of {name!r}", problem)
            older = fields.fetch_all(
                conn,
                f"""SELECT {_RUN_COLUMNS} FROM runs r WHERE r.pipeline_id = ?
                      AND (r.created_at, r.id) < (?, ?)
                    ORDER BY r.created_at DESC, r.id DESC LIMIT 1""",
                (pid, row[7], row[0]),
            )
            if not older:
                return None
            latest = (older[0], stages_by_run(self.store, [older[0][0]])[older[0][0]])
        return None

    def _note(self, kind: str, pid: int, what: str, why: str) -> None:
        self._notes[kind].setdefault(pid, []).append((what, why))
