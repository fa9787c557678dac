"""Instruments and timeframes: loaded from one file (``configs/instruments.toml``), the single source of truth.

An *instrument* is what the user trades (``BTC-USD``); its *venue symbol* is what the exchange calls it
(``BTCUSDT``). A *timeframe* is the user's label (``Now``, ``12h`` ... ``6mo``) for a candle interval
(``15m``, ``1h`` ... ``1M``) and the window of bars the signals see.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pia.intervals import Interval, parse_interval


class AssetClass(StrEnum):
    CRYPTO = "crypto"
    METALS = "metals"
    STOCKS = "stocks"


class Venue(StrEnum):
    BINANCE_SPOT = "binance_spot"
    BINANCE_FUTURES = "binance_futures"
    ALPACA = "alpaca"


_Frozen = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
Symbol = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Z0-9][A-Z0-9.\-]*$")]


class Instrument(BaseModel):
    model_config = _Frozen

    symbol: Symbol
    asset_class: AssetClass
    venue: Venue
    venue_symbol: Annotated[str, Field(min_length=1, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=80)]
    exchange: str = ""  # listing exchange for stocks (NASDAQ, NYSE ...), informational


class Timeframe(BaseModel):
    """A labelled timeframe: the signals run on ``interval`` candles over a ``window`` of bars."""

    model_config = _Frozen

    label: Annotated[str, Field(min_length=1, max_length=16)]
    interval: str
    window: Annotated[int, Field(ge=50, le=5000)] = 500

    @field_validator("interval")
    @classmethod
    def _valid_interval(cls, v: str) -> str:
        parse_interval(v)  # raises ValueError with a clear message
        return v

    @property
    def candle(self) -> Interval:
        return parse_interval(self.interval)


class Universe(BaseModel):
    """Everything ``instruments.toml`` declares."""

    model_config = _Frozen

    instruments: tuple[Instrument, ...] = Field(min_length=1)
    timeframes: tuple[Timeframe, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        for what, keys in (
            ("instrument symbol", [i.symbol for i in self.instruments]),
            ("venue symbol", [f"{i.venue}:{i.venue_symbol}" for i in self.instruments]),
            ("timeframe label", [t.label for t in self.timeframes]),
            ("timeframe interval", [t.interval for t in self.timeframes]),
        ):
            dup = sorted({k for k in keys if keys.count(k) > 1})
            if dup:
                raise ValueError(f"duplicate {what}: {', '.join(dup)}")
        return self

    def select(self, symbols: tuple[str, ...] | None) -> Universe:
        """The universe restricted to ``symbols`` (all when None), in file order."""
        if not symbols:
            return self
        known = {i.symbol for i in self.instruments}
        unknown = [s for s in symbols if s not in known]
        if unknown:
            raise ValueError(f"unknown instrument(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        keep = tuple(i for i in self.instruments if i.symbol in symbols)
        return self.model_copy(update={"instruments": keep})

    def instrument(self, symbol: str) -> Instrument:
        for inst in self.instruments:
            if inst.symbol == symbol:
                return inst
        raise KeyError(symbol)

    def timeframe(self, label: str) -> Timeframe:
        for tf in self.timeframes:
            if tf.label == label:
                return tf
        raise KeyError(label)

    def timeframe_for(self, interval: str) -> Timeframe | None:
        for tf in self.timeframes:
            if tf.interval == interval:
                return tf
        return None


def read_universe_toml(path: Path) -> dict[str, object]:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return {
        "instruments": data.get("instrument", []),
        "timeframes": data.get("timeframe", []),
        **{k: v for k, v in data.items() if k not in ("instrument", "timeframe")},
    }
