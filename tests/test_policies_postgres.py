"""Policies on a team store (a real PostgreSQL): two evaluators on two
"hosts" act once on a fault, the retry runs through the detached runner into
the same database, audited as the policy; replay reads the same history."""

from __future__ import annotations

import time
from contextlib import closing
from pathlib import Path

from opstui.config import load_config
from opstui.policies import replay as rp
from opstui.policies.evaluate import Evaluator
from opstui.store import Store, history
from opstui.store import policies as sp
from opstui.store import runs as store_runs
from opstui.store import status as st
from opstui.store.actions import list_actions
from opstui.views.snapshot import SnapshotReader
from tests.test_policies_run import RETRY
from tests.test_runner import write_config

PIPELINE = """
[pipelines.web]
kind = "devops"
environment = "production"
stages = [
  { name = "build", run = ["true"] },
  { name = "test", run = ["true"] },
]
"""


def test_two_evaluators_on_postgresql_retry_once(tmp_path: Path, pg_url: str) -> None:
    write_config(tmp_path, PIPELINE + RETRY)
    config = load_config(tmp_path / "opstui.toml")
    with Store(pg_url) as store:
        run_id, _ = store_runs.create_run(store, "web", stages=["build", "test"])
        store_runs.finish_stage(store, run_id, "build", exit_code=0)
        store_runs.finish_stage(store, run_id, "test", exit_code=1)
        store_runs.finish_run(store, run_id)
    one = Evaluator(config, holder="host-a:1:policies")
    two = Evaluator(config, holder="host-b:2:policies")
    with Store(pg_url) as a, Store(pg_url) as b, closing(SnapshotReader(pg_url, config)) as reader:
        snap = reader.snapshot()
        first, second = one.step(a, snap), two.step(b, snap)
    assert [d.verdict for d in first.decisions] == ["acted"] and second.decisions == []
    assert second.held_by == "host-a:1:policies"
    retry_id = int(first.decisions[0].why.rsplit("run ", 1)[1])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with Store(pg_url) as store:
            retry = history.get_run(store, retry_id)
        if retry.status not in st.ACTIVE:
            break
        time.sleep(0.2)
    assert (retry.status, retry.parent_run_id, retry.actor) == (
        st.SUCCEEDED, run_id, "policy:retry-web",
    )  # fmt: skip
    with Store(pg_url) as store:
        assert list_actions(store, limit=1)[0].actor == "policy:retry-web"
        decisions = sp.decisions(store, since=0)
        assert [(d.verdict, d.run_id) for d in decisions] == [("acted", retry_id)]
        now = store.clock()
        report = rp.replay(config, config.policies.values(),
                           rp.load(store, config, list(config.policies.values()), now - 3600, now),
                           since=now - 3600, until=now)  # fmt: skip
    assert [(d.verdict, d.fault) for d in report.decisions] == [("acted", f"run:{run_id}")]
