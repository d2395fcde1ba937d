"""``opstui store``: create a store's schema, check a store, copy a history between stores.

``init`` and ``check`` take the usual ``--store`` (a file or a PostgreSQL
URL); ``copy`` names both ends. The JSON of ``check --json`` is versioned by
``schema`` like ``status --json``'s.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer

from opstui.cli.options import ConfigOpt, JsonOpt, StoreOpt
from opstui.cli.output import say, write_json
from opstui.cli.root import app, open_store

store_app = typer.Typer(
    help="Create, check and copy run stores (SQLite files, PostgreSQL databases).",
    no_args_is_help=True,
)
app.add_typer(store_app, name="store")

JSON_SCHEMA = 1


@store_app.command()
def init(store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """Create the store's schema (or bring it up to this opstui's version)."""
    from opstui.store.schema import SCHEMA_VERSION

    db, _ = open_store(store, config, create=True)
    with db:
        say(f"run store {db.name} is ready (schema version {SCHEMA_VERSION})")


@store_app.command()
def check(
    full: Annotated[
        bool, typer.Option("--full", help="SQLite: read every page and index (slower).")
    ] = False,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Integrity, schema version, size and rows per table; exits 1 on a problem."""
    from opstui.store.check import check_store

    db, _ = open_store(store, config, create=False)
    with db:
        report = check_store(db, full=full)
    if as_json:
        write_json(
            {
                "schema": JSON_SCHEMA,
                "store": report.store,
                "backend": report.backend,
                "server": report.server,
                "schema_version": report.schema_version,
                "code_schema_version": report.code_schema_version,
                "size_bytes": report.size_bytes,
                "counts": report.counts,
                "problems": report.problems,
                "ok": report.ok,
            }
        )
    else:
        backend = report.backend + (f" {report.server}" if report.server else "")
        say(f"store    {report.store}")
        say(f"backend  {backend}")
        say(f"schema   {report.schema_version} (this opstui: {report.code_schema_version})")
        if report.size_bytes is not None:
            say(f"size     {_size(report.size_bytes)}")
        width = max((len(t) for t in report.counts), default=0)
        for table, n in report.counts.items():
            say(f"  {table:<{width}}  {n:>12,}")
        for problem in report.problems:
            say(f"problem  {problem}")
        say("result   " + ("ok" if report.ok else f"{len(report.problems)} problem(s)"))
    if not report.ok:
        raise typer.Exit(1)


@store_app.command()
def copy(
    source: Annotated[str, typer.Argument(help="The store to copy from (path or URL).")],
    destination: Annotated[
        str, typer.Argument(help="The store to copy into: new, empty, or an earlier copy.")
    ],
) -> None:
    """Copy a history between stores (SQLite and PostgreSQL, either way), in one
    transaction; copying again updates the copy."""
    from opstui.store import Store
    from opstui.store.copy import copy_store

    with Store(source, create=False) as src, Store(destination, create=True) as dst:
        summary = copy_store(src, dst, on_progress=_progress())
    what = "updated the copy in" if summary.again else "copied into"
    say(f"{summary.total:,} rows from {src.name} {what} {dst.name}")


def _progress() -> Callable[[str, int, int], None] | None:
    """A progress bar per table on a terminal (stderr); nothing in a pipe or a log."""
    if not sys.stderr.isatty():
        return None

    def show(table: str, done: int, total: int) -> None:
        print(f"\r{table:<16} {_bar(done, total)} {done:>12,}/{total:,}", end="", file=sys.stderr)
        if done >= total:
            print(file=sys.stderr)

    return show


def _bar(done: int, total: int, width: int = 24) -> str:
    filled = width if total == 0 else min(width, done * width // total)
    return "█" * filled + "·" * (width - filled)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1024
    return f"{n} B"
