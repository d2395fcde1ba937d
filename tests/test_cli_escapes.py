"""No control character from data reaches the terminal (issue 11, "raw escapes").

A store, a config or a polled server holding hostile text (an OSC 52
clipboard write, a clear-screen CSI, BEL, C1, DEL, Rich markup): every
command's text output and error messages show it escaped, and ``--json`` is
valid JSON of ASCII. Each command runs as the operator runs it (a subprocess
of ``python -m opstui``) and its bytes are checked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from opstui.store import Store, actions, models, runs
from opstui.store.endpoints import Observation, record_observations
from opstui.terminal import visible
from opstui.tui.render import safe

from .hostile_http import osc52_reason

OSC52 = "\x1b]52;c;aGk=\x07"  # writes "hi" to the operator's clipboard
EVIL = f"{OSC52}\x1b[2J\x07\x9b31m\x7f\x08[bold]B[/]:thumbs_up:"
SHOWN = r"\x1b]52;c;aGk=\x07"  # how OSC52 must read on the terminal
LONG = "L" * 300

# Bytes a terminal acts on (tab and newline are layout); C1 is checked on the text.
CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")
C1 = re.compile("[\x80-\x9f]")


def hostile(tag: str) -> str:
    return f"{tag}{EVIL}"


def clean(raw: bytes, what: str) -> str:
    """``raw`` as text, after checking a terminal would show it and do nothing else."""
    bad = CONTROL_BYTES.search(raw)
    assert bad is None, f"{what}: control byte {raw[max(0, bad.start() - 60) : bad.end() + 20]!r}"
    text = raw.decode("utf-8")  # strict: a lone surrogate could not have been written
    assert C1.search(text) is None, f"{what}: C1 control in {text!r}"
    return text


class Result:
    def __init__(self, done: subprocess.CompletedProcess[bytes]) -> None:
        self.returncode = done.returncode
        self.stdout = clean(done.stdout, "stdout")
        self.stderr = clean(done.stderr, "stderr")
        assert "Traceback" not in self.stderr, self.stderr


def opstui(
    *args: str | bytes | Path, stdin: bytes | None = None, cwd: Path | None = None
) -> Result:
    # Rich writes no colour codes into a pipe unless told to: tell it nothing.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OPSTUI_") and k not in ("FORCE_COLOR", "TTY_COMPATIBLE")
    }
    env["COLUMNS"] = "250"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "opstui",
            *(os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in args),
        ],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )
    return Result(done)


# --- the escaping function ---------------------------------------------------


def unescape(text: str) -> str:
    return re.sub(
        r"\\x([0-9a-f]{2})|\\u([0-9a-f]{4})",
        lambda m: chr(int(m.group(1) or m.group(2), 16)),
        text,
    )


UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
AWKWARD = [*"\x00\x07\x08\x1b\x7f\x80\x9b\x9f\n\t\r\udcff\ud800\u202e\u2028[]", OSC52]
ANY_TEXT = hs.lists(hs.one_of(hs.characters(exclude_categories=()), hs.sampled_from(AWKWARD))).map(
    "".join
)


def test_visible_shows_every_control_and_keeps_text() -> None:
    assert visible(f"a{OSC52}b") == rf"a{SHOWN}b"
    assert visible("\x9b\x7f\x00\udcff\u202e") == r"\x9b\x7f\x00\udcff\u202e"
    assert visible("line\nnext") == r"line\x0anext"
    assert visible("line\nnext", newline="\n") == "line\nnext"
    assert visible("a\tb") == "a    b"
    plain = r"C:\temp\x1b [bold] ✓ café 漢字 🙂"
    assert visible(plain) == plain


def test_the_console_keeps_its_cells_on_one_line() -> None:
    assert safe("a\tb\nc\x1b[2J") == r"a    b c\x1b[2J"
    assert safe(None) == safe("") == ""


@settings(max_examples=400, deadline=None, database=None)
@given(ANY_TEXT)
def test_visible_never_raises_and_leaves_no_control(text: str) -> None:
    for shown in (visible(text), visible(text, newline="\n"), safe(text)):
        assert UNSAFE.search(shown) is None, repr(shown)
        shown.encode("utf-8")  # no surrogate left to crash the encoder
    assert "\n" not in visible(text) and "\n" not in safe(text)


@settings(max_examples=400, deadline=None, database=None)
@given(ANY_TEXT.filter(lambda t: "\\" not in t and "\t" not in t))
def test_visible_reads_back_to_the_original(text: str) -> None:
    # Readable: every escape names the character it stands for.
    assert unescape(visible(text)) == text


def test_json_is_ascii_and_never_nan(capsys: pytest.CaptureFixture[str]) -> None:
    from opstui.cli.output import write_json

    write_json({"c1": "\x9b\udcff", "nan": float("nan"), "inf": [float("inf"), 1.5]})
    out = capsys.readouterr().out
    assert out.isascii() and "NaN" not in out and "Infinity" not in out
    assert json.loads(out) == {"c1": "\x9b\udcff", "nan": None, "inf": [None, 1.5]}


# --- a store full of hostile text --------------------------------------------


@pytest.fixture
def evil_store(tmp_path: Path) -> Path:
    path = tmp_path / "evil.db"
    with Store(path) as store:
        run_id, _ = runs.create_run(
            store,
            hostile("p"),
            stages=["ok", hostile("s")],
            trigger=hostile("t"),
            actor=hostile("a"),
        )
        runs.start_stage(store, run_id, "ok")
        runs.finish_stage(store, run_id, "ok", exit_code=0)
        runs.start_stage(store, run_id, hostile("s"))
        runs.append_logs(store, [(runs.stage_id(store, run_id, hostile("s")), 1.0, "stdout", EVIL)])
        runs.finish_stage(store, run_id, hostile("s"), exit_code=3, message=hostile("m"))
        runs.finish_run(store, run_id, message=hostile("r"))
        runs.create_run(store, "[/]closes-nothing", stages=["x"], actor=LONG)
        runs.create_run(store, LONG, stages=[LONG])
        actions.record_action(
            store,
            actor=hostile("a"),
            action="retry",
            target=hostile("g"),
            environment=hostile("e"),
            plan={"title": EVIL},
            status="refused",
            outcome=hostile("o"),
        )
        now = time.time()
        with store.write() as tx:
            models.add_deployment(
                tx, environment="production", target="web", version=hostile("1."),
                deployed_at=now - 100,
            )  # fmt: skip
            models.add_deployment(
                tx, environment="production", target="web", version="2.0", deployed_at=now - 50
            )
    return path


def test_status_shows_names_escaped_and_markup_as_text(evil_store: Path) -> None:
    result = opstui("status", "--store", evil_store)
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert f"p{SHOWN}" in out  # the pipeline
    assert r"s\x1b" in out and r"t\x1b" in out  # failed stage, trigger (cut to their columns)
    assert "[/]closes-nothing" in out  # Rich markup is data, shown as written
    assert "LLLL" in out


def test_status_json_is_ascii_and_reads_back(evil_store: Path) -> None:
    result = opstui("status", "--json", "--store", evil_store)
    assert result.returncode == 1, result.stderr
    assert result.stdout.isascii()
    doc = json.loads(result.stdout)
    by_name = {p["name"]: p for p in doc["pipelines"]}
    run = by_name[hostile("p")]["latest_run"]
    assert (run["trigger"], run["actor"], run["message"]) == (
        hostile("t"),
        hostile("a"),
        hostile("r"),
    )
    assert run["stages"][1]["name"] == hostile("s")


def test_actions_table_and_json(evil_store: Path) -> None:
    table = opstui("actions", "--store", evil_store)
    assert table.returncode == 0, table.stderr
    for tag in "age":  # the outcome folds into a narrow column
        assert f"{tag}{SHOWN}" in table.stdout
    doc = json.loads(opstui("actions", "--json", "--store", evil_store).stdout)
    (row,) = doc["actions"]
    assert (row["actor"], row["target"], row["outcome"]) == (
        hostile("a"),
        hostile("g"),
        hostile("o"),
    )


PIPELINES = r"""
store = "ops.db"
[environments.production]
[pipelines."p\u001b]52;c;aGk=\u0007"]
kind = "devops"
stages = [{ name = "s\u001b[2J", run = ["true"] }]
[pipelines.web]
kind = "devops"
environment = "production"
[[pipelines.web.stages]]
name = "build"
run = ["sh", "-c", "printf 'out\\033]52;c;aGk=\\007\\n'; printf 'err\\033[2J\\n' >&2"]
[pipelines.web.rollback]
run = ["echo", "{version}"]
"""


@pytest.fixture
def ops(tmp_path: Path, evil_store: Path) -> Path:
    (tmp_path / "opstui.toml").write_text(PIPELINES)
    evil_store.rename(tmp_path / "ops.db")
    return tmp_path


def test_plans_of_dry_runs_are_escaped(ops: Path) -> None:
    run = opstui("run", f"p{OSC52}", "--dry-run", cwd=ops)
    assert run.returncode == 0, run.stderr
    assert f"Run p{SHOWN}" in run.stdout and r"s\x1b[2J" in run.stdout
    back = opstui("rollback", "production", "--pipeline", "web", "--dry-run", cwd=ops)
    assert back.returncode == 0, back.stderr
    assert f"web 2.0 -> 1.{SHOWN}" in back.stdout
    plan = json.loads(
        opstui("rollback", "production", "--pipeline", "web", "--dry-run", "--json", cwd=ops).stdout
    )
    assert plan["plan"]["title"].endswith(hostile("1."))


def test_a_stage_cannot_drive_the_terminal(ops: Path) -> None:
    result = opstui("run", "web", "--yes", cwd=ops)
    assert result.returncode == 0, result.stderr
    assert f"out{SHOWN}" in result.stdout
    assert r"err\x1b[2J" in result.stderr


def test_error_messages_are_escaped(ops: Path, tmp_path: Path) -> None:
    # A UsageError naming what the operator passed, and one naming the config.
    missing = opstui("rollback", "production", "--pipeline", hostile("q"), cwd=ops)
    assert missing.returncode == 2
    assert f"q{SHOWN}" in missing.stderr
    listed = opstui("run", "nope", "--dry-run", cwd=ops)
    assert listed.returncode == 2 and f"p{SHOWN}" in listed.stderr
    # The importer's list of bad lines keeps its line breaks, not the file's escapes.
    bad = tmp_path / "bad\x1b[2J.jsonl"
    bad.write_text('{"type":"pipeline","name":"ok"}\n{"type":"run\\u001b]52;c;aGk=\\u0007"}\n')
    imported = opstui("import", bad, "--store", tmp_path / "new.db")
    assert imported.returncode == 2
    assert r"bad\x1b[2J.jsonl:2:" in imported.stderr.splitlines()[1]


def test_click_usage_errors_are_escaped(tmp_path: Path) -> None:
    extra = opstui("status", OSC52)
    assert extra.returncode == 2
    assert SHOWN in extra.stderr and "opstui status [OPTIONS]" in extra.stderr
    option = opstui("status", f"--{OSC52}")
    assert option.returncode == 2 and r"--\x1b]52;c;aGk" in option.stderr  # "=" ends its name
    # Bytes that are not UTF-8 reach Python as lone surrogates (\udcff).
    surrogate = opstui("status", b"\xffx")
    assert surrogate.returncode == 2 and r"\udcffx" in surrogate.stderr
    usage = opstui("record", "start", hostile("p"), "--kind", "bogus")
    assert usage.returncode == 2 and "--kind must be devops or mlops" in usage.stderr


def test_printed_paths_and_versions_are_escaped(tmp_path: Path) -> None:
    wrote = opstui("init", tmp_path / os.fsdecode(b"\xff\x1b[2J.toml"))
    assert wrote.returncode == 0, wrote.stderr
    assert r"\udcff\x1b[2J.toml" in wrote.stdout
    store = tmp_path / "s\x1b[2J.db"
    made = opstui("record", "model-version", "m", "--version", hostile("v"), "--store", store)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == visible(hostile("v"))
    started = opstui("record", "start", "p", "--stages", "build", "--store", store)
    run_id = started.stdout.strip()
    tee = opstui(
        "record", "log", run_id, "build", "--tee", "--store", store,
        stdin=f"one{OSC52}\ntwo\r\n".encode(),
    )  # fmt: skip
    assert tee.returncode == 0, tee.stderr
    assert tee.stdout == rf"one{SHOWN}" + "\n" + r"two\x0d" + "\n"
    empty = opstui("status", "--store", tmp_path / "empty[bold]\x1b[2J.db")
    assert empty.returncode == 2  # no store: the path is named, escaped
    assert r"empty[bold]\x1b[2J.db" in empty.stderr


# --- drift ------------------------------------------------------------------


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    lines = [",".join(header)] + [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_drift_names_and_categories_are_escaped(tmp_path: Path) -> None:
    store = tmp_path / "d.db"
    model = hostile("m")
    header = ["amount", hostile("f")]
    with Store(store) as db, db.write() as tx:
        models.add_model_version(tx, model, version="1", created_at=time.time())
    reference = write_csv(
        tmp_path / "ref.csv", header, [[i % 50, "a" if i % 2 else "b"] for i in range(400)]
    )
    ref = opstui("drift", "set-reference", model, reference, "--version", "1", "--store", store)
    assert ref.returncode == 0, ref.stderr
    assert f"reference of m{SHOWN}" in ref.stdout
    with Store(store) as db, db.write() as tx:
        columns: dict[str, list[object]] = {
            "amount": [100 + i % 50 for i in range(400)],
            hostile("f"): [hostile("c") if i % 2 else "a" for i in range(400)],
        }
        models.add_feature_batch(tx, model, columns, created_at=time.time())
    check = opstui("drift", model, "--no-classifier", "--no-save", "--store", store)
    assert check.returncode == 1, check.stderr
    assert f"m{SHOWN}" in check.stdout  # the heading
    assert f"f{SHOWN}" in check.stdout  # the feature, in the footer lines
    assert f"c{SHOWN}" in check.stdout  # an unseen category
    doc = json.loads(
        opstui("drift", model, "--json", "--no-classifier", "--no-save", "--store", store).stdout
    )
    assert doc["model"] == model
    assert hostile("f") in {f["name"] for f in doc["features"]}


# --- endpoints and poll ------------------------------------------------------


@pytest.fixture
def evil_server() -> Iterator[int]:
    """An HTTP server whose reason phrase is an OSC 52 write."""
    with osc52_reason() as port:
        yield port


def test_poll_and_endpoints_escape_names_and_reasons(tmp_path: Path, evil_server: int) -> None:
    config = tmp_path / "opstui.toml"
    config.write_text(
        'store = "ep.db"\n'
        r'[endpoints."web\u001b]52;c;aGk=\u0007"]' + "\n"
        f'kind = "health"\nurl = "http://127.0.0.1:{evil_server}/health"\n'
        "[endpoints.quiet]\n"
        f'kind = "health"\nurl = "http://127.0.0.1:{evil_server}/x"\n'
    )
    poll = opstui("poll", "--once", "--config", config, cwd=tmp_path)
    assert poll.returncode == 1, poll.stderr
    assert f"web{SHOWN}: down: HTTP 503 Busy{SHOWN}" in poll.stdout
    with Store(tmp_path / "ep.db") as db:
        reason = hostile("why")
        record_observations(
            db,
            [Observation("quiet", "health", "http://x", time.time(), "down", reason, None)],
            holder="test",
        )
    table = opstui("endpoints", "--config", config, cwd=tmp_path)
    assert table.returncode == 1, table.stderr
    assert f"web{SHOWN}" in table.stdout and f"quiet: why{SHOWN}" in table.stdout
    doc = json.loads(opstui("endpoints", "--json", "--config", config, cwd=tmp_path).stdout)
    reasons = {e["name"]: e["reason"] for e in doc["endpoints"]}
    assert reasons["quiet"] == hostile("why")


# --- the entry point itself --------------------------------------------------


def test_an_unexpected_error_prints_its_traceback_escaped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from opstui import cli

    def boom(**kwargs: object) -> None:
        raise RuntimeError(f"bug near {OSC52}")

    monkeypatch.setattr(cli, "app", boom)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and f"bug near {SHOWN}" in err
    assert "\x1b" not in err


def test_an_error_is_one_line_whatever_it_quotes(ops: Path) -> None:
    # A line break in a name the error quotes is shown, not obeyed: it would
    # forge a second line ("opstui: run 7 succeeded") under the real one.
    forged = opstui("run", "nope\nopstui: run 7 succeeded", "--dry-run", cwd=ops)
    assert forged.returncode == 2
    (line,) = forged.stderr.splitlines()
    assert line.startswith("opstui: ") and r"nope\x0aopstui: run 7 succeeded" in line
