"""Fixtures for the store tests: a database path in tmp_path, configs, and event factories."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from pia.config import StoreConfig
from pia.events import BAR_DTYPE, Bar, BarClosed, HistoryLoaded
from pia.intervals import MINUTE
from pia.store import open_db

T0 = 1_700_000_040 * 1_000_000_000  # a whole minute, ns

MakeBar = Callable[..., BarClosed]
MakeHistory = Callable[..., HistoryLoaded]
MakeArray = Callable[..., npt.NDArray[np.void]]


@pytest.fixture
def t0() -> int:
    """Open time of bar 0 made by the factories below."""
    return T0


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "pia.sqlite3"


@pytest.fixture
def config() -> StoreConfig:
    return StoreConfig(busy_timeout_ms=2000, synchronous="NORMAL", batch_max=2000)


@pytest.fixture
def conn(db_path: Path, config: StoreConfig) -> Iterator[sqlite3.Connection]:
    """A writable, migrated connection; closed after the test."""
    c = open_db(db_path, config)
    yield c
    c.close()


@pytest.fixture
def make_bar() -> MakeBar:
    def make(i: int, symbol: str = "BTCUSDT", interval: str = "1m", close: float | None = None) -> BarClosed:
        open_time = T0 + i * MINUTE
        price = 100.0 + i if close is None else close
        bar = Bar(
            symbol=symbol,
            interval=interval,
            open_time=open_time,
            open=price - 0.5,
            high=price + 1.25,
            low=price - 1.75,
            close=price,
            volume=10.0 + i / 8,
        )
        return BarClosed(ts_event=open_time + MINUTE, ts_recv=open_time + MINUTE + 1, bar=bar, source="test")

    return make


@pytest.fixture
def make_array() -> MakeArray:
    def make(start: int, n: int, price: float = 50.0) -> npt.NDArray[np.void]:
        arr = np.empty(n, dtype=BAR_DTYPE)
        idx = np.arange(start, start + n)
        arr["open_time"] = T0 + idx * MINUTE
        arr["open"] = price + idx * 0.25
        arr["high"] = arr["open"] + 1.5
        arr["low"] = arr["open"] - 1.5
        arr["close"] = arr["open"] + 0.125
        arr["volume"] = 1000.0 + idx
        arr.flags.writeable = False
        return arr

    return make


@pytest.fixture
def make_history(make_array: MakeArray) -> MakeHistory:
    def make(start: int, n: int, symbol: str = "ETHUSDT", interval: str = "1m") -> HistoryLoaded:
        bars = make_array(start, n)
        last = int(bars["open_time"][-1]) + MINUTE if n else T0
        return HistoryLoaded(
            ts_event=last, ts_recv=last + 1, symbol=symbol, interval=interval, bars=bars, source="test-history"
        )

    return make
