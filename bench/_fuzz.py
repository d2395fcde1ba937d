"""Hostile inputs for every door into the store, and the contract they must keep.

Shared by ``tests/test_fuzz.py`` (a bounded budget in every test run) and
``bench/fuzz.py`` (a longer one, printing cases per second and tracebacks
found), so both run the same targets:

* ``import``: JSONL lines built from the import format's own fields with
  hostile values (huge, NaN and infinite numbers, wrong types, deep nesting,
  lone surrogates, control characters);
* ``record``: every ``opstui record`` verb with hostile arguments;
* ``features``: feature CSVs for ``record features`` and ``drift set-reference``;
* ``config``: ``opstui.toml`` files.

The contract: no traceback, ever. A command exits 0 (or 1, "found
something failing"), or 2 with stderr starting ``opstui:`` (Click's own
usage errors start ``Usage:``). After every input a command accepted,
``status``, ``status --json``, ``drift`` and the console's snapshot still
read the store. Everything runs in-process (``typer.testing.CliRunner``):
a subprocess per case would cost 0.3 s.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import typer
from click.testing import CliRunner
from hypothesis import strategies as st

from opstui.cli import app
from opstui.cli.output import error_lines
from opstui.config import Config
from opstui.errors import OpstuiError
from opstui.views.snapshot import SnapshotReader

RUNNER = CliRunner()
#: Typer builds the Click command from the app on every ``invoke`` (60 ms of
#: signature inspection); built once here.
COMMAND: Any = typer.main.get_command(app)


class Outcome(NamedTuple):
    code: int
    stdout: str
    stderr: str
    #: The traceback of an exception that is not an operator error, if any.
    crash: str | None


def invoke(args: Sequence[str], stdin: str | None = None) -> Outcome:
    """``opstui ARGS`` in-process, with ``main()``'s handling of operator errors."""
    result = RUNNER.invoke(COMMAND, list(args), input=stdin)
    exc = result.exception
    if exc is None or isinstance(exc, SystemExit):
        return Outcome(result.exit_code, result.stdout, result.stderr, None)
    if isinstance(exc, OpstuiError):
        shown = "".join(line + "\n" for line in error_lines(exc))
        return Outcome(exc.exit_code, result.stdout, result.stderr + shown, None)
    crash = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return Outcome(1, result.stdout, result.stderr, crash)


def problems(out: Outcome, what: str, *, one_line: bool = True) -> list[str]:
    """How ``out`` breaks the contract (empty: it keeps it)."""
    if out.crash is not None:
        return [f"{what}: traceback\n{out.crash}"]
    if out.code not in (0, 1, 2):
        return [f"{what}: exit {out.code}"]
    if out.code == 2:
        lines = [x for x in out.stderr.strip().splitlines() if not x.startswith("opstui: skipped")]
        if not lines or not lines[0].startswith(("opstui:", "Usage:")):
            return [f"{what}: exit 2 without an opstui: line: {out.stderr[-300:]!r}"]
        # Details (the importer's bad lines) come indented under the one line.
        lines = [x for x in lines if not x.startswith("  ")]
        if one_line and lines[0].startswith("opstui:") and len(lines) > 1:
            return [f"{what}: {len(lines)} lines of error: {out.stderr[-300:]!r}"]
    return []


def readers_work(store: Path, config: Path | None = None) -> list[str]:
    """``status``, ``status --json``, ``drift`` and the console's snapshot on ``store``."""
    found: list[str] = []
    cfg = ["--config", str(config)] if config else []
    for args in (
        ["status", "--store", str(store), *cfg],
        ["status", "--json", "--store", str(store), *cfg],
        ["drift", "--no-classifier", "--no-save", "--store", str(store), *cfg],
    ):
        out = invoke(args)
        found += problems(out, " ".join(args[:2]), one_line=False)
        if args[1] == "--json" and out.code in (0, 1):
            try:
                json.loads(out.stdout)
            except ValueError as exc:
                found.append(f"status --json: not JSON ({exc})")
    try:
        console = SnapshotReader(store, Config())
        snap = console.snapshot()
        console.close()
    except Exception:
        found.append(f"console snapshot: traceback\n{traceback.format_exc()}")
    else:
        found += [f"console snapshot: {p}: {why}" for p, why in snap.problems.items()]
    return found


def dump(store: Path) -> str:
    """The store's rows, to check a refused input changed nothing."""
    if not store.exists():
        return ""
    conn = sqlite3.connect(store)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


# --- hostile values ------------------------------------------------------------

DEEP = "\x00deep\x00"  # replaced by nested JSON text after json.dumps

