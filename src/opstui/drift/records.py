"""A drift check to and from the store: the ``DriftCheck`` a screen shows,
the rows ``compute_drift`` saves, and the stored check read back without
computing (``latest``, what the console shows).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from opstui.analysis.domain import ClassifierResult
from opstui.analysis.drift_results import DatasetVerdict, DriftSettings, FeatureResult, MethodResult
from opstui.store import Store
from opstui.store import drift as store_drift

#: The version of ``opstui drift --json``'s output.
SCHEMA = 1


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


def with_history(store: Store, check: DriftCheck) -> DriftCheck:
    return check._replace(
        began=store_drift.drift_began(store, check.model),
        retrain=store_drift.retrain_suggestion(
            store, check.model, after=check.settings.retrain_after
        ),
    )


# --- to and from the store ---------------------------------------------------


def header_row(check: DriftCheck, key: str) -> store_drift.CheckRow:
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


def result_rows(check: DriftCheck) -> list[store_drift.ResultRow]:
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
    return None if row is None else with_history(store, from_store(store, row))
