"""The flake ledger (issue 18): per stage, what its retries did over 14 days,
on both back ends; and where an operator meets it (the pipeline screen)."""

from __future__ import annotations

from pathlib import Path

from opstui.policies.flaky import DAYS, ledger
from opstui.store import Store
from opstui.store import runs as store_runs
from opstui.store import status as st
from opstui.tui.screens.pipeline import PipelineScreen
from tests.conftest import Clock
from tests.test_tui import settle
from tests.tui_support import FROZEN, make_app, sample_store


def attempt(
    store: Store, pipeline: str, outcome: str, *, parent: int | None = None, actor: str = "alice"
) -> int:
    """A run of build -> test whose test stage ends ``outcome`` (a retry of ``parent``)."""
    run_id, _ = store_runs.create_run(store, pipeline, stages=["build", "test"],
                                      actor=actor, parent_run_id=parent)  # fmt: skip
    for stage, status in (("build", st.SUCCEEDED), ("test", outcome)):
        store_runs.start_stage(store, run_id, stage)
        store_runs.finish_stage(store, run_id, stage, status=status)
    store_runs.finish_run(store, run_id)
    return run_id


def test_retries_are_counted_per_stage_manual_and_automatic_apart(
    store: Store, clock: Clock
) -> None:
    # api/test: failed, passed on an operator's retry; failed, passed on a
    # policy's retry; failed, failed again on retry: 2 of 3, flaky.
    for again, actor in ((st.SUCCEEDED, "alice"), (st.SUCCEEDED, "policy:retry-api"),
                         (st.FAILED, "bob")):  # fmt: skip
        first = attempt(store, "api", st.FAILED)
        clock.advance(60)
        attempt(store, "api", again, parent=first, actor=actor)
        clock.advance(60)
    # etl/test: failed, failed again: a real failure, not flaky.
    first = attempt(store, "etl", st.FAILED)
    attempt(store, "etl", st.FAILED, parent=first)
    # A retry older than the window is not counted.
    clock.advance(-(DAYS + 1) * 86400)
    old = attempt(store, "api", st.FAILED)
    attempt(store, "api", st.SUCCEEDED, parent=old)
    clock.advance((DAYS + 1) * 86400 + 60)

    got = {(f.pipeline, f.stage): f for f in ledger(store, now=clock())}
    assert set(got) == {("api", "test"), ("etl", "test")}
    api, etl = got[("api", "test")], got[("etl", "test")]
    assert (api.retried, api.passed, api.automatic, api.flaky) == (3, 2, 1, True)
    assert (etl.retried, etl.passed, etl.flaky) == (1, 0, False)
    assert ledger(store, now=clock())[0] == api  # the flakiest first
    # One pipeline's, as the pipeline screen reads it.
    assert ledger(store, now=clock(), pipeline="etl") == [etl]
    assert ledger(store, now=clock(), pipeline="nope") == []


def test_the_sample_history_has_one_flaky_stage(tmp_path: Path) -> None:
    with Store(sample_store(tmp_path)) as store:
        flakes = ledger(store, now=FROZEN)
    assert [(f.pipeline, f.stage, f.passed, f.retried, f.flaky) for f in flakes] == [
        ("web-api", "test", 7, 7, True)
    ]


async def test_the_pipeline_screen_marks_a_flaky_stage(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.open_key("pipeline:web-api")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, PipelineScreen)
        names = {str(cells[0]) for _, cells in screen.stages.shown_rows}
        assert "test flaky 7/7" in names and "build" in names
        app.open_key("pipeline:fraud-model")  # no retried stage: nothing marked
        await settle(pilot)
        assert isinstance(app.screen, PipelineScreen)
        assert not any("flaky" in str(c[0]) for _, c in app.screen.stages.shown_rows)
