"""The first frame puts the cursor on the most urgent fault, and keeps it
there while nobody moves the cursor by hand (the incident flow, part 3)."""

from __future__ import annotations

from pathlib import Path

from opstui.analysis.rates import BurnAlert
from opstui.store import Store
from opstui.store import status as st
from opstui.store.rows import PipelineRow, RunRow, StageRow
from opstui.store.runs import create_run, finish_run, finish_stage, start_stage
from opstui.views.endpoints import EndpointReport
from opstui.views.snapshot import ModelSummary, Snapshot
from opstui.views.urgency import DEPLOY, DOWN, DRIFT, PAGE, RUN, TICKET, faults

from .test_burn_history import CONFIG, NOW, config
from .test_recovering import _record
from .test_tui import board, settle
from .tui_support import FROZEN, make_app, sample_store

T = 1_800_000_000.0


def _endpoint(name: str, state: str, severity: str | None = None) -> EndpointReport:
    alerts = (
        (BurnAlert(severity, "1h", "5m", 14.4, 20.0, 20.0, True, 3600, 300, True),)
        if severity
        else ()
    )
    return EndpointReport(name, "prometheus", "u", state, None, T - 5, T - 1, 1.0, None, 0.999,
                          alerts=alerts)  # fmt: skip


def _pipeline(name: str, status: str, at: float, failed_at: str = "test") -> PipelineRow:
    stage = StageRow(1, failed_at, 0, st.FAILED, 1, 1, at - 10, at, None, None)
    run = RunRow(1, name, None, status, status, "push", None, 1, None, None, at - 20, at - 20, at,
                 at, None, (stage,))  # fmt: skip
    return PipelineRow(1, name, None, (), run)


def test_faults_rank_by_class_then_newest_then_acknowledged_last() -> None:
    snap = Snapshot(
        T,
        [
            _pipeline("old-fail", st.FAILED, T - 900),
            _pipeline("new-fail", st.FAILED, T - 60),
            _pipeline("deploy-fail", st.FAILED, T - 3000, failed_at="deploy"),
            _pipeline("ok", st.SUCCEEDED, T - 30),
        ],
        [
            _endpoint("slow-burn", st.BURNING, "ticket"),
            _endpoint("gone", st.DOWN),
            _endpoint("paging", st.BURNING, "page"),
            _endpoint("fine", st.UP),
            _endpoint("mending", st.RECOVERING),
        ],
        [ModelSummary("fraud", "7", "candidate", {}, 0.6, ("amount",), True)],
        [],
        {},
        {},
    )
    ranked = [(f.key, f.rank) for f in faults(snap)]
    assert ranked == [
        ("endpoint:paging", PAGE),
        ("endpoint:gone", DOWN),
        ("pipeline:deploy-fail", DEPLOY),
        ("pipeline:new-fail", RUN),
        ("pipeline:old-fail", RUN),
        ("model:fraud", DRIFT),
        ("endpoint:mending", TICKET),
        ("endpoint:slow-burn", TICKET),
    ]
    acked = [f.key for f in faults(snap, acknowledged={"endpoint:paging:burning:page"})]
    assert acked[0] == "endpoint:gone" and acked[-1] == "endpoint:paging"


def _fail(store: Store, pipeline: str) -> None:
    run, _ = create_run(store, pipeline, stages=["build", "test"], trigger="push")
    start_stage(store, run, "build")
    finish_stage(store, run, "build", status=st.FAILED)
    finish_run(store, run)


async def test_the_first_frame_selects_the_newest_failure_and_follows_a_new_one(
    tmp_path: Path,
) -> None:
    store = sample_store(tmp_path)
    app = make_app(tmp_path, store=store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        b = board(app)
        # churn-model was lost 58 minutes ago, fraud-model failed 8 hours ago.
        assert b.pipelines.keys[:2] == ["pipeline:churn-model", "pipeline:fraud-model"]
        assert b.selected() == "pipeline:churn-model"
        with Store(store, clock=lambda: FROZEN) as db:
            _fail(db, "billing-worker")  # from another process, just now
        await settle(pilot)
        assert b.pipelines.keys[0] == "pipeline:billing-worker"  # the newest fault on top
        assert b.selected() == "pipeline:billing-worker"
        # The operator moves the cursor: the next fault does not take it.
        await pilot.press("down")
        chosen = b.selected()
        with Store(store, clock=lambda: FROZEN + 5) as db:
            _fail(db, "web-api")
        await settle(pilot)
        assert b.pipelines.keys[0] == "pipeline:web-api"
        assert b.selected() == chosen


async def test_a_paging_burn_is_selected_before_any_failed_run(tmp_path: Path) -> None:
    from opstui.tui.app import OpstuiApp

    _record(tmp_path, clean_for=0)  # every request failing, for seven hours
    with Store(tmp_path / "ops.db", clock=lambda: NOW - 60) as db:
        _fail(db, "billing-worker")
    cfg = config(tmp_path, CONFIG.format(interval=15))
    app = OpstuiApp(tmp_path / "ops.db", cfg, poll=False, read_only=True, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        b = board(app)
        assert b.selected() == "endpoint:web"
        assert b.focused is b.endpoints
