"""The one rule for "the previous good version" a rollback goes back to.

``runner/planning.py`` (a service or model rollback) and ``runner/registry.py``
(an MLflow alias move) both ask ``previous_good_version``.
"""

from __future__ import annotations

from opstui.runner.plan import previous_good_version
from opstui.store.rows import DeploymentRow


def _dep(
    id: int,
    version: str,
    status: str = "succeeded",
    action: str = "deploy",
    replaced: str | None = None,
) -> DeploymentRow:
    return DeploymentRow(
        id, "production", "service", "web-api", version, status, action, None,
        1_700_000_000.0 + id, None, None, replaced, None,
    )  # fmt: skip


def _newest_first(*deps: DeploymentRow) -> list[DeploymentRow]:
    return sorted(deps, key=lambda d: d.id, reverse=True)


def test_the_newest_earlier_succeeded_version() -> None:
    history = _newest_first(_dep(1, "v1"), _dep(2, "v2"), _dep(3, "v3"))
    assert previous_good_version(history, "v3") == "v2"


def test_no_deployment_at_all() -> None:
    assert previous_good_version([], None) is None
    assert previous_good_version([], "v1") is None


def test_the_current_version_is_the_only_good_one() -> None:
    assert previous_good_version([_dep(1, "v1")], "v1") is None
    # Deployed twice: still nothing else to go back to.
    assert previous_good_version(_newest_first(_dep(1, "v1"), _dep(2, "v1")), "v1") is None
    # Earlier deployments that failed never served.
    history = _newest_first(_dep(1, "v0", status="failed"), _dep(2, "v1"))
    assert previous_good_version(history, "v1") is None


def test_failed_deployments_are_skipped() -> None:
    history = _newest_first(_dep(1, "v1"), _dep(2, "v2", status="failed"), _dep(3, "v3"))
    assert previous_good_version(history, "v3") == "v1"


def test_rolled_back_versions_are_skipped() -> None:
    # v3 was rolled back to v2; v2 now serves: v3 is known bad, v1 is next.
    history = _newest_first(
        _dep(1, "v1"),
        _dep(2, "v2"),
        _dep(3, "v3"),
        _dep(4, "v2", action="rollback", replaced="v3"),
    )
    assert previous_good_version(history, "v2") == "v1"
    # Everything earlier rolled back or failed: none.
    history = _newest_first(
        _dep(1, "v1", status="failed"),
        _dep(2, "v2"),
        _dep(3, "v3"),
        _dep(4, "v2", action="rollback", replaced="v3"),
    )
    assert previous_good_version(history, "v2") is None


def test_current_not_set_or_not_in_the_history() -> None:
    """A registry alias not set (None) or moved outside opstui: the newest good one."""
    history = _newest_first(_dep(1, "v1"), _dep(2, "v2"))
    assert previous_good_version(history, None) == "v2"
    assert previous_good_version(history, "v9") == "v2"
