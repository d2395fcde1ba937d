"""``store.query.where`` and ``Store.query``: the one way a filtered read is built and run."""

from __future__ import annotations

from pathlib import Path

from opstui.store import Store
from opstui.store.query import where


def test_where_keeps_the_conditions_that_apply_in_order() -> None:
    assert where() == ("", [])
    assert where(("a = ?", None), ("b = ?", None)) == ("", [])
    assert where(("a = ?", 1), ("b = ?", None), ("c > ?", 0)) == ("WHERE a = ? AND c > ?", [1, 0])
    # Plain SQL always applies and takes no parameter; falsy values still apply.
    assert where(("a = ?", ""), "k = 'x'", ("b <= ?", 0.0)) == (
        "WHERE a = ? AND k = 'x' AND b <= ?",
        ["", 0.0],
    )


def test_query_and_query_one(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        with store.write() as tx:
            tx.execute("CREATE TABLE t (a INTEGER, b TEXT)")
            tx.execute("INSERT INTO t VALUES (1, 'x'), (2, NULL), (3, 'y')")
        clause, params = where(("b IS NOT NULL AND a > ?", 0), ("b = ?", None))
        assert store.query(f"SELECT a FROM t {clause} ORDER BY a DESC", params) == [(3,), (1,)]
        assert store.query_one("SELECT a FROM t WHERE a > ? ORDER BY a", (1,)) == (2,)
        assert store.query_one("SELECT a FROM t WHERE a > 9") is None
        # Text that is not UTF-8 reads as U+FFFD rather than failing the read.
        with store.write() as tx:
            tx.execute("INSERT INTO t VALUES (4, CAST(X'FF61' AS TEXT))")
        assert store.query_one("SELECT b FROM t WHERE a = 4") == ("\ufffda",)
