"""The core technical signals of the original system (SEED-SPEC §2.2): ``rsi``, ``macd``, ``ema``."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import talib
from pydantic import Field, model_validator

from pia.signals.base import Context, Params, SignalOutput, SignalSpec, from_masks


class RsiParams(Params):
    period: Annotated[int, Field(ge=2, le=200)] = 14
    lower: Annotated[float, Field(gt=0, lt=100)] = 30.0
    upper: Annotated[float, Field(gt=0, lt=100)] = 70.0

    @model_validator(mode="after")
    def _ordered(self) -> RsiParams:
        if self.lower >= self.upper:
            raise ValueError("lower must be below upper")
        return self


def rsi(c: Context, p: RsiParams) -> SignalOutput:
    """Wilder RSI with fixed bounds: BUY below ``lower``, SELL above ``upper`` (contrarian).

    Confidence grows from 0.5 at the bound to 1.0 at the extreme (0 or 100). A series with no
    change at all has no RSI (TA-Lib reports 0 there, which would read as "oversold"): it abstains.
    """
    r = c.rsi(p.period)
    span = p.period + 1
    flat = (r == 0) & (talib.MAX(c.close, span) - talib.MIN(c.close, span) == 0)
    r = np.where(flat, np.nan, r)
    buy = r < p.lower
    sell = r > p.upper
    conf = np.where(buy, 0.5 + 0.5 * (p.lower - r) / p.lower, 0.5 + 0.5 * (r - p.upper) / (100.0 - p.upper))
    return from_masks(buy, sell, conf)


class MacdParams(Params):
    fast: Annotated[int, Field(ge=2, le=200)] = 12
    slow: Annotated[int, Field(ge=3, le=400)] = 26
    signal: Annotated[int, Field(ge=2, le=200)] = 9

    @model_validator(mode="after")
    def _ordered(self) -> MacdParams:
        if self.fast >= self.slow:
            raise ValueError("fast must be shorter than slow")
        return self


def macd(c: Context, p: MacdParams) -> SignalOutput:
    """MACD histogram crossing: BUY on the bar it crosses from <= 0 to > 0, SELL on the mirror crossing.

    A crossing is a binary event: confidence 1.0.
    """
    hist = c.macd(p.fast, p.slow, p.signal)[2]
    prev = c.prev(hist)
    buy = (prev <= 0) & (hist > 0)
    sell = (prev >= 0) & (hist < 0)
    return from_masks(buy, sell, 1.0)


class EmaParams(Params):
    fast: Annotated[int, Field(ge=2, le=400)] = 9
    slow: Annotated[int, Field(ge=3, le=800)] = 21
    min_gap_pct: Annotated[float, Field(ge=0, le=50)] = 0.5

    @model_validator(mode="after")
    def _ordered(self) -> EmaParams:
        if self.fast >= self.slow:
            raise ValueError("fast must be shorter than slow")
        return self


def ema(c: Context, p: EmaParams) -> SignalOutput:
    """EMA fast/slow gap: when |EMA9 - EMA21| >= 0.5 % of EMA21, BUY if EMA9 is above, else SELL.

    Confidence is 0.5 at the minimum gap, rising linearly to 1.0 at twice it.
    """
    fast = c.ema(p.fast)
    slow = c.ema(p.slow)
    gap_pct = (fast - slow) / slow * 100.0
    wide = np.abs(gap_pct) >= p.min_gap_pct
    conf = 0.5 * np.abs(gap_pct) / p.min_gap_pct if p.min_gap_pct > 0 else np.ones_like(gap_pct)
    return from_masks(wide & (gap_pct > 0), wide & (gap_pct < 0), conf)


RSI = SignalSpec(
    name="rsi",
    family="core",
    params_model=RsiParams,
    compute=rsi,
    warmup=lambda p: p.period + 1,
    summary="RSI(14), fixed bounds: BUY below 30, SELL above 70",
)
MACD = SignalSpec(
    name="macd",
    family="core",
    params_model=MacdParams,
    compute=macd,
    warmup=lambda p: p.slow + p.signal,
    summary="MACD(12,26,9) histogram crossing zero: BUY up, SELL down",
)
EMA = SignalSpec(
    name="ema",
    family="core",
    params_model=EmaParams,
    compute=ema,
    warmup=lambda p: p.slow,
    summary="EMA(9) vs EMA(21) gap of at least 0.5 %: BUY above, SELL below",
)
