"""Which model, which reference: the version a check compares against, and
its reference summary (built from recorded batches, or set from a file),
decoded once and kept for the next refresh.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opstui.analysis.drift_results import DriftSettings
from opstui.analysis.drift_summariser import Summariser
from opstui.analysis.drift_summary import FORMAT, ReferenceSummary, decode, encode
from opstui.config import Config
from opstui.drift.records import ReferenceInfo
from opstui.errors import UsageError
from opstui.store import Store
from opstui.store import drift as store_drift
from opstui.store import models as store_models


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
    raise UsageError(f"no model {name!r} in {store.name}", hint=hint)


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
