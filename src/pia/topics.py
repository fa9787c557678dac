"""The bus topics. Build them with these functions; never type a topic name inline."""

from __future__ import annotations

from pia.bus import Overflow, Topic
from pia.events import (
    BarClosed,
    ConsensusChanged,
    FearGreedUpdated,
    FundingUpdated,
    FxRateUpdated,
    HistoryLoaded,
    PriceUpdated,
    SignalDisabled,
    SignalsComputed,
)


def bars() -> Topic[BarClosed]:
    """Closed candles. Back-pressure: a closed bar is the record and is never dropped (promise 1)."""
    return Topic("market.bars", BarClosed, Overflow.BLOCK)


def history() -> Topic[HistoryLoaded]:
    """Warm-up history batches, one per (symbol, interval)."""
    return Topic("market.history", HistoryLoaded, Overflow.BLOCK)


def prices() -> Topic[PriceUpdated]:
    """Latest prices: market data where only the newest matters; a slow subscriber drops the oldest."""
    return Topic("market.prices", PriceUpdated, Overflow.DROP_OLDEST)


def signals() -> Topic[SignalsComputed]:
    return Topic("signals.computed", SignalsComputed, Overflow.BLOCK)


def signal_health() -> Topic[SignalDisabled]:
    return Topic("signals.health", SignalDisabled, Overflow.BLOCK)


def consensus() -> Topic[ConsensusChanged]:
    """Decisions input: never dropped."""
    return Topic("signals.consensus", ConsensusChanged, Overflow.BLOCK)


def funding() -> Topic[FundingUpdated]:
    """Funding rate and mark price of perpetuals: only the newest matters."""
    return Topic("market.funding", FundingUpdated, Overflow.DROP_OLDEST)


def fear_greed() -> Topic[FearGreedUpdated]:
    return Topic("market.fear_greed", FearGreedUpdated, Overflow.DROP_OLDEST)


def fx() -> Topic[FxRateUpdated]:
    return Topic("market.fx", FxRateUpdated, Overflow.DROP_OLDEST)
