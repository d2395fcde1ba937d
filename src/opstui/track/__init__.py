"""Recording runs from Python: the public tracking API.

    from opstui.track import Tracker

    tracker = Tracker()                       # --store / OPSTUI_STORE / opstui.toml
    with tracker.run("train-churn", stages=["data", "train"]) as run:
        with run.stage("data") as stage:
            stage.log("loaded 7,043 rows")
        with run.stage("train"):
            run.log_metric("auc", 0.84)
            run.log_model_version("churn", metrics={"auc": 0.84})

An exception inside a stage marks the stage failed with the exception's
message (its traceback goes to the stage log) and the run failed; the
exception is re-raised, never swallowed. Ctrl-C marks the run cancelled.

Log lines and metric samples are buffered and written in batches (every
``flush_interval`` seconds, every ``max_buffer`` rows, and at every stage
boundary), so recording costs the pipeline almost nothing. A background
thread beats the run's heartbeat; if the process dies, the heartbeat goes
stale and readers show the run as *lost* instead of running forever. The
last ``flush_interval`` of buffered lines is all a ``kill -9`` can lose.

A store deleted or replaced while the run records (``StoreGone``) is noticed
by that thread within a flush interval; from then on every call raises it, an
``OpstuiError`` naming what was not written, so a pipeline never records
into a file nobody will read. Other errors of the thread (a busy store, a
full disk) surface once, on the caller's next call.
"""

from opstui.track.run import ActiveRun, AttachedRun
from opstui.track.stage import ActiveStage
from opstui.track.tracker import Tracker

__all__ = ["ActiveRun", "ActiveStage", "AttachedRun", "Tracker"]
