"""Runs an orchestrator keeps (Airflow DAG runs), mirrored into the store with their stages.

A run is keyed ``<kind>:<endpoint>:<dag>:<run id>`` and names where it
came from in its params (``source``: kind, endpoint, name, id), which the
dashboard reads to show the source and to say ``unknown (source down)``
when its endpoint stops answering, never ``lost``. Its stages are upserted
by name; a run or stage that changed stamps the run with the
transaction's revision, one that did not costs no write. The source's
watermark advances in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from opstui.store import fields
from opstui.store import status as st
from opstui.store.db import Store, Transaction
from opstui.store.metrics import advance_watermark
from opstui.store.runs import ensure_pipeline


class OrchestratedStage(NamedTuple):
    name: str
    position: int
    status: str
    attempt: int
    started_at: float | None
    finished_at: float | None
    message: str | None


class OrchestratedRun(NamedTuple):
    key: str
    pipeline: str
    kind: str | None
    status: str
    trigger: str
    actor: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    message: str | None
    params: Mapping[str, Any]
    #: Seconds without a sync after which a running run reads unknown or lost.
    heartbeat_timeout: float
    stages: tuple[OrchestratedStage, ...]


class Listed(NamedTuple):
    """A pipeline its source lists now."""

    kind: str | None
    #: Why it is marked though listed (an Airflow DAG whose file is gone); None: live.
    note: str | None = None
    #: A pipeline before its first run (a DAG, a deployment), or only a name
    #: runs may use (a Prefect flow, a DAG the endpoint does not poll).
    create: bool = True


class Listing(NamedTuple):
    """Everything a source lists now, read to the end (an incomplete read is
    no listing: nothing is marked on half an answer)."""

    #: By pipeline name (``airflow/<dag id>``).
    pipelines: Mapping[str, Listed]
    #: The mark of a pipeline mirrored from the source that it no longer
    #: lists: ``deleted in Airflow``.
    gone: str


class SyncResult(NamedTuple):
    added: int = 0
    changed: int = 0
    skipped: tuple[str, ...] = ()


def run_key(kind: str, endpoint: str, name: str, run_id: str) -> str:
    return f"{kind}:{endpoint}:{name}:{run_id}"


def active_runs(store: Store, endpoint: str, kind: str = "airflow") -> list[tuple[str, str]]:
    """(name, id) of the runs of ``endpoint`` the store holds as queued or running."""
    rows = store.query(
        "SELECT params FROM runs WHERE key LIKE ? AND status IN (?, ?)",
        (f"{kind}:{endpoint}:%", st.QUEUED, st.RUNNING),
    )
    out = []
    for (params,) in rows:
        try:
            source = fields.loads_object(params, "params").get("source")
        except fields.Unreadable:
            continue
        if (
            isinstance(source, dict)
            and isinstance(source.get("name"), str)
            and isinstance(source.get("id"), str)
        ):
            out.append((source["name"], source["id"]))
    return out


def settled_runs(store: Store, keys: Sequence[str]) -> dict[str, tuple[str, float | None]]:
    """(status, finished_at) of the finished runs among ``keys`` the store
    holds: a source's run still in that state needs no second look at its
    stages."""
    out: dict[str, tuple[str, float | None]] = {}
    with store.read() as conn:
        for i in range(0, len(keys), 900):  # SQLite's bound-variable limit
            chunk = keys[i : i + 900]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT key, status, finished_at FROM runs WHERE key IN ({marks})", chunk
            ).fetchall()
            out.update((r[0], (r[1], r[2])) for r in rows if r[1] in st.FINISHED)
    return out


def sync_runs(
    store: Store,
    runs: Sequence[OrchestratedRun],
    *,
    watermark: tuple[str, str, float] | None,
    by: str,
    source: str | None = None,
    listing: Listing | None = None,
) -> SyncResult:
    """Write ``runs`` and advance ``watermark`` (source, name, through) in one transaction.

    ``source``: the endpoint they come from; with a ``listing`` of what it has
    now, its pipelines are made (a DAG that never ran is a pipeline too),
    marked when it no longer has them, and unmarked when they come back."""
    now = store.clock()
    added = changed = 0
    skipped: list[str] = []
    with store.write() as tx:
        for run in runs:
            try:
                _check(run)
            except fields.BadValue as exc:
                skipped.append(f"run {run.key[:120]!r}: {exc}")
                continue
            outcome = _upsert(tx, run, now, source)
            added += outcome == "added"
            changed += outcome == "changed"
        if source is not None and listing is not None:
            skipped += _reconcile(tx, source, listing, now)
        if watermark is not None:
            source, name, through = watermark
            advance_watermark(tx, source, name, through, now=now, by=by)
    return SyncResult(added, changed, tuple(skipped))


def _check(run: OrchestratedRun) -> None:
    fields.name(run.key, "run key")
    fields.name(run.pipeline, "pipeline name")
    fields.name(run.trigger, "trigger")
    for stage in run.stages:
        fields.name(stage.name, "stage name")
    for value, what in ((run.created_at, "created"), (run.started_at, "started"),
                        (run.finished_at, "finished")):  # fmt: skip
        fields.optional_timestamp(value, f"{what} time")
    for stage in run.stages:
        fields.optional_timestamp(stage.started_at, "stage start")
        fields.optional_timestamp(stage.finished_at, "stage end")


def _upsert(tx: Transaction, run: OrchestratedRun, now: float, source: str | None) -> str | None:
    active = run.status in st.ACTIVE
    heartbeat = now if active else (run.finished_at or now)
    params = fields.json_object(run.params, "run params", lenient=True)
    message = None if run.message is None else fields.free_text(run.message)[:500]
    row = tx.execute(
        "SELECT id, status, finished_at, message, params FROM runs WHERE key = ?", (run.key,)
    ).fetchone()
    if row is None:
        pipeline_id = ensure_pipeline(tx, run.pipeline, kind=run.kind, now=now, source=source)
        run_id = tx.execute(
            """INSERT INTO runs(pipeline_id, key, status, trigger, actor, attempt, created_at,
                   started_at, finished_at, heartbeat_at, heartbeat_timeout, message, params,
                   rev)
               VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
            (
                pipeline_id, run.key, run.status, run.trigger, run.actor, run.created_at,
                run.started_at, run.finished_at, heartbeat, run.heartbeat_timeout, message,
                params, tx.rev,
            ),
        ).fetchone()[0]  # fmt: skip
        _stages(tx, int(run_id), run.stages)
        return "added"
    stages_moved = _stages(tx, int(row[0]), run.stages)
    same = (row[1], row[2], row[3], row[4]) == (run.status, run.finished_at, message, params)
    if same and not stages_moved and not active:
        return None  # finished and unchanged: no write, no revision
    tx.execute(
        """UPDATE runs SET status = ?, started_at = coalesce(?, started_at), finished_at = ?,
               message = ?, params = ?, heartbeat_at = ?, heartbeat_timeout = ?, rev = ?
           WHERE id = ?""",
        (
            run.status, run.started_at, run.finished_at, message, params, heartbeat,
            run.heartbeat_timeout, tx.rev, row[0],
        ),
    )  # fmt: skip
    return "changed" if not same or stages_moved else None


