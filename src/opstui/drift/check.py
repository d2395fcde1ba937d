"""A model's drift check: reference summary, current window, statistics,
domain classifier, stored as one check.

``compute_drift(store, model)`` is what ``opstui drift`` runs and what the
console will run from a worker thread: it holds the store's lock only while
reading and writing, never while computing, and returns an immutable
``DriftCheck``. A window already checked (same batches, same reference, same
settings) is not computed or stored again: the stored check is read back, so
``opstui drift --watch`` costs two index reads while no new batch arrives,
and "drift persisted over N windows" counts windows, not refreshes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from opstui.analysis import domain
from opstui.analysis.domain import ClassifierResult, Side, domain_classifier
from opstui.analysis.drift import compare, dataset_verdict
from opstui.analysis.drift_results import DriftSettings, FeatureResult
from opstui.analysis.drift_summary import CategoricalSummary, ReferenceSummary
from opstui.analysis.drift_values import as_categories, as_numbers
from opstui.config import Config
from opstui.drift.records import (
    DriftCheck,
    ReferenceInfo,
    WindowInfo,
    from_store,
    header_row,
    result_rows,
    with_history,
)
from opstui.drift.reference import load_reference, reference_version
from opstui.errors import UsageError
from opstui.store import Store
from opstui.store import drift as store_drift
from opstui.store import models as store_models


def settings_for(config: Config | None, model: str) -> DriftSettings:
    """``[drift]`` overridden by ``[models.MODEL.drift]``, over the defaults."""
    raw: dict[str, Any] = {}
    if config is not None:
        raw.update(config.drift)
        if model in config.models:
            raw.update(config.models[model].drift)
    for key in ("categorical", "numeric", "ignore"):
        if key in raw:
            raw[key] = tuple(raw[key])
    return DriftSettings(**raw)


# --- the current window ----------------------------------------------------


class _Window(NamedTuple):
    info: WindowInfo
    batch_ids: tuple[int, ...]
    columns: dict[str, list[Any]]


def current_window(
    store: Store, model: str, settings: DriftSettings, at: float | None = None
) -> _Window:
    """The newest ``window_rows`` rows recorded in the ``window_seconds`` up to
    the newest batch at or before ``at``."""
    newest = store_drift.current_batches(store, model, until=at, since=None, rows=1)
    if not newest:
        raise UsageError(
            f"model {model!r} has no current feature batches"
            + (" at that time" if at is not None else ""),
            hint=f"record serving features with `opstui record features {model} FILE.csv` "
            "or run.log_features(...)",
        )
    end = newest[0].created_at
    since = end - settings.window_seconds if settings.window_seconds else None
    batches = store_drift.current_batches(
        store, model, until=end, since=since, rows=settings.window_rows
    )
    columns: dict[str, list[Any]] = {}
    rows = 0
    for batch in reversed(batches):  # oldest first, so rows stay in time order
        data = store_models.load_feature_batch(store, batch.id)
        for name in data.keys() - columns.keys():
            columns[name] = [None] * rows
        for name, values in columns.items():
            values.extend(data.get(name, [None] * batch.n_rows))
        rows += batch.n_rows
    if rows > settings.window_rows:  # the oldest batch only partly
        columns = {k: v[rows - settings.window_rows :] for k, v in columns.items()}
        rows = settings.window_rows
    info = WindowInfo(batches[-1].created_at, end, rows, len(batches))
    return _Window(info, tuple(sorted(b.id for b in batches)), columns)


# --- the check ---------------------------------------------------------------


def compute_drift(
    store: Store,
    model: str,
    *,
    config: Config | None = None,
    settings: DriftSettings | None = None,
    version: str | None = None,
    at: float | None = None,
    save: bool = True,
) -> DriftCheck:
    """Check ``model``'s current window (ending at ``at``: default the newest
    batch) against the reference of ``version`` (default: see
    ``reference_version``); store the check unless ``save`` is false."""
    settings = settings or settings_for(config, model)
    notes: list[str] = []
    if version is None:
        version, notes = reference_version(store, model)
    elif version not in store_drift.referenced_versions(store, model):
        raise UsageError(f"version {version} of {model!r} has no reference features")
    info, summary = load_reference(store, model, version, settings)
    window = current_window(store, model, settings, at)
    if window.info.rows < settings.min_rows:
        raise UsageError(
            f"the current window of {model!r} holds {window.info.rows} rows; a drift check "
            f"needs at least {settings.min_rows}",
            hint="wait for more data, or widen window_seconds / lower min_rows in [drift]",
        )
    key = _window_key(info, window, settings)
    if save:
        stored = store_drift.check_by_key(store, model, key)
        if stored is not None:
            return with_history(store, from_store(store, stored, info))
    features = compare(summary, window.columns, settings)
    verdict = dataset_verdict(features, settings)
    classifier = _classifier(summary, window.columns, features, settings)
    if settings.classifier and classifier is None:
        rows = min(window.info.rows, settings.classifier_rows)
        if rows < domain.MIN_ROWS:
            notes.append(
                f"domain classifier skipped: {rows} rows a side, it needs {domain.MIN_ROWS}"
            )
    unknown = tuple(sorted(set(window.columns) - set(summary.names)))
    check = DriftCheck(
        model=model,
        reference=info,
        window=window.info,
        features=features,
        dataset=verdict,
        classifier=classifier,
        settings=settings,
        computed_at=store.clock(),
        unknown=unknown,
        notes=tuple(notes),
    )
    if not save:
        return check
    with store.write() as tx:
        check_id = store_drift.save_check(tx, header_row(check, key), result_rows(check))
    return with_history(store, check._replace(check_id=check_id))


def backfill(
    store: Store,
    model: str,
    *,
    config: Config | None = None,
    settings: DriftSettings | None = None,
    version: str | None = None,
) -> list[DriftCheck]:
    """Check the window ending at each current batch not yet checked (after the
    newest checked window), oldest first: history for "since when"."""
    settings = settings or settings_for(config, model)
    latest = store_drift.latest_check(store, model)
    after = latest.window_end if latest is not None else None
    out = []
    for at in store_drift.current_batch_times(store, model, after=after):
        try:
            out.append(compute_drift(store, model, settings=settings, version=version, at=at))
        except UsageError as exc:
            if "needs at least" not in exc.message:  # a thin early window is skipped
                raise
    return out


def _classifier(
    summary: ReferenceSummary,
    current: Mapping[str, Sequence[Any]],
    features: Sequence[FeatureResult],
    settings: DriftSettings,
) -> ClassifierResult | None:
    if not settings.classifier:
        return None
    checked = [f.name for f in features if f.drifted is not None]
    numeric: dict[str, Any] = {}
    labels: dict[str, list[str | None]] = {}
    ref_numeric: dict[str, Any] = {}
    ref_labels: dict[str, list[str | None]] = {}
    categories: dict[str, Sequence[str]] = {}
    for name in checked:
        column = summary.column(name)
        sample = summary.sample[name]
        if isinstance(column, CategoricalSummary):
            cats = column.categories
            ref_labels[name] = [cats[c] if c >= 0 else None for c in sample.tolist()]
            labels[name] = as_categories(current[name])
            categories[name] = cats
        else:
            ref_numeric[name] = sample
            numeric[name] = as_numbers(current[name])[0]
    return domain_classifier(
        Side(ref_numeric, ref_labels),
        Side(numeric, labels),
        categories=categories,
        rows=settings.classifier_rows,
        threshold=settings.classifier_auc,
    )


#: How a check is computed. Bump it when a statistic or a verdict rule
#: changes: a window checked by an older opstui is then checked again instead
#: of its stored check being reused (2: the classifier's chance bound).
METHOD = 2


def _window_key(info: ReferenceInfo, window: _Window, settings: DriftSettings) -> str:
    ident = [METHOD, info.digest, list(window.batch_ids), window.info.rows, settings.as_dict()]
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
