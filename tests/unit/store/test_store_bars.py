"""The bars read API: exact values, oldest first, since/limit semantics, counts, last open time."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from pia.events import BAR_DTYPE
from pia.intervals import MINUTE
from pia.store import bar_counts, last_open_time, read_bars
from pia.store.bars import array_rows, insert_bars

MakeArray = Callable[..., npt.NDArray[np.void]]


def _fill(conn: sqlite3.Connection, arr: npt.NDArray[np.void], symbol: str = "BTCUSDT", interval: str = "1m") -> int:
    return insert_bars(conn, array_rows(symbol, interval, arr, "test"))


def test_roundtrip_is_exact(conn: sqlite3.Connection, make_array: MakeArray) -> None:
    arr = make_array(0, 50)
    assert _fill(conn, arr) == 50
    out = read_bars(conn, "BTCUSDT", "1m")
    assert out.dtype == BAR_DTYPE
    np.testing.assert_array_equal(out, arr)
    assert conn.execute("SELECT DISTINCT source FROM bars").fetchall() == [("test",)]


def test_insert_ignores_stored_keys_and_keeps_the_first(conn: sqlite3.Connection, make_array: MakeArray) -> None:
    first = make_array(0, 10, price=50.0)
    assert _fill(conn, first) == 10
    assert _fill(conn, make_array(5, 10, price=999.0)) == 5  # 5..9 already stored
    out = read_bars(conn, "BTCUSDT", "1m")
    assert len(out) == 15
    np.testing.assert_array_equal(out[:10], first)
    assert out["open"][10] == 999.0 + 10 * 0.25


def test_unknown_series_is_an_empty_array(conn: sqlite3.Connection) -> None:
    out = read_bars(conn, "NOPE", "1m")
    assert out.dtype == BAR_DTYPE
    assert len(out) == 0
    assert last_open_time(conn, "NOPE", "1m") is None
    assert bar_counts(conn) == {}


def test_series_are_kept_apart(conn: sqlite3.Connection, make_array: MakeArray, t0: int) -> None:
    _fill(conn, make_array(0, 3), "BTCUSDT", "1m")
    _fill(conn, make_array(0, 4), "BTCUSDT", "15m")
    _fill(conn, make_array(0, 5), "ETHUSDT", "1m")
    _fill(conn, make_array(0, 2), "ETHUSDT", "1M")  # month, not minute: keys are case-sensitive
    assert bar_counts(conn) == {
        ("BTCUSDT", "15m"): 4,
        ("BTCUSDT", "1m"): 3,
        ("ETHUSDT", "1M"): 2,
        ("ETHUSDT", "1m"): 5,
    }
    assert len(read_bars(conn, "BTCUSDT", "15m")) == 4
    assert last_open_time(conn, "ETHUSDT", "1m") == t0 + 4 * MINUTE


def test_rows_come_back_oldest_first_whatever_the_insert_order(conn: sqlite3.Connection, make_array: MakeArray) -> None:
    arr = make_array(0, 20)
    _fill(conn, arr[::-1].copy())
    np.testing.assert_array_equal(read_bars(conn, "BTCUSDT", "1m"), arr)


@pytest.mark.parametrize(
    ("since", "limit", "expected"),
    [
        (None, None, list(range(10))),
        (None, 3, [7, 8, 9]),  # the newest three, oldest first
        (None, 0, []),
        (None, 50, list(range(10))),
        (4, None, [4, 5, 6, 7, 8, 9]),  # since is inclusive
        (4, 2, [8, 9]),
        (10, None, []),
        (-100, 3, [7, 8, 9]),
    ],
)
def test_since_and_limit(
    conn: sqlite3.Connection,
    make_array: MakeArray,
    t0: int,
    since: int | None,
    limit: int | None,
    expected: list[int],
) -> None:
    arr = make_array(0, 10)
    _fill(conn, arr)
    since_ns = None if since is None else t0 + since * MINUTE
    out = read_bars(conn, "BTCUSDT", "1m", since_ns=since_ns, limit=limit)
    assert out.dtype == BAR_DTYPE
    np.testing.assert_array_equal(out, arr[expected])


def test_negative_limit_is_an_error(conn: sqlite3.Connection) -> None:
    with pytest.raises(ValueError, match="limit must be >= 0"):
        read_bars(conn, "BTCUSDT", "1m", limit=-1)


def test_nan_is_stored_as_null_and_read_back_as_nan(conn: sqlite3.Connection, make_array: MakeArray) -> None:
    arr = make_array(0, 2).copy()
    arr["volume"][1] = math.nan
    arr["high"][0] = math.inf
    _fill(conn, arr)
    assert conn.execute("SELECT COUNT(*) FROM bars WHERE volume IS NULL").fetchone()[0] == 1
    out = read_bars(conn, "BTCUSDT", "1m")
    assert math.isnan(out["volume"][1])
    assert out["high"][0] == math.inf
    for name in BAR_DTYPE.names or ():  # field by field: structured comparison has NaN != NaN
        np.testing.assert_array_equal(out[name], arr[name])