NUMBERS = st.one_of(
    st.sampled_from(
        [1e20, -1e12, 1e300, -1e300, math.nan, math.inf, -math.inf, 2**63, 2**64, -(2**63) - 1]
    ),
    st.sampled_from([10**30, 253402300800, 253402214400, 0, -1, 1.5, 1_800_000_000]),
    st.integers(),
    st.floats(),
)
TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "\udcff",
            "a\ud800b",
            "\x1b]52;c;aGk=\x07",
            "\x00",
            "",
            "x" * 2000,
            "\u202e",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "2026-11-01T10:00:00Z",
            "2026-11-01T10:00:00",
        ]
    ),
)
TIMES = st.one_of(
    st.sampled_from(["2026-11-01T10:00:00Z", 1_800_000_000, 1_800_000_000.5]), NUMBERS, TEXT
)
SCALARS = st.one_of(NUMBERS, TEXT, st.none(), st.booleans())
ANY = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=6,
) | st.just(DEEP)
KEYS = st.text(alphabet="abcdef0123456789/", min_size=1, max_size=6)

_TEMPLATES: dict[str, dict[str, Any]] = {
    "pipeline": {"name": "p", "kind": "devops", "stages": ["a", "b"]},
    "run": {
        "key": "r",
        "pipeline": "p",
        "status": "succeeded",
        "started_at": "2026-11-01T10:00:00Z",
        "finished_at": "2026-11-01T10:05:00Z",
        "params": {"x": 1},
        "stages": [
            {
                "name": "a",
                "status": "succeeded",
                "exit_code": 0,
                "started_at": "2026-11-01T10:00:00Z",
                "finished_at": "2026-11-01T10:01:00Z",
                "logs": ["ok", {"line": "two", "stream": "stderr", "ts": 1793527200}],
            }
        ],
    },
    "model_version": {
        "model": "m",
        "version": "1",
        "created_at": "2026-11-01T10:00:00Z",
        "metrics": {"auc": 0.8},
        "params": {"depth": 3},
        "gate": {"passed": True},
    },
    "deployment": {
        "key": "d",
        "environment": "production",
        "target": "web",
        "version": "1.0",
        "deployed_at": "2026-11-01T10:00:00Z",
    },
    "metrics": {
        "key": "k",
        "source": "endpoint/web",
        "name": "up",
        "points": [[1793527200, 1.0], [1793527260, 0.0]],
        "labels": {"code": "2xx"},
    },
    "features": {
        "key": "f",
        "model": "m",
        "kind": "current",
        "created_at": "2026-11-01T10:00:00Z",
        "columns": {"x": [1, 2.5, None], "c": ["a", "b", "a"]},
    },
}
#: Where each field's hostile value goes (stages, logs, points and cells too).
_PATHS: dict[str, list[tuple[Any, ...]]] = {
    kind: [(k,) for k in t] + [("type",)] for kind, t in _TEMPLATES.items()
}
_PATHS["run"] += [("stages", 0, k) for k in _TEMPLATES["run"]["stages"][0]]
_PATHS["run"] += [
    ("stages", 0, "logs", 1, "ts"),
    ("stages", 0, "logs", 0),
    ("params", "x"),
    ("attempt",),
    ("heartbeat_at",),
    ("heartbeat_timeout",),
    ("parent",),
]
_PATHS["metrics"] += [("points", 0, 0), ("points", 0, 1), ("points", 1), ("labels", "code")]
_PATHS["features"] += [("columns", "x", 0), ("columns", "c"), ("columns", "x")]
_PATHS["model_version"] += [("metrics", "auc"), ("params", "depth"), ("status",)]


def _set(record: Any, path: tuple[Any, ...], value: Any) -> None:
    for n, step in enumerate(path, start=1):
        # An earlier override may have put a scalar where a container was.
        if isinstance(step, int):
            if not isinstance(record, list) or step >= len(record):
                return
        elif not isinstance(record, dict) or (n < len(path) and step not in record):
            return
        if n == len(path):
            record[step] = value
            return
        record = record[step]


@st.composite
def import_lines(draw: st.DrawFn) -> str:
    """One to three JSONL lines, each a valid record with a few hostile fields."""
    lines = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(sorted(_TEMPLATES)))
        record = json.loads(json.dumps(_TEMPLATES[kind]))
        record["type"] = kind
        for field in ("key", "name", "version"):
            if field in record:
                record[field] = draw(KEYS)
        for path in draw(st.lists(st.sampled_from(_PATHS[kind]), max_size=3)):
            _set(record, path, draw(ANY))
        text = json.dumps(record)  # NaN and surrogates as JSON writes them
        depth = draw(st.sampled_from([1, 30, 40, 900, 2000]))
        lines.append(text.replace(json.dumps(DEEP), "[" * depth + "]" * depth))
    return "\n".join(lines) + "\n"


# --- record arguments ----------------------------------------------------------

