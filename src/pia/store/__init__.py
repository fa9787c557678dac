"""The store: SQLite in WAL mode, one writer task (:class:`StoreWriter`), many readers.

- :func:`open_db` opens (and migrates) the database; ``readonly=True`` for CLI readers.
- :mod:`pia.store.migrations` holds the schema as an append-only list of migrations.
- :mod:`pia.store.bars` reads the ``bars`` table.
"""

from pia.store.bars import bar_counts, last_open_time, read_bars
from pia.store.db import open_db, store_path, transaction
from pia.store.migrations import MIGRATIONS, SCHEMA_VERSION, Migration, migrate
from pia.store.writer import StoreWriter

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "StoreWriter",
    "bar_counts",
    "last_open_time",
    "migrate",
    "open_db",
    "read_bars",
    "store_path",
    "transaction",
]
