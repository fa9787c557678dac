"""The ``bars`` table: the read API (CLI commands, the service) and the insert the writer uses.

Every function takes an open connection (:func:`pia.store.db.open_db`) and leaves transactions to the
caller. Arrays are structured arrays of :data:`pia.events.BAR_DTYPE`, oldest first. A NaN price or
volume is stored as NULL and read back as NaN.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from itertools import repeat

import numpy as np
import numpy.typing as npt

from pia.events import BAR_DTYPE, Bar

BarArray = npt.NDArray[np.void]
BarRow = tuple[str, str, int, float, float, float, float, float, str]
"""One row of the table: symbol, interval, open_time (ns), open, high, low, close, volume, source."""

_COLUMNS = "symbol, interval, open_time, open, high, low, close, volume, source"
_INSERT = f"INSERT OR IGNORE INTO bars ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SELECT = "SELECT open_time, open, high, low, close, volume FROM bars"


# ---------------------------------------------------------------------------------------------- write
def bar_row(bar: Bar, source: str) -> BarRow:
    """The row of one closed bar (plain Python numbers: sqlite3 cannot bind numpy integers)."""
    return (
        bar.symbol,
        bar.interval,
        int(bar.open_time),
        float(bar.open),
        float(bar.high),
        float(bar.low),
        float(bar.close),
        float(bar.volume),
        source,
    )


def array_rows(symbol: str, interval: str, bars: BarArray, source: str) -> Iterator[BarRow]:
    """The rows of a BAR_DTYPE array, in order."""
    cols = [bars[name].tolist() for name in ("open_time", "open", "high", "low", "close", "volume")]
    t, o, h, lo, c, v = cols
    return zip(repeat(symbol), repeat(interval), t, o, h, lo, c, v, repeat(source))


def insert_bars(conn: sqlite3.Connection, rows: Iterable[BarRow]) -> int:
    """Insert ``rows``, ignoring any whose (symbol, interval, open_time) is stored; return rows added."""
    return conn.executemany(_INSERT, rows).rowcount


# ----------------------------------------------------------------------------------------------- read
def read_bars(
    conn: sqlite3.Connection,
    symbol: str,
    interval: str,
    *,
    since_ns: int | None = None,
    limit: int | None = None,
) -> BarArray:
    """Stored bars of (symbol, interval), oldest first.

    ``since_ns``: only bars with ``open_time >= since_ns``. ``limit``: only the newest ``limit`` of
    those (still returned oldest first). Unknown symbols or intervals give an empty array.
    """
    where = "WHERE symbol = ? AND interval = ?"
    params: list[object] = [symbol, interval]
    if since_ns is not None:
        where += " AND open_time >= ?"
        params.append(int(since_ns))
    if limit is None:
        sql = f"{_SELECT} {where} ORDER BY open_time"
    else:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        sql = f"SELECT * FROM ({_SELECT} {where} ORDER BY open_time DESC LIMIT ?) ORDER BY open_time"
        params.append(int(limit))
    rows = conn.execute(sql, params).fetchall()
    if not rows:
        return np.empty(0, dtype=BAR_DTYPE)
    return np.array(rows, dtype=BAR_DTYPE)  # NULL (stored NaN) becomes NaN


def bar_counts(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
    """Number of stored bars per (symbol, interval)."""
    sql = "SELECT symbol, interval, COUNT(*) FROM bars GROUP BY symbol, interval ORDER BY symbol, interval"
    return {(str(s), str(i)): int(n) for s, i, n in conn.execute(sql)}


def last_open_time(conn: sqlite3.Connection, symbol: str, interval: str) -> int | None:
    """Open time (ns) of the newest stored bar of (symbol, interval), or None if there is none."""
    sql = "SELECT MAX(open_time) FROM bars WHERE symbol = ? AND interval = ?"
    value = conn.execute(sql, (symbol, interval)).fetchone()[0]
    return None if value is None else int(value)
