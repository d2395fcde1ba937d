"""A run in progress (``ActiveRun``) and a run another process started
(``AttachedRun``): the run's lifecycle, its background thread (flushes and
heartbeats), buffered log lines and metric samples, and model versions,
features and deployments written at once. Why it buffers and beats, and what
a lost store does to it: the package's docstring.
"""

from __future__ import annotations

import os
import threading
import time
import types
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opstui.errors import UsageError
from opstui.store import fields
from opstui.store import metrics as store_metrics
from opstui.store import models as store_models
from opstui.store import runs as store_runs
from opstui.store import status as st
from opstui.store.failures import FATAL_WRITE_ERRORS, RETRYABLE_WRITE_ERRORS, StoreGone
from opstui.track.features import as_columns
from opstui.track.stage import ActiveStage, describe

#: A buffered metric sample: name, labels, time, value, step.
_Sample = tuple[str, Mapping[str, object] | None, float, float, int | None]
#: Seconds a full buffer waits before trying a store that refused a flush again.
RETRY_AFTER = 1.0
#: Rows a run holds while its store is out of reach before a log call waits for it.
HOLD_MAX = 1_000_000

if TYPE_CHECKING:
    from opstui.track.tracker import Tracker


class ActiveRun:
    """A run in progress. Use it as a context manager."""

    def __init__(
        self,
        tracker: Tracker,
        pipeline: str,
        *,
        stages: Sequence[str] | None,
        kind: str | None,
        trigger: str,
        parent: int | None,
        key: str | None,
        params: Mapping[str, Any] | None,
    ) -> None:
        self.tracker = tracker
        self.store = tracker.store
        self.pipeline = pipeline
        self._stages = list(stages) if stages is not None else None
        self._kind = kind
        self._trigger = trigger
        self._parent = parent
        self._key = key
        self._params = dict(params or {})
        self.id: int = 0
        self.status: str | None = None
        self._stage: ActiveStage | None = None
        self._logs: list[store_runs.LogRow] = []
        self._samples: list[_Sample] = []
        #: When the store last refused a flush (monotonic; 0: it has not).
        self._refused_at = 0.0
        self._buffer_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._background_error: BaseException | None = None

    # -- lifecycle -----------------------------------------------------------

    def __enter__(self) -> ActiveRun:
        t = self.tracker
        self.id, _ = store_runs.create_run(
            self.store,
            self.pipeline,
            stages=self._stages,
            kind=self._kind,
            trigger=self._trigger,
            actor=t.actor,
            parent_run_id=self._parent,
            key=self._key,
            # Three missed beats before a reader calls the run lost.
            heartbeat_timeout=max(3 * t.heartbeat_interval, 15.0),
            pid=os.getpid(),
            params=self._params,
        )
        self._thread = threading.Thread(
            target=self._background, name=f"opstui-run-{self.id}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if isinstance(exc, FATAL_WRITE_ERRORS):
            return  # the store cannot take the run's end either: the error says so
        self.flush()
        if exc_type is None:
            self.status = store_runs.finish_run(self.store, self.id)
        elif issubclass(exc_type, KeyboardInterrupt):
            self.status = store_runs.finish_run(
                self.store, self.id, status=st.CANCELLED, message="interrupted (Ctrl-C)"
            )
        else:
            self.status = store_runs.finish_run(
                self.store, self.id, status=st.FAILED, message=describe(exc)
            )

    def _background(self) -> None:
        # One thread per run: flushes buffers and beats the heartbeat, so a
        # long silent stage (a model fitting for an hour) still reads as alive.
        beats_every = self.tracker.heartbeat_interval
        since_beat = 0.0
        tick = min(self.tracker.flush_interval, beats_every)
        while not self._stop.wait(tick):
            try:
                # A stat: a deleted store is noticed now, not at the next write.
                self.store.check_same_file(unwritten=f"the rest of run {self.id}")
                self.flush()
                since_beat += tick
                if since_beat >= beats_every:
                    store_runs.heartbeat(self.store, self.id)
                    since_beat = 0.0
            except StoreGone as exc:
                # Nothing more can be recorded: stop beating (the run reads
                # lost, which is the truth) and fail the caller's next call.
                self._background_error = exc
                return
            except RETRYABLE_WRITE_ERRORS:
                # Busy, or a PostgreSQL server restarting: the rows stay in
                # the buffer and the next tick tries again. Readers see the
                # run lost meanwhile if it lasts: the truth, as they see it.
                continue
            except Exception as exc:  # surfaced by the caller's next call
                self._background_error = exc

    # -- stages --------------------------------------------------------------

    def stage(self, name: str) -> ActiveStage:
        """A stage of this run, started when its ``with`` block is entered."""
        return ActiveStage(self, name)

    def skip_stage(self, name: str, reason: str | None = None) -> None:
        """Mark a declared stage skipped (it will not run in this run)."""
        self._raise_background()
        store_runs.finish_stage(self.store, self.id, name, status=st.SKIPPED, message=reason)

    # -- recording -----------------------------------------------------------

    def log(self, line: str, *, stream: str = "log") -> None:
        """Append a line to the log of the stage in progress."""
        if self._stage is None or not self._stage.id:
            raise UsageError("run.log() needs a stage in progress: use `with run.stage(...)`")
        self._stage.log(line, stream=stream)

    def log_metric(
        self,
        name: str,
        value: float,
        *,
        step: int | None = None,
        labels: Mapping[str, object] | None = None,
        ts: float | None = None,
    ) -> None:
        """Record a metric value of this run (series ``pipeline/<name>``).

        A value that is not a finite number (NaN, inf) is refused here, with
        the reason, rather than by a background flush later.
        """
        self._raise_background()
        self._check_recording()
        fields.name(name, "metric name")
        number = fields.finite(value, f"metric {name[:80]!r}")
        fields.optional_int64(step, "step")
        store_metrics.labels_key(labels)  # refuses labels the store cannot hold
        when = self.store.clock() if ts is None else fields.timestamp(ts, "metric time")
        with self._buffer_lock:
            self._samples.append((name, labels, when, number, step))
            full = len(self._samples) >= self.tracker.max_buffer
        if full:
            self._flush_when_full()

    def log_metrics(self, values: Mapping[str, float], *, step: int | None = None) -> None:
        now = self.store.clock()
        for name, value in values.items():
            self.log_metric(name, value, step=step, ts=now)

    def log_model_version(
        self,
        model: str,
        *,
        version: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        data_hash: str | None = None,
        code_version: str | None = None,
        status: str = "candidate",
        gate: Mapping[str, Any] | None = None,
        reference: Any = None,
    ) -> str:
        """Record a model version produced by this run; return the version.

        ``reference`` (its training features, in any shape ``log_features``
        takes) becomes the version's drift reference, in the same transaction.
        """
        self._raise_background()
        columns = as_columns(reference) if reference is not None else None
        with self.store.write() as tx:
            store_runs.check_open(tx, self.store, self.id)
            now = self.store.clock()
            version, created = store_models.add_model_version(
                tx,
                model,
                version=version,
                run_id=self.id,
                status=status,
                data_hash=data_hash,
                code_version=code_version,
                params=params,
                metrics=metrics,
                gate=gate,
                created_at=now,
            )
            if columns is not None and created:
                store_models.add_feature_batch(
                    tx,
                    model,
                    columns,
                    kind="reference",
                    version=version,
                    run_id=self.id,
                    created_at=now,
                )
        return version

    def log_features(
        self,
        model: str,
        data: Any,
        *,
        kind: str = "current",
        version: str | None = None,
        key: str | None = None,
    ) -> int:
        """Record a batch of feature rows (``reference`` or ``current``) for ``model``.

        ``data`` is a mapping of column name to values, a list of row dicts,
        or anything with ``to_dict(orient="list")`` (a pandas DataFrame).
        """
        self._raise_background()
        with self.store.write() as tx:
            store_runs.check_open(tx, self.store, self.id)
            batch_id, _ = store_models.add_feature_batch(
                tx,
                model,
                as_columns(data),
                kind=kind,
                version=version,
                run_id=self.id,
                created_at=self.store.clock(),
                key=key,
            )
        return batch_id

    def record_deployment(
        self,
        environment: str,
        version: str,
        *,
        target: str | None = None,
        target_kind: str = "service",
        status: str = "succeeded",
        action: str = "deploy",
        message: str | None = None,
    ) -> int:
        """Record that this run deployed ``version`` of ``target`` to ``environment``."""
        self._raise_background()
        with self.store.write() as tx:
            store_runs.check_open(tx, self.store, self.id)
            dep_id, _ = store_models.add_deployment(
                tx,
                environment=environment,
                target=target or self.pipeline,
                version=version,
                target_kind=target_kind,
                status=status,
                action=action,
                actor=self.tracker.actor,
                run_id=self.id,
                deployed_at=self.store.clock(),
                message=message,
            )
        return dep_id

    def flush(self) -> None:
        """Write buffered log lines and metric samples now.

        A store that is busy or out of reach (a PostgreSQL restart) leaves
        the rows in the buffer, in order, for the next flush; the error is
        raised to say so.
        """
        self._raise_background(every=True)
        with self._buffer_lock:
            logs, self._logs = self._logs, []
            samples, self._samples = self._samples, []
        if logs:
            try:
                store_runs.append_logs(self.store, logs)
            except StoreGone as exc:
                lost = f"{len(logs)} log lines and {len(samples)} metric samples of run {self.id}"
                raise exc.not_written(lost) from None
            except RETRYABLE_WRITE_ERRORS:
                self._keep(logs, samples)
                raise
        try:
            self._write_samples(samples)
        except RETRYABLE_WRITE_ERRORS:
            self._keep([], samples)
            raise
        self._refused_at = 0.0

    def _keep(self, logs: list[store_runs.LogRow], samples: list[_Sample]) -> None:
        """Put unwritten rows back at the head of the buffers (newer rows follow)."""
        self._refused_at = time.monotonic()
        with self._buffer_lock:
            self._logs[:0] = logs
            self._samples[:0] = samples

    def _write_samples(self, samples: list[_Sample]) -> None:
        if samples:
            source = f"pipeline/{self.pipeline}"
            with self.store.write() as tx:
                if isinstance(self, AttachedRun):  # its runner may have finished it
                    store_runs.check_open(tx, self.store, self.id)
                ids: dict[tuple[str, str], int] = {}
                rows = []
                for name, labels, ts, value, step in samples:
                    ident = (name, store_metrics.labels_key(labels))
                    if ident not in ids:
                        ids[ident] = store_metrics.ensure_series(tx, source, name, labels)
                    rows.append((ids[ident], ts, value, self.id, step))
                store_metrics.insert_samples(tx, rows)

    def _check_recording(self) -> None:
        # After its ``with`` block a run is finished: a late line or metric
        # would sit in the buffer and never be written.
        if self.status is not None:
            raise store_runs.run_finished(self.id, self.status)

    def _raise_background(self, *, every: bool = False) -> None:
        """Raise what the background thread met: a lost store or a failed write
        at any call, other errors (``every``) at the next flush, as ever.

        ``StoreGone`` stays raised: the store will not come back under this run.
        """
        error = self._background_error
        if error is None:
            return
        if isinstance(error, StoreGone):
            raise error
        if every or isinstance(error, FATAL_WRITE_ERRORS):
            self._background_error = None
            raise error

    def _buffer_log(self, row: store_runs.LogRow) -> None:
        self._raise_background()
        self._check_recording()
        with self._buffer_lock:
            self._logs.append(row)
            full = len(self._logs) >= self.tracker.max_buffer
        if full:
            self._flush_when_full()

    def _flush_when_full(self) -> None:
        """Flush a full buffer, unless the store refused a write moments ago:
        then the rows wait in the buffer (up to ``HOLD_MAX``) rather than
        make every log call wait for a store that is down."""
        with self._buffer_lock:
            held = len(self._logs) + len(self._samples)
        recent = time.monotonic() - self._refused_at < RETRY_AFTER
        if recent and held < HOLD_MAX:
            return
        try:
            self.flush()
        except RETRYABLE_WRITE_ERRORS:
            if held >= HOLD_MAX:
                raise


class AttachedRun(ActiveRun):
    """A run whose lifecycle belongs to another process (see ``Tracker.attach``)."""

    def __init__(self, tracker: Tracker, pipeline: str, run_id: int) -> None:
        super().__init__(
            tracker,
            pipeline,
            stages=None,
            kind=None,
            trigger="manual",
            parent=None,
            key=None,
            params=None,
        )
        self.id = run_id

    def __enter__(self) -> AttachedRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.flush()

    def stage(self, name: str) -> ActiveStage:
        raise UsageError("an attached run's stages belong to its runner; log to stdout instead")
