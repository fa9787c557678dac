"""``structure`` (SEED-SPEC §2.3): where the close sits in its range, channel breakouts, RSI zone, MACD cross."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from pia.signals import combine, ta
from pia.signals.base import F64, I8, Context, Params, SignalOutput, SignalSpec


class StructureParams(Params):
    period: Annotated[
        int, Field(ge=2, le=1000, description="bars of the rolling high/low the close is compared with")
    ] = 100
    near_pct: Annotated[float, Field(gt=0, le=50, description="'near' the high/low: within this percent of it")] = 2.0
    donchian: Annotated[int, Field(ge=2, le=1000, description="Donchian channel length for the breakout")] = 55
    rsi_period: Annotated[int, Field(ge=2, le=200, description="RSI period")] = 14
    rsi_buy: Annotated[float, Field(gt=0, lt=100, description="RSI above this votes BUY")] = 60.0
    rsi_sell: Annotated[float, Field(gt=0, lt=100, description="RSI below this votes SELL")] = 40.0
    macd_fast: Annotated[int, Field(ge=2, le=200, description="MACD fast EMA")] = 12
    macd_slow: Annotated[int, Field(ge=3, le=400, description="MACD slow EMA")] = 26
    macd_signal: Annotated[int, Field(ge=2, le=200, description="MACD signal EMA")] = 9

    @model_validator(mode="after")
    def _ordered(self) -> StructureParams:
        if self.rsi_sell > self.rsi_buy:
            raise ValueError("rsi_sell must not be above rsi_buy")
        if self.macd_fast >= self.macd_slow:
            raise ValueError("macd_fast must be shorter than macd_slow")
        return self


def _rolling_max(c: Context, a: F64, name: str, n: int) -> F64:
    return c.cached(("max", name, n), lambda: ta.MAX(a, timeperiod=n))


def _rolling_min(c: Context, a: F64, name: str, n: int) -> F64:
    return c.cached(("min", name, n), lambda: ta.MIN(a, timeperiod=n))


STRUCTURE_VOTES = ("range_position", "donchian", "rsi", "macd_cross")


def structure_votes(c: Context, p: StructureParams) -> dict[str, I8]:
    """The four sub-votes (+1 BUY, -1 SELL, 0 HOLD) per bar."""
    return dict(zip(STRUCTURE_VOTES, _structure_vote_matrix(c, p), strict=True))


def _structure_vote_matrix(c: Context, p: StructureParams) -> I8:
    """The sub-votes as the rows of one (4, n) matrix, in :data:`STRUCTURE_VOTES` order."""
    close = c.close
    votes = np.empty((len(STRUCTURE_VOTES), c.n), dtype=np.int8)
    range_pos, donchian, rsi, macd = votes
    # Bar t against bar t - 1 through shifted slices; the first bar has no previous bar and holds.
    donchian[:1] = macd[:1] = 0

    hh = _rolling_max(c, c.high, "high", p.period)
    ll = _rolling_min(c, c.low, "low", p.period)
    near = p.near_pct / 100.0
    combine.vote(close >= hh * (1.0 - near), close <= ll * (1.0 + near), out=range_pos)

    now = close[1:]
    upper = _rolling_max(c, c.high, "high", p.donchian)[:-1]
    lower = _rolling_min(c, c.low, "low", p.donchian)[:-1]
    combine.vote(now > upper, now < lower, out=donchian[1:])

    r = c.rsi(p.rsi_period)
    if not r.all():  # some 0 (NaN is truthy); TA-Lib gives 0 when nothing moved: no RSI there, not "oversold"
        lowest, highest = ta.MINMAX(close, p.rsi_period + 1)
        r = np.where((r == 0) & (highest == lowest), np.nan, r)
    combine.vote(r > p.rsi_buy, r < p.rsi_sell, out=rsi)

    hist = c.macd(p.macd_fast, p.macd_slow, p.macd_signal)[2]
    before, after = hist[:-1], hist[1:]
    combine.vote((before <= 0) & (after > 0), (before >= 0) & (after < 0), out=macd[1:])
    return votes


def structure(c: Context, p: StructureParams) -> SignalOutput:
    """Market structure: four sub-votes on where price sits and where momentum points.

    - Range position: the close within 2 % (`near_pct`) of the highest high of the last 100 bars
      (`period`, current bar included) votes BUY, within 2 % of the lowest low votes SELL (both at once,
      in a range narrower than about 4 %, abstains). SEED used the whole 100-bar frame; here it is a
      rolling 100-bar window.
    - Donchian(55) breakout: the close above the previous bar's 55-bar highest high votes BUY, below
      the previous bar's 55-bar lowest low votes SELL.
    - RSI(14) zone: above 60 BUY, below 40 SELL (a series that did not move has no RSI and abstains).
    - MACD(12, 26, 9) histogram crossing zero: from <= 0 to > 0 on this bar BUY, from >= 0 to < 0 SELL.

    Combining (shared majority rule): BUY only if the BUY votes outnumber both the SELL votes and the
    abstentions (SELL likewise), otherwise HOLD; confidence = winning votes / (BUY + SELL votes).
    """
    return combine.majority(_structure_vote_matrix(c, p))


def _warmup(p: StructureParams) -> int:
    return max(p.period, p.donchian + 1, p.rsi_period + 1, p.macd_slow + p.macd_signal)


STRUCTURE = SignalSpec(
    name="structure",
    family="composite",
    params_model=StructureParams,
    compute=structure,
    warmup=_warmup,
    summary="Close near the 100-bar high/low, Donchian(55) breakout, RSI(14) 60/40, MACD cross: majority",
)

SIGNALS: tuple[SignalSpec, ...] = (STRUCTURE,)