# Each argument is hostile about half the time, so that a fair share of the
# cases is accepted and the readers get to read what they wrote.
INTS = st.one_of(
    st.sampled_from([0, 1, 3]),
    st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64, 10**30, -1, -(2**63) - 1]),
    st.integers(),
)
RUN_IDS = st.one_of(
    st.just("1"), st.sampled_from(["2", "3", "0", str(2**63), str(2**64), str(10**30)])
)
NUMBER_TEXT = st.one_of(
    st.sampled_from(["0", "1.5", "0.84"]),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "-1e400", "9" * 5000, "x"]),
    st.floats().map(repr),
)
ARG_TEXT = st.one_of(
    st.sampled_from(["ok", "web-api", "a"]),
    st.sampled_from(["\udcff", "a\ud800", "\x1b[31m", "", "x" * 5000, "a,b,,c"]),
    st.text(max_size=20).filter(lambda t: not t.startswith("-")),
)
LINES = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]), max_size=200
)  # stdin is encoded by the test runner: no surrogates there


@st.composite
def record_args(draw: st.DrawFn) -> tuple[list[str], str | None]:
    """A ``record`` verb with hostile arguments (run 1 runs, run 2 has finished)."""
    verb = draw(
        st.sampled_from(
            ["start", "stage", "log", "finish", "heartbeat", "metric", "deploy", "model-version"]
        )
    )

    def text() -> str:
        return draw(ARG_TEXT)

    def run() -> str:
        return draw(RUN_IDS)

    def num() -> str:
        return draw(NUMBER_TEXT)

    def i() -> str:
        return str(draw(INTS))

    stdin = None
    if verb == "start":
        args = [text(), f"--stages={text()}", f"--trigger={text()}", f"--key={text()}"]
        args += draw(st.sampled_from([[], [f"--parent={i()}"], [f"--pid={i()}"]]))
        args += draw(st.sampled_from([[], [f"--heartbeat-timeout={num()}"], ["--kind=mlops"]]))
    elif verb == "stage":
        event = draw(st.sampled_from(["start", "end", "skip"]))
        args = [run(), text(), event, f"--exit-code={i()}", f"--message={text()}"]
        args += draw(st.sampled_from([[], [f"--status={text()}"], ["--status=failed"]]))
    elif verb == "log":
        args = [run(), draw(st.sampled_from(["a", text()])), f"--stream={text()}"]
        stdin = draw(LINES)
    elif verb == "finish":
        args = [run(), f"--exit-code={i()}", f"--message={text()}"]
    elif verb == "heartbeat":
        args = [run()]
    elif verb == "metric":
        args = [text(), num(), f"--step={i()}", f"--label={text()}={text()}"]
        args += draw(st.sampled_from([[f"--run={run()}"], [f"--source={text()}"]]))
    elif verb == "deploy":
        args = [text(), text(), text(), f"--message={text()}", f"--status={text()}"]
        args += draw(st.sampled_from([[], [f"--run={run()}"], ["--model", "--rollback"]]))
    else:
        args = [
            text(),
            f"--version={text()}",
            f"--metric=auc={num()}",
            f"--param={text()}={text()}",
        ]
        args += draw(st.sampled_from([[], [f"--run={run()}"], [f"--data-hash={text()}"]]))
    return ["record", verb, *args], stdin


# --- feature CSVs --------------------------------------------------------------

CELLS = st.one_of(
    st.sampled_from(
        ["nan", "inf", "-inf", "1e999", "9" * 5000, "", '"', 'a,"b"', "x\ny", "\x00", "NULL"]
    ),
    st.sampled_from(["x" * 200_000, "1" * 1_000_000]),
    st.floats().map(repr),
    st.integers().map(str),
    st.text(max_size=20),
)


@st.composite
def feature_csvs(draw: st.DrawFn) -> bytes:
    """A CSV (bytes: sometimes not UTF-8, sometimes ragged) of feature rows."""
    width = draw(st.integers(1, 4))
    header = draw(st.lists(st.text(min_size=0, max_size=10), min_size=width, max_size=width))
    rows = [
        [draw(CELLS) for _ in range(width + draw(st.sampled_from([0, 0, 0, 1, -1])))]
        for _ in range(draw(st.integers(0, 6)))
    ]
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8", "surrogatepass")


# --- opstui.toml -------------------------------------------------------------------

TOML_VALUES = st.one_of(
    st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "1e999",
            "9" * 5000,
            "9223372036854775808",
            '"\\ud800"',
            '"\\u001b[2J"',
            '"x"',
            "true",
            "-1",
            "0",
            "[" * 10_000 + "]" * 10_000,
            "[" * 20 + "]" * 20,
            "{a = {b = {c = {d = {e = {f = {g = {h = {i = {j = {k = {l = {m = {n = {o = {p = "
            "{q = 1}}}}}}}}}}}}}}}}}",
            '"""\n"""',
        ]
    ),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
