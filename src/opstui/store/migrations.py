"""The store's migrations, oldest first: released ones are never edited (see ``schema``)."""

from __future__ import annotations

from typing import Any

_STRICT = {"strict": True}


def _v1_initial(db: Any) -> None:
    """The tables docs/ARCHITECTURE.md lists, with the indexes the dashboard reads use."""
    db.create_table("counters", {"name": str, "value": int}, pk="name", not_null={"value"})
    db.execute("INSERT INTO counters(name, value) VALUES ('rev', 0)")

    db.create_table(
        "pipelines",
        {"id": int, "name": str, "kind": str, "stages": str, "created_at": float, "rev": int},
        pk="id",
        not_null={"name", "created_at", "rev"},
        defaults={"stages": "[]", "rev": 0},
        **_STRICT,
    )
    db["pipelines"].create_index(["name"], index_name="pipelines_name", unique=True)
    db["pipelines"].create_index(["rev"], index_name="pipelines_rev")

    db.create_table(
        "runs",
        {
            "id": int,
            "pipeline_id": int,
            "key": str,  # caller's idempotency key (CI build id, import key)
            "status": str,
            "trigger": str,  # manual, schedule, push, retry, rollback, retrain, ...
            "actor": str,  # user@host
            "parent_run_id": int,  # the run this one retries
            "attempt": int,
            "created_at": float,  # queued at; orders "latest run"
            "started_at": float,
            "finished_at": float,
            "heartbeat_at": float,
            # Seconds after which a silent "running" run reads as lost; set by
            # the writer, who knows how often it beats.
            "heartbeat_timeout": float,
            "host": str,
            "pid": int,
            "message": str,  # why it failed, in one line
            "params": str,  # JSON object
            "rev": int,  # store revision of the last change to the run or its stages
        },
        pk="id",
        foreign_keys=[("pipeline_id", "pipelines", "id"), ("parent_run_id", "runs", "id")],
        not_null={"pipeline_id", "status", "trigger", "attempt", "created_at", "rev"},
        defaults={"attempt": 1, "heartbeat_timeout": 60.0, "params": "{}"},
        **_STRICT,
    )
    db["runs"].create_index(["pipeline_id", "created_at", "id"], index_name="runs_pipeline_created")
    db["runs"].create_index(["rev"], index_name="runs_rev")
    db["runs"].create_index(["key"], index_name="runs_key", unique=True)
    db["runs"].create_index(["parent_run_id"], index_name="runs_parent")

    db.create_table(
        "stage_runs",
        {
            "id": int,
            "run_id": int,
            "name": str,
            "position": int,
            "status": str,
            "attempt": int,
            "exit_code": int,
            "started_at": float,
            "finished_at": float,
            "message": str,
            "reused_from_id": int,  # a retry reuses a succeeded stage of its parent
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id"), ("reused_from_id", "stage_runs", "id")],
        not_null={"run_id", "name", "position", "status", "attempt"},
        defaults={"attempt": 1},
        **_STRICT,
    )
    db["stage_runs"].create_index(["run_id", "name"], index_name="stage_runs_run", unique=True)

    db.create_table(
        "log_lines",
        {"id": int, "stage_run_id": int, "ts": float, "stream": str, "line": str},
        pk="id",
        foreign_keys=[("stage_run_id", "stage_runs", "id")],
        not_null={"stage_run_id", "ts", "stream", "line"},
        **_STRICT,
    )
    db["log_lines"].create_index(["stage_run_id", "id"], index_name="log_lines_stage")

    db.create_table(
        "series",
        {"id": int, "source": str, "name": str, "labels": str},
        pk="id",
        not_null={"source", "name", "labels"},
        defaults={"labels": "{}"},
        **_STRICT,
    )
    db["series"].create_index(
        ["source", "name", "labels"], index_name="series_identity", unique=True
    )

    db.create_table(
        "metric_samples",
        {"id": int, "series_id": int, "ts": float, "value": float, "run_id": int, "step": int},
        pk="id",
        foreign_keys=[("series_id", "series", "id"), ("run_id", "runs", "id")],
        not_null={"series_id", "ts", "value"},
        **_STRICT,
    )
    db["metric_samples"].create_index(["series_id", "ts"], index_name="metric_samples_series_ts")

    db.create_table(
        "models",
        {"id": int, "name": str, "pipeline_id": int, "created_at": float},
        pk="id",
        foreign_keys=[("pipeline_id", "pipelines", "id")],
        not_null={"name", "created_at"},
        **_STRICT,
    )
    db["models"].create_index(["name"], index_name="models_name", unique=True)

    db.create_table(
        "model_versions",
        {
            "id": int,
            "model_id": int,
            "version": str,
            "run_id": int,
            "status": str,  # candidate, production, archived, rejected
            "data_hash": str,
            "code_version": str,
            "params": str,  # JSON
            "metrics": str,  # JSON
            "gate": str,  # JSON: the promotion gate's verdict and reason
            "created_at": float,
        },
        pk="id",
        foreign_keys=[("model_id", "models", "id"), ("run_id", "runs", "id")],
        not_null={"model_id", "version", "status", "created_at"},
        defaults={"params": "{}", "metrics": "{}"},
        **_STRICT,
    )
    db["model_versions"].create_index(
        ["model_id", "version"], index_name="model_versions_identity", unique=True
    )

    db.create_table(
        "deployments",
        {
            "id": int,
            "key": str,
            "environment": str,
            "target_kind": str,  # service or model
            "target": str,  # service (pipeline) name or model name
            "version": str,
            "run_id": int,
            "actor": str,
            "deployed_at": float,
            "status": str,  # succeeded, failed, in_progress
            "action": str,  # deploy or rollback
            "replaces_id": int,  # the deployment this one replaced
            "message": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id"), ("replaces_id", "deployments", "id")],
        not_null={"environment", "target_kind", "target", "version", "deployed_at", "status"},
        defaults={"action": "deploy"},
        **_STRICT,
    )
    db["deployments"].create_index(["key"], index_name="deployments_key", unique=True)
    db["deployments"].create_index(
        ["target_kind", "target", "environment", "deployed_at"], index_name="deployments_target"
    )

    db.create_table(
        "feature_batches",
        {
            "id": int,
            "key": str,
            "model_id": int,
            "version": str,  # the model version a reference belongs to
            "kind": str,  # reference or current
            "created_at": float,
            "n_rows": int,
            "columns": str,  # JSON list of column names
            "format": str,  # how payload is encoded, so it can evolve
            "payload": bytes,
            "run_id": int,
        },
        pk="id",
        foreign_keys=[("model_id", "models", "id"), ("run_id", "runs", "id")],
        not_null={"model_id", "kind", "created_at", "n_rows", "columns", "format", "payload"},
        **_STRICT,
    )
    db["feature_batches"].create_index(["key"], index_name="feature_batches_key", unique=True)
    db["feature_batches"].create_index(
        ["model_id", "kind", "created_at"], index_name="feature_batches_model"
    )

    db.create_table(
        "drift_results",
        {
            "id": int,
            "model_id": int,
            "version": str,
            "computed_at": float,
            "window_start": float,
            "window_end": float,
            "feature": str,  # NULL for a dataset-level result
            "method": str,
            "value": float,
            "threshold": float,
            "drifted": int,
            "details": str,  # JSON
        },
        pk="id",
        foreign_keys=[("model_id", "models", "id")],
        not_null={"model_id", "computed_at", "method"},
        **_STRICT,
    )
    db["drift_results"].create_index(["model_id", "computed_at"], index_name="drift_results_model")

    db.create_table(
        "actions",
        {
            "id": int,
            "ts": float,
            "actor": str,
            "action": str,  # retry, rollback, retrain, run
            "target": str,
            "environment": str,
            "plan": str,  # JSON: what was shown before confirming
            "status": str,  # refused, started, succeeded, failed
            "outcome": str,
            "run_id": int,
            "finished_at": float,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
        not_null={"ts", "actor", "action", "target", "status"},
        defaults={"plan": "{}"},
        **_STRICT,
    )
    db["actions"].create_index(["ts"], index_name="actions_ts")

    # Keys of imported records that have no natural key of their own
    # (metric batches), so importing a file twice adds nothing.
    db.create_table(
        "imported",
        {"key": str, "imported_at": float},
        pk="key",
        not_null={"imported_at"},
        **_STRICT,
    )


def _v2_action_requests(db: Any) -> None:
    """Runs started by an operator action carry the request that started them.

    ``request`` identifies "the same request" (retry of run 412, rollback of
    web-api in production): while a run with the same request is queued or
    running, pressing the key again joins it instead of starting another.
    """
    db["runs"].add_column("request", str)
    db.execute("CREATE INDEX runs_request ON runs(request) WHERE request IS NOT NULL")
    db["actions"].create_index(["run_id"], index_name="actions_run")


def _v3_endpoints(db: Any) -> None:
    """What the poller last saw of each endpoint, and who polls it."""
    db.create_table(
        "endpoint_status",
        {
            "name": str,
            "kind": str,
            "url": str,  # as configured, without secrets
            "state": str,  # up, degraded, down
            "reason": str,  # one line: why it is not up
            "last_attempt_at": float,
            "last_success_at": float,
            "latency_ms": float,
            "failures": int,  # consecutive failed polls
            "polled_by": str,  # user@host:pid of the poller that wrote it
            "rev": int,
        },
        pk="name",
        not_null={"state", "last_attempt_at", "failures", "rev"},
        defaults={"failures": 0, "rev": 0},
        **_STRICT,
    )
    # One poller per endpoint across every opstui sharing the store: the
    # holder renews its lease; others read what it writes.
    db.create_table(
        "leases",
        {"name": str, "holder": str, "expires_at": float},
        pk="name",
        not_null={"holder", "expires_at"},
        **_STRICT,
    )


def _v4_drift(db: Any) -> None:
    """Reference summaries per model version; drift checks grouping v1's results.

    A check is one computation over one current window: its header says which
    window, which reference and which settings; ``drift_results`` holds one
    row per feature and method (``decides`` marks the row whose method gives
    the feature's verdict) plus the dataset-level rows (feature NULL).
    """
    db.create_table(
        "drift_references",
        {
            "id": int,
            "model_id": int,
            "version": str,
            "created_at": float,
            "source": str,  # "batches" (recorded reference batches) or "file: <path>"
            # The reference batches summarised ("<count>:<max id>"), so a new
            # batch for the version makes the summary stale.
            "fingerprint": str,
            "digest": str,  # sha256 of payload: identifies the reference in checks
            "n_rows": int,
            "columns": str,  # JSON list of feature names
            "format": str,
            "payload": bytes,
        },
        pk="id",
        foreign_keys=[("model_id", "models", "id")],
        not_null={"model_id", "version", "created_at", "source", "digest", "n_rows", "format"},
        **_STRICT,
    )
    db["drift_references"].create_index(
        ["model_id", "version"], index_name="drift_references_version", unique=True
    )
    db.create_table(
        "drift_checks",
        {
            "id": int,
            "model_id": int,
            "version": str,  # the reference's model version
            "reference_digest": str,
            "computed_at": float,
            "window_start": float,
            "window_end": float,
            "window_rows": int,
            # Identifies window + reference + settings: the same key twice
            # means nothing new to compute.
            "window_key": str,
            "features": int,  # checked
            "drifted_features": int,
            "drift_share": float,
            "drifted": int,  # the dataset verdict
            "classifier_auc": float,
            "classifier_alert": int,
            "settings": str,  # JSON: every threshold used
            "details": str,  # JSON: unchecked features, notes
        },
        pk="id",
        foreign_keys=[("model_id", "models", "id")],
        not_null={"model_id", "version", "computed_at", "window_key", "settings"},
        **_STRICT,
    )
    db["drift_checks"].create_index(["model_id", "id"], index_name="drift_checks_model")
    db["drift_checks"].create_index(["window_key"], index_name="drift_checks_key")
    db["drift_results"].add_column("check_id", int, fk="drift_checks", fk_col="id")
    db["drift_results"].add_column("decides", int, not_null_default=0)
    db["drift_results"].create_index(["check_id"], index_name="drift_results_check")
    db["drift_results"].create_index(
        ["model_id", "feature", "check_id"], index_name="drift_results_feature"
    )


def _v5_watermarks(db: Any) -> None:
    """Where each incremental source stopped reading, kept beside what it read.

    One row per source and query (``endpoint/<name>`` and a range query's
    name): ``through`` is the source's own time (Prometheus' clock, not
    ours) up to which everything has been fetched and stored. It is advanced
    in the transaction that stores the points, so the next poll, in this
    process, another one or after a restart, goes on from it. A store from
    before this version has no rows: the poller then starts from the
    series' last stored point.
    """
    db.create_table(
        "watermarks",
        {"source": str, "name": str, "through": float, "updated_at": float, "updated_by": str},
        pk=("source", "name"),
        not_null={"through", "updated_at"},
        **_STRICT,
    )


def _v6_upstream(db: Any) -> None:
    """Pipelines mirrored from an orchestrator know their endpoint and whether
    it still has them.

    ``source``: the endpoint a mirrored pipeline is read from (an Airflow DAG's
    or a Prefect deployment's), so a sync finds its pipelines without reading
    runs. ``removed_at``/``removed_note``: since when and why the source no
    longer lists it (``deleted in Airflow``, ``stale in Airflow: its DAG file
    is gone``); the pipeline and its runs stay, marked, and the mark clears
    if it comes back. Pipelines mirrored before this version get their
    source from their runs' keys (``kind:endpoint:name:id``).
    """
    db.execute("ALTER TABLE pipelines ADD COLUMN source TEXT")
    db.execute("ALTER TABLE pipelines ADD COLUMN removed_at REAL")
    db.execute("ALTER TABLE pipelines ADD COLUMN removed_note TEXT")
    db["pipelines"].create_index(["source"], index_name="pipelines_source")
    db.execute(
        """UPDATE pipelines SET source = (
               SELECT substr(rest, 1, instr(rest, ':') - 1) FROM (
                   SELECT substr(r.key, instr(r.key, ':') + 1) AS rest FROM runs r
                   WHERE r.pipeline_id = pipelines.id
                     AND (r.key LIKE 'airflow:%' OR r.key LIKE 'prefect:%') LIMIT 1))
           WHERE name LIKE 'airflow/%' OR name LIKE 'prefect/%'"""
    )


def _v7_alerts(db: Any) -> None:
    """opstui's own alerts, each from firing to resolved, and a faster timeline.

    One row per alert instance: ``key`` names what it is about
    (``burn:web-api:page``, ``deploy:service:web-api:production``,
    ``drift:fraud``); ``fired_at`` and ``resolved_at`` are the two events the
    timeline shows; at most one row per key is open (``resolved_at`` NULL),
    so two consoles deciding at once open it once. ``runs_finished``: the
    timeline reads failures and recoveries by when they finished, and deploys
    and drift checks by when they happened (``deployments_at``,
    ``drift_checks_at``).
    """
    db.create_table(
        "alerts",
        {
            "id": int,
            "key": str,
            "kind": str,  # burn, deploy, drift
            "subject": str,  # the endpoint, service or model it is about
            "severity": str,  # page, ticket
            "service": str,
            "environment": str,
            "summary": str,  # one line
            "fired_at": float,
            "resolved_at": float,
            "fired_by": str,
            "resolved_by": str,
        },
        pk="id",
        not_null={"key", "kind", "subject", "severity", "summary", "fired_at"},
        **_STRICT,
    )
    db.execute("CREATE UNIQUE INDEX alerts_open ON alerts(key) WHERE resolved_at IS NULL")
    db["alerts"].create_index(["fired_at"], index_name="alerts_fired")
    db["alerts"].create_index(["resolved_at"], index_name="alerts_resolved")
    db["runs"].create_index(["finished_at"], index_name="runs_finished")
    db["deployments"].create_index(["deployed_at"], index_name="deployments_at")
    db["drift_checks"].create_index(["computed_at"], index_name="drift_checks_at")


def _v8_policy_decisions(db: Any) -> None:
    """What each automation policy decided, and why, including not to act.

    One row per decision (``policies/``): ``verdict`` acted, would_act
    (shadow mode), awaiting_approval, approved, rejected, held (a guard rail:
    cooldown, daily cap, paused, an environment it may not act in), refused
    (the action path would not run it), inconclusive (no data, a source down), paused and resumed
    (policy ``*``: every policy, by an operator). ``fault`` names what the
    decision is about (``run:164``), so a policy acts on a fault once
    however many evaluators run: the partial unique indexes hold one act
    (or would-act) and one request for approval per policy and fault, and
    one answer per request (``approval_of``).
    """
    db.create_table(
        "policy_decisions",
        {
            "id": int,
            "policy": str,  # its [policies.NAME], or * (pause, resume)
            "target": str,  # pipeline:NAME, endpoint:NAME, model:NAME, *
            "fault": str,  # what it is about: run:164, burn:web-api:deploy:57, ...
            "verdict": str,
            "why": str,  # one line
            "action": str,  # retry, rollback, retrain, notify
            "environment": str,
            "service": str,
            "mode": str,  # act, shadow
            "decided_at": float,
            "decided_by": str,  # the evaluator (host:pid) or the operator
            "action_id": int,  # the audit row of the action taken
            "run_id": int,
            "approval_of": int,  # approved / rejected: the request answered
        },
        pk="id",
        not_null={"policy", "target", "verdict", "why", "decided_at"},
        **_STRICT,
    )
    db.execute(
        "CREATE UNIQUE INDEX policy_acts ON policy_decisions(policy, fault)"
        " WHERE verdict IN ('acted', 'would_act')"
    )
    db.execute(
        "CREATE UNIQUE INDEX policy_asks ON policy_decisions(policy, fault)"
        " WHERE verdict = 'awaiting_approval'"
    )
    db.execute(
        "CREATE UNIQUE INDEX policy_answers ON policy_decisions(approval_of)"
        " WHERE approval_of IS NOT NULL"
    )
    db["policy_decisions"].create_index(["decided_at"], index_name="policy_decided")
    db["policy_decisions"].create_index(
        ["policy", "target", "decided_at"], index_name="policy_target"
    )
