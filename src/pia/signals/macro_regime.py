"""``macro_regime``: the macro backdrop (SEED-SPEC §2.3), six sub-votes.

Two sub-votes read the bars (trend vs SMA 200, SMA 50/200 alignment), one the FOMC schedule, and
three read external macro inputs (DXY and 10-year yield 5-day changes, the 2s10s spread) that have no
feed yet: without them those sub-votes hold, they never invent a vote.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from pia.signals import combine
from pia.signals.base import F64, I8, Bool, Context, Params, SignalOutput, SignalSpec, hold
from pia.signals.calendar import bar_days
from pia.signals.schedules import default_schedules


class MacroRegimeParams(Params):
    trend_period: Annotated[int, Field(ge=20, le=400, description="SMA length for the price-vs-trend vote.")] = 200
    band_pct: Annotated[float, Field(ge=0, le=20, description="Band around the SMA, percent.")] = 1.0
    fast: Annotated[int, Field(ge=2, le=400, description="Fast SMA of the cross vote.")] = 50
    slow: Annotated[int, Field(ge=3, le=800, description="Slow SMA of the cross vote.")] = 200
    dxy_pct: Annotated[
        float, Field(gt=0, le=10, description="DXY 5-day change above +this SELL, below -this BUY, percent.")
    ] = 0.3
    curve_low: Annotated[float, Field(ge=-5, le=5, description="2s10s spread below this SELL (inverted curve).")] = 0.0
    curve_high: Annotated[float, Field(ge=-5, le=5, description="2s10s spread above this BUY.")] = 0.5
    us10y_pct: Annotated[
        float, Field(gt=0, le=50, description="10Y yield 5-day change above +this SELL, below -this BUY, percent.")
    ] = 1.5
    fomc_days: Annotated[int, Field(ge=0, le=14, description="SELL when the next FOMC statement is this close.")] = 2

    @model_validator(mode="after")
    def _ordered(self) -> MacroRegimeParams:
        if self.fast >= self.slow:
            raise ValueError("fast must be shorter than slow")
        if self.curve_low > self.curve_high:
            raise ValueError("curve_low must not exceed curve_high")
        return self


def _threshold_vote(x: F64 | None, buy: Callable[[F64], Bool], sell: Callable[[F64], Bool], n: int) -> I8:
    """An input's sub-vote; HOLD throughout when the input has no source (and where it is NaN, since NaN
    comparisons are False)."""
    return np.zeros(n, dtype=np.int8) if x is None else combine.vote(buy(x), sell(x))


def macro_regime_votes(c: Context, p: MacroRegimeParams) -> dict[str, I8]:
    """The six sub-votes, by name."""
    close = c.close
    trend = c.sma(p.trend_period)
    band = p.band_pct / 100.0
    fast, slow = c.sma(p.fast), c.sma(p.slow)
    x, n = c.inputs, c.n
    days = c.cached(("bar_days",), lambda: bar_days(c.time))
    ahead = default_schedules().next_event_day("fomc", c.time) - days  # huge where the schedule is unknown
    return {
        "trend": combine.vote(close > trend * (1 + band), close < trend * (1 - band)),
        "dxy": _threshold_vote(x.dxy_change_pct, lambda a: a < -p.dxy_pct, lambda a: a > p.dxy_pct, n),
        "yield_curve": _threshold_vote(x.spread_2s10s, lambda a: a > p.curve_high, lambda a: a < p.curve_low, n),
        "us10y": _threshold_vote(x.us10y_change_pct, lambda a: a < -p.us10y_pct, lambda a: a > p.us10y_pct, n),
        "fomc": -(ahead <= p.fomc_days).view(np.int8),
        "sma_cross": combine.vote((fast > slow) & (close > fast), (fast < slow) & (close < fast)),
    }


def macro_regime(c: Context, p: MacroRegimeParams) -> SignalOutput:
    """Macro regime: six sub-votes on the trend, the dollar, rates and the Fed calendar.

    - Trend: close more than 1 % above SMA(200) BUY, more than 1 % below SELL. (The original used the
      longest SMA of up to 200 bars but at least 50 that the data allowed; pia uses a fixed 200, so the
      vote is the same on any window.)
    - Dollar (input `dxy_change_pct`, the DXY 5-day change in %): above +0.3 SELL, below -0.3 BUY.
    - Yield curve (input `spread_2s10s`, 10Y minus 2Y in points): below 0 (inverted) SELL, above 0.5 BUY.
    - Rates (input `us10y_change_pct`, the 10Y yield 5-day change in % of the yield): above +1.5 SELL,
      below -1.5 BUY.
    - FOMC: the next FOMC statement (at or after the bar's open) falls on a date at most 2 calendar days
      after the bar's UTC date → SELL; abstains where the shipped FOMC schedule is unknown.
    - SMA cross confirmed by price: SMA(50) above SMA(200) and close above SMA(50) BUY; SMA(50) below
      SMA(200) and close below SMA(50) SELL.

    A macro input that is missing (no feed: None) or NaN at a bar makes its sub-vote HOLD there.
    Combining (majority): BUY when the BUY sub-votes outnumber both the SELL and the HOLD sub-votes
    (SELL likewise); a tie holds. Confidence = winning count / (BUY + SELL). So a vote needs at least
    4 of the 6 sub-votes on one side when they all vote (3 against 2 HOLDs and 1 opposite vote is not
    enough). Without the macro inputs three sub-votes always hold and the signal never votes: the
    trend and cross votes (and the FOMC SELL) cannot outnumber three HOLDs.
    """
    x = c.inputs
    if x.dxy_change_pct is None and x.spread_2s10s is None and x.us10y_change_pct is None:
        return hold(c.n)  # three sub-votes always HOLD: the other three can never outnumber them
    return combine.majority(list(macro_regime_votes(c, p).values()))


MACRO_REGIME = SignalSpec(
    name="macro_regime",
    family="composite",
    params_model=MacroRegimeParams,
    compute=macro_regime,
    warmup=lambda p: max(p.trend_period, p.slow),
    summary="Macro backdrop: trend vs SMA200, SMA50/200, DXY, 2s10s, 10Y, FOMC proximity (majority)",
    inputs=("dxy_change_pct", "spread_2s10s", "us10y_change_pct"),
    window=lambda p: max(p.trend_period, p.slow),
)

SIGNALS: tuple[SignalSpec, ...] = (MACRO_REGIME,)
