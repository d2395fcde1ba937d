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
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from opstui.analysis import domain
from opstui.analysis.domain import ClassifierResult, Side, domain_classifier
from opstui.analysis.drift import (
    DatasetVerdict,
    DriftSettings,
    FeatureResult,
    MethodResult,
    compare,
    dataset_verdict,
)
from opstui.analysis.drift_summary import (
    FORMAT,
    CategoricalSummary,
    ReferenceSummary,
    Summariser,
    as_categories,
    as_numbers,
    decode,
    encode,
)
from opstui.config import Config
from opstui.errors import UsageError
from opstui.store import Store
from opstui.store import drift as store_drift
from opstui.store import models as store_models

SCHEMA = 1


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


class ReferenceInfo(NamedTuple):
    version: str
    digest: str
    rows: int
    source: str
    created_at: float


class WindowInfo(NamedTuple):
    start: float | None  # the oldest batch's time
    end: float | None  # the newest batch's time
    rows: int
    batches: int


class DriftCheck(NamedTuple):
    """Everything a drift screen shows about one check of one model."""

    model: str
    reference: ReferenceInfo
    window: WindowInfo
    features: tuple[FeatureResult, ...]
    dataset: DatasetVerdict
    classifier: ClassifierResult | None
    settings: DriftSettings
    computed_at: float
    #: Features of the current window the reference does not have.
    unknown: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    check_id: int | None = None
    #: The window had been checked already; this is the stored check.
    reused: bool = False
    #: Feature (None: the dataset) -> window end of the first check of its
    #: current run of drifting checks.
    began: Mapping[str | None, float] = {}
    retrain: store_drift.RetrainSuggestion | None = None


# --- which model, which reference ------------------------------------------


def resolve_model(store: Store, config: Config | None, name: str) -> str:
    """``name`` as a model; the name of the pipeline that trains a model works too."""
    known = store_models.model_names(store)
    if name in known:
        return name
    trained = sorted(
        {m for m, d in (config.models if config else {}).items() if d.pipeline == name}
        | set(store_drift.models_of_pipeline(store, name))
    )
    if len(trained) == 1:
        return trained[0]
    hint = f"models in the store: {', '.join(known) or 'none'}"
    if len(trained) > 1:
        raise UsageError(f"pipeline {name!r} trains several models", hint=hint)
    raise UsageError(f"no model {name!r} in {store.path}", hint=hint)


def reference_version(store: Store, model: str) -> tuple[str, list[str]]:
    """The version whose reference a check uses, and notes on the choice:
    the production version's, else the newest version that has one."""
    have = store_drift.referenced_versions(store, model)
    if not have:
        raise UsageError(
            f"model {model!r} has no reference features",
            hint=f"record the training features with run.log_features({model!r}, df, "
            f'kind="reference", version=...) or `opstui drift set-reference {model} FILE.csv`',
        )
    versions = store_models.model_versions(store, model)
    production = next((v.version for v in versions if v.status == "production"), None)
    if production in have:
        return production, []
    ordered = [v.version for v in versions if v.version in have]
    chosen = ordered[0] if ordered else sorted(have)[-1]
    if production is None:
        return chosen, []
    return chosen, [f"production version {production} has no reference; using version {chosen}"]


_CACHE: dict[str, ReferenceSummary] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 4


def _decoded(digest: str, payload: bytes) -> ReferenceSummary:
    """Decoded summaries, kept for the next refresh (a watch, the console)."""
    with _CACHE_LOCK:
        found = _CACHE.get(digest)
    if found is not None:
        return found
    try:
        summary = decode(payload)
    except ValueError as exc:
        raise UsageError(str(exc), hint="upgrade opstui, or set the reference again") from None
    with _CACHE_LOCK:
        _CACHE[digest] = summary
        while len(_CACHE) > _CACHE_SIZE:
            del _CACHE[next(iter(_CACHE))]
    return summary


