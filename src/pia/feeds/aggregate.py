"""Bar aggregation from a base interval (usually 1 minute) to higher intervals on UTC boundaries.

Two implementations of one rule, so each can check the other:

- :func:`aggregate` — vectorised over a whole array (history, replay, tests);
- :class:`BarAggregator` — incremental, one base bar at a time (the live stream).

The rule: a higher candle covers ``[floor(t), next_open)`` of its interval. open = first base bar's
open, close = last one's close, high/low = extremes, volume = sum. Missing base bars (no trades) are
simply absent. The streaming aggregator emits a candle once it is known to be closed: when the base
bar that ends exactly at its close arrives, or when a base bar of a later candle arrives. A candle
whose start it did not see (the stream began mid-candle and no ``partial`` seed was given) is never
emitted: a partial candle is not published as complete.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pia.events import BAR_DTYPE, Bar
from pia.feeds.base import BarArray
from pia.intervals import Interval, parse_interval


def aggregate(bars: BarArray, target: Interval | str) -> BarArray:
    """Aggregate base bars (strictly increasing ``open_time``) into ``target`` candles.

    The last candle is included even when incomplete; callers that need only closed candles drop it
    (see :func:`split_closed`).
    """
    tgt = parse_interval(target) if isinstance(target, str) else target
    if len(bars) == 0:
        return np.empty(0, dtype=BAR_DTYPE)
    t = bars["open_time"]
    if np.any(np.diff(t) <= 0):
        raise ValueError("base bars must have strictly increasing open_time")
    bucket = tgt.floor_array(t)
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(bars)] - 1
    out = np.empty(len(starts), dtype=BAR_DTYPE)
    out["open_time"] = bucket[starts]
    out["open"] = bars["open"][starts]
    out["close"] = bars["close"][ends]
    out["high"] = np.maximum.reduceat(bars["high"], starts)
    out["low"] = np.minimum.reduceat(bars["low"], starts)
    out["volume"] = np.add.reduceat(bars["volume"], starts)
    return out


def split_closed(candles: BarArray, target: Interval | str, now_ns: int) -> tuple[BarArray, BarArray]:
    """Split candles into (closed by ``now_ns``, still open)."""
    tgt = parse_interval(target) if isinstance(target, str) else target
    closes = tgt.next_open_array(candles["open_time"])
    closed = closes <= now_ns
    return candles[closed], candles[~closed]


@dataclass(slots=True)
class _Building:
    open_time: int
    close_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    complete_start: bool  # we saw (or were seeded with) the candle from its open

    def to_bar(self, symbol: str, interval: str) -> Bar:
        return Bar(
            symbol=symbol,
            interval=interval,
            open_time=self.open_time,
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=self.volume,
        )


class BarAggregator:
    """Builds higher-interval candles for one symbol from its base bars, one bar at a time."""

    def __init__(self, symbol: str, base: str, targets: list[str]) -> None:
        self.symbol = symbol
        self.base = parse_interval(base)
        self.targets: list[tuple[str, Interval]] = []
        for code in targets:
            iv = parse_interval(code)
            if iv == self.base:
                continue
            if not self.base.divides(iv):
                raise ValueError(f"cannot build {code} candles from {base} bars (boundaries do not line up)")
            self.targets.append((code, iv))
        self._building: dict[str, _Building] = {}
        self.partial_discarded = 0

    def seed(self, partial: Bar) -> None:
        """Start from the candle in progress (built from history up to the stream start)."""
        iv = parse_interval(partial.interval)
        if not iv.is_aligned(partial.open_time):
            raise ValueError(f"seed candle {partial.interval} does not open on a boundary")
        self._building[partial.interval] = _Building(
            partial.open_time,
            iv.next_open(partial.open_time),
            partial.open,
            partial.high,
            partial.low,
            partial.close,
            partial.volume,
            complete_start=True,
        )

    def add(self, bar: Bar) -> list[Bar]:
        """Feed one closed base bar; returns the higher candles it closes, shortest interval first."""
        out: list[Bar] = []
        base_close = self.base.next_open(bar.open_time)
        for code, iv in self.targets:
            cur = self._building.get(code)
            if cur is not None and bar.open_time >= cur.close_time:
                self._finish(code, cur, out)
                cur = None
            if cur is None:
                start = iv.floor(bar.open_time)
                cur = _Building(
                    start,
                    iv.next_open(start),
                    bar.open,
                    bar.high,
                    bar.low,
                    bar.close,
                    bar.volume,
                    complete_start=bar.open_time == start,
                )
                self._building[code] = cur
            elif bar.open_time >= cur.open_time:
                cur.high = max(cur.high, bar.high)
                cur.low = min(cur.low, bar.low)
                cur.close = bar.close
                cur.volume += bar.volume
            if base_close >= cur.close_time:
                self._finish(code, cur, out)
        return out

    def flush_until(self, now_ns: int) -> list[Bar]:
        """Emit candles whose close time has passed although their last base bar never came."""
        out: list[Bar] = []
        for code, _ in self.targets:
            cur = self._building.get(code)
            if cur is not None and cur.close_time <= now_ns:
                self._finish(code, cur, out)
        return out

    def _finish(self, code: str, cur: _Building, out: list[Bar]) -> None:
        del self._building[code]
        if cur.complete_start:
            out.append(cur.to_bar(self.symbol, code))
        else:
            self.partial_discarded += 1