#: Values some key takes, so that a good share of the files is accepted.
TOML_FINE = st.sampled_from(['"x"', "true", "false", "2", "0.5", "60", '"ops.db"'])
TOML_KEYS = st.sampled_from(
    [
        "store",
        "read_only",
        "actor",
        "[record]\nheartbeat_timeout",
        "[tui]\nrefresh",
        "[tui]\ntheme",
        "[drift]\nwindow_rows",
        "[drift]\npsi_threshold",
        "[environments.production]\nread_only",
        "[models.m]\ndrift",
        '[endpoints.e]\nkind = "health"\nurl = "http://127.0.0.1:9/"\ninterval',
        "unknown",
    ]
)


@st.composite
def toml_files(draw: st.DrawFn) -> str:
    parts = [
        f"{key} = {draw(st.one_of(TOML_VALUES, TOML_FINE))}"
        for key in draw(st.lists(TOML_KEYS, min_size=1, max_size=3, unique=True))
    ]
    if draw(st.integers(0, 3)) == 0:
        parts.append(draw(st.text(max_size=30)))
    # Sections go last in TOML; bare keys first, so most files parse.
    parts.sort(key=lambda p: p.startswith("["))
    return "\n".join(parts) + "\n"


# --- targets -------------------------------------------------------------------


class Target(NamedTuple):
    name: str
    strategy: st.SearchStrategy[Any]
    #: (workdir, example) -> problems found
    check: Callable[[Path, Any], list[str]]
    setup: Callable[[Path], None]


def _no_setup(work: Path) -> None:
    pass


def check_import(work: Path, lines: str) -> list[str]:
    store = work / "import.db"
    path = work / "in.jsonl"
    path.write_bytes(lines.encode("utf-8", "surrogatepass"))
    before = dump(store)
    out = invoke(["import", str(path), "--store", str(store)])
    found = problems(out, "import", one_line=False)
    if out.code == 2 and not found and dump(store) != before:
        found.append("import: refused, yet the store changed")
    if out.code == 0:
        found += readers_work(store)
    return found


def _record_setup(work: Path) -> None:
    store = str(work / "template.db")
    for args in (["record", "start", "p", "--stages=a"], ["record", "start", "q"]):
        out = invoke([*args, "--store", store])
        assert out.code == 0, out
    assert invoke(["record", "finish", "2", "--store", store]).code == 0
    assert invoke(["record", "stage", "1", "a", "start", "--store", store]).code == 0


def check_record(work: Path, example: tuple[list[str], str | None]) -> list[str]:
    args, stdin = example
    # Each case on a copy of the same store (run 1 running, run 2 finished):
    # a case that finishes run 1 does not decide every later one.
    store = work / "record.db"
    shutil.copyfile(work / "template.db", store)
    before = dump(store)
    out = invoke([*args, "--store", str(store)], stdin)
    found = problems(out, " ".join(args[:2]))
    if out.code == 2 and not found and dump(store) != before:
        found.append(f"{' '.join(args[:2])}: refused, yet the store changed")
    if out.code == 0:
        found += readers_work(store)
    return found


def check_features(work: Path, data: bytes) -> list[str]:
    store = work / "features.db"
    path = work / "f.csv"
    path.write_bytes(data)
    found: list[str] = []
    accepted = False
    for args in (
        ["record", "features", "m", str(path), "--kind=current"],
        ["drift", "set-reference", "m", str(path), "--version=1"],
    ):
        out = invoke([*args, "--store", str(store)])
        found += problems(out, " ".join(args[:2]))
        accepted = accepted or out.code == 0
    if accepted:
        found += readers_work(store)
    return found


def _config_setup(work: Path) -> None:
    out = invoke(["record", "start", "p", "--store", str(work / "config.db")])
    assert out.code == 0, out


def check_config(work: Path, text: str) -> list[str]:
    path = work / "opstui.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    store = work / "config.db"
    found: list[str] = []
    accepted = False
    for args in (["status"], ["endpoints", "--json"], ["actions"]):
        out = invoke([*args, "--config", str(path), "--store", str(store)])
        found += problems(out, f"{args[0]} --config")
        accepted = accepted or out.code in (0, 1)
    if accepted:
        found += readers_work(store, path)
    return found


TARGETS = {
    t.name: t
    for t in (
        Target("import", import_lines(), check_import, _no_setup),
        Target("record", record_args(), check_record, _record_setup),
        Target("features", feature_csvs(), check_features, _no_setup),
        Target("config", toml_files(), check_config, _config_setup),
    )
}


def workdir(target: Target) -> Path:
    """A fresh directory with the target's store set up (the caller removes it)."""
    work = Path(tempfile.mkdtemp(prefix=f"opstui-fuzz-{target.name}-"))
    target.setup(work)
    return work
