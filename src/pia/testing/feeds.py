"""An in-memory feed: streams given base bars as fast as the pipeline takes them (tests, benchmarks)."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncIterator, Mapping, Sequence

from pia.events import Bar
from pia.feeds.base import BarArray, History, array_to_bars, empty_bars
from pia.instruments import Instrument


class ArrayFeed:
    """A :class:`~pia.feeds.base.Feed` over in-memory bar arrays, one per symbol, merged in time order."""

    name = "memory"

    def __init__(
        self,
        instruments: Sequence[Instrument],
        bars: Mapping[str, BarArray],
        *,
        base_interval: str = "1m",
        history: Mapping[tuple[str, str], BarArray] | None = None,
        yield_every: int = 256,
    ) -> None:
        self.instruments = tuple(i for i in instruments if i.symbol in bars)
        self.base_interval: str | None = base_interval
        self._bars = bars
        self._history = history or {}
        self._yield_every = yield_every

    async def history(self, intervals: Sequence[str]) -> Sequence[History]:
        return [
            History(i.symbol, iv, self._history.get((i.symbol, iv), empty_bars()))
            for i in self.instruments
            for iv in intervals
        ]

    async def stream(self) -> AsyncIterator[Bar]:
        assert self.base_interval is not None
        streams = [array_to_bars(i.symbol, self.base_interval, self._bars[i.symbol]) for i in self.instruments]
        merged = heapq.merge(*streams, key=lambda b: (b.open_time, b.symbol))
        for n, bar in enumerate(merged):
            yield bar
            if n % self._yield_every == 0:
                await asyncio.sleep(0)
