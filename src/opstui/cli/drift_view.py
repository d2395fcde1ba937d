"""How ``opstui drift`` prints a check: a table, or a stable JSON document.

The JSON shape is a public interface, versioned by ``schema`` (documented in
the README): fields are only ever added.
"""

from __future__ import annotations

from typing import Any

from opstui.analysis.drift_results import METHOD_LABELS, QUALITY, FeatureResult, MethodResult
from opstui.drift.records import SCHEMA, DriftCheck
from opstui.timeutil import iso

#: Statistics shown as columns of the table, beside the deciding one.
_SHOWN = ("psi", "jensenshannon")
_LABELS = METHOD_LABELS


def _method_json(r: MethodResult) -> dict[str, Any]:
    return {
        "value": _round(r.value),
        "threshold": r.threshold,
        "drifted": r.drifted,
        **({"details": dict(r.details)} if r.details else {}),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def _feature_json(f: FeatureResult, check: DriftCheck) -> dict[str, Any]:
    verdict = f.verdict
    unseen = f.result("unseen_share")
    return {
        "name": f.name,
        "kind": f.kind,
        "method": f.method,
        "value": _round(verdict.value) if verdict else None,
        "threshold": verdict.threshold if verdict else None,
        "drifted": f.drifted,
        "since": iso(check.began.get(f.name)) if f.drifted else None,
        "problem": f.problem,
        "notes": list(f.notes),
        "statistics": {
            r.method: _method_json(r)
            for r in f.results
            if r.method not in QUALITY and r.method != "unseen_share"
        },
        "quality": {r.method: _method_json(r) for r in f.results if r.method in QUALITY},
        "unseen": {"share": _round(unseen.value), **unseen.details} if unseen else None,
    }


def check_json(check: DriftCheck, now: float) -> dict[str, Any]:
    d, c = check.dataset, check.classifier
    retrain = check.retrain
    return {
        "schema": SCHEMA,
        "generated_at": iso(now),
        "model": check.model,
        "check_id": check.check_id,
        "computed_at": iso(check.computed_at),
        "reused": check.reused,
        "reference": {
            "version": check.reference.version,
            "rows": check.reference.rows,
            "source": check.reference.source,
            "created_at": iso(check.reference.created_at),
            "digest": check.reference.digest,
        },
        "window": {
            "start": iso(check.window.start),
            "end": iso(check.window.end),
            "rows": check.window.rows,
            "batches": check.window.batches,
        },
        "dataset": {
            "drifted": d.is_drifted,
            "drift_share": round(d.share, 6),
            "threshold": d.threshold,
            "features_checked": d.checked,
            "features_drifted": d.drifted,
            "since": iso(check.began.get(None)) if d.is_drifted else None,
        },
        "classifier": None
        if c is None
        else {
            "auc": round(c.auc, 6),
            "threshold": c.threshold,
            "chance": c.chance,
            "alert": c.alert,
            "rows": c.rows,
            "top": [{"feature": n, "importance": g} for n, g in c.top],
        },
        "features": [_feature_json(f, check) for f in check.features],
        "unknown_features": list(check.unknown),
        "notes": list(check.notes),
        "retrain_suggested": None
        if retrain is None
        else {
            "windows": retrain.windows,
            "since": iso(retrain.since),
            "command": f"opstui retrain {check.model}",
        },
        "settings": check.settings.as_dict(),
    }


def _num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _day(ts: float | None) -> str:
    return (iso(ts) or "-")[:16].replace("T", " ")


def render_check(check: DriftCheck, now: float) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from opstui.cli.output import cell

    console = Console(highlight=False)
    w = check.window
    console.print(
        Text.assemble(
            cell(check.model, "bold"),
            cell(
                f"  reference v{check.reference.version} ({check.reference.rows:,} rows)"
                f"  window {_day(w.start)} .. {_day(w.end)}: {w.rows:,} rows"
                f" in {w.batches} batch{'es' if w.batches != 1 else ''}"
            ),
        ),
        soft_wrap=True,
    )
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("FEATURE", no_wrap=True, overflow="ellipsis", max_width=20)
    table.add_column("TEST", no_wrap=True)
    table.add_column("VALUE", justify="right", no_wrap=True)
    table.add_column("LIMIT", justify="right", no_wrap=True)
    table.add_column("DRIFT", no_wrap=True)
    table.add_column("PSI", justify="right", no_wrap=True)
    table.add_column("JS", justify="right", no_wrap=True)
    table.add_column("MISSING", justify="right", no_wrap=True)
    table.add_column("SINCE", no_wrap=True)
    ordered = sorted(check.features, key=lambda f: (f.drifted is not True, f.problem is None))
    for f in ordered:
        v = f.verdict
        missing = f.result("missing_share")
        miss = "-" if missing is None or missing.value is None else f"{missing.value:.0%}"
        if missing is not None and missing.drifted:
            miss += "!"
        if f.problem:
            drift = Text("n/a", style="yellow")
        elif f.drifted:
            drift = Text("DRIFT", style="bold red")
        else:
            drift = Text("ok", style="green")
        psi, js = (f.result(m) for m in _SHOWN)
        table.add_row(
            cell(f.name),
            cell(_LABELS.get(f.method or "", f.method or "-")),
            _num(v.value if v else None),
            _num(v.threshold if v else None, 2),
            drift,
            _num(psi.value if psi else None, 2),
            _num(js.value if js else None, 2),
            miss,
            _day(check.began.get(f.name))[:10] if f.drifted else "",
        )
    console.print(table)
    for line in _footer(check):  # names features and categories: data, escaped
        console.print(cell(line), soft_wrap=True)


def _footer(check: DriftCheck) -> list[str]:
    d, c = check.dataset, check.classifier
    verdict = "DATASET DRIFT" if d.is_drifted else "no dataset drift"
    lines = [
        f"{d.drifted} of {d.checked} features drifted (share {d.share:.2f}; the dataset "
        f"drifts at {d.threshold:.2f}): {verdict}"
        + (f" since {_day(check.began.get(None))}" if d.is_drifted else "")
    ]
    if c is not None:
        top = ", ".join(f"{n} {g:.2f}" for n, g in c.top[:3])
        says = "current data is separable from the reference" if c.alert else "no alert"
        # On a small window chance alone passes the threshold: say which bound decided.
        bound = (
            f"{c.chance:.3f}, what chance reaches at {c.rows:,} rows a side"
            if c.chance > c.threshold
            else f"{c.threshold:.2f}"
        )
        lines.append(
            f"domain classifier: ROC AUC {c.auc:.3f} ({'>' if c.alert else '<='} {bound}): "
            f"{says}" + (f"; most separating: {top}" if top else "")
        )
    for f in check.features:
        unseen = f.result("unseen_share")
        if unseen and unseen.value:
            top_unseen = ", ".join(
                f"{u['category']} {u['rows']}" for u in unseen.details.get("top", [])[:3]
            )
            lines.append(
                f"unseen categories in {f.name} ({unseen.value:.1%} of rows): {top_unseen}"
            )
        for q in f.quality_alerts:
            if q.method == "reference_invalid_share":
                examples = ", ".join(repr(e) for e in q.details.get("examples", []))
                lines.append(
                    f"data quality: {f.name}: {q.value or 0:.1%} of the reference values are "
                    "text" + (f" (e.g. {examples})" if examples else "")
                )
                continue
            what = q.method.replace("_", " ")
            limit = q.threshold or 0.0
            lines.append(f"data quality: {f.name} {what} {q.value or 0:.1%} (limit {limit:.1%})")
        if f.problem:
            lines.append(f"not checked: {f.name}: {f.problem}")
        lines.extend(f"note: {f.name}: {n}" for n in f.notes)
    if check.unknown:
        lines.append(f"not in the reference (not checked): {', '.join(check.unknown)}")
    lines.extend(f"note: {n}" for n in check.notes)
    if check.retrain is not None:
        lines.append(
            f"RETRAIN SUGGESTED: the dataset drifted in the last {check.retrain.windows} windows "
            f"(since {_day(check.retrain.since)}): opstui retrain {check.model}"
        )
    return lines
