"""Migrations: applied once, in order, each in its own transaction; newer databases refused."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from pia.config import StoreConfig
from pia.errors import StoreError
from pia.store import MIGRATIONS, SCHEMA_VERSION, Migration, migrate, open_db
from pia.store.migrations import check_sequence, split_statements


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


@pytest.fixture
def raw(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(tmp_path / "raw.sqlite3", isolation_level=None)
    yield c
    c.close()


def test_the_shipped_migrations_are_a_valid_sequence() -> None:
    check_sequence(MIGRATIONS)
    assert SCHEMA_VERSION == len(MIGRATIONS) == MIGRATIONS[-1].version
    assert all(m.description and m.sql.strip() for m in MIGRATIONS)


def test_migration_1_creates_the_bars_table(conn: sqlite3.Connection) -> None:
    assert _version(conn) == SCHEMA_VERSION
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'bars'").fetchone()[0]
    assert "WITHOUT ROWID" in sql
    cols = [(r[1], r[2]) for r in conn.execute("PRAGMA table_info(bars)")]
    assert cols == [
        ("symbol", "TEXT"),
        ("interval", "TEXT"),
        ("open_time", "INTEGER"),
        ("open", "REAL"),
        ("high", "REAL"),
        ("low", "REAL"),
        ("close", "REAL"),
        ("volume", "REAL"),
        ("source", "TEXT"),
    ]
    pk = [r[1] for r in sorted(conn.execute("PRAGMA table_info(bars)"), key=lambda r: r[5]) if r[5]]
    assert pk == ["symbol", "interval", "open_time"]


def test_reopen_is_idempotent_and_keeps_data(db_path: Path, config: StoreConfig) -> None:
    first = open_db(db_path, config)
    first.execute("INSERT INTO bars VALUES ('X', '1m', 60, 1, 2, 0.5, 1.5, 9, 't')")
    first.close()
    again = open_db(db_path, config)
    try:
        assert _version(again) == SCHEMA_VERSION
        assert migrate(again) == SCHEMA_VERSION  # nothing left to apply
        assert again.execute("SELECT COUNT(*) FROM bars").fetchone()[0] == 1
    finally:
        again.close()


def test_applies_only_the_missing_migrations_in_order(raw: sqlite3.Connection) -> None:
    m1 = Migration(1, "a", "CREATE TABLE a (x INTEGER);")
    m2 = Migration(2, "b", "CREATE TABLE b (x INTEGER); INSERT INTO a VALUES (2);")
    assert migrate(raw, (m1,)) == 1
    raw.execute("INSERT INTO a VALUES (1)")
    assert migrate(raw, (m1, m2)) == 2  # m1 not re-run (it would fail: table a exists)
    assert migrate(raw, (m1, m2)) == 2
    assert _tables(raw) == {"a", "b"}
    assert [r[0] for r in raw.execute("SELECT x FROM a")] == [1, 2]


def test_a_failing_migration_is_rolled_back_whole(raw: sqlite3.Connection) -> None:
    m1 = Migration(1, "a", "CREATE TABLE a (x);")
    bad = Migration(2, "half done", "CREATE TABLE b (x);\nINSERT INTO missing VALUES (1);")
    with pytest.raises(StoreError, match=r"migration 2 \(half done\) failed.*no such table.*version 1"):
        migrate(raw, (m1, bad))
    assert _version(raw) == 1
    assert _tables(raw) == {"a"}  # table b rolled back with the version bump
    assert not raw.in_transaction


def test_migrate_refuses_a_newer_database(raw: sqlite3.Connection, tmp_path: Path) -> None:
    raw.execute("PRAGMA user_version = 3")
    with pytest.raises(StoreError, match="schema version 3 is newer than this pia knows \\(1\\)") as info:
        migrate(raw, (Migration(1, "a", "CREATE TABLE a (x);"),))
    assert str(tmp_path / "raw.sqlite3") in str(info.value)
    assert _tables(raw) == set()


@pytest.mark.parametrize("versions", [[2], [1, 3], [2, 1], [1, 1]])
def test_versions_must_be_consecutive_from_one(versions: list[int]) -> None:
    with pytest.raises(ValueError, match="migration versions must be"):
        check_sequence([Migration(v, "x", "SELECT 1;") for v in versions])


def test_split_statements_respects_strings_comments_and_triggers(raw: sqlite3.Connection) -> None:
    sql = """
    CREATE TABLE t (x TEXT DEFAULT 'a;b'); -- comment; with a semicolon
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN
        UPDATE t SET x = 'c;d';
    END;
    -- trailing comment
    """
    out = split_statements(sql)
    assert len(out) == 2
    assert out[0].startswith("CREATE TABLE t") and out[0].endswith(";")
    assert "CREATE TRIGGER" in out[1]
    assert out[1].endswith("END;")
    for statement in out:
        raw.execute(statement)
    raw.execute("INSERT INTO t VALUES ('z')")
    assert raw.execute("SELECT x FROM t").fetchall() == [("c;d",)]
