"""The schema, as an ordered list of migrations applied at start.

To change the schema, APPEND a :class:`Migration` to :data:`MIGRATIONS` with the next version number.
Never edit, reorder or remove one that has shipped: databases in the field have already applied it.
:func:`migrate` applies each missing migration in its own transaction and records the version in
``PRAGMA user_version``; a database whose version is newer than :data:`SCHEMA_VERSION` is refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import NamedTuple

from pia.errors import StoreError


class Migration(NamedTuple):
    version: int
    description: str
    sql: str  # one or more statements; they run in one transaction with the version bump


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "bars: closed OHLCV candles, one row per (symbol, interval, open_time ns UTC)",
        """
        CREATE TABLE bars (
            symbol    TEXT    NOT NULL,
            interval  TEXT    NOT NULL,
            open_time INTEGER NOT NULL,  -- ns since the epoch, UTC
            open      REAL,              -- NaN is stored as NULL and read back as NaN
            high      REAL,
            low       REAL,
            close     REAL,
            volume    REAL,
            source    TEXT,
            PRIMARY KEY (symbol, interval, open_time)
        ) WITHOUT ROWID;
        """,
    ),
    # Append the next migration here: Migration(2, "what it adds", "CREATE TABLE ...;"),
)

SCHEMA_VERSION = MIGRATIONS[-1].version
"""The schema version this code writes and reads."""


def db_file(conn: sqlite3.Connection) -> str:
    """The file behind ``conn`` (for error messages)."""
    for _seq, name, file in conn.execute("PRAGMA database_list"):
        if name == "main":
            return str(file) or ":memory:"
    return "?"  # pragma: no cover - every connection has a main database


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check_not_newer(conn: sqlite3.Connection, version: int, latest: int = SCHEMA_VERSION) -> None:
    """Refuse a database written by a newer pia (its schema may mean something this code cannot know)."""
    if version > latest:
        raise StoreError(
            f"{db_file(conn)}: schema version {version} is newer than this pia knows ({latest}): "
            "it was written by a newer pia. Upgrade pia, or point service.data_dir at another folder."
        )


def check_sequence(migrations: Sequence[Migration]) -> None:
    """Versions must be 1, 2, 3 ... in order (a programming error otherwise)."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must be 1..{len(versions)} in order, got {versions}")


def split_statements(sql: str) -> list[str]:
    """Split a script into complete statements (``;`` inside strings, comments and triggers is fine)."""
    out: list[str] = []
    start = 0
    for i, ch in enumerate(sql):
        if ch == ";" and sqlite3.complete_statement(sql[start : i + 1]):
            out.append(sql[start : i + 1].strip())
            start = i + 1
    rest = sql[start:].strip()
    if rest and not _only_comments(rest):
        out.append(rest)
    return out


def _only_comments(text: str) -> bool:
    lines = (line.strip() for line in text.splitlines())
    return all(not line or line.startswith("--") for line in lines)


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply the missing migrations, each in its own transaction; return the schema version reached.

    ``conn`` must not be inside a transaction. Idempotent: on an up-to-date database it does nothing.
    Raises :class:`StoreError` if the database is newer than ``migrations`` or a migration fails
    (that migration is rolled back; the ones before it stay applied).
    """
    check_sequence(migrations)
    latest = migrations[-1].version if migrations else 0
    version = schema_version(conn)
    check_not_newer(conn, version, latest)
    for migration in migrations[version:]:
        _apply(conn, migration)
    return schema_version(conn)


def _apply(conn: sqlite3.Connection, migration: Migration) -> None:
    conn.execute("BEGIN IMMEDIATE")  # take the write lock, then re-check: another process may have won
    try:
        current = schema_version(conn)
        if current >= migration.version:
            conn.execute("ROLLBACK")
            return
        for statement in split_statements(migration.sql):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {int(migration.version)}")
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise StoreError(
            f"{db_file(conn)}: migration {migration.version} ({migration.description}) failed: {exc}; "
            f"it was rolled back and the database left at version {schema_version(conn)}"
        ) from exc
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
