"""10,000 DAG runs of history in a real Airflow, read by ``opstui poll``.

The issue's bad-input case: an Airflow with a long history. The module
starts an Airflow of its own (``running_airflow`` on its own root, so the
session's server and the other tests never see these runs) and seeds
10,000 runs of a 20-task chain into it (``tests/airflow_seed.py``: rows
copied in its metadata database, served by Airflow's own REST API):
mostly successes, some failed at one task with the tasks after it
``upstream_failed``, a few running and queued, over 9 days, 5% of them
older than the endpoint's 7-day ``backfill``. opstui polls it as an
operator's ``opstui poll --once`` would, over and over until caught up
(``RUNS_PER_POLL`` runs a poll at most), and the store is checked against
what was seeded; then a poll with nothing new, ``opstui status --json``
and the dashboard's read over that store.

A poll stores the task instances of at most ``RUNS_PER_POLL`` runs,
newest update first, and moves the watermark once all are stored; runs the
store already holds finished as Airflow has them cost no second read. The
endpoint asks for 500 rows a page, more than Airflow's own
``maximum_page_limit`` (100): the pages follow ``total_entries``, not a
short page, or 80% of the history would be lost.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from opstui.store import status as st

from .airflow_seed import DAG_ID, SeededRun, plan_history, seed_history, task_ids
from .airflow_server import PASSWORD, USER, AirflowServer, running_airflow, venv
from .conftest import run_cli

pytestmark = pytest.mark.slow

RUNS = 10_000
TASKS = 20
DAY = 86_400.0
BACKFILL = 7 * DAY
SPAN = 9 * DAY
#: ``opstui poll --once`` runs before giving up on catching up.
MAX_POLLS = 12
ENDPOINT = "orchestrator"
RUN_STATUS = {
    "success": st.SUCCEEDED,
    "failed": st.FAILED,
    "running": st.RUNNING,
    "queued": st.QUEUED,
}
STAGE_STATUS = {
    "success": st.SUCCEEDED,
    "failed": st.FAILED,
    "upstream_failed": st.SKIPPED,
    "running": st.RUNNING,
    None: st.PENDING,
}


@dataclass
class History:
    server: AirflowServer
    folder: Path
    env: dict[str, str]
    seeded_at: float
    runs: list[SeededRun]
    #: After each ``opstui poll --once``: (seconds, runs of the DAG in the store, watermark).
    polls: list[tuple[float, int, float | None]] = field(default_factory=list)

    @property
    def inside(self) -> dict[str, SeededRun]:
        edge = self.seeded_at - BACKFILL
        return {r.run_id: r for r in self.runs if r.updated_at >= edge}

    @property
    def outside(self) -> set[str]:
        return {r.run_id for r in self.runs if r.run_id not in self.inside}

    @property
    def store(self) -> Path:
        return self.folder / "ops.db"


def write_config(folder: Path, server: AirflowServer) -> dict[str, str]:
    lines = [
        'store = "ops.db"',
        f"[endpoints.{ENDPOINT}]",
        'kind = "airflow"',
        f'url = "{server.url}"',
        'username_env = "AF_USER"',
        'password_env = "AF_PASSWORD"',
        'pipeline_kind = "devops"',
        "timeout = 60",
        f"backfill = {BACKFILL:.0f}",
        # Pacing would dominate: 20 requests a second is the default.
        "rate_limit = 1000",
        # Above Airflow's [api] maximum_page_limit (100): it answers 100 a page.
        "page_size = 500",
    ]
    (folder / "opstui.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"AF_USER": USER, "AF_PASSWORD": PASSWORD}


def key(run_id: str) -> str:
    return f"airflow:{ENDPOINT}:{DAG_ID}:{run_id}"


def watermark(path: Path) -> float | None:
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT max(through) FROM watermarks WHERE name = 'airflow-runs'")
        value = row.fetchone()[0]
    return None if value is None else float(value)


def stored_runs(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(
            db.execute("SELECT count(*) FROM runs WHERE key LIKE ?", (key("%"),)).fetchone()[0]
        )


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    if venv() is None:
        pytest.skip(
            "Airflow's venv is missing: python3 -m venv .venvs/airflow && "
            ".venvs/airflow/bin/pip install apache-airflow==3.3.2 (.ci/run does it)"
        )
    with running_airflow(tmp_path_factory.mktemp("airflow-history")) as server:
        now = time.time()
        runs = plan_history(RUNS, TASKS, now=now, backfill=BACKFILL, span=SPAN)
        seed_history(server, runs, tasks=TASKS)
        folder = tmp_path_factory.mktemp("operator")
        env = write_config(folder, server)
        found = History(server, folder, env, now, runs)
        for _ in range(MAX_POLLS):  # as an operator would, until caught up
            began = time.monotonic()
            polled = run_cli("poll", "--once", cwd=folder, env=env, timeout=300)
            assert polled.returncode == 0, polled.stdout + polled.stderr
            count, mark = stored_runs(found.store), watermark(found.store)
            progress = not found.polls or (count, mark) != found.polls[-1][1:]
            found.polls.append((time.monotonic() - began, count, mark))
            if not progress or (mark is not None and mark >= now and count >= len(found.inside)):
                break  # caught up, or stuck: a poll that moved nothing
        yield found


def test_every_run_inside_the_backfill_is_stored_once_and_none_outside(
    history: History,
) -> None:
    inside, outside = history.inside, history.outside
    assert 9_000 < len(inside) < RUNS and len(outside) > 300  # the seeding's mix
    polls = history.polls
    assert len(polls) > 1  # RUNS_PER_POLL: more than one poll to catch up
    mark = polls[-1][2]
    assert mark is not None and mark >= history.seeded_at, polls
    with sqlite3.connect(history.store) as db:
        keys = Counter(
            k for (k,) in db.execute("SELECT key FROM runs WHERE key LIKE ?", (key("%"),))
        )
        rows = {
            k: (status, message)
            for k, status, message in db.execute(
                "SELECT key, status, message FROM runs WHERE key LIKE ?", (key("%"),)
            )
        }
        stages: dict[str, list[tuple[str, str, int]]] = {}
        for k, name, status, attempt in db.execute(
            """SELECT r.key, s.name, s.status, s.attempt FROM stage_runs s
               JOIN runs r ON r.id = s.run_id WHERE r.key LIKE ? ORDER BY r.key, s.position""",
            (key("%"),),
        ):
            stages.setdefault(k, []).append((name, status, attempt))
    assert not [k for k, n in keys.items() if n > 1]
    assert set(keys) == {key(r) for r in inside}, (
        f"{len(set(keys) - {key(r) for r in inside})} stored that should not be, "
        f"{len({key(r) for r in inside} - set(keys))} missing; polls: {polls}"
    )
    names = task_ids(TASKS)
    wrong = []
    for run_id, run in inside.items():
        status, message = rows[key(run_id)]
        failed = run.failed_task
        want_message = f"task {names[failed]} failed" if failed is not None else None
        want_stages = [
            (
                name,
                STAGE_STATUS[state],
                run.failed_tries if state == "failed" else 1,
            )
            for name, state in zip(names, run.task_states, strict=True)
        ]
        got = (status, message, stages.get(key(run_id)))
        if got != (RUN_STATUS[run.state], want_message, want_stages):
            wrong.append((run_id, got))
    assert not wrong, f"{len(wrong)} runs differ from what was seeded, e.g. {wrong[:2]}"
    assert Counter(s for s, _ in rows.values()) == Counter(
        RUN_STATUS[r.state] for r in inside.values()
    )


def test_a_poll_when_nothing_changed_writes_no_finished_run_and_asks_little(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opstui.config import load_config
    from opstui.sources.orchestrator import PacedRest
    from opstui.sources.poller import Poller

    calls: list[str] = []
    send = PacedRest._send

    async def counted(self: PacedRest, method: str, url: str, **kw: Any) -> Any:
        calls.append(f"{method} {url.split('?', maxsplit=1)[0].removeprefix(history.server.url)}")
        return await send(self, method, url, **kw)

    monkeypatch.setattr(PacedRest, "_send", counted)
    for name, value in history.env.items():
        monkeypatch.setenv(name, value)
    cfg = load_config(history.folder / "opstui.toml")
    with sqlite3.connect(history.store) as db:
        before = dict(db.execute("SELECT key, rev FROM runs WHERE key LIKE ?", (key("%"),)))
        rev = db.execute("SELECT value FROM counters WHERE name = 'rev'").fetchone()[0]
    mark = watermark(history.store)
    began = time.monotonic()
    (ob,) = asyncio.run(Poller(history.store, list(cfg.endpoints.values())).poll_once())
    took = time.monotonic() - began
    assert ob.state == st.UP, ob
    with sqlite3.connect(history.store) as db:
        after = dict(db.execute("SELECT key, rev FROM runs WHERE key LIKE ?", (key("%"),)))
    active = {key(r.run_id) for r in history.inside.values() if r.state in ("running", "queued")}
    moved = {k for k in after if after[k] != before.get(k)}
    # Runs Airflow still runs are refreshed by every poll (their heartbeat);
    # a finished run that did not change costs no write.
    assert moved <= active, sorted(moved - active)[:5]
    assert set(after) == set(before)
    new_mark = watermark(history.store)
    assert new_mark is not None and mark is not None and new_mark >= mark
    print(f"\nno-change poll: {len(calls)} requests in {took:.2f} s, rev {rev} -> ", end="")
    print(f"{len(moved)} runs rewritten (active: {len(active)}): {Counter(calls)}")
    # The version, a token, the DAGs, one page of runs, the runs held open
    # (one request each) and their task instances, the DAG's task order.
    assert len(calls) <= 6 + len(active), Counter(calls)


def test_status_json_and_the_dashboard_read_that_store(history: History) -> None:
    from opstui.store import Store
    from opstui.store.dashboard import Dashboard

    began = time.monotonic()
    status = run_cli("status", "--json", cwd=history.folder, env=history.env, timeout=60)
    took = time.monotonic() - began
    doc = json.loads(status.stdout)
    (pipeline,) = [p for p in doc["pipelines"] if p["name"] == f"airflow/{DAG_ID}"]
    latest = pipeline["latest_run"]
    assert latest["external"]["source"] == "airflow"
    run = history.inside[latest["external"]["id"]]
    assert latest["status"] == RUN_STATUS[run.state]
    # Usable: a human waits for it (bench/orchestrators.py measures it).
    assert took < 10, took
    with Store(history.store) as store:
        began = time.monotonic()
        rows = {p.name: p for p in Dashboard(store).read()}
        read = time.monotonic() - began
    row = rows[f"airflow/{DAG_ID}"]
    assert row.latest is not None and row.latest.key == key(run.run_id)
    assert [s.name for s in row.latest.stages] == task_ids(TASKS)
    print(f"\nopstui status --json {took:.2f} s; Dashboard.read() cold {read * 1000:.1f} ms")
    print(f"polls (seconds, runs stored, watermark): {history.polls}")
