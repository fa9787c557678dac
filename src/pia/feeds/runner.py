"""Runs one feed: publishes its warm-up history, then every closed bar it streams, and the
higher-timeframe candles aggregated from them when the feed streams only a base interval.

Every bar passes the :class:`~pia.feeds.guard.BarGuard` first, so the pipeline sees each
(symbol, interval, open_time) at most once, in order, and never a malformed bar.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pia import topics
from pia.bus import Bus
from pia.clock import Clock
from pia.events import Bar, BarClosed, HistoryLoaded, PriceUpdated
from pia.feeds.aggregate import BarAggregator
from pia.feeds.base import Feed, Quote
from pia.feeds.guard import BarGuard
from pia.intervals import parse_interval

log = logging.getLogger(__name__)


class FeedRunner:
    def __init__(
        self,
        feed: Feed,
        bus: Bus,
        clock: Clock,
        intervals: Sequence[str],
        *,
        check_future: bool = False,
        venue_anchored: bool = False,
    ) -> None:
        self.feed = feed
        self._bus = bus
        self._clock = clock
        self._intervals = sorted(set(intervals), key=lambda c: parse_interval(c).nominal_ns)
        self._guard = BarGuard(
            feed.name,
            {i.symbol for i in feed.instruments},
            clock,
            check_future=check_future,
            check_alignment=not venue_anchored,
        )
        self._symbols = {i.symbol for i in feed.instruments}
        self._aggregators: dict[str, BarAggregator] = {}
        if feed.base_interval is not None:
            base = parse_interval(feed.base_interval)
            targets = [c for c in self._intervals if c != feed.base_interval and base.divides(parse_interval(c))]
            unbuildable = [c for c in self._intervals if c != feed.base_interval and c not in targets]
            if unbuildable:
                log.warning(
                    "timeframes that cannot be built from this feed's bars get no candles",
                    extra={"source": feed.name, "base_interval": feed.base_interval, "intervals": unbuildable},
                )
            for inst in feed.instruments:
                self._aggregators[inst.symbol] = BarAggregator(inst.symbol, feed.base_interval, targets)
        self.bars_published: Counter[str] = Counter()
        self.history_bars = 0
        self.last_bar_mono: float | None = None
        self.ended = False

    @property
    def name(self) -> str:
        return self.feed.name

    async def run(self) -> None:
        await self._publish_history()
        log.info("feed streaming", extra={"source": self.feed.name, "instruments": len(self.feed.instruments)})
        async for item in self.feed.stream():
            if isinstance(item, Quote):
                self.on_quote(item)
            else:
                await self.on_bar(item)
        self.ended = True
        log.info("feed ended", extra={"source": self.feed.name, "bars": sum(self.bars_published.values())})

    async def _publish_history(self) -> None:
        wanted = list(self._intervals)
        if self.feed.base_interval and self.feed.base_interval not in wanted:
            wanted.append(self.feed.base_interval)
        batches = await self.feed.history(wanted)
        for h in batches:
            if h.partial is not None and h.symbol in self._aggregators:
                self._aggregators[h.symbol].seed(h.partial)
            if len(h.bars) == 0:
                continue
            self._guard.remember(h.symbol, h.interval, int(h.bars["open_time"][-1]))
            self.history_bars += len(h.bars)
            h.bars.flags.writeable = False
            last_close = parse_interval(h.interval).next_open(int(h.bars["open_time"][-1]))
            await self._bus.publish(
                topics.history(),
                HistoryLoaded(
                    ts_event=last_close,
                    ts_recv=self._clock.now_ns(),
                    symbol=h.symbol,
                    interval=h.interval,
                    bars=h.bars,
                    source=self.feed.name,
                ),
            )
        log.info("history loaded", extra={"source": self.feed.name, "bars": self.history_bars})

    async def on_bar(self, bar: Bar) -> None:
        """Admit, publish, and aggregate one streamed bar."""
        if not self._guard.admit(bar):
            return
        now = self._clock.now_ns()
        self.last_bar_mono = self._clock.monotonic()
        await self._publish(bar, now)
        self._bus.publish_nowait(
            topics.prices(),
            PriceUpdated(ts_event=self._close(bar), ts_recv=now, symbol=bar.symbol, price=bar.close),
        )
        agg = self._aggregators.get(bar.symbol)
        if agg is not None and bar.interval == self.feed.base_interval:
            for higher in agg.add(bar):
                if self._guard.admit(higher):
                    await self._publish(higher, now)

    def on_quote(self, quote: Quote) -> None:
        """A price that is not a bar (e.g. extended hours): published as PriceUpdated only."""
        if not (quote.price > 0 and quote.price < float("inf")) or quote.symbol not in self._symbols:
            self._guard.dropped["bad_quote"] += 1
            return
        self._bus.publish_nowait(
            topics.prices(),
            PriceUpdated(
                ts_event=quote.ts_ns,
                ts_recv=self._clock.now_ns(),
                symbol=quote.symbol,
                price=quote.price,
                extended_hours=quote.extended_hours,
            ),
        )

    async def _publish(self, bar: Bar, now: int) -> None:
        self.bars_published[bar.interval] += 1
        await self._bus.publish(
            topics.bars(), BarClosed(ts_event=self._close(bar), ts_recv=now, bar=bar, source=self.feed.name)
        )

    @staticmethod
    def _close(bar: Bar) -> int:
        return parse_interval(bar.interval).next_open(bar.open_time)

    def _feed_statistics(self) -> dict[str, Any]:
        fn = getattr(self.feed, "statistics", None)
        value = fn() if callable(fn) else None
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        return dict(value) if isinstance(value, Mapping) else {}

    def statistics(self) -> dict[str, Any]:
        age = None if self.last_bar_mono is None else round(self._clock.monotonic() - self.last_bar_mono, 3)
        return {
            "feed": self._feed_statistics(),
            "last_bar_age_s": age,
            "bars": dict(self.bars_published),
            "history_bars": self.history_bars,
            "dropped": dict(self._guard.dropped),
            "ended": self.ended,
        }
