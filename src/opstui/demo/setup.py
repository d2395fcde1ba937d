"""Preparing the demo's directory: the lock, the seeded store, opstui.toml.

One demo per directory: a second ``opstui demo`` on it is refused, naming
the first one's pid and how to look at it. The lock is an ``flock`` on
``demo.lock`` (which also holds the pid, for that message): the kernel
drops it when its process dies however it dies, so a lock left by a killed
demo is never mistaken for a live one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from string import Template

from opstui.config import Config, parse_config
from opstui.demo import devops, traffic
from opstui.demo.layout import Layout, read_json, write_json
from opstui.errors import OpstuiError
from opstui.store import Store
from opstui.store import models as store_models
from opstui.store.importer import import_files

DEFAULT_DIR = "opstui-demo"


class DemoError(OpstuiError):
    """The demo cannot start here; nothing was changed."""


class DemoLock:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.layout.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise unusable(self.layout.root, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            root = self.layout.root
            raise DemoError(
                f"a demo is already running on {root} ({holder})",
                hint=f"look at it with `opstui --store {root / 'opstui.db'} --config "
                f"{root / 'opstui.toml'}`, stop it, or pass --dir for another demo",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "started": time.time()}).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        started = time.strftime("%H:%M:%S", time.localtime(float(info["started"])))
        return f"pid {int(info['pid'])}, started {started}"
    except (OSError, ValueError, KeyError, TypeError):
        return "pid unknown"


def unusable(root: Path, exc: OSError) -> DemoError:
    return DemoError(
        f"cannot use {root} as the demo directory: {exc.strerror or exc}",
        hint="pass --dir with a directory you can write",
    )


def prepare_dir(root: Path, store_url: str | None = None) -> Layout:
    """Create (or reuse) the demo directory; refuse a directory that is someone else's.

    ``store_url``: a PostgreSQL store to use instead of the directory's own file.
    """
    layout = Layout(root.expanduser().resolve(), store_url)
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
        foreign = any(layout.root.iterdir()) and not layout.world.is_dir()
    except OSError as exc:
        raise unusable(layout.root, exc) from None
    if foreign:
        # Never write opstui.toml or a store into a directory the demo did not make.
        raise DemoError(
            f"{layout.root} is not empty and is not a demo directory",
            hint="pass --dir with a new or empty directory, or one an earlier demo used",
        )
    try:
        layout.world.mkdir(exist_ok=True)
    except OSError as exc:
        raise unusable(layout.root, exc) from None
    return layout


def sample_runs() -> Path:
    """The bundled history: inside the wheel, or the checkout's sample_runs/."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_sample_runs", here.parent.parent / "sample_runs"):
        if candidate.is_dir():
            return candidate
    raise DemoError(
        "the bundled history (sample_runs) is missing from this installation",
        hint="reinstall opstui (pip install --force-reinstall opstui)",
    )


def seed(layout: Layout) -> bool:
    """Fill a new store with the bundled history, moved to end now; False if done before.

    The import is one transaction, and "seeded" is written only after it:
    an interrupted seeding is redone at the next start, and adds nothing twice.
    """
    state = read_json(layout.state, {})
    into = str(layout.store)
    here = isinstance(layout.store, str) or layout.store.exists()
    default = str(layout.root / "opstui.db")  # a demo directory from before --store
    if state.get("seeded") and state.get("seeded_into", default) == into and here:
        return False
    with Store(layout.store) as store:
        import_files(store, [sample_runs()], shift_to=time.time())
        _serve_current_release(layout, store)
    write_json(
        layout.state, {**read_json(layout.state, {}), "seeded": time.time(), "seeded_into": into}
    )
    return True


def _serve_current_release(layout: Layout, store: Store) -> None:
    """Build what the history says production runs, so the service starts on it."""
    for d in store_models.current_deployments(store, "web-api"):
        if d.environment == "production":
            devops.write_build(layout, devops.default_commit("web-api", d.version))
            devops.serve(layout, "web-api", d.version)


def write_state(layout: Layout, *, speed: float, service: str) -> None:
    state = read_json(layout.state, {})
    write_json(layout.state, {**state, "speed": speed, "service": service, "pid": os.getpid()})


def previous_port(layout: Layout) -> int:
    """The service's port at the last start (0: none), tried first so URLs stay the same."""
    url = str(read_json(layout.state, {}).get("service") or "")
    port = url.rsplit(":", 1)[-1]
    return int(port) if port.isdigit() else 0


