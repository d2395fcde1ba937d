"""Prefect logs on demand: a task's log (and a flow run's own lines) read from a real
Prefect server (tests/prefect_server.py) when the console opens a stage, never stored.

Prefect's own ``POST /logs/filter`` is the oracle. The console's pipeline
screen shows the log at 80x24, escaped; a Prefect that is down, or a flow
run it does not have, is one ``[opstui] no log: ...`` line.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from opstui.config.endpoints import EndpointDef
from opstui.store import Store

from .prefect_server import PrefectServer
from .processes import free_port
from .test_prefect import PIPELINE, adhoc, config, failed_run, poll, store_run

pytestmark = pytest.mark.slow

FAILED_LINE = (
    "Task run failed with exception: RuntimeError('transform: the upstream schema changed')"
)
#: What a task prints: ANSI colour, a window title (OSC), a bell, a C1 CSI,
#: a carriage return, and Rich markup.
HOSTILE = r"\x1b[31mred\x1b[0m \x1b]0;pwned\x07 \x9b2J cr\rx [bold red]loud[/] [link=x]y"


def endpoint(url: str, rate_limit: float = 20.0) -> EndpointDef:
    return EndpointDef(
        name="orchestrator", kind="prefect", url=url, timeout=20.0, rate_limit=rate_limit
    )


def failed_with_logs(prefect: PrefectServer) -> str:
    """A failed run of flaky-etl whose every log line has reached the API."""
    run_id = failed_run(prefect)
    prefect.wait_logs(run_id, "Finished in state Failed('Flow run encountered")
    return run_id


def prefect_lines(prefect: PrefectServer, run_id: str, task_run_id: str | None) -> list[str]:
    """Prefect's own answer: the lines of the flow run's log of one task run (None: of none)."""
    return [
        line
        for record in prefect.logs(run_id)
        if record["task_run_id"] == task_run_id
        for line in re.split(r"\r?\n", record["message"])
    ]


async def open_log(app: Any, pipeline: str, wanted: str) -> tuple[list[str], str]:
    """Open the pipeline's screen at 80x24: its log's lines once one holds
    ``wanted``, and what the terminal shows then."""
    from opstui.tui.screens.pipeline import PipelineScreen

    from .test_tui import settle, text_of

    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_key(f"pipeline:{pipeline}")
        screen = app.screen
        assert isinstance(screen, PipelineScreen)
        # The failed stage is opened first, its log fetched from Prefect. The
        # stages table's first highlight (row 0) clears the log once (a new
        # list) and the failed stage's is fetched again: wait until one list
        # has held ``wanted`` for a second.
        held: list[str] | None = None
        since = 0.0
        for _ in range(600):
            await pilot.pause(0.05)
            lines = screen.log_lines
            if not any(wanted in line for line in lines):
                held = None
            elif lines is not held:
                held, since = lines, time.monotonic()
            elif time.monotonic() - since >= 1.0:
                break
        return list(screen.log_lines), text_of(app)


def console(folder: Path) -> Any:
    from opstui.config import load_config
    from opstui.tui.app import OpstuiApp

    return OpstuiApp(
        folder / "ops.db", load_config(folder / "opstui.toml"), poll=False, read_only=True
    )


def test_the_failed_tasks_log_holds_its_own_lines_and_the_exception(
    prefect: PrefectServer,
) -> None:
    from opstui.sources.prefect.logs import fetch_log

    run_id = failed_with_logs(prefect)
    (transform,) = [r for r in prefect.task_runs(run_id) if r["name"].startswith("transform-")]
    got = fetch_log(endpoint(prefect.url), run_id, "transform", 1)
    texts = [text for _, _, text in got]
    assert texts == prefect_lines(prefect, run_id, transform["id"])  # Prefect's, in its order
    assert texts[0] == FAILED_LINE
    assert "Traceback (most recent call last):" in texts
    assert "RuntimeError: transform: the upstream schema changed" in texts
    assert texts[-1].startswith("Finished in state Failed('Task run encountered an exception")
    assert {level for _, level, _ in got} == {"error"}
    assert all(when is not None and abs(when - time.time()) < 600 for when, _, _ in got)
    # Neither another task's lines nor the flow run's own.
    assert not any("extracted 3 rows" in t or "Beginning flow run" in t for t in texts)
    # The flow run's own lines: those of no task run.
    own = [text for _, _, text in fetch_log(endpoint(prefect.url), run_id)]
    assert own == prefect_lines(prefect, run_id, None)
    assert own[0].startswith("Beginning flow run") and "extracted 3 rows" not in own
    # A task that never ran in it (load, after the failure) is named.
    from opstui.sources.prefect.rest import PrefectError

    with pytest.raises(
        PrefectError, match=f"log of load: flow run {run_id} has no task run of load"
    ):
        fetch_log(endpoint(prefect.url), run_id, "load", 1)


async def test_the_console_shows_a_prefect_tasks_log(
    prefect: PrefectServer, tmp_path: Path
) -> None:
    run_id = failed_with_logs(prefect)
    config(tmp_path, prefect.url)
    poll(tmp_path)
    app = console(tmp_path)
    lines, shown = await open_log(app, PIPELINE, "Finished in state Failed")
    assert lines[0] == FAILED_LINE, lines[:3]
    assert "RuntimeError: transform: the upstream schema changed" in lines
    assert lines[-1].startswith("Finished in state Failed('Task run encountered")
    assert not any("extracted 3 rows" in line for line in lines)
    assert f"Log of transform · {len(lines)} lines" in shown, shown
    assert "Finished in state Failed('Task run encountered an" in shown, shown
    ours = store_run(tmp_path, PIPELINE, run_id).id
    assert f"run #{ours} failed" in shown, shown  # the newest run: the one opened


async def test_a_hostile_log_line_reaches_the_screen_escaped(
    prefect: PrefectServer, tmp_path: Path
) -> None:
    adhoc(
        prefect,
        tmp_path,
        f'''
        from prefect import flow, task

        @task(log_prints=True)
        def shout():
            print("{HOSTILE}")

        @flow(name="hostile")
        def main():
            shout()

        if __name__ == "__main__":
            main()
        ''',
    ).wait(timeout=120)
    (found,) = prefect.api(
        "POST", "/flow_runs/filter", json={"flows": {"name": {"any_": ["hostile"]}}}
    )
    prefect.wait_task_runs(found["id"], 1)
    said = prefect.wait_logs(found["id"], "loud")
    assert any("\x1b[31mred" in r["message"] for r in said)  # Prefect keeps it as sent
    config(tmp_path, prefect.url)
    poll(tmp_path)
    app = console(tmp_path)
    lines, shown = await open_log(app, "prefect/hostile", "loud")
    (line,) = [line for line in lines if "loud" in line]
    assert line == (
        r"\x1b[31mred\x1b[0m \x1b]0;pwned\x07 \x9b2J cr\x0dx [bold red]loud[/] [link=x]y"
    )
    assert not any(c in shown for c in "\x1b\x07\r\x9b")
    # On screen as written: the escapes visible, the markup not read.
    assert r"\x1b[31mred\x1b[0m \x1b]0;pwned\x07 \x9b2J cr\x0dx [bold red]loud[/]" in shown, shown


def test_a_prefect_that_is_down_or_without_the_flow_run_is_a_prefect_error(
    prefect: PrefectServer,
) -> None:
    from opstui.sources.prefect.logs import fetch_log
    from opstui.sources.prefect.rest import PrefectError

    missing = str(uuid.uuid4())
    with pytest.raises(PrefectError, match="flow run: HTTP 404 Not Found: Flow run not found"):
        fetch_log(endpoint(prefect.url), missing, "transform", 1)
    with pytest.raises(PrefectError, match="flow run: HTTP 404 Not Found: Flow run not found"):
        fetch_log(endpoint(prefect.url), missing)  # its own lines: asked of the flow run too
    with pytest.raises(PrefectError, match="is not a UUID"):
        fetch_log(endpoint(prefect.url), "nonsense", "transform", 1)
    dead = f"http://127.0.0.1:{free_port()}/api"
    with pytest.raises(PrefectError, match="version: connection refused"):
        fetch_log(endpoint(dead), missing, "transform", 1)


async def test_a_prefect_that_is_down_or_without_the_flow_run_is_one_line_on_screen(
    prefect: PrefectServer, tmp_path: Path
) -> None:
    missing = str(uuid.uuid4())
    dead = f"http://127.0.0.1:{free_port()}/api"
    failed_with_logs(prefect)
    config(tmp_path, prefect.url)
    poll(tmp_path)
    # The store's copy names a flow run Prefect does not have.
    with Store(tmp_path / "ops.db") as store, store.write() as tx:
        tx.execute("UPDATE runs SET params = json_set(params, '$.source.id', ?)", (missing,))
    lines, shown = await open_log(console(tmp_path), PIPELINE, "no log")
    assert lines == ["[opstui] no log: HTTP 404 Not Found: Flow run not found"]
    assert "[opstui] no log: HTTP 404 Not Found: Flow run not found" in shown, shown
    # Prefect goes away: the endpoint's URL points at nothing.
    config(tmp_path, dead)
    lines, shown = await open_log(console(tmp_path), PIPELINE, "no log")
    assert lines == ["[opstui] no log: connection refused"]
    assert "[opstui] no log: connection refused" in shown and "Traceback" not in shown


# Without a server: the request, the paging and the reading.


def test_pages_are_asked_in_time_order_and_a_line_met_twice_is_shown_once() -> None:
    from opstui.sources.prefect import logs
    from opstui.sources.prefect.rest import AsyncPrefectRest

    flow_run = str(uuid.uuid4())
    asked: list[Any] = []

    def record(i: int) -> dict[str, Any]:
        return {
            "id": f"log-{i}",
            "level": 20 if i % 2 else 25,
            "message": f"line {i}\r\nmore {i}" if i == 3 else f"line {i}",
            "timestamp": "2026-12-05T03:19:23.208451Z",
            "task_run_id": "tr-2",
        }

    def answer(request: httpx.Request) -> httpx.Response:
        import json

        body = json.loads(request.content)
        asked.append((request.url.path, body))
        if request.url.path.endswith("/task_runs/filter"):
            runs = [
                {"id": f"tr-{n}", "flow_run_id": flow_run, "name": f"t-{n}a",
                 "dynamic_key": f"{n}a", "task_key": "t-5cb", "state_type": "FAILED",
                 "run_count": 1, "flow_run_run_count": n}
                for n in (1, 2)
            ]  # fmt: skip
            return httpx.Response(200, json=runs)
        start = body["offset"]
        page = [record(i) for i in range(start, min(start + body["limit"], 250))]
        if start:
            page.insert(0, record(start - 1))  # the last line again (same timestamp)
        return httpx.Response(200, json=page)

    async def main() -> list[logs.LogEntry]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            rest = AsyncPrefectRest(endpoint("http://prefect.test/api", 1000.0), http)
            return await logs.log(rest, flow_run, "t", 2)

    got = asyncio.run(main())
    assert [text for _, _, text in got][:5] == ["line 0", "line 1", "line 2", "line 3", "more 3"]
    assert len(got) == 251 and got[-1][2] == "line 249"
    assert {level for _, level, _ in got} == {"info", "level 25"}
    assert asked[1] == (
        "/api/logs/filter",
        {
            "logs": {"flow_run_id": {"any_": [flow_run]}, "task_run_id": {"any_": ["tr-2"]}},
            "sort": "TIMESTAMP_ASC",
            "limit": 200,
            "offset": 0,
        },
    )
    assert [body["offset"] for path, body in asked if path.endswith("/logs/filter")] == [0, 200]


def test_a_stages_log_is_that_of_its_attempts_task_runs() -> None:
    from opstui.sources.prefect import api, logs

    def tr(n: int, flow_attempt: int, tries: int = 1, name: str = "transform") -> dict[str, Any]:
        return {"id": f"{name}-{n}", "flow_run_id": "f", "name": f"{name}-{n}0a",
                "dynamic_key": f"{n}0ab", "task_key": f"{name}-5cb", "state_type": "FAILED",
                "run_count": tries, "flow_run_run_count": flow_attempt}  # fmt: skip

    trs, _ = api.parse_task_runs([tr(1, 1), tr(2, 2, tries=3), tr(3, 2), tr(4, 1, name="load")])

    def ids(attempt: int | None) -> list[str]:
        return [t.id for t in logs.chosen(trs, "transform", attempt)]

    assert ids(1) == ["transform-1"]
    # Flow run attempt 2, its task retried twice in it: the stage's attempt 4
    # (as api.stages counts it); both of the task's runs in that attempt.
    assert ids(4) == ["transform-2", "transform-3"]
    assert ids(None) == ids(9) == ["transform-2", "transform-3"]  # else the latest
    assert logs.chosen(trs, "score", 1) == []


async def test_a_log_that_could_not_be_fetched_is_shown_whole_once_prefect_answers(
    prefect: PrefectServer, tmp_path: Path
) -> None:
    """The "no log" line is replaced by the log from its first line, not
    appended to (a line numbered 1 was shown: the log's own line 1 is not
    skipped as already seen)."""
    import dataclasses

    from opstui.tui.messages import RefreshWanted
    from opstui.tui.screens.pipeline import PipelineScreen

    from .test_tui import settle

    failed_with_logs(prefect)
    config(tmp_path, prefect.url)
    poll(tmp_path)
    config(tmp_path, f"http://127.0.0.1:{free_port()}/api")  # Prefect out of reach
    app = console(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_key(f"pipeline:{PIPELINE}")
        screen = app.screen
        assert isinstance(screen, PipelineScreen)
        for _ in range(400):
            await pilot.pause(0.05)
            if screen.log_lines == ["[opstui] no log: connection refused"]:
                break
        assert screen.log_lines == ["[opstui] no log: connection refused"]
        # Prefect answers again (the endpoint the console reads through).
        endpoints = app.reader.config.endpoints
        endpoints["orchestrator"] = dataclasses.replace(endpoints["orchestrator"], url=prefect.url)
        screen.post_message(RefreshWanted())
        for _ in range(400):
            await pilot.pause(0.05)
            if screen.log_lines and screen.log_lines[0] == FAILED_LINE:
                break
        assert screen.log_lines[0] == FAILED_LINE, screen.log_lines[:3]
        assert not any("no log" in line for line in screen.log_lines)
