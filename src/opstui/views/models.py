"""One model as an operator asks about it: its versions, where it serves, its drift.

``opstui models`` and the console's models panel read the same rows, so the
two never disagree on what serves production or which version is newest.
A model is named by a version, a deployment or a drift check in the store,
or only by the config (``[models.NAME]``): such a model has empty lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from opstui.store import drift as store_drift
from opstui.store.db import Store
from opstui.store.deployments import current_deployments
from opstui.store.models import model_names, model_versions
from opstui.store.rows import DeploymentRow, ModelVersionRow

#: How store/mlflow_sync.py describes a deployment it made from an alias.
_ALIAS_MESSAGE = re.compile(r"alias (\S+) seen on version ")


class ModelReport(NamedTuple):
    name: str
    #: Every version, newest first.
    versions: list[ModelVersionRow]
    #: What serves each environment now (its latest succeeded deployment), by environment.
    deployed: list[DeploymentRow]
    #: environment -> the MLflow alias whose move made that deployment.
    aliases: dict[str, str]
    #: The latest stored drift check (computed by ``opstui drift``), or None.
    drift: store_drift.CheckRow | None
    #: Features that check found drifted, most drifted first.
    drifted: tuple[str, ...] = ()

    @property
    def latest(self) -> ModelVersionRow | None:
        return self.versions[0] if self.versions else None


def gate_verdict(version: ModelVersionRow) -> str | None:
    """``pass``, ``fail``, or None when the version went through no gate."""
    gate = version.gate or {}
    verdict = gate.get("verdict", gate.get("passed"))
    if verdict in (True, "pass", "passed"):
        return "pass"
    if verdict in (False, "fail", "failed"):
        return "fail"
    return None


def alias_of(d: DeploymentRow) -> str | None:
    """The MLflow alias behind a deployment mirrored from MLflow, else None."""
    if not (d.actor or "").startswith("mlflow/") or not d.message:
        return None
    found = _ALIAS_MESSAGE.match(d.message)
    return found.group(1) if found else None


def known_models(store: Store, declared: Iterable[str] = ()) -> list[str]:
    """Models in the store or declared in the config, by name."""
    return sorted(set(model_names(store)) | set(declared))


def model_reports(store: Store, names: Iterable[str]) -> list[ModelReport]:
    """One report per model name, in the order given."""
    deployed: dict[str, list[DeploymentRow]] = {}
    for d in current_deployments(store):
        if d.target_kind == "model":
            deployed.setdefault(d.target, []).append(d)
    return [_report(store, name, deployed.get(name, [])) for name in names]


def _report(store: Store, name: str, deployed: list[DeploymentRow]) -> ModelReport:
    aliases = {d.environment: a for d in deployed if (a := alias_of(d)) is not None}
    check = store_drift.latest_check(store, name)
    drifted: tuple[str, ...] = ()
    if check is not None:
        results = store_drift.check_results(store, check.id)
        worst = sorted(
            (r for r in results if r.feature and r.decides and r.drifted),
            key=lambda r: -(r.value or 0) / (r.threshold or 1),
        )
        drifted = tuple(r.feature for r in worst if r.feature)
    return ModelReport(name, model_versions(store, name), deployed, aliases, check, drifted)