CONFIG = Template(
    """\
# opstui.toml of the opstui demo. `opstui demo` writes it at every start (the
# service's port and --speed change what it says): edits here are lost.
#
# Look at the running demo from another terminal:
#   opstui --store $store --config $config
#   opstui status|endpoints|drift --store $store --config $config

store = "$store_setting"

[tui]
refresh = 1

[environments.staging]
description = "where a release is tried first"

[environments.production]
description = "serves the demo's traffic"

# The demo's HTTP service (127.0.0.1:$port): build writes its code from the
# commit the simulator pushed and compiles it, test runs its unit tests,
# deploy points the service at the build, monitor reads the service's metrics.
[pipelines.web-api]
kind = "devops"
description = "the demo's HTTP service, built, tested and deployed for real"
environment = "production"
timeout = 120
stages = [
$web_api
]

[pipelines.web-api.rollback]
run = ["{python}", "-m", "opstui.demo.devops", "rollback", "{version}"]
timeout = 60

# Its test stage has a flaky test: a first attempt sometimes fails, a retry passes.
[pipelines.billing-worker]
kind = "devops"
description = "settles payments every night"
environment = "production"
timeout = 120
stages = [
$billing_worker
]

[pipelines.billing-worker.rollback]
run = ["{python}", "-m", "opstui.demo.devops", "rollback", "{version}"]
timeout = 60

# A real scikit-learn retraining on 3,000 transactions (seconds, not hours).
[pipelines.fraud-model]
kind = "mlops"
description = "card fraud: data -> validate -> train -> evaluate -> deploy -> monitor"
environment = "production"
timeout = 300
stages = [
$fraud_model
]

[pipelines.fraud-model.rollback]
run = ["{python}", "-m", "opstui.demo.training", "rollback"]
timeout = 120

[models.fraud]
pipeline = "fraud-model"
gate_metric = "auc"
min_improvement = 0.002

# Windows of minutes, not days: serving records a batch every ${batch}s.
[models.fraud.drift]
window_seconds = $window
window_rows = 5000
min_rows = 100
retrain_after = 3

[drift]
classifier_rows = 1000

[endpoints.web-api]
kind = "prometheus"
service = "web-api"        # b on this endpoint rolls back web-api in production
environment = "production"
url = "http://127.0.0.1:$port/metrics"
interval = 2
timeout = 2
requests = "http_requests_total"
error_label = "code"
error_match = "5.."
latency = "http_request_duration_seconds"
slo = 0.9999

[endpoints.web-api-health]
kind = "health"
service = "web-api"
url = "http://127.0.0.1:$port/health"
interval = 2
timeout = 2
slow_ms = 250

# Automation (P in the console; opstui policies list / log / replay), one of each kind:
# on: billing-worker's flaky test is retried by itself (at most 3 times a day).
[policies.retry-billing-tests]
trigger = "run_failed"
pipeline = "billing-worker"
stages = ["test"]
action = "retry"
cooldown = "$cooldown"

# waits for you: a retrain of fraud on persistent drift (P, then y approves).
[policies.retrain-fraud-on-drift]
trigger = "drift"
model = "fraud"
windows = 3
action = "retrain"
approval = true

# shadow: says when it would roll web-api back after a deploy burns its budget.
[policies.rollback-web-api-on-burn]
trigger = "burn"
endpoint = "web-api"
within = "30m"
action = "rollback"
mode = "shadow"
"""
)


def _stages(module: str, names: tuple[str, ...], *args: str) -> str:
    extra = "".join(f', "{a}"' for a in args)
    return ",\n".join(
        f'  {{ name = "{n}", run = ["{{python}}", "-m", "opstui.demo.{module}", "{n}"{extra}] }}'
        for n in names
    )


def write_config(layout: Layout, *, port: int, speed: float) -> Config:
    devops_stages = ("plan", "build", "test", "release", "deploy", "monitor")
    mlops_stages = ("data", "validate", "train", "evaluate", "deploy", "monitor")
    text = CONFIG.substitute(
        store=layout.store,
        store_setting=layout.store_setting,
        config=layout.config,
        port=port,
        web_api=_stages("devops", devops_stages, "{version}"),
        billing_worker=_stages("devops", devops_stages, "{version}"),
        fraud_model=_stages("training", mlops_stages),
        batch=f"{traffic.batch_seconds(speed):g}",
        window=f"{max(10.0, 120.0 / speed):g}",
        # Demo minutes: a cooldown that lets the flaky test be retried again soon.
        cooldown=f"{max(10, round(120 / speed))}s",
    )
    layout.config.write_text(text, encoding="utf-8")
    return parse_config(text, layout.config)
