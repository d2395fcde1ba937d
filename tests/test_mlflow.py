"""MLflow as a source and a rollback target, against a real ``mlflow server``.

The server starts once per session (``tests/mlflow_server.py``). Tests that
move aliases or delete versions use models of their own. Failure modes a
healthy server cannot produce (401, HTML, an alias on a missing version)
are served by a tiny local HTTP server or ``httpx.MockTransport``.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from opstui.config import Config, load_config
from opstui.config.endpoints import EndpointDef
from opstui.runner.actions import Started, perform, propose
from opstui.runner.plan import Plan
from opstui.runner.planning import plan_rollback
from opstui.sources.mlflow import api as mlflow_api
from opstui.sources.mlflow import poll as mlflow_poll
from opstui.sources.mlflow import rest as mlflow_rest
from opstui.sources.mlflow.api import MlflowSnapshot
from opstui.sources.mlflow.poll import observe_mlflow
from opstui.sources.mlflow.rest import MlflowError, MlflowRest
from opstui.sources.mlflow.sync import sync_snapshot
from opstui.store import Store, history, models
from opstui.store import status as st
from opstui.store.actions import list_actions
from opstui.store.dashboard import Dashboard
from opstui.store.endpoints import Observation, record_observations
from opstui.timeutil import clock_time
from opstui.views.snapshot import SnapshotReader

from .conftest import run_cli
from .mlflow_server import (
    EXPERIMENT,
    MODEL,
    MlflowServer,
    experiment_with_runs,
    registered_model,
    serve,
)
from .processes import free_port

INTERVAL = 5.0


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    yield from serve(tmp_path_factory)


def endpoint(url: str, **extra: Any) -> EndpointDef:
    values: dict[str, Any] = {
        "experiments": (EXPERIMENT,),
        "models": (MODEL,),
        "aliases": {"champion": "production"},
        "interval": INTERVAL,
        **extra,
    }
    return EndpointDef(name="registry", kind="mlflow", url=url, **values)


def poll(
    ep: EndpointDef, transport: httpx.AsyncBaseTransport | None = None
) -> tuple[Observation, MlflowSnapshot]:
    async def once() -> tuple[Observation, MlflowSnapshot]:
        async with httpx.AsyncClient(transport=transport) as client:
            return await observe_mlflow(client, ep)

    return asyncio.run(once())


def poll_and_sync(store: Store, ep: EndpointDef) -> Observation:
    ob, snap = poll(ep)
    sync_snapshot(store, ep, snap)
    return ob


def write_config(folder: Path, url: str, model: str) -> Path:
    path = folder / "opstui.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            store = "ops.db"
            [environments.staging]
            [environments.production]

            [endpoints.registry]
            kind = "mlflow"
            url = "{url}"
            models = ["{model}"]
            aliases = {{ champion = "production" }}

            [models.{model}]
            registry = "registry"
            """
        ),
        encoding="utf-8",
    )
    return path


def counts(store: Store) -> tuple[int, ...]:
    tables = ("runs", "pipelines", "model_versions", "deployments")
    return tuple(store.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables)


# --- observing and syncing ---------------------------------------------------------


