"""The feed contract every source implements (simulated, replay, and the live exchange feeds).

A feed produces *closed* bars of its instruments, oldest first:

- :meth:`Feed.history` returns closed warm-up history per (symbol, interval) before streaming starts,
  and for feeds that stream only a base interval, the candle in progress at the start
  (``partial``) so that higher timeframes can be completed from the stream without inventing bars;
- :meth:`Feed.stream` yields closed bars as they close, in time order per symbol, until the source
  is exhausted (it returns) or the task is cancelled. It may also yield :class:`Quote` price updates
  that are not bars (extended-hours stock prices), which become ``PriceUpdated`` events.

``base_interval`` says what the stream carries: a feed that streams only one interval (e.g. 1-minute
bars) has it set, and the :class:`~pia.feeds.runner.FeedRunner` aggregates its bars to every
configured timeframe on UTC boundaries. A feed that streams every interval itself (Binance klines)
leaves it ``None``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from pia.events import BAR_DTYPE, Bar
from pia.instruments import Instrument

BarArray = npt.NDArray[np.void]
"""A structured array of :data:`pia.events.BAR_DTYPE` rows, oldest first."""


@dataclass(frozen=True, slots=True)
class History:
    symbol: str
    interval: str
    bars: BarArray  # closed bars, strictly increasing open_time
    partial: Bar | None = None  # the candle in progress at stream start, built from what is known


@dataclass(frozen=True, slots=True)
class Quote:
    """A last-price update that is not a closed bar (e.g. a stock's extended-hours trading)."""

    symbol: str
    price: float
    ts_ns: int
    extended_hours: bool = False


class Feed(Protocol):
    name: str
    base_interval: str | None
    instruments: tuple[Instrument, ...]

    async def history(self, intervals: Sequence[str]) -> Sequence[History]:
        """Closed warm-up history for every instrument and each of ``intervals`` (and the base interval)."""
        ...

    def stream(self) -> AsyncIterator[Bar | Quote]:
        """Closed bars as they close, oldest first (and, from some feeds, :class:`Quote` price updates)."""
        ...


def empty_bars() -> BarArray:
    return np.empty(0, dtype=BAR_DTYPE)


def bars_to_array(bars: Sequence[Bar]) -> BarArray:
    out = np.empty(len(bars), dtype=BAR_DTYPE)
    for i, b in enumerate(bars):
        out[i] = (b.open_time, b.open, b.high, b.low, b.close, b.volume)
    return out


def array_to_bars(symbol: str, interval: str, arr: BarArray) -> list[Bar]:
    return [
        Bar(
            symbol=symbol,
            interval=interval,
            open_time=int(r["open_time"]),
            open=float(r["open"]),
            high=float(r["high"]),
            low=float(r["low"]),
            close=float(r["close"]),
            volume=float(r["volume"]),
        )
        for r in arr
    ]
