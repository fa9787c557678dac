"""StoreWriter: every closed bar and history row committed exactly once, in bounded batches, off-loop."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from pia import topics
from pia.bus import Bus
from pia.config import StoreConfig
from pia.errors import StoreError
from pia.events import BAR_DTYPE, BarClosed, HistoryLoaded
from pia.store import StoreWriter, bar_counts, open_db, read_bars

MakeBar = Callable[..., BarClosed]
MakeHistory = Callable[..., HistoryLoaded]


@pytest.fixture
def reader(db_path: Path, config: StoreConfig) -> Iterator[Callable[[], sqlite3.Connection]]:
    """Opens read-only connections (after the writer created the file); closes them all at the end."""
    opened: list[sqlite3.Connection] = []

    def open_reader() -> sqlite3.Connection:
        opened.append(open_db(db_path, config, readonly=True))
        return opened[-1]

    yield open_reader
    for c in opened:
        c.close()


def _expected(events: list[BarClosed]) -> npt.NDArray[np.void]:
    rows = [(e.bar.open_time, e.bar.open, e.bar.high, e.bar.low, e.bar.close, e.bar.volume) for e in events]
    return np.array(rows, dtype=BAR_DTYPE)


async def test_stores_bars_and_history_exactly(
    db_path: Path,
    config: StoreConfig,
    make_bar: MakeBar,
    make_history: MakeHistory,
    reader: Callable[[], sqlite3.Connection],
) -> None:
    bus = Bus()
    writer = StoreWriter(db_path, config, bus)  # subscribes now: nothing published after is missed
    bars = [make_bar(i) for i in range(7)] + [make_bar(i, interval="5m") for i in range(0, 15, 5)]
    history = make_history(0, 120)
    for e in bars:
        await bus.publish(topics.bars(), e)
    await bus.publish(topics.history(), history)
    await bus.publish(topics.history(), make_history(0, 0, symbol="EMPTY"))
    bus.close()
    await writer.run()

    conn = reader()
    np.testing.assert_array_equal(read_bars(conn, "BTCUSDT", "1m"), _expected(bars[:7]))
    np.testing.assert_array_equal(read_bars(conn, "BTCUSDT", "5m"), _expected(bars[7:]))
    np.testing.assert_array_equal(read_bars(conn, "ETHUSDT", "1m"), history.bars)
    sources = dict(conn.execute("SELECT symbol, MIN(source) FROM bars GROUP BY symbol").fetchall())
    assert sources == {"BTCUSDT": "test", "ETHUSDT": "test-history"}
    stats = writer.statistics()
    assert stats["rows_received"] == stats["rows_committed"] == stats["rows_written"] == 130
    assert stats["rows_pending"] == 0


async def test_duplicates_are_ignored(
    db_path: Path,
    config: StoreConfig,
    make_bar: MakeBar,
    make_history: MakeHistory,
    reader: Callable[[], sqlite3.Connection],
) -> None:
    bus = Bus()
    writer = StoreWriter(db_path, config, bus)
    first = make_bar(1, symbol="ETHUSDT", close=111.0)
    await bus.publish(topics.bars(), first)
    await bus.publish(topics.bars(), make_bar(1, symbol="ETHUSDT", close=222.0))  # same key, later copy
    await bus.publish(topics.history(), make_history(0, 5))  # overlaps bar 1
    await bus.publish(topics.history(), make_history(3, 5))  # overlaps 3, 4
    bus.close()
    await writer.run()

    stats = writer.statistics()
    assert stats["rows_received"] == stats["rows_committed"] == 12
    assert stats["rows_written"] == 8  # open times 0..7
    out = read_bars(reader(), "ETHUSDT", "1m")
    assert len(out) == 8
    assert out["close"][1] == 111.0  # the first stored copy wins


async def test_bar_batches_are_bounded_by_batch_max(
    db_path: Path, make_bar: MakeBar, reader: Callable[[], sqlite3.Connection]
) -> None:
    bus = Bus()
    writer = StoreWriter(db_path, StoreConfig(batch_max=10), bus)
    for i in range(35):
        await bus.publish(topics.bars(), make_bar(i))
    bus.close()
    await writer.run()

    stats = writer.statistics()
    assert stats["batches"] == 4  # 10 + 10 + 10 + 5, one transaction each
    assert stats["max_batch_rows"] == 10
    assert stats["rows_written"] == 35
    assert bar_counts(reader()) == {("BTCUSDT", "1m"): 35}


async def test_a_large_history_is_written_in_chunks(
    db_path: Path, make_history: MakeHistory, reader: Callable[[], sqlite3.Connection]
) -> None:
    bus = Bus()
    writer = StoreWriter(db_path, StoreConfig(batch_max=100), bus)
    history = make_history(0, 250)
    await bus.publish(topics.history(), history)
    bus.close()
    await writer.run()

    stats = writer.statistics()
    assert stats["batches"] == 3  # 100 + 100 + 50
    assert stats["max_batch_rows"] == 100
    np.testing.assert_array_equal(read_bars(reader(), "ETHUSDT", "1m"), history.bars)


async def test_everything_published_before_close_is_committed_under_back_pressure(
    db_path: Path,
    make_bar: MakeBar,
    make_history: MakeHistory,
    reader: Callable[[], sqlite3.Connection],
) -> None:
    bus = Bus(default_maxsize=3)  # tiny queues: publishers must wait for the writer
    writer = StoreWriter(db_path, StoreConfig(batch_max=16), bus)

    async def publish() -> None:
        for i in range(300):
            await bus.publish(topics.bars(), make_bar(i))
            if i % 50 == 0:
                await bus.publish(topics.history(), make_history(i, 40, symbol="SOLUSDT"))
        bus.close()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(writer.run())
        tg.create_task(publish())

    stats = writer.statistics()
    assert stats["rows_received"] == stats["rows_written"] == 300 + 6 * 40
    assert stats["max_batch_rows"] <= 16
    assert bar_counts(reader()) == {("BTCUSDT", "1m"): 300, ("SOLUSDT", "1m"): 240}
    blocked = bus.statistics()["market.bars"]["subscribers"]
    assert blocked == {}  # the writer unsubscribed when it ended


async def test_a_reader_reads_while_the_writer_commits(
    db_path: Path, make_bar: MakeBar, reader: Callable[[], sqlite3.Connection]
) -> None:
    config = StoreConfig(busy_timeout_ms=0)  # any lock conflict would fail at once
    bus = Bus()
    writer = StoreWriter(db_path, config, bus)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(writer.run())
        for i in range(5):
            await bus.publish(topics.bars(), make_bar(i))
        await writer.wait_idle()

        conn = reader()
        conn.execute("BEGIN")  # hold a read snapshot while the writer commits more
        assert conn.execute("SELECT COUNT(*) FROM bars").fetchone()[0] == 5
        for i in range(5, 12):
            await bus.publish(topics.bars(), make_bar(i))
        await writer.wait_idle()  # committed (WAL: readers do not block the writer)
        assert writer.statistics()["rows_written"] == 12
        assert conn.execute("SELECT COUNT(*) FROM bars").fetchone()[0] == 5  # still its snapshot
        conn.execute("COMMIT")
        assert len(read_bars(conn, "BTCUSDT", "1m")) == 12
        bus.close()


async def test_cancelled_run_commits_what_it_received_and_reraises(
    db_path: Path, make_bar: MakeBar, reader: Callable[[], sqlite3.Connection]
) -> None:
    bus = Bus()
    writer = StoreWriter(db_path, StoreConfig(batch_max=7), bus)
    task = asyncio.create_task(writer.run())
    for i in range(3):
        await bus.publish(topics.bars(), make_bar(i))
    await writer.wait_idle()
    for i in range(3, 40):
        await bus.publish(topics.bars(), make_bar(i))
    await asyncio.sleep(0)  # let the feed take some of them (not a real sleep)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    stats = writer.statistics()
    assert stats["rows_pending"] == 0
    assert 3 <= stats["rows_received"] <= 40
    out = read_bars(reader(), "BTCUSDT", "1m")
    assert len(out) == stats["rows_received"] == stats["rows_committed"]  # nothing received is lost
    np.testing.assert_array_equal(out, _expected([make_bar(i) for i in range(len(out))]))


async def test_a_write_failure_raises_store_error(db_path: Path, make_bar: MakeBar) -> None:
    bus = Bus()
    writer = StoreWriter(db_path, StoreConfig(busy_timeout_ms=0), bus)
    task = asyncio.create_task(writer.run())
    await writer.wait_idle()  # opened and migrated
    blocker = sqlite3.connect(db_path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        await bus.publish(topics.bars(), make_bar(0))
        with pytest.raises(StoreError, match="writing 1 bars failed: database is locked") as info:
            await task
        assert str(db_path) in str(info.value)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert bus.statistics()["market.bars"]["subscribers"] == {}  # a dead writer holds no queue


async def test_an_open_failure_raises_store_error(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    bus = Bus()
    writer = StoreWriter(tmp_path / "data" / "pia.sqlite3", StoreConfig(), bus)
    with pytest.raises(StoreError, match="cannot create the store folder"):
        await writer.run()
    assert bus.statistics()["market.history"]["subscribers"] == {}


async def test_statistics_report_commit_times(db_path: Path, config: StoreConfig, make_history: MakeHistory) -> None:
    bus = Bus()
    writer = StoreWriter(db_path, config, bus)
    assert writer.statistics() == {
        "rows_received": 0,
        "rows_committed": 0,
        "rows_written": 0,
        "rows_pending": 0,
        "batches": 0,
        "max_batch_rows": 0,
        "last_commit_ms": 0.0,
        "max_commit_ms": 0.0,
        "total_commit_ms": 0.0,
    }
    await bus.publish(topics.history(), make_history(0, 1000))
    bus.close()
    await writer.run()
    stats = writer.statistics()
    assert stats["batches"] == 1
    assert 0 < stats["last_commit_ms"] <= stats["max_commit_ms"] <= stats["total_commit_ms"]


async def test_wait_idle_returns_once_the_writer_has_stopped(db_path: Path, config: StoreConfig) -> None:
    bus = Bus()
    writer = StoreWriter(db_path, config, bus)
    bus.close()
    await writer.run()
    await writer.wait_idle()
    with pytest.raises(RuntimeError, match="only run once"):
        await writer.run()


async def test_a_failed_write_logs_the_rows_it_lost(
    db_path: Path, make_bar: MakeBar, caplog: pytest.LogCaptureFixture
) -> None:
    bus = Bus()
    writer = StoreWriter(db_path, StoreConfig(busy_timeout_ms=0), bus)
    task = asyncio.create_task(writer.run())
    await writer.wait_idle()
    blocker = sqlite3.connect(db_path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        for i in range(3):
            await bus.publish(topics.bars(), make_bar(i))
        with pytest.raises(StoreError):
            await task
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert "3 received rows were not written" in caplog.text