def test_observe_and_sync_mirror_runs_versions_and_the_alias(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    ep = endpoint(mlflow_server.url)
    ob, snap = poll(ep)
    assert (ob.state, ob.reason) == ("up", None), ob.reason
    samples = {name: value for name, labels, value in ob.samples if not labels}
    assert samples["runs_failed_recent"] == 1
    assert samples["runs_running"] == 1
    assert {r.run_id for r in snap.runs} == set(mlflow_server.runs.values())
    (model,) = snap.models
    assert model.aliases == {"champion": "3"}
    assert [v.version for v in model.versions] == ["1", "2", "3"]

    with Store(tmp_path / "ops.db") as store:
        sync_snapshot(store, ep, snap)
        by_key = {r.key: r for r in history.run_history(store, f"mlflow/{EXPERIMENT}", limit=10)}
        ids = mlflow_server.runs
        statuses = {name: by_key[f"mlflow:{rid}"].status for name, rid in ids.items()}
        assert statuses == {"finished": "succeeded", "failed": "failed", "running": "running"}
        finished = by_key[f"mlflow:{ids['finished']}"]
        params = history.run_params(store, finished.id)["mlflow"]
        assert params["metrics"] == {"logloss": 0.42, "roc_auc": 0.81}  # type: ignore[index]
        assert params["params"] == {"max_depth": "6"}  # type: ignore[index]
        assert by_key[f"mlflow:{ids['failed']}"].message == "MLflow run train-oom ended FAILED"
        timeout = store.conn.execute(
            "SELECT heartbeat_timeout FROM runs WHERE key = ?", (f"mlflow:{ids['running']}",)
        ).fetchone()[0]
        assert timeout == 3 * INTERVAL

        versions = {v.version: v for v in models.model_versions(store, MODEL)}
        assert {v: r.status for v, r in versions.items()} == {
            "1": "archived",
            "2": "archived",
            "3": "production",
        }
        assert versions["3"].run_id == finished.id  # linked to the synced run
        assert versions["3"].metrics == {"logloss": 0.42, "roc_auc": 0.81}
        (deployed,) = models.current_deployments(store, MODEL)
        assert (deployed.environment, deployed.target_kind, deployed.version) == (
            "production",
            "model",
            "3",
        )
        assert (deployed.action, deployed.actor) == ("deploy", "mlflow/registry")

        # The same snapshot again, then a fresh poll: nothing new.
        before = counts(store)
        sync_snapshot(store, ep, snap)
        poll_and_sync(store, ep)
        assert counts(store) == before
        assert len(models.deployment_history(store, MODEL)) == 1


def test_a_run_finishing_in_mlflow_updates_its_row_and_a_silent_poller_loses_it(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    client = mlflow_server.client
    ids = experiment_with_runs(client, "status-change")
    ep = endpoint(mlflow_server.url, experiments=("status-change",), models=())
    key = f"mlflow:{ids['running']}"
    with Store(tmp_path / "ops.db") as store:
        poll_and_sync(store, ep)
        (run,) = [r for r in history.run_history(store, "mlflow/status-change") if r.key == key]
        assert run.status == st.RUNNING
        # Nobody syncs for longer than 3 intervals, and no poll of its source
        # is recorded (this test syncs without observations): the heartbeat
        # rule alone, lost. With the source's state recorded: see the outage test.
        later = history.get_run(store, run.id, now=time.time() + 3 * INTERVAL + 1)
        assert later.status == st.LOST
        rev = store.conn.execute("SELECT rev FROM runs WHERE id = ?", (run.id,)).fetchone()[0]

        client.set_terminated(ids["running"], "KILLED")
        poll_and_sync(store, ep)
        after = history.get_run(store, run.id)
        assert (after.status, after.key) == (st.CANCELLED, key)
        assert after.finished_at is not None
        new_rev = store.conn.execute("SELECT rev FROM runs WHERE id = ?", (run.id,)).fetchone()
        assert new_rev[0] > rev
        assert len(history.run_history(store, "mlflow/status-change")) == 3  # no new row


def test_an_mlflow_outage_makes_a_running_run_unknown_never_lost(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    """The source is down, not the run: ``unknown (source ... down since ...)``.

    The last good poll is put a minute back (its observation and its sync),
    so the run's heartbeat is stale now, as 33 s into a real outage.
    """
    client = mlflow_server.client
    ids = experiment_with_runs(client, "outage")
    ep = endpoint(mlflow_server.url, experiments=("outage",), models=())
    key = f"mlflow:{ids['running']}"
    path = tmp_path / "ops.db"
    before = time.time() - 60
    with Store(path) as store:
        ob, snap = poll(ep)
        assert ob.state == "up"
        record_observations(store, [ob._replace(at=before)], holder="test")
        sync_snapshot(store, ep, replace(snap, at=before))
        # The server cannot be reached now (a closed port, the same endpoint name).
        closed = replace(ep, url=f"http://127.0.0.1:{free_port()}")
        down, empty = poll(closed)
        assert down.state == "down"
        record_observations(store, [down], holder="test")
        sync_snapshot(store, closed, empty)

        (run,) = [r for r in history.run_history(store, "mlflow/outage") if r.key == key]
        why = f"source registry down since {clock_time(before)}"
        assert (run.status, run.recorded_status, run.status_reason) == (st.UNKNOWN, st.RUNNING, why)
        assert history.get_run(store, run.id).status == st.UNKNOWN
        (pipeline,) = [p for p in Dashboard(store).read() if p.name == "mlflow/outage"]
        assert pipeline.status == st.UNKNOWN

    snap_ = SnapshotReader(path, Config()).snapshot()
    (row,) = [p for p in snap_.pipelines if p.name == "mlflow/outage"]
    assert row.status == st.UNKNOWN
    # (The experiment's failed run is in the feed too: the timeline keeps it.)
    (event,) = [e for e in snap_.events if "mlflow/outage #1" in e.text]
    assert f"unknown ({why})" in event.text
    assert event.severity == "warn"

    # Not a failure: `opstui status` exits 0, says why, and never "lost".
    text = run_cli("status", "--store", path, env={"COLUMNS": "80"})
    assert text.returncode == 0, text.stderr
    assert "lost" not in text.stdout
    assert f"mlflow/outage: unknown ({why})" in text.stdout
    result = run_cli("status", "--json", "--store", path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["failing"], doc["unknown"]) == (0, 1)
    (outage,) = [p for p in doc["pipelines"] if p["name"] == "mlflow/outage"]
    latest = outage["latest_run"]
    assert (outage["status"], latest["recorded_status"]) == ("unknown", "running")
    assert latest["status_reason"] == why
    assert latest["external"] == {
        "source": "mlflow",
        "endpoint": "registry",
        "name": "train-now",
        "id": ids["running"],
    }

    with Store(path) as store:
        # The source answers again: the run is running, with no reason.
        record_observations(store, [poll_and_sync(store, ep)], holder="test")
        back = history.get_run(store, run.id)
        assert (back.status, back.status_reason) == (st.RUNNING, None)
        # Nobody polls any more: still unknown, not lost (MLflow may say RUNNING).
        later = time.time() + 3 * INTERVAL + 1
        silent = history.get_run(store, run.id, now=later)
        assert silent.status == st.UNKNOWN
        assert silent.status_reason is not None
        assert "source registry not polled since" in silent.status_reason
        # The source answers and no longer reports the run (deleted there):
        # its heartbeat rule says lost.
        client.delete_run(ids["running"])
        answered = poll_and_sync(store, ep)
        record_observations(store, [answered._replace(at=later)], holder="test")
        assert history.get_run(store, run.id, now=later).status == st.LOST


def test_models_lists_a_synced_mlflow_model_with_its_alias_and_status_json_its_runs(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    client = mlflow_server.client
    name = "models-cli"
    registered_model(client, name, mlflow_server.runs["finished"], versions=3, alias_on="2")
    ep = endpoint(mlflow_server.url, models=(name,))
    path = tmp_path / "ops.db"
    with Store(path) as store:
        poll_and_sync(store, ep)

    result = run_cli("models", name, "--json", "--store", path)
    assert result.returncode == 0, result.stderr
    (model,) = json.loads(result.stdout)["models"]
    assert [(v["version"], v["status"]) for v in model["versions"]] == [
        ("3", "candidate"),
        ("2", "production"),
        ("1", "archived"),
    ]
    # The producing run's metrics, synced from MLflow with the version.
    assert model["versions"][1]["metrics"] == {"logloss": 0.42, "roc_auc": 0.81}
    assert model["versions"][1]["run_id"] is not None
    (deployed,) = model["deployments"]
    assert (deployed["environment"], deployed["version"], deployed["alias"]) == (
        "production",
        "2",
        "champion",
    )
    assert deployed["actor"] == "mlflow/registry"

    # The alias moves in MLflow: the next sync makes v3 what serves production.
    client.set_registered_model_alias(name, "champion", "3")
    with Store(path) as store:
        poll_and_sync(store, ep)
    text = run_cli("models", name, "--store", path, env={"COLUMNS": "80"})
    assert text.returncode == 0, text.stderr
    assert "  production: v3 (alias champion), deploy " in text.stdout
    assert text.stdout.splitlines()[2].split()[:2] == ["3", "production"]

    # status --json names each MLflow run's source, name and id.
    doc = json.loads(run_cli("status", "--json", "--store", path).stdout)
    (pipeline,) = [p for p in doc["pipelines"] if p["name"] == f"mlflow/{EXPERIMENT}"]
    external = pipeline["latest_run"]["external"]
    assert external["source"] == "mlflow"
    assert external["endpoint"] == "registry"
    assert (external["name"], external["id"]) in {
        ("train-ok", mlflow_server.runs["finished"]),
        ("train-oom", mlflow_server.runs["failed"]),
        ("train-now", mlflow_server.runs["running"]),
    }


def test_missing_experiment_and_model_are_degraded(mlflow_server: MlflowServer) -> None:
    ob, snap = poll(endpoint(mlflow_server.url, experiments=("nope",), models=("ghost",)))
    assert ob.state == "degraded"
    assert ob.reason == "experiment nope does not exist; registered model ghost does not exist"
    assert snap.runs == () and snap.models == ()


def test_deleting_the_aliased_version_removes_the_alias(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    """MLflow deletes an alias with its version: the alias points nowhere, not at a ghost."""
    client, name = mlflow_server.client, "gone-churn"
    registered_model(client, name, mlflow_server.runs["finished"], alias_on="2")
    ep = endpoint(mlflow_server.url, experiments=(), models=(name,))
    config = write_config(tmp_path, mlflow_server.url, name)
    with Store(tmp_path / "ops.db") as store:
        poll_and_sync(store, ep)
        client.set_registered_model_alias(name, "champion", "3")
        poll_and_sync(store, ep)  # the store saw 2, then 3
    client.delete_model_version(name, "3")
    assert mlflow_server.aliases(name) == {}

    ob, _ = poll(ep)
    assert ob.state == "degraded"
    assert ob.reason == (
        f"alias champion of {name} is not set on any version "
        "(deleting a version removes its aliases)"
    )
    # The previous version the store knows (3) is gone: refused, naming what exists.
    refused = run_cli("rollback", "production", "--model", name, "--yes", "--config", config)
    assert refused.returncode == 2
    assert f"version 3 of {name} no longer exists in MLflow endpoint registry" in refused.stderr
    assert "--to VERSION: 1, 2" in refused.stderr
    # Naming one puts the alias back on it.
    result = run_cli(
        "rollback", "production", "--model", name, "--to", "2", "--yes", "--config", config
    )
    assert result.returncode == 0, result.stderr
    assert f"production: {name} (alias not set) -> 2 (alias champion)" in result.stdout
    assert mlflow_server.aliases(name) == {"champion": "2"}


def test_an_alias_on_a_missing_version_is_degraded() -> None:
    """A registry can point an alias at a version its search does not list (not MLflow's own)."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/registered-models/get"):
            aliases = [{"alias": "champion", "version": "7"}]
            doc: dict[str, Any] = {"registered_model": {"name": "churn", "aliases": aliases}}
        else:
            doc = {"model_versions": [{"name": "churn", "version": v} for v in ("1", "2")]}
        return httpx.Response(200, json=doc)

    ep = endpoint("http://registry.invalid", experiments=())
    ob, snap = poll(ep, httpx.MockTransport(answer))
    assert ob.state == "degraded"
    assert ob.reason == "alias champion of churn points at version 7, which does not exist"
    assert snap.models[0].aliases == {"champion": "7"}


# --- failures -------------------------------------------------------------------


def test_server_down_is_down_with_the_reason(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    ob, snap = poll(endpoint(url))
    assert (ob.state, ob.reason, ob.latency_ms) == ("down", "connection refused", None)
    assert snap == MlflowSnapshot("registry", snap.at)
    with Store(tmp_path / "ops.db") as store:
        before = counts(store)
        sync_snapshot(store, endpoint(url), snap)
        assert counts(store) == before
    # An action says which endpoint and call failed, in one line, no traceback.
    config = write_config(tmp_path, url, MODEL)
    result = run_cli("rollback", "production", "--model", MODEL, "--yes", "--config", config)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"opstui: MLflow endpoint registry ({url}): registered model churn: connection refused"
    )


TOKEN = "Bearer s3cret-t0ken-value"


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers like a broken proxy: 401, slowly, an HTML page, or an error echoing the token."""

    def _answer(self) -> None:
        auth = self.headers.get("Authorization", "")
        if self.path.startswith("/deny/"):
            code, kind, body = 401, "application/json", json.dumps({"error": f"bad {auth}"})
        elif self.path.startswith("/slow/"):
            time.sleep(1.0)
            code, kind, body = 200, "application/json", "{}"
        elif self.path.startswith("/html/"):
            code, kind, body = 200, "text/html", "<!DOCTYPE html><html>login</html>"
        else:
            message = f"invalid request with Authorization: {auth}"
            code, kind = 400, "application/json"
            body = json.dumps({"error_code": "INVALID_PARAMETER_VALUE", "message": message})
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def broken_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_unauthorized_and_other_failures_never_show_the_token(
    broken_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSTUI_TEST_MLFLOW_TOKEN", TOKEN)
    secret = {"Authorization": "OPSTUI_TEST_MLFLOW_TOKEN"}

    ob, _ = poll(endpoint(f"{broken_server}/deny", secret_headers=secret))
    assert ob.state == "down"
    assert ob.reason == "HTTP 401 unauthorized (check the token in $OPSTUI_TEST_MLFLOW_TOKEN)"

    ob, _ = poll(endpoint(f"{broken_server}/slow", secret_headers=secret, timeout=0.2))
    assert (ob.state, ob.reason) == ("down", "no answer within 0.2s")

    ob, _ = poll(endpoint(f"{broken_server}/html", secret_headers=secret))
    assert (ob.state, ob.reason) == ("down", "expected MLflow's JSON, got an HTML page (HTTP 200)")

    # MLflow's own error text is shown, with any header value it echoes redacted.
    with MlflowRest(endpoint(f"{broken_server}/echo", secret_headers=secret)) as rest:
        with pytest.raises(MlflowError) as caught:
            rest.set_alias(MODEL, "champion", "2")
    text = str(caught.value)
    assert "INVALID_PARAMETER_VALUE: invalid request with Authorization: ***" in text
    assert "setting alias champion of churn to version 2" in text
    assert "s3cret" not in text

    monkeypatch.delenv("OPSTUI_TEST_MLFLOW_TOKEN")
    ob, _ = poll(endpoint(f"{broken_server}/deny", secret_headers=secret))
    assert (ob.state, ob.reason) == (
        "down",
        "header Authorization needs $OPSTUI_TEST_MLFLOW_TOKEN, which is not set",
    )


# --- rollback through the audited action path ---------------------------------------


@pytest.fixture
def rolled_model(mlflow_server: MlflowServer, tmp_path: Path) -> tuple[str, Path]:
    """A model the store saw deployed as 2, then 3 (its alias is on 3)."""
    name = f"rb-{tmp_path.name[-12:]}"
    registered_model(mlflow_server.client, name, mlflow_server.runs["finished"], alias_on="2")
    ep = endpoint(mlflow_server.url, experiments=(EXPERIMENT,), models=(name,))
    with Store(tmp_path / "ops.db") as store:
        poll_and_sync(store, ep)
        mlflow_server.client.set_registered_model_alias(name, "champion", "3")
        poll_and_sync(store, ep)
    return name, write_config(tmp_path, mlflow_server.url, name)


def test_rollback_moves_the_alias_back_through_the_audited_path(
    mlflow_server: MlflowServer, rolled_model: tuple[str, Path], tmp_path: Path
) -> None:
    name, config = rolled_model
    cli = ("rollback", "production", "--model", name, "--config", config)

    dry = run_cli(*cli, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"Roll back {name} to version 2 in production" in dry.stdout
    assert f"move-alias set alias champion of {name} to version 2 in MLflow" in dry.stdout
    assert f"production: {name} 3 -> 2 (alias champion)" in dry.stdout
    assert mlflow_server.aliases(name) == {"champion": "3"}

    refused = run_cli(*cli, "--yes", "--read-only")
    assert refused.returncode == 2
    assert "read-only session" in refused.stderr
    assert mlflow_server.aliases(name) == {"champion": "3"}

    result = run_cli(*cli, "--yes")
    assert result.returncode == 0, result.stderr
    assert f"alias champion of {name}: 3 -> 2 in MLflow registry" in result.stdout
    assert mlflow_server.aliases(name) == {"champion": "2"}

    with Store(tmp_path / "ops.db") as store:
        (now,) = models.current_deployments(store, name)
        assert (now.version, now.action, now.replaced_version) == ("2", "rollback", "3")
        run = history.get_run(store, now.run_id or 0)
        assert (run.pipeline, run.trigger) == (f"registry/{name}", "rollback")
        assert run.status == st.SUCCEEDED
        assert [(s.name, s.status) for s in run.stages] == [("move-alias", "succeeded")]
        statuses = {v.version: v.status for v in models.model_versions(store, name)}
        assert (statuses["2"], statuses["3"]) == ("production", "archived")
        done, refusal = list_actions(store)[:2]
        assert (done.action, done.target, done.status) == ("rollback", name, "succeeded")
        assert (refusal.status, done.run_id) == ("refused", run.id)

        # The poller sees the alias where the rollback put it: nothing new.
        before = counts(store)
        poll_and_sync(store, endpoint(mlflow_server.url, models=(name,)))
        assert counts(store) == before

    # 3 was rolled back from, 2 serves: nothing earlier is known good.
    again = run_cli(*cli, "--yes")
    assert again.returncode == 2
    assert f"no earlier good version of {name} in production" in again.stderr
    # A version deleted from the registry cannot be named.
    mlflow_server.client.delete_model_version(name, "1")
    gone = run_cli(*cli, "--to", "1", "--yes")
    assert gone.returncode == 2
    assert f"version 1 of {name} no longer exists in MLflow endpoint registry" in gone.stderr


def act(store: Store, config: Config, plan: Plan) -> Started:
    """``perform`` as ``--yes`` does it, inline."""
    proposal = propose(config, plan, read_only=False)
    return perform(store, config, proposal, actor="ops@test", declined=None, detach=False)


def test_a_failed_alias_move_fails_the_run_and_records_a_failed_deployment(
    mlflow_server: MlflowServer, rolled_model: tuple[str, Path], tmp_path: Path
) -> None:
    name, config_path = rolled_model
    cfg = load_config(config_path)
    with Store(tmp_path / "ops.db") as store:
        plan = plan_rollback(cfg, store, "production", model=name)
        # The registry goes away between the plan and the move.
        dead = replace(cfg.endpoints["registry"], url=f"http://127.0.0.1:{free_port()}")
        down = replace(cfg, endpoints={"registry": dead})
        started = act(store, down, plan)
        assert started.status == st.FAILED
        run = history.get_run(store, started.run_id)
        (stage,) = run.stages
        assert stage.status == st.FAILED
        assert "registered model" in (stage.message or "")
        assert "connection refused" in (stage.message or "")
        latest = models.deployment_history(store, name, "production")[0]
        assert (latest.version, latest.status, latest.action) == ("2", "failed", "rollback")
        assert list_actions(store)[0].status == "failed"
        assert mlflow_server.aliases(name) == {"champion": "3"}

        # Someone else moves the alias after the plan: the move does not undo theirs.
        plan = plan_rollback(cfg, store, "production", model=name)
        mlflow_server.client.set_registered_model_alias(name, "champion", "1")
        started = act(store, cfg, plan)
        assert started.status == st.FAILED
        (stage,) = history.get_run(store, started.run_id).stages
        assert "moved to 1 since the plan (planned from 3); nothing was changed" in (
            stage.message or ""
        )
        assert mlflow_server.aliases(name) == {"champion": "1"}


def test_the_poller_polls_mlflow_and_syncs_the_store(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    from opstui.sources.poller import Poller
    from opstui.store.endpoints import endpoint_statuses

    ep = endpoint(mlflow_server.url)
    store_path = tmp_path / "s.db"
    (ob,) = asyncio.run(Poller(store_path, [ep]).poll_once())
    assert ob.state == "up", ob.reason
    with Store(store_path) as store:
        (status,) = endpoint_statuses(store)
        assert (status.name, status.state) == (ep.name, "up")
        assert models.model_versions(store, MODEL)
        pipelines = {r[0] for r in store.conn.execute("SELECT name FROM pipelines")}
        assert f"mlflow/{EXPERIMENT}" in pipelines


# --- the run watermark: every run, across polls and processes -----------------


def sync_with_store(store: Store, ep: EndpointDef) -> tuple[Observation, MlflowSnapshot]:
    """One poll that reads from the store's watermark, then its sync."""

    async def once() -> tuple[Observation, MlflowSnapshot]:
        async with httpx.AsyncClient() as client:
            return await observe_mlflow(client, ep, store)

    ob, snap = asyncio.run(once())
    sync_snapshot(store, ep, snap)
    return ob, snap


class Calls:
    """Counts the searches an MLflow poll makes and the runs they return."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.filters: list[str] = []
        self.runs = 0
        real = mlflow_rest.AsyncMlflowRest.call

        async def call(rest: Any, op: Any) -> Any:
            out = await real(rest, op)
            if op.path == "/runs/search":
                self.filters.append(str((op.body or {}).get("filter", "")))
                self.runs += len(out[0] if isinstance(out, tuple) else out)
            return out

        monkeypatch.setattr(mlflow_rest.AsyncMlflowRest, "call", call)


def finished_runs(client: Any, experiment_id: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        run = client.create_run(experiment_id, run_name=f"sweep-{i}")
        client.set_terminated(run.info.run_id, "FINISHED")
        ids.append(run.info.run_id)
    return ids


def mirrored(store: Store, experiment: str) -> list[str]:
    rows = store.conn.execute(
        "SELECT r.key FROM runs r JOIN pipelines p ON p.id = r.pipeline_id WHERE p.name = ?",
        (f"mlflow/{experiment}",),
    )
    return [r[0] for r in rows]


def test_more_runs_than_a_poll_reads_are_all_mirrored_once_over_two_syncs(
    mlflow_server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, name = mlflow_server.client, "burst"
    experiment_id = client.create_experiment(name)
    first = finished_runs(client, experiment_id, 1)
    ep = endpoint(mlflow_server.url, experiments=(name,), models=())
    # Pages of 25 and at most 60 newer runs a poll: the 120 need two polls.
    monkeypatch.setattr(mlflow_api, "RUN_PAGE", 25)
    monkeypatch.setattr(mlflow_rest, "RUNS_PER_POLL", 60)
    with Store(tmp_path / "ops.db") as store:
        sync_with_store(store, ep)  # the first sync: the most recent runs, a watermark
        burst = finished_runs(client, experiment_id, 120)
        calls = Calls(monkeypatch)
        _, snap = sync_with_store(store, ep)
        # Three pages of 25 following page tokens (the first holds the run at
        # the watermark): 75 runs, more than 60 of them new, then it stops.
        assert len(calls.filters) == 3
        assert all(f.startswith("attributes.start_time >= ") for f in calls.filters)
        assert len({r.run_id for r in snap.runs}) == 75
        assert len(mirrored(store, name)) == 75
        _, snap = sync_with_store(store, ep)
        keys = mirrored(store, name)
        assert sorted(keys) == sorted(f"mlflow:{i}" for i in first + burst)  # each once
        (mark,) = snap.watermarks
        row = store.conn.execute(
            "SELECT through FROM watermarks WHERE source = ? AND name = ?",
            ("endpoint/registry", f"mlflow-runs:{experiment_id}"),
        ).fetchone()
        newest = client.get_run(burst[-1]).info.start_time / 1000
        assert row[0] == pytest.approx(newest) == pytest.approx(mark[1])
        # Syncing again reads only the overlap and stores nothing new.
        before = counts(store)
        sync_with_store(store, ep)
        assert counts(store) == before


def test_a_running_run_followed_by_60_newer_runs_still_reads_running(
    mlflow_server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, name = mlflow_server.client, "long-run"
    experiment_id = client.create_experiment(name)
    running = client.create_run(experiment_id, run_name="train-for-days").info.run_id
    finished_runs(client, experiment_id, 1)
    ep = endpoint(mlflow_server.url, experiments=(name,), models=())
    monkeypatch.setattr(mlflow_poll, "OVERLAP", 0.0)
    with Store(tmp_path / "ops.db") as store:
        sync_with_store(store, ep)
        finished_runs(client, experiment_id, 60)
        # Out of the 50 most recent runs now: what the sync read before this.
        recent = client.search_runs([experiment_id], max_results=50, order_by=["start_time DESC"])
        assert running not in {r.info.run_id for r in recent}
        calls = Calls(monkeypatch)
        _, snap = sync_with_store(store, ep)
        assert any("attributes.run_id IN" in f and running in f for f in calls.filters)
        (run_id,) = store.conn.execute(
            "SELECT id FROM runs WHERE key = ?", (f"mlflow:{running}",)
        ).fetchone()
        run = history.get_run(store, run_id, now=snap.at)
        assert run.status == st.RUNNING
        # Its heartbeat is this sync: long after the first one, still running.
        row = store.conn.execute("SELECT heartbeat_at FROM runs WHERE id = ?", (run.id,))
        assert row.fetchone()[0] == pytest.approx(snap.at)
        assert history.get_run(store, run.id, now=snap.at + INTERVAL).status == st.RUNNING
        assert len(mirrored(store, name)) == 62
        # Deleted in MLflow: the search by id no longer returns it, its
        # heartbeat stops, and it goes lost while MLflow answers (rule above).
        client.delete_run(running)
        _, later = sync_with_store(store, ep)
        assert running not in {r.run_id for r in later.runs}
        row = store.conn.execute("SELECT heartbeat_at FROM runs WHERE id = ?", (run.id,))
        assert row.fetchone()[0] == pytest.approx(snap.at)


RESTARTED_POLL = """
import asyncio, json, sys
from opstui.config.endpoints import EndpointDef
from opstui.sources.mlflow import poll, rest
from opstui.sources.poller import Poller

poll.OVERLAP = 0.0
calls = {"searches": 0, "runs": 0}
real = rest.AsyncMlflowRest.call

async def call(rest, op):
    out = await real(rest, op)
    if op.path == "/runs/search":
        calls["searches"] += 1
        calls["runs"] += len(out[0] if isinstance(out, tuple) else out)
    return out

rest.AsyncMlflowRest.call = call
ep = EndpointDef(name="registry", kind="mlflow", url=sys.argv[2], experiments=(sys.argv[3],))
(ob,) = asyncio.run(Poller(sys.argv[1], [ep]).poll_once())
assert ob.state == "up", ob.reason
print(json.dumps(calls))
"""


def test_a_restarted_poller_goes_on_from_the_stored_watermark(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    import subprocess
    import sys

    client, name = mlflow_server.client, "restarts"
    experiment_id = client.create_experiment(name)
    finished_runs(client, experiment_id, 30)
    store_path = tmp_path / "ops.db"

    def poll_in_a_new_process() -> dict[str, int]:
        done = subprocess.run(
            [sys.executable, "-c", RESTARTED_POLL, str(store_path), mlflow_server.url, name],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, int] = json.loads(done.stdout)
        return result

    # First process: no watermark, the 30 most recent runs.
    assert poll_in_a_new_process() == {"searches": 1, "runs": 30}
    finished_runs(client, experiment_id, 70)
    # Second process: from the watermark, the 70 new runs and the newest
    # one it had (start time >= watermark), not the 100.
    assert poll_in_a_new_process() == {"searches": 1, "runs": 71}
    # Third, with nothing new: the run at the watermark alone.
    assert poll_in_a_new_process() == {"searches": 1, "runs": 1}
    with Store(store_path) as store:
        assert len(mirrored(store, name)) == 100
        (by,) = store.conn.execute(
            "SELECT updated_by FROM watermarks WHERE name = ?", (f"mlflow-runs:{experiment_id}",)
        ).fetchone()
        assert by.rsplit(":", 1)[1].isdigit()  # user@host:pid of the poller that read it