def load_reference(
    store: Store, model: str, version: str, settings: DriftSettings
) -> tuple[ReferenceInfo, ReferenceSummary]:
    """The version's summary, built from its recorded reference batches (and
    stored) when there is none yet or new batches arrived since."""
    row = store_drift.reference(store, model, version)
    batches = store_drift.reference_batches(store, model, version)
    fingerprint = _fingerprint(batches, settings)
    if row is not None and (not batches or not row.source.startswith("batches") or
                            row.fingerprint == fingerprint):  # fmt: skip
        info = ReferenceInfo(version, row.digest, row.n_rows, row.source, row.created_at)
        return info, _decoded(row.digest, row.payload)
    summariser = Summariser(categorical=settings.categorical)
    try:
        for batch in batches:
            summariser.add(store_models.load_feature_batch(store, batch.id))
        summary = summariser.finish()
    except ValueError as exc:  # batches whose columns disagree
        raise UsageError(
            f"the reference batches of {model!r} version {version} do not fit together: {exc}",
            hint=f"record one reference, or `opstui drift set-reference {model} FILE.csv "
            f"--version {version}`",
        ) from None
    info = _save_reference(
        store, model, version, summary, source="batches", fingerprint=fingerprint
    )
    return info, summary


def set_reference(
    store: Store,
    model: str,
    chunks: Iterable[Mapping[str, Sequence[Any]]],
    *,
    version: str | None,
    source: str,
    settings: DriftSettings,
) -> ReferenceInfo:
    """Summarise rows (in chunks, any number) as the reference of a model version."""
    if version is None:
        versions = store_models.model_versions(store, model)
        production = [v.version for v in versions if v.status == "production"]
        if not versions:
            raise UsageError(
                f"model {model!r} has no versions in the store",
                hint="pass --version for the version these features trained",
            )
        version = (production or [versions[0].version])[0]
    summariser = Summariser(categorical=settings.categorical)
    try:
        for chunk in chunks:
            summariser.add(chunk)
        summary = summariser.finish()
    except ValueError as exc:
        raise UsageError(f"cannot use {source} as a reference: {exc}") from None
    if summary.rows == 0:
        raise UsageError(f"{source} has no rows", hint="a reference needs the training features")
    return _save_reference(
        store, model, version, summary, source=f"file: {source}", fingerprint=None
    )


def _save_reference(
    store: Store,
    model: str,
    version: str,
    summary: ReferenceSummary,
    *,
    source: str,
    fingerprint: str | None,
) -> ReferenceInfo:
    payload = encode(summary)
    digest = hashlib.sha256(payload).hexdigest()
    now = store.clock()
    with store.write() as tx:
        store_drift.save_reference(
            tx,
            model,
            version,
            source=source,
            fingerprint=fingerprint,
            digest=digest,
            n_rows=summary.rows,
            columns=summary.names,
            fmt=FORMAT,
            payload=payload,
            created_at=now,
        )
    with _CACHE_LOCK:
        _CACHE[digest] = summary
    return ReferenceInfo(version, digest, summary.rows, source, now)


def _fingerprint(batches: Sequence[store_drift.BatchRow], settings: DriftSettings) -> str:
    # Column kinds depend on ``categorical``: changing it rebuilds the summary.
    # "/2": summaries since integer codes and text shares were kept (rebuilt once).
    last = max((b.id for b in batches), default=0)
    return f"{len(batches)}:{last}:{','.join(sorted(settings.categorical))}/2"


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
            return _with_history(store, from_store(store, stored, info))
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
        check_id = store_drift.save_check(tx, _header(check, key), _results(check))
    return _with_history(store, check._replace(check_id=check_id))


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


def _window_key(info: ReferenceInfo, window: _Window, settings: DriftSettings) -> str:
    ident = [info.digest, list(window.batch_ids), window.info.rows, settings.as_dict()]
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def _with_history(store: Store, check: DriftCheck) -> DriftCheck:
    return check._replace(
        began=store_drift.drift_began(store, check.model),
        retrain=store_drift.retrain_suggestion(
            store, check.model, after=check.settings.retrain_after
        ),
    )


# --- to and from the store ---------------------------------------------------