def _reconcile(tx: Transaction, source: str, listing: Listing, now: float) -> list[str]:
    """Make, mark and unmark ``source``'s pipelines after what it lists; what
    was skipped (a name the store cannot hold)."""
    held = {
        r[1]: r
        for r in tx.execute(
            "SELECT id, name, kind, removed_at, removed_note FROM pipelines WHERE source = ?",
            (source,),
        )
    }
    skipped = []
    for name, item in listing.pipelines.items():
        if name in held or not item.create:
            continue
        try:
            pid = ensure_pipeline(tx, name, kind=item.kind, now=now, source=source)
        except fields.BadValue as exc:
            skipped.append(f"pipeline {name[:120]!r}: {exc}")
            continue
        held[name] = (pid, name, item.kind, None, None)
    for name, (pid, _, kind, removed_at, note) in held.items():
        listed = listing.pipelines.get(name)
        want = listing.gone if listed is None else listed.note
        new_kind = kind if listed is None or listed.kind is None else listed.kind
        if (want, new_kind) == (note, kind):
            continue
        # Since when it is gone: the first time it was missed, kept while it stays so.
        since = None if want is None else (removed_at if removed_at is not None else now)
        tx.execute(
            """UPDATE pipelines SET removed_at = ?, removed_note = ?, kind = ?, rev = ?
               WHERE id = ?""",
            (since, want, new_kind, tx.rev, pid),
        )
    return skipped


def _stages(tx: Transaction, run_id: int, stages: Sequence[OrchestratedStage]) -> bool:
    """Upsert a run's stages by name; True if any changed."""
    held = {
        r[0]: tuple(r[1:])
        for r in tx.execute(
            """SELECT name, position, status, attempt, started_at, finished_at, message
               FROM stage_runs WHERE run_id = ?""",
            (run_id,),
        )
    }
    moved = False
    for s in stages:
        message = None if s.message is None else fields.free_text(s.message)[:500]
        now = (s.position, s.status, s.attempt, s.started_at, s.finished_at, message)
        if held.get(s.name) == now:
            continue
        moved = True
        tx.execute(
            """INSERT INTO stage_runs(run_id, name, position, status, attempt, started_at,
                   finished_at, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(run_id, name) DO UPDATE SET position = excluded.position,
                   status = excluded.status, attempt = excluded.attempt,
                   started_at = excluded.started_at, finished_at = excluded.finished_at,
                   message = excluded.message""",
            (run_id, s.name, *now),
        )
    return moved
