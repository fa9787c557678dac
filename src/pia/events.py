"""Every event that crosses the bus: frozen, slotted facts named in the past tense.

Each event carries two timestamps, both ``int`` nanoseconds since the epoch (UTC):
``ts_event`` — when it happened at the source (for a bar: its close time); ``ts_recv`` — when pia saw it.
Nobody mutates an event; derive a new one. Arrays inside events are read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt


class Action(IntEnum):
    """A vote: BUY (+1), SELL (-1), HOLD (0, abstain)."""

    SELL = -1
    HOLD = 0
    BUY = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    ts_event: int
    ts_recv: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """One OHLCV candle. ``open_time`` is the candle's open in ns; ``interval`` its code (``15m``)."""

    symbol: str
    interval: str
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True, kw_only=True)
class BarClosed(Event):
    """A candle closed (``ts_event`` is its close time). Published once per (symbol, interval, open_time)."""

    bar: Bar
    source: str  # feed name, e.g. "simulated", "replay", "binance_spot"


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryLoaded(Event):
    """Closed history for one (symbol, interval), oldest first, to warm a window (``ts_event`` = last close).

    ``bars`` is a read-only structured array with fields open_time, open, high, low, close, volume.
    """

    symbol: str
    interval: str
    bars: npt.NDArray[np.void]
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceUpdated(Event):
    """The latest traded price of an instrument (market data: only the newest matters)."""

    symbol: str
    price: float
    extended_hours: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class FundingUpdated(Event):
    """A perpetual's funding rate and mark price (Binance USD-M ``premiumIndex`` / ``markPrice``)."""

    symbol: str
    funding_rate: float  # per funding interval, e.g. 0.0001 = 0.01 %
    mark_price: float
    next_funding_time: int  # ns


@dataclass(frozen=True, slots=True, kw_only=True)
class FearGreedUpdated(Event):
    """A Fear & Greed reading (0 extreme fear .. 100 extreme greed) for an asset class."""

    asset_class: str  # "crypto" (alternative.me) | "stocks" / "metals" (derived from the VIX)
    value: float
    classification: str
    source: str
    vix: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FxRateUpdated(Event):
    """A reference FX rate (1 ``base`` = ``rate`` ``quote``), ``stale`` when older than allowed."""

    base: str
    quote: str
    rate: float
    rate_date: str  # the ECB reference date, YYYY-MM-DD
    stale: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Vote:
    signal: str
    action: Action
    confidence: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalsComputed(Event):
    """Every signal's vote on one closed bar of one (symbol, timeframe)."""

    symbol: str
    timeframe: str  # label, e.g. "Now"
    interval: str
    close: float
    votes: tuple[Vote, ...]
    asset_class: str = ""  # crypto | stocks | metals
    regime: str = "ranging"  # trending_up | trending_down | ranging | high_vol (pia.signals.regime)
    atr_pct: float = float("nan")  # ATR(14) / close x 100 at this bar
    ema_gap_pct: float = float("nan")  # (EMA9 - EMA21) / EMA21 x 100
    rsi: float = float("nan")  # RSI(14)


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeframeConsensus:
    """One timeframe's weighted consensus inside a :class:`ConsensusChanged`."""

    label: str
    action: Action
    confidence: float
    raw_action: Action
    regime: str
    gate: str | None  # the gate that forced HOLD ("core" | "quorum"), None if none did
    voters: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsensusChanged(Event):
    """An instrument's consensus action or confidence bucket changed (rules in :mod:`pia.signals.consensus`).

    ``buy``/``sell``/``voters`` are summed over the instrument's timeframes; ``regime`` is the leading
    (first) timeframe's.
    """

    symbol: str
    action: Action
    confidence: float
    previous_action: Action
    previous_confidence: float
    buy: int
    sell: int
    voters: int
    price: float
    detail: tuple[tuple[str, Action], ...]  # (timeframe label, that timeframe's action)
    timeframes: tuple[TimeframeConsensus, ...] = ()
    regime: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalDisabled(Event):
    """A signal failed on too many consecutive bars and was switched off."""

    signal: str
    symbol: str
    timeframe: str
    failures: int
    error: str


# ---------------------------------------------------------------------------------------------
BAR_DTYPE = np.dtype(
    [
        ("open_time", np.int64),
        ("open", np.float64),
        ("high", np.float64),
        ("low", np.float64),
        ("close", np.float64),
        ("volume", np.float64),
    ]
)


_SCALARS = (str, int, float, bool)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _log_field_names(cls: type[Event]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def log_fields(event: Event) -> dict[str, Any]:
    """Flat key/values of an event for a log record: scalars as they are, a bar's fields inlined."""
    out: dict[str, Any] = {"event": type(event).__name__}
    for name in _log_field_names(type(event)):
        value = getattr(event, name)
        if isinstance(value, IntEnum):
            out[name] = value.name
        elif isinstance(value, _SCALARS):
            out[name] = value
        elif isinstance(value, Bar):
            out.update(
                symbol=value.symbol,
                interval=value.interval,
                open_time=value.open_time,
                open=value.open,
                high=value.high,
                low=value.low,
                close=value.close,
                volume=value.volume,
            )
        elif isinstance(value, np.ndarray):
            out[f"{name}_len"] = len(value)
        elif name == "votes":
            out["votes"] = {v.signal: v.action.name for v in value}
        elif name == "detail":
            out["detail"] = {k: a.name for k, a in value}
        elif name == "timeframes" and all(isinstance(t, TimeframeConsensus) for t in value):
            out["timeframes"] = {
                t.label: {
                    "action": t.action.name,
                    "confidence": round(t.confidence, 4),
                    "raw_action": t.raw_action.name,
                    "regime": t.regime,
                    "gate": t.gate,
                    "voters": t.voters,
                }
                for t in value
            }
    return out
