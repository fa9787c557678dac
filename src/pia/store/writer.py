"""The store's one writer: closed bars and history from the bus into SQLite, in short batched transactions.

Two small feed tasks move events from the ``market.bars`` and ``market.history`` subscriptions into
one pending list (bounded near ``batch_max`` rows, so a slow disk back-pressures the publishers through
the bus); the write loop takes everything pending, up to ``batch_max`` rows, and commits it in ONE
transaction of ``INSERT OR IGNORE`` (a repeated bar is a no-op). A large history is cut into chunks.

sqlite3 blocks, so every database call runs on one dedicated thread that owns the connection; the
event loop only waits for it. Each batch is durable once committed. When the bus is closed the writer
drains both subscriptions, commits what is left and closes; if :meth:`StoreWriter.run` is cancelled
it still commits every row it had received before re-raising.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pia import topics
from pia.bus import Bus, Subscription
from pia.config import StoreConfig
from pia.errors import StoreError
from pia.events import BarClosed, Event, HistoryLoaded
from pia.store.bars import BarArray, BarRow, array_rows, bar_row, insert_bars
from pia.store.db import open_db, transaction

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _History:
    symbol: str
    interval: str
    source: str
    bars: BarArray


_Item = BarRow | _History


def _size(item: _Item) -> int:
    return len(item.bars) if isinstance(item, _History) else 1


def _history_item(event: HistoryLoaded) -> _History:
    return _History(event.symbol, event.interval, event.source, event.bars)


def _bar_item(event: BarClosed) -> BarRow:
    return bar_row(event.bar, event.source)


def _rows(batch: list[_Item]) -> Iterator[BarRow]:
    for item in batch:
        if isinstance(item, _History):
            yield from array_rows(item.symbol, item.interval, item.bars, item.source)
        else:
            yield item


class StoreWriter:
    """Persist every :class:`BarClosed` and :class:`HistoryLoaded`; subscribes on construction."""

    def __init__(self, path: Path, config: StoreConfig, bus: Bus) -> None:
        self._path = path
        self._config = config
        self._bus = bus
        self._batch_max = config.batch_max
        self._bars_sub = bus.subscribe(topics.bars(), "store")
        self._history_sub = bus.subscribe(topics.history(), "store")
        self._conn: sqlite3.Connection | None = None  # touched only on the database thread
        self._executor: ThreadPoolExecutor | None = None
        self._pending: deque[_Item] = deque()
        self._pending_rows = 0
        self._open_feeds = 2
        self._opened = self._done = False
        self._in_flight = 0  # batches submitted to the database thread and not finished
        self._changed = asyncio.Event()
        self._received = self._committed_rows = self._written = self._batches = self._max_batch = 0
        self._last_ms = self._max_ms = self._total_ms = 0.0

    # ------------------------------------------------------------------------------------ public
    async def run(self) -> None:
        """Write until the bus is closed and both subscriptions are drained; then commit and close.

        Raises :class:`StoreError` if the database cannot be opened or a write fails. Runs once.
        """
        if self._executor is not None:
            raise RuntimeError("StoreWriter.run() can only run once")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pia-store")
        failed = False
        try:
            try:
                await self._call(self._open)
                self._opened = True
                self._notify()
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._feed(self._bars_sub, _bar_item), name="store-feed-bars")
                    tg.create_task(self._feed(self._history_sub, _history_item), name="store-feed-history")
                    tg.create_task(self._write_loop(), name="store-write")
            except BaseExceptionGroup as group:
                failed = True
                _raise_single(group)
            finally:
                await self._finish(flush=not failed)
        finally:
            self._done = True
            self._notify()
            self._bus.unsubscribe(self._bars_sub)
            self._bus.unsubscribe(self._history_sub)
            self._executor.shutdown(wait=False)  # idle unless cancelled mid-call; then it finishes alone

    async def wait_idle(self) -> None:
        """Return once everything delivered to the writer so far is committed (or the writer stopped)."""
        await self._until(self._idle)

    def statistics(self) -> dict[str, int | float]:
        return {
            "rows_received": self._received,
            "rows_committed": self._committed_rows,  # in committed batches (== received when drained)
            "rows_written": self._written,  # new rows among those; the rest were already stored
            "rows_pending": self._pending_rows,
            "batches": self._batches,
            "max_batch_rows": self._max_batch,
            "last_commit_ms": round(self._last_ms, 3),
            "max_commit_ms": round(self._max_ms, 3),
            "total_commit_ms": round(self._total_ms, 3),
        }

    # --------------------------------------------------------------------------- event-loop side
    async def _feed(self, sub: Subscription[E], convert: Callable[[E], _Item]) -> None:
        try:
            async for event in sub:
                item = convert(event)
                if _size(item):
                    self._pending.append(item)  # pending at once: a cancelled feed loses nothing
                    self._pending_rows += _size(item)
                    self._received += _size(item)
                    self._notify()
                await self._until(lambda: self._pending_rows < self._batch_max)
        finally:
            self._open_feeds -= 1
            self._notify()

    async def _write_loop(self) -> None:
        while True:
            await self._until(lambda: self._pending_rows > 0 or self._open_feeds == 0)
            if not self._pending_rows:
                return  # both subscriptions closed and drained, everything committed
            batch = self._take(self._batch_max)
            self._notify()  # room for the feeds while this batch commits
            await self._commit(batch)

    async def _commit(self, batch: list[_Item]) -> None:
        self._in_flight += 1
        future = self._submit(self._write, batch)
        future.add_done_callback(self._committed)  # counts the batch even if we are cancelled meanwhile
        await asyncio.shield(future)

    def _committed(self, future: asyncio.Future[tuple[int, int, float]]) -> None:
        self._in_flight -= 1
        self._notify()
        if future.cancelled() or future.exception() is not None:
            return  # the awaiting side raises it
        inserted, rows, ms = future.result()
        self._committed_rows += rows
        self._written += inserted
        self._batches += 1
        self._max_batch = max(self._max_batch, rows)
        self._last_ms = ms
        self._max_ms = max(self._max_ms, ms)
        self._total_ms += ms

    async def _finish(self, *, flush: bool) -> None:
        """Commit what was received and not yet written (unless the database failed), then close."""
        try:
            if not flush and (lost := self._received - self._committed_rows):
                log.error("store %s: %d received rows were not written (the database failed)", self._path, lost)
            while flush and self._pending_rows:
                await self._commit(self._take(self._batch_max))
        finally:
            await self._call(self._close)

    def _take(self, limit: int) -> list[_Item]:
        batch: list[_Item] = []
        room = limit
        while self._pending and room:
            item = self._pending.popleft()
            if isinstance(item, _History) and len(item.bars) > room:
                rest = _History(item.symbol, item.interval, item.source, item.bars[room:])
                self._pending.appendleft(rest)
                item = _History(item.symbol, item.interval, item.source, item.bars[:room])
            batch.append(item)
            room -= _size(item)
        self._pending_rows -= limit - room
        return batch

    def _idle(self) -> bool:
        queued = self._bars_sub.depth + self._history_sub.depth + self._pending_rows
        return self._done or (self._opened and not queued and not self._in_flight)

    def _notify(self) -> None:
        self._changed.set()

    async def _until(self, predicate: Callable[[], bool]) -> None:
        # Every state change sets the event; each waiter clears it and re-checks. No check-then-wait
        # race: nothing else runs between the predicate and the wait (single-threaded event loop).
        while not predicate():
            self._changed.clear()
            await self._changed.wait()

    def _submit(self, fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
        """Queue ``fn`` on the database thread (one thread, so calls run in submission order)."""
        assert self._executor is not None
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn`` on the database thread. Shielded: once submitted it completes even if we are
        cancelled, so a batch is never half-abandoned and the close always runs after it."""
        return await asyncio.shield(self._submit(fn, *args))

    # ------------------------------------------------------------------------- database thread
    def _open(self) -> None:
        self._conn = open_db(self._path, self._config)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _write(self, batch: list[_Item]) -> tuple[int, int, float]:
        """One transaction: returns (rows added, rows in the batch, milliseconds)."""
        assert self._conn is not None
        rows = sum(_size(item) for item in batch)
        start = time.perf_counter()
        try:
            with transaction(self._conn):
                inserted = insert_bars(self._conn, _rows(batch))
        except sqlite3.Error as exc:
            raise StoreError(
                f"{self._path}: writing {rows} bars failed: {exc}; check free disk space and that "
                "no other process holds the database"
            ) from exc
        return inserted, rows, (time.perf_counter() - start) * 1000


def _raise_single(group: BaseExceptionGroup[BaseException]) -> None:
    """Re-raise a TaskGroup's lone failure as itself (a StoreError stays a StoreError)."""
    errors = [e for e in group.exceptions if not isinstance(e, asyncio.CancelledError)]
    if len(errors) == 1:
        raise errors[0]
    raise group
