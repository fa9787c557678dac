"""LiveFeed's reconnect loop, gap backfill and dedupe, over a scripted in-memory KlineSource."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import numpy as np

from pia.errors import FeedDisconnected, FeedError
from pia.events import BAR_DTYPE, Bar
from pia.feeds.backoff import Backoff
from pia.feeds.base import BarArray, array_to_bars
from pia.feeds.live import LiveFeed
from pia.instruments import AssetClass, Instrument, Venue
from pia.intervals import MINUTE, NS
from pia.testing.clock import SteppingClock

T0 = 1_700_000_040 * NS // MINUTE * MINUTE
INST = [
    Instrument(symbol=s, asset_class=AssetClass.CRYPTO, venue=Venue.BINANCE_SPOT, venue_symbol=s, name=s)
    for s in ("AAA", "BBB")
]


def truth(n: int, seed: int) -> BarArray:
    rng = np.random.default_rng(seed)
    arr = np.zeros(n, dtype=BAR_DTYPE)
    arr["open_time"] = T0 + np.arange(n) * MINUTE
    arr["close"] = arr["open"] = 100 + rng.random(n)
    arr["high"] = arr["close"] + 1
    arr["low"] = arr["close"] - 1
    arr["volume"] = 1
    return arr


class ScriptedSource:
    """Serves `truth` over 'REST'; each connection streams the bars after a cursor, with faults."""

    name = "scripted"
    contiguous = True

    def __init__(self, data: dict[str, BarArray], history: int) -> None:
        self.data = data
        self.cursor = history  # index of the next bar to close
        self.fetches: list[tuple[str, int | None]] = []
        self.connections = 0
        # per connection: (bars to stream before dropping, indexes to skip, indexes to repeat)
        self.plans: list[tuple[int, set[int], set[int]]] = []
        self.fail_fetch = 0

    async def fetch(self, symbol: str, interval: str, *, start_ns: int | None, end_ns: int, limit: int) -> BarArray:
        self.fetches.append((symbol, start_ns))
        if self.fail_fetch:
            self.fail_fetch -= 1
            raise FeedError("REST down")
        closed = self.data[symbol][: self.cursor]
        if start_ns is None:
            return closed[-limit:]
        return closed[closed["open_time"] >= start_ns]

    def connect(self, symbols: Sequence[str], intervals: Sequence[str]) -> Any:
        @asynccontextmanager
        async def session() -> AsyncIterator[AsyncIterator[Bar]]:
            self.connections += 1
            budget, skip, repeat = self.plans.pop(0) if self.plans else (10**9, set(), set())

            async def bars() -> AsyncIterator[Bar]:
                nonlocal budget
                while self.cursor < len(self.data["AAA"]):
                    i = self.cursor
                    self.cursor += 1
                    for sym in ("AAA", "BBB"):
                        if i in skip:
                            continue
                        [bar] = array_to_bars(sym, "1m", self.data[sym][i : i + 1])
                        times = 2 if i in repeat else 1
                        for _ in range(times):
                            if budget == 0:
                                raise FeedDisconnected("dropped")
                            budget -= 1
                            yield bar

            yield bars()

        return session()

    def statistics(self) -> dict[str, Any]:
        return {}


async def run_feed(source: ScriptedSource, total: int) -> tuple[LiveFeed, dict[str, list[int]]]:
    clock = SteppingClock(start_ns=T0 + 10_000 * MINUTE)
    feed = LiveFeed(source, INST, ["1m"], clock, history_bars=50, backoff=Backoff(0.01, 2, 0.1))
    got: dict[str, list[int]] = {"AAA": [], "BBB": []}
    for h in await feed.history(["1m"]):
        got[h.symbol] += h.bars["open_time"].tolist()
    stream = feed.stream()
    while len(got["AAA"]) < total or len(got["BBB"]) < total:
        bar = await anext(stream)
        got[bar.symbol].append(bar.open_time)
    await stream.aclose()  # type: ignore[attr-defined]
    return feed, got


async def test_reconnects_backfill_gaps_and_never_repeat() -> None:
    data = {"AAA": truth(300, 1), "BBB": truth(300, 2)}
    source = ScriptedSource(data, history=100)
    source.plans = [
        (37, set(), {120}),  # drops after 37 messages; bar 120 sent twice
        (5, set(), set()),  # drops almost at once
        (80, {200, 201}, set()),  # two minutes never arrive on the stream: filled from REST
        (10**9, set(), {250}),
    ]
    feed, got = await run_feed(source, 250)
    for sym in ("AAA", "BBB"):
        assert got[sym] == data[sym]["open_time"][50:].tolist()[: len(got[sym])]
        assert got[sym] == sorted(set(got[sym]))  # nothing twice, in order
        assert len(got[sym]) == 250
    assert source.connections == 4
    assert feed.reconnects == 3
    assert feed.backfilled > 0
    assert feed.duplicates_skipped >= 2


async def test_rest_outage_leaves_the_gap_pending_and_retries_it() -> None:
    data = {"AAA": truth(200, 3), "BBB": truth(200, 4)}
    source = ScriptedSource(data, history=100)
    source.plans = [(20, set(), set()), (0, set(), set())]
    source.fail_fetch = 0

    async def once() -> tuple[LiveFeed, dict[str, list[int]]]:
        return await run_feed(source, 150)

    # after the first drop, REST fails twice: reconnects until the gap is filled
    orig_connect = source.connect

    def failing_connect(symbols: Sequence[str], intervals: Sequence[str]) -> Any:
        if source.connections == 1:
            source.fail_fetch = 2
        return orig_connect(symbols, intervals)

    source.connect = failing_connect  # type: ignore[method-assign]
    feed, got = await once()
    for sym in ("AAA", "BBB"):
        assert got[sym] == data[sym]["open_time"][50:200].tolist()
    assert feed.reconnects >= 3
    assert source.fetches.count(("AAA", int(data["AAA"]["open_time"][110]))) == 3  # failed twice, then filled


async def test_history_retries_a_failing_venue_instead_of_stopping_the_service() -> None:
    data = {"AAA": truth(120, 5), "BBB": truth(120, 6)}
    source = ScriptedSource(data, history=100)
    source.fail_fetch = 3
    clock = SteppingClock(start_ns=T0 + 10_000 * MINUTE)
    feed = LiveFeed(source, INST, ["1m"], clock, history_bars=50, backoff=Backoff(0.5, 2, 4))
    history = await feed.history(["1m"])
    assert [len(h.bars) for h in history] == [50, 50]
    assert len(clock.slept) == 3 and 0.25 <= clock.slept[0] <= 0.5
    assert "REST down" in feed.last_error