def _header(check: DriftCheck, key: str) -> store_drift.CheckRow:
    c = check.classifier
    return store_drift.CheckRow(
        id=0,  # given by the store
        model=check.model,
        version=check.reference.version,
        reference_digest=check.reference.digest,
        computed_at=check.computed_at,
        window_start=check.window.start,
        window_end=check.window.end,
        window_rows=check.window.rows,
        window_key=key,
        features=check.dataset.checked,
        drifted_features=check.dataset.drifted,
        drift_share=check.dataset.share,
        drifted=check.dataset.is_drifted,
        classifier_auc=c.auc if c else None,
        classifier_alert=c.alert if c else None,
        settings=check.settings.as_dict(),
        details={
            "features": {
                f.name: {"kind": f.kind, "problem": f.problem, "notes": list(f.notes)}
                for f in check.features
            },
            "unknown": list(check.unknown),
            "notes": list(check.notes),
            "batches": check.window.batches,
            "reference": check.reference._asdict(),
            "classifier": {"rows": c.rows, "top": [list(t) for t in c.top], "chance": c.chance}
            if c
            else None,
        },
    )


def _results(check: DriftCheck) -> list[store_drift.ResultRow]:
    rows = [
        store_drift.ResultRow(
            0,
            f.name,
            r.method,
            r.value,
            r.threshold,
            r.drifted,
            r.method == f.method,
            dict(r.details),
        )
        for f in check.features
        for r in f.results
    ]
    d = check.dataset
    rows.append(
        store_drift.ResultRow(
            0,
            None,
            "drift_share",
            d.share,
            d.threshold,
            d.is_drifted,
            True,
            {"checked": d.checked, "drifted": d.drifted},
        )
    )
    if check.classifier is not None:
        c = check.classifier
        rows.append(
            store_drift.ResultRow(
                0,
                None,
                "domain_classifier",
                c.auc,
                c.threshold,
                c.alert,
                False,
                {"rows": c.rows, "top": [list(t) for t in c.top], "chance": c.chance},
            )
        )
    return rows


def from_store(
    store: Store, row: store_drift.CheckRow, reference: ReferenceInfo | None = None
) -> DriftCheck:
    """A stored check as a ``DriftCheck`` (what the console shows without computing)."""
    results = store_drift.check_results(store, row.id)
    details = row.details
    per_feature: dict[str, list[store_drift.ResultRow]] = {}
    for r in results:
        if r.feature is not None:
            per_feature.setdefault(r.feature, []).append(r)
    features = []
    for name, meta in details.get("features", {}).items():
        rows = per_feature.get(name, [])
        method = next((r.method for r in rows if r.decides), None)
        decided = next((r.drifted for r in rows if r.decides), None)
        features.append(
            FeatureResult(
                name,
                meta["kind"],
                method,
                decided,
                tuple(
                    MethodResult(r.method, r.value, r.threshold, r.drifted, r.details) for r in rows
                ),
                meta.get("problem"),
                tuple(meta.get("notes", ())),
            )
        )
    classifier = None
    if row.classifier_auc is not None and details.get("classifier"):
        c = details["classifier"]
        threshold = float(row.settings.get("classifier_auc", DriftSettings.classifier_auc))
        top = tuple((str(n), float(g)) for n, g in c["top"])
        chance = float(c.get("chance", 0.5))
        classifier = ClassifierResult(row.classifier_auc, threshold, int(c["rows"]), top, chance)
    ref = details.get("reference", {})
    if reference is None:
        reference = ReferenceInfo(
            row.version,
            row.reference_digest or "",
            int(ref.get("rows", 0)),
            str(ref.get("source", "")),
            float(ref.get("created_at", 0.0)),
        )
    known = set(DriftSettings.__dataclass_fields__)
    stored = {k: v for k, v in row.settings.items() if k in known}
    for key in ("categorical", "numeric", "ignore"):
        stored[key] = tuple(stored.get(key, ()))
    return DriftCheck(
        model=row.model,
        reference=reference,
        window=WindowInfo(
            row.window_start, row.window_end, row.window_rows, int(details.get("batches", 0))
        ),
        features=tuple(features),
        dataset=DatasetVerdict(
            row.features, row.drifted_features, row.drift_share, float(stored["drift_share"])
        ),
        classifier=classifier,
        settings=DriftSettings(**stored),
        computed_at=row.computed_at,
        unknown=tuple(details.get("unknown", ())),
        notes=tuple(details.get("notes", ())),
        check_id=row.id,
        reused=True,
    )


def latest(store: Store, model: str) -> DriftCheck | None:
    """The model's latest stored check, with its history, without computing."""
    row = store_drift.latest_check(store, model)
    return None if row is None else _with_history(store, from_store(store, row))
