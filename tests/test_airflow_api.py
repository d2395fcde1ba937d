"""Reading Airflow 3's answers: states, topological stages, mapped tasks, hostile JSON."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st_

from opstui.sources.airflow import api
from opstui.store import status as st

RUN = {
    "dag_id": "etl",
    "dag_run_id": "manual__2026-12-05T01:19:11.997766+00:00",
    "run_type": "manual",
    "state": "failed",
    "queued_at": "2026-12-05T01:19:11.99Z",
    "start_date": "2026-12-05T01:19:12+00:00",
    "end_date": "2026-12-05T01:19:20+00:00",
    "logical_date": None,
    "conf": {"rows": 3},
    "triggered_by": "rest_api",
    "triggering_user_name": "admin",
}


def ti(task: str, state: str | None, tries: int = 1, index: int = -1, **extra: Any) -> Any:
    return api.TaskInstance(
        "etl", "r1", task, index, state, tries, extra.get("start"), extra.get("end")
    )


def test_every_airflow_task_state_is_mapped() -> None:
    airflow_states = {
        None, "queued", "scheduled", "running", "success", "failed", "upstream_failed",
        "up_for_retry", "up_for_reschedule", "skipped", "deferred", "removed", "restarting",
    }  # fmt: skip
    assert set(api.TASK_STATE) == airflow_states
    assert api.TASK_STATE["upstream_failed"] == (st.SKIPPED, "upstream failed")
    assert {s for s, _ in api.TASK_STATE.values()} <= set(st.STAGE_STATUSES)
    assert set(api.RUN_STATE.values()) <= set(st.RUN_STATUSES)


def test_a_run_reads_with_its_times_conf_and_trigger() -> None:
    (run,), skipped, total = api.parse_runs({"dag_runs": [RUN], "total_entries": 1})
    assert skipped == [] and total == 1
    assert run.status == st.FAILED and run.run_type == "manual" and run.user == "admin"
    assert run.start == pytest.approx(1_796_433_552.0)
    assert run.queued_at == pytest.approx(1_796_433_551.99)
    assert run.conf == {"rows": 3} and run.logical_date is None


def test_tasks_come_in_topological_order_whatever_order_airflow_lists_them() -> None:
    doc = {
        "tasks": [
            {"task_id": "load", "downstream_task_ids": []},
            {"task_id": "transform", "downstream_task_ids": ["load"]},
            {"task_id": "extract", "downstream_task_ids": ["transform", "report"]},
            {"task_id": "report", "downstream_task_ids": []},
        ]
    }
    assert api.parse_tasks(doc) == ["extract", "transform", "report", "load"]
    # A cycle (Airflow refuses one; a hand-made answer may hold it) ends the list.
    assert api.topological({"a": ["b"], "b": ["a"], "c": []}) == ["c", "a", "b"]


def test_a_failed_run_reads_as_stages_with_the_upstream_failure_said() -> None:
    order = ["extract", "transform", "load"]
    rows = api.stages(
        order,
        [ti("extract", "success", start=1.0, end=2.0), ti("transform", "failed", 1, start=2.0,
         end=3.0), ti("load", "upstream_failed", 0)],
    )  # fmt: skip
    assert [(s.name, s.status, s.attempt, s.message) for s in rows] == [
        ("extract", st.SUCCEEDED, 1, None),
        ("transform", st.FAILED, 1, None),
        ("load", st.SKIPPED, 1, "upstream failed"),
    ]
    assert rows[1].finished_at == 3.0


def test_a_mapped_task_is_one_stage_with_its_count_and_worst_state() -> None:
    mapped = [ti("score", "success", 1, i, start=float(i), end=float(i + 1)) for i in range(40)]
    mapped[7] = ti("score", "failed", 2, 7, start=7.0, end=9.0)
    mapped[8] = ti("score", "running", 1, 8, start=8.0)
    (stage,) = api.stages(["score"], mapped)
    assert stage.status == st.FAILED and stage.mapped == 40
    assert stage.message == "x40, 1 failed"
    assert stage.attempt == 2 and stage.started_at == 0.0
    running = [ti("score", "success", 1, 0, end=1.0), ti("score", "up_for_retry", 1, 1)]
    (stage,) = api.stages(["score"], running)
    assert stage.status == st.RUNNING and stage.finished_at is None
    assert stage.message == "x2: up for retry"


def test_tasks_not_yet_scheduled_are_pending_and_unknown_states_are_named() -> None:
    rows = api.stages(["a", "b"], [ti("a", "some_new_state"), ti("gone", "success")])
    assert [(s.name, s.status, s.message) for s in rows] == [
        ("a", st.PENDING, "Airflow state 'some_new_state'"),
        ("b", st.PENDING, None),
        ("gone", st.SUCCEEDED, None),
    ]


def test_a_dag_kind_comes_from_its_tags_else_the_endpoint() -> None:
    (dag,), _, _ = api.parse_dags({"dags": [{"dag_id": "train", "tags": [{"name": "MLOps"}]}]})
    assert dag.kind(None) == "mlops"
    assert api.AirflowDag("x").kind("devops") == "devops"


@pytest.mark.parametrize(
    "bad",
    [
        {**RUN, "dag_run_id": None},
        {**RUN, "state": 3},
        {**RUN, "start_date": "yesterday"},
        {**RUN, "start_date": 12},
        "not an object",
        None,
    ],
)
def test_a_run_the_api_sent_wrong_is_skipped_and_named(bad: Any) -> None:
    runs, skipped, _ = api.parse_runs({"dag_runs": [bad, RUN]})
    assert [r.run_id for r in runs] == [RUN["dag_run_id"]]
    assert len(skipped) == 1 and skipped[0].why


def test_an_answer_without_its_list_is_one_error() -> None:
    with pytest.raises(ValueError, match="dag_runs"):
        api.parse_runs({"detail": "Not Found"})


_JSON = st_.recursive(
    st_.none() | st_.booleans() | st_.integers() | st_.floats() | st_.text(max_size=20),
    lambda inner: st_.lists(inner, max_size=4) | st_.dictionaries(st_.text(max_size=12), inner,
                                                                  max_size=6),
    max_leaves=20,
)  # fmt: skip
_FIELDS = ("dag_id", "dag_run_id", "task_id", "state", "map_index", "try_number", "start_date",
           "end_date", "run_type", "conf", "tags", "downstream_task_ids")  # fmt: skip


@settings(max_examples=300, deadline=None, database=None)
@given(
    items=st_.lists(
        st_.dictionaries(st_.sampled_from(_FIELDS), _JSON, max_size=8) | _JSON, max_size=5
    )
)
def test_any_json_reads_or_is_skipped_never_a_crash(items: list[Any]) -> None:
    for parse, key in (
        (api.parse_runs, "dag_runs"),
        (api.parse_task_instances, "task_instances"),
        (api.parse_dags, "dags"),
    ):
        read, skipped, _ = parse({key: items})
        assert len(read) + len(skipped) == len(items)
    api.parse_tasks({"tasks": items})
    tis, _, _ = api.parse_task_instances({"task_instances": items})
    api.stages(["a"], tis)
