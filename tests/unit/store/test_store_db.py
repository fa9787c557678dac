"""open_db: pragmas, WAL, read-only readers, and errors that name the file and what to do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pia.config import StoreConfig
from pia.errors import StoreError
from pia.store import SCHEMA_VERSION, open_db, store_path, transaction
from pia.store import db as store_db


def _pragma(conn: sqlite3.Connection, name: str) -> object:
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


@pytest.mark.parametrize(("synchronous", "code"), [("NORMAL", 1), ("FULL", 2)])
def test_writable_connection_pragmas(db_path: Path, synchronous: str, code: int) -> None:
    config = StoreConfig.model_validate({"busy_timeout_ms": 1234, "synchronous": synchronous})
    conn = open_db(db_path, config)
    try:
        assert _pragma(conn, "journal_mode") == "wal"
        assert _pragma(conn, "busy_timeout") == 1234
        assert _pragma(conn, "synchronous") == code
        assert _pragma(conn, "foreign_keys") == 1
        assert _pragma(conn, "user_version") == SCHEMA_VERSION
        assert conn.isolation_level is None  # autocommit: writers use transaction()
    finally:
        conn.close()
    assert db_path.parent.is_dir()  # the folder was created


def test_readonly_connection_reads_but_cannot_write(db_path: Path, config: StoreConfig) -> None:
    open_db(db_path, config).close()
    ro = open_db(db_path, StoreConfig(busy_timeout_ms=777), readonly=True)
    try:
        assert _pragma(ro, "journal_mode") == "wal"  # a property of the file
        assert _pragma(ro, "busy_timeout") == 777
        assert ro.execute("SELECT COUNT(*) FROM bars").fetchone()[0] == 0
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            ro.execute("INSERT INTO bars VALUES ('X', '1m', 0, 1, 1, 1, 1, 1, 't')")
    finally:
        ro.close()


def test_readonly_missing_file_is_refused_and_not_created(db_path: Path, config: StoreConfig) -> None:
    with pytest.raises(StoreError, match="no store here yet") as info:
        open_db(db_path, config, readonly=True)
    assert str(db_path) in str(info.value)
    assert not db_path.exists()


def test_readonly_refuses_a_database_without_pia_schema(db_path: Path, config: StoreConfig) -> None:
    db_path.parent.mkdir(parents=True)
    raw = sqlite3.connect(db_path)
    raw.execute("CREATE TABLE other (x)")
    raw.close()
    with pytest.raises(StoreError, match="not a pia store yet"):
        open_db(db_path, config, readonly=True)


def test_readonly_refuses_an_older_schema(db_path: Path, config: StoreConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    open_db(db_path, config).close()
    monkeypatch.setattr(store_db, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match=r"older than this pia.*start the service once to upgrade"):
        open_db(db_path, config, readonly=True)


@pytest.mark.parametrize("readonly", [False, True])
def test_newer_schema_is_refused(db_path: Path, config: StoreConfig, readonly: bool) -> None:
    open_db(db_path, config).close()
    raw = sqlite3.connect(db_path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    raw.close()
    with pytest.raises(StoreError, match=r"schema version \d+ is newer than this pia knows.*Upgrade pia") as info:
        open_db(db_path, config, readonly=readonly)
    assert str(db_path) in str(info.value)
    raw = sqlite3.connect(db_path)
    assert _pragma(raw, "user_version") == SCHEMA_VERSION + 5  # left untouched
    raw.close()


@pytest.mark.parametrize("readonly", [False, True])
def test_a_file_that_is_not_a_database(db_path: Path, config: StoreConfig, readonly: bool) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_text("symbol,open_time\nBTCUSDT,1\n" * 200)
    with pytest.raises(StoreError, match=r"is not a SQLite database.*move it aside") as info:
        open_db(db_path, config, readonly=readonly)
    assert str(db_path) in str(info.value)


def test_unwritable_folder(tmp_path: Path, config: StoreConfig) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    path = blocker / "pia.sqlite3"
    with pytest.raises(StoreError, match=r"cannot create the store folder.*service\.data_dir") as info:
        open_db(path, config)
    assert str(path) in str(info.value)


def test_path_that_is_a_folder(db_path: Path, config: StoreConfig) -> None:
    db_path.mkdir(parents=True)
    with pytest.raises(StoreError, match="is a folder"):
        open_db(db_path, config)


def test_store_path(tmp_path: Path) -> None:
    assert store_path(tmp_path, StoreConfig(file="x.db")) == tmp_path / "x.db"


def test_transaction_commits_or_rolls_back(conn: sqlite3.Connection) -> None:
    row = ("X", "1m", 1, 1.0, 2.0, 0.5, 1.5, 3.0, "t")
    with transaction(conn):
        conn.execute("INSERT INTO bars VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    def insert_then_fail() -> None:
        with transaction(conn):
            conn.execute("INSERT INTO bars VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (*row[:2], 2, *row[3:]))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        insert_then_fail()
    assert not conn.in_transaction
    assert conn.execute("SELECT open_time FROM bars").fetchall() == [(1,)]


def test_locked_database_gives_a_clear_error(db_path: Path) -> None:
    config = StoreConfig(busy_timeout_ms=0)
    db_path.parent.mkdir(parents=True)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked") as info:
            open_db(db_path, config)
        assert str(db_path) in str(info.value)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
