"""The feed contract (Hummingbot-style): every live venue feed passes the same suite against its
fake server on 127.0.0.1. After every scenario the closed-bar sequence per (symbol, interval) is
exactly the fake's source data: nothing missing, nothing twice, nothing malformed, in order."""

from __future__ import annotations

import asyncio
import importlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable

import pytest

from pia.clock import LiveClock
from pia.events import Bar
from pia.feeds.live import LiveFeed
from pia.testing.harness import FeedHarness

HARNESSES = {
    "binance": ("pia.testing.fake_binance", "BinanceHarness"),
    "alpaca": ("pia.testing.fake_alpaca", "AlpacaHarness"),
}


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[FeedHarness]:
    module, name = HARNESSES[request.param]
    factory: Callable[[], FeedHarness] = getattr(importlib.import_module(module), name)
    async with factory().running() as h:
        yield h


class Collector:
    """Reads the feed's stream in a task; remembers every closed bar per (symbol, interval)."""

    def __init__(self, feed: LiveFeed) -> None:
        self.feed = feed
        self.got: dict[tuple[str, str], list[Bar]] = defaultdict(list)
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Collector:
        for h in await self.feed.history(list(self.feed._intervals)):
            for t in h.bars["open_time"].tolist():
                self.got[(h.symbol, h.interval)].append(
                    Bar(symbol=h.symbol, interval=h.interval, open_time=t, open=0, high=0, low=0, close=0, volume=0)
                )
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        async for item in self.feed.stream():
            if isinstance(item, Bar):
                self.got[(item.symbol, item.interval)].append(item)
                self._changed.set()

    def times(self, symbol: str, interval: str) -> list[int]:
        return [b.open_time for b in self.got[(symbol, interval)]]

    async def wait_for(self, harness: FeedHarness, within: float = 20.0) -> None:
        """Until every (symbol, interval) has all the candles the fake has published."""

        def complete() -> bool:
            return all(
                len(self.got[(s, iv)]) >= len(harness.expected(s, iv))
                for s in harness.symbols
                for iv in harness.intervals
            )

        async def loop() -> None:
            while not complete():
                self._changed.clear()
                await self._changed.wait()

        async with asyncio.timeout(within):
            await loop()
        await asyncio.sleep(0.05)  # anything extra (a duplicate) would arrive now


def assert_exact(c: Collector, harness: FeedHarness) -> None:
    for s in harness.symbols:
        for iv in harness.intervals:
            want = harness.expected(s, iv)
            got = c.times(s, iv)
            assert got == want["open_time"].tolist(), f"{harness.name} {s} {iv}"
            streamed = {b.open_time: b for b in c.got[(s, iv)] if b.volume or b.close}
            for row in want:
                b = streamed.get(int(row["open_time"]))
                if b is not None:
                    assert (b.open, b.high, b.low, b.close) == (row["open"], row["high"], row["low"], row["close"])


async def test_connects_backfills_and_streams(harness: FeedHarness) -> None:
    async with Collector(harness.make_feed(LiveClock())) as c:
        await harness.advance(30)
        await c.wait_for(harness)
    assert_exact(c, harness)


async def test_survives_dropped_connections(harness: FeedHarness) -> None:
    feed = harness.make_feed(LiveClock())
    async with Collector(feed) as c:
        for _ in range(4):
            harness.drop_connection_after(5)
            await harness.advance(10)
        await harness.advance(5)
        await c.wait_for(harness)
    assert_exact(c, harness)
    assert feed.reconnects >= 3


async def test_malformed_frames_are_dropped_and_counted(harness: FeedHarness) -> None:
    feed = harness.make_feed(LiveClock())
    async with Collector(feed) as c:
        await harness.advance(3)
        harness.send_malformed()
        await harness.advance(10)
        await c.wait_for(harness)
    assert_exact(c, harness)
    assert sum(_malformed_counts(feed).values()) > 0


async def test_duplicates_are_yielded_once(harness: FeedHarness) -> None:
    async with Collector(harness.make_feed(LiveClock())) as c:
        harness.send_duplicates()
        await harness.advance(15)
        await c.wait_for(harness)
    assert_exact(c, harness)


async def test_rest_errors_during_backfill_are_retried(harness: FeedHarness) -> None:
    feed = harness.make_feed(LiveClock())
    async with Collector(feed) as c:
        await harness.advance(3)
        harness.fail_rest(500, 2)
        harness.fail_rest(429, 1, retry_after=0.05)
        harness.drop_connection_after(2)
        await harness.advance(12)
        await c.wait_for(harness, within=30)
    assert_exact(c, harness)


async def test_silent_connection_is_replaced(harness: FeedHarness) -> None:
    feed = harness.make_feed(LiveClock())
    async with Collector(feed) as c:
        await harness.advance(3)
        harness.stall(1.5)
        await harness.advance(10)
        await c.wait_for(harness, within=30)
    assert_exact(c, harness)
    assert feed.reconnects >= 1


def _malformed_counts(feed: LiveFeed) -> dict[str, int]:
    stats = feed.source.statistics()
    found = stats.get("malformed") or stats.get("dropped") or {}
    return {str(k): int(v) for k, v in dict(found).items()}
