"""The one reconnecting loop every live venue feed runs on.

A venue supplies a :class:`KlineSource` (REST for closed history and gaps, a websocket for closed
bars as they close). :class:`LiveFeed` turns it into a :class:`~pia.feeds.base.Feed` that never
loses a bar and never yields one twice:

1. ``history`` fetches each (symbol, interval) window of closed candles from REST.
2. ``stream`` connects; after every (re)connect it first backfills, per (symbol, interval), every
   candle that closed since the last one it yielded (REST), then yields the websocket's closed bars.
   A websocket bar that skips ahead (a missed message) triggers a REST fill of the gap first, for
   sources whose candles are contiguous (``contiguous = True``: Binance; not Alpaca, whose minutes
   without trades have no bar).
3. A bar at or before the last one yielded for its key is skipped (counted): backfill racing the
   live stream produces such duplicates, by design.
4. Any connection or REST failure ends the connection; the loop waits (exponential backoff with
   jitter, reset once a connection delivers) and reconnects; the pending gap is retried then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import aiohttp

from pia.clock import Clock
from pia.errors import FeedError
from pia.events import Bar
from pia.feeds.backoff import Backoff
from pia.feeds.base import BarArray, History, array_to_bars
from pia.instruments import Instrument
from pia.intervals import iso, parse_interval

log = logging.getLogger(__name__)


class KlineSource(Protocol):
    """One venue's candles. Implementations live in ``pia.feeds.<venue>``."""

    name: str
    contiguous: bool  # every interval has a candle even without trades (gaps are real losses)

    async def fetch(self, symbol: str, interval: str, *, start_ns: int | None, end_ns: int, limit: int) -> BarArray:
        """Closed candles (close time <= ``end_ns``), oldest first, paginated as needed.

        With ``start_ns``: every closed candle with open time >= ``start_ns`` (``limit`` is a page
        size hint). Without: the newest ``limit`` closed candles.
        """
        ...

    def connect(
        self, symbols: Sequence[str], intervals: Sequence[str]
    ) -> AbstractAsyncContextManager[AsyncIterator[Bar]]:
        """Open the live stream. Iterating yields closed bars only; it ends (or raises
        :class:`~pia.errors.FeedDisconnected`) when the connection is lost."""
        ...

    def statistics(self) -> dict[str, Any]: ...


class LiveFeed:
    """A :class:`~pia.feeds.base.Feed` over a :class:`KlineSource`, with reconnects and gap backfill."""

    base_interval: str | None = None

    def __init__(
        self,
        source: KlineSource,
        instruments: Sequence[Instrument],
        intervals: Sequence[str],
        clock: Clock,
        *,
        history_bars: int = 500,
        backoff: Backoff | None = None,
    ) -> None:
        self.source = source
        self.name = source.name
        self.instruments = tuple(instruments)
        self._symbols = [i.symbol for i in self.instruments]
        self._intervals = list(dict.fromkeys(intervals))
        self._clock = clock
        self._history_bars = history_bars
        self._backoff = backoff or Backoff(1.0, 2.0, 60.0)
        self._last: dict[tuple[str, str], int] = {}
        self.reconnects = 0
        self.backfilled = 0
        self.duplicates_skipped = 0
        self.connected = False
        self.last_error = ""

    # -------------------------------------------------------------------------------- history
    async def history(self, intervals: Sequence[str]) -> Sequence[History]:
        """Each key's window of closed candles. A failing venue is retried with backoff (the venue's
        outage must not stop the service; other feeds go on), until it answers or the task is cancelled."""
        out = []
        for symbol in self._symbols:
            for iv in intervals:
                bars = await self._fetch_history(symbol, iv)
                if len(bars):
                    self._last[(symbol, iv)] = int(bars["open_time"][-1])
                out.append(History(symbol, iv, bars))
        self._backoff.reset()
        return out

    async def _fetch_history(self, symbol: str, interval: str) -> BarArray:
        while True:
            try:
                return await self.source.fetch(
                    symbol, interval, start_ns=None, end_ns=self._clock.now_ns(), limit=self._history_bars
                )
            except (FeedError, aiohttp.ClientError, TimeoutError, OSError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = self._backoff.next()
                log.warning(
                    "history fetch failed; retrying",
                    extra={
                        "source": self.name,
                        "symbol": symbol,
                        "interval": interval,
                        "error": self.last_error,
                        "retry_in_s": round(delay, 2),
                    },
                )
                await self._clock.sleep(delay)

    # -------------------------------------------------------------------------------- stream
    async def stream(self) -> AsyncIterator[Bar]:
        while True:
            try:
                async with self.source.connect(self._symbols, self._intervals) as live:
                    self.connected = True
                    for bar in await self._backfill_all():
                        yield bar
                    delivered = False
                    async for bar in live:
                        if not delivered:
                            delivered = True
                            self._backoff.reset()
                        for b in await self._admit(bar):
                            yield b
                raise FeedError("stream closed by the server")
            except asyncio.CancelledError:
                raise
            except (FeedError, aiohttp.ClientError, TimeoutError, OSError) as exc:
                self.connected = False
                self.reconnects += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = self._backoff.next()
                log.warning(
                    "feed disconnected; reconnecting",
                    extra={
                        "source": self.name,
                        "error": self.last_error,
                        "retry_in_s": round(delay, 2),
                        "reconnects": self.reconnects,
                    },
                )
                await self._clock.sleep(delay)

    async def _backfill_all(self) -> list[Bar]:
        """Every candle closed since the last yielded one, for every key (oldest first per key)."""
        out: list[Bar] = []
        now = self._clock.now_ns()
        for symbol in self._symbols:
            for iv in self._intervals:
                last = self._last.get((symbol, iv))
                if last is None:
                    continue
                start = parse_interval(iv).next_open(last)
                if parse_interval(iv).next_open(start) > now:
                    continue  # nothing can have closed since
                out.extend(await self._fill(symbol, iv, start, now))
        return out

    async def _fill(self, symbol: str, interval: str, start_ns: int, end_ns: int) -> list[Bar]:
        bars = await self.source.fetch(symbol, interval, start_ns=start_ns, end_ns=end_ns, limit=1000)
        fresh = [b for b in array_to_bars(symbol, interval, bars) if self._fresh(b)]
        if fresh:
            self.backfilled += len(fresh)
            log.info(
                "gap backfilled",
                extra={
                    "source": self.name,
                    "symbol": symbol,
                    "interval": interval,
                    "bars": len(fresh),
                    "from": iso(fresh[0].open_time),
                    "to": iso(fresh[-1].open_time),
                },
            )
        return fresh

    async def _admit(self, bar: Bar) -> list[Bar]:
        key = (bar.symbol, bar.interval)
        last = self._last.get(key)
        out: list[Bar] = []
        if last is not None and self.source.contiguous:
            expected = parse_interval(bar.interval).next_open(last)
            if bar.open_time > expected:
                out.extend(await self._fill(bar.symbol, bar.interval, expected, bar.open_time))
        if self._fresh(bar):
            out.append(bar)
        return out

    def _fresh(self, bar: Bar) -> bool:
        key = (bar.symbol, bar.interval)
        last = self._last.get(key)
        if last is not None and bar.open_time <= last:
            self.duplicates_skipped += 1
            return False
        self._last[key] = bar.open_time
        return True

    def statistics(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "reconnects": self.reconnects,
            "backfilled": self.backfilled,
            "duplicates_skipped": self.duplicates_skipped,
            "last_error": self.last_error,
            "source": self.source.statistics(),
        }
