"""Opening the SQLite store: WAL journal, pragmas from :class:`StoreConfig`, schema up to date.

Connections are in autocommit mode (``isolation_level=None``): writers wrap their statements in
:func:`transaction` (``BEGIN IMMEDIATE`` ... ``COMMIT``), readers need nothing. A connection may be
used only on the thread that opened it. Every failure is a :class:`StoreError` naming the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pia.config import StoreConfig
from pia.errors import StoreError
from pia.store.migrations import SCHEMA_VERSION, check_not_newer, migrate, schema_version

_SYNCHRONOUS = frozenset({"NORMAL", "FULL"})


def store_path(data_dir: Path, config: StoreConfig) -> Path:
    """The database file: ``<data_dir>/<store.file>``."""
    return data_dir / config.file


def open_db(path: Path, config: StoreConfig, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the store at ``path``.

    Writable (the service's one writer): creates the folder and the file, switches to WAL and applies
    the missing migrations. Read-only (CLI readers, concurrent with the writer): the file must exist
    with the current schema. Either way a database newer than this code is refused.
    """
    conn = _connect_readonly(path, config) if readonly else _connect_writable(path, config)
    try:
        _configure(conn, path, config, readonly=readonly)
        if readonly:
            _check_readable_schema(conn, path)
        else:
            migrate(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(_explain(path, exc, readonly=readonly)) from exc
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` (take the write lock now, waiting up to busy_timeout) ... ``COMMIT``.

    Rolls back if the block raises.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


# ------------------------------------------------------------------------------------------ internals
def _connect_writable(path: Path, config: StoreConfig) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"{path}: cannot create the store folder {path.parent} ({exc.strerror or exc}); "
            "check service.data_dir (PIA_DATA_DIR) and its permissions"
        ) from exc
    return _connect(path, config, "rwc", readonly=False)


def _connect_readonly(path: Path, config: StoreConfig) -> sqlite3.Connection:
    if not path.exists():
        raise StoreError(
            f"{path}: no store here yet; start the service once to create it, or check service.data_dir (PIA_DATA_DIR)"
        )
    return _connect(path, config, "ro", readonly=True)


def _connect(path: Path, config: StoreConfig, mode: str, *, readonly: bool) -> sqlite3.Connection:
    if path.is_dir():
        raise StoreError(f"{path}: is a folder, not a database file; check store.file")
    uri = f"{path.resolve().as_uri()}?mode={mode}"
    try:
        return sqlite3.connect(
            uri, uri=True, timeout=config.busy_timeout_ms / 1000, isolation_level=None, cached_statements=64
        )
    except sqlite3.Error as exc:
        raise StoreError(_explain(path, exc, readonly=readonly)) from exc


def _configure(conn: sqlite3.Connection, path: Path, config: StoreConfig, *, readonly: bool) -> None:
    if config.synchronous not in _SYNCHRONOUS:  # pragma: no cover - StoreConfig already checks it
        raise StoreError(f"store.synchronous must be one of {sorted(_SYNCHRONOUS)}")
    conn.execute(f"PRAGMA busy_timeout = {int(config.busy_timeout_ms)}")
    conn.execute("PRAGMA foreign_keys = ON")
    if readonly:
        return  # journal mode is a property of the file (set by the writer); synchronous is writers' only
    mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
    if mode != "wal":
        raise StoreError(
            f"{path}: could not switch to WAL journal mode (got {mode!r}); "
            "keep the store on a local file system (not a network share)"
        )
    conn.execute(f"PRAGMA synchronous = {config.synchronous}")


def _check_readable_schema(conn: sqlite3.Connection, path: Path) -> None:
    version = schema_version(conn)
    check_not_newer(conn, version)
    if version == 0:
        raise StoreError(f"{path}: not a pia store yet (empty schema); start the service once to create it")
    if version < SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema version {version} is older than this pia ({SCHEMA_VERSION}); "
            "start the service once to upgrade it, then retry"
        )


def _explain(path: Path, exc: sqlite3.Error, *, readonly: bool) -> str:
    text = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
        return f"{path}: is not a SQLite database (or is corrupt); move it aside or set store.file to another name"
    if "unable to open" in text:
        if readonly:
            return f"{path}: cannot open for reading ({text}); check that it exists and is readable"
        return f"{path}: cannot open for writing ({text}); check that the folder and file are writable"
    if "locked" in text or "busy" in text:
        return (
            f"{path}: database is locked ({text}) for longer than store.busy_timeout_ms; "
            "is another pia service writing to it?"
        )
    if "readonly" in text or "read-only" in text:
        return f"{path}: cannot write ({text}); check the file's permissions"
    return f"{path}: {text}"
