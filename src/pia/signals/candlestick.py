"""``candlestick`` (SEED-SPEC §2.3): four families of candle patterns, counted bullish against bearish.

The pattern geometry is defined here (not TA-Lib's recognisers, whose thresholds adapt to averages of
earlier candles and whose hammer rules embed their own trend test), so that every rule is stated in
the signal's docstring and checked on hand-worked candles in the tests.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from pia.signals import combine
from pia.signals.base import F64, I8, Bool, Context, Params, SignalOutput, SignalSpec


class CandlestickParams(Params):
    trend_period: Annotated[int, Field(ge=3, le=100, description="closes in the trend's regression line")] = 10
    wick_ratio: Annotated[
        float, Field(gt=0, le=10, description="hammer family: the long wick is at least this many bodies")
    ] = 2.0
    short_wick: Annotated[
        float, Field(ge=0, lt=0.5, description="hammer family: the other wick is at most this fraction of the range")
    ] = 0.1
    doji_body: Annotated[float, Field(gt=0, lt=1, description="doji: the body is below this fraction of the range")] = (
        0.1
    )
    per_pattern: Annotated[
        float, Field(gt=0, le=1, description="confidence per pattern family on the winning side")
    ] = 0.25


def _shift(a: F64, k: int) -> F64:
    out = np.empty_like(a)
    out[:k] = np.nan
    out[k:] = a[: len(a) - k]
    return out


def trend_sign(close: F64, period: int) -> F64:
    """Sign of the least-squares slope of the ``period`` closes ending at the *previous* bar (NaN in warm-up).

    +1 uptrend, -1 downtrend, 0 flat: the trend a pattern on the current bar reacts to. The slope of
    y_0..y_{n-1} has the sign of sum_j (n-1-2j) * (y_{n-1-j} - y_j) over j < n/2; computing that sum
    tap by tap (rather than with TA-Lib's running sums, whose rounding depends on where the series
    starts) makes a flat stretch exactly 0 and the value independent of the window.
    """
    n = len(close)
    m = n - period + 1  # bars with a full regression window
    out = np.full(n, np.nan)
    if m <= 1:
        return out
    acc = np.zeros(m)
    for j in range(period // 2):
        acc += (period - 1 - 2 * j) * (close[period - 1 - j : n - j] - close[j : j + m])
    out[period:] = np.sign(acc[:-1])
    return out


def candlestick_votes(c: Context, p: CandlestickParams) -> dict[str, I8]:
    """The four family votes (+1 bullish, -1 bearish, 0 none) per bar."""
    o, h, low, cl = c.open, c.high, c.low, c.close
    body = np.abs(cl - o)
    rng = h - low
    top = np.maximum(o, cl)
    bottom = np.minimum(o, cl)
    upper = h - top
    lower = bottom - low
    has_range = rng > 0
    trend = c.cached(("linreg_trend", p.trend_period), lambda: trend_sign(c.close, p.trend_period))
    up = trend > 0
    down = trend < 0

    # hammer / hanging man (long lower wick) and inverted hammer / shooting star (long upper wick)
    short = p.short_wick * rng
    hammer_shape: Bool = has_range & (lower >= p.wick_ratio * body) & (upper <= short)
    inverted_shape: Bool = has_range & (upper >= p.wick_ratio * body) & (lower <= short)
    shape = hammer_shape | inverted_shape
    hammer = combine.vote(shape & down, shape & up)

    # engulfing: the current body covers the previous, opposite-coloured body and is longer
    po, pc = _shift(o, 1), _shift(cl, 1)
    pbody = np.abs(pc - po)
    longer = body > pbody
    bull_engulf = (pc < po) & (cl > o) & (o <= pc) & (cl >= po) & longer
    bear_engulf = (pc > po) & (cl < o) & (o >= pc) & (cl <= po) & longer
    engulfing = combine.vote(bull_engulf, bear_engulf)

    # doji after a trend: reversal against the trend
    doji_shape = has_range & (body < p.doji_body * rng)
    doji = combine.vote(doji_shape & down, doji_shape & up)

    # morning / evening star (no gap required)
    o2, c2 = _shift(o, 2), _shift(cl, 2)
    body2 = np.abs(c2 - o2)
    long2 = body2 >= 0.5 * _shift(rng, 2)
    small1 = pbody <= 0.3 * body2
    mid2 = 0.5 * (o2 + c2)
    morning = (c2 < o2) & long2 & small1 & (cl > o) & (cl > mid2)
    evening = (c2 > o2) & long2 & small1 & (cl < o) & (cl < mid2)
    star = combine.vote(morning, evening)
    return {"hammer": hammer, "engulfing": engulfing, "doji": doji, "star": star}


def candlestick(c: Context, p: CandlestickParams) -> SignalOutput:
    """Candle patterns in four families, each voting bullish (+1), bearish (-1) or nothing on every bar.

    Geometry of a candle: body = |close - open|, range = high - low, upper wick = high - max(open, close),
    lower wick = min(open, close) - low. A candle with zero range is never a pattern.
    Trend = the sign of the least-squares slope (TA-Lib LINEARREG_SLOPE) of the 10 closes ending at the
    previous bar (`trend_period`): up if > 0, down if < 0, none if 0.

    - Hammer family: a hammer shape (lower wick >= 2 x body and upper wick <= 10 % of the range) or an
      inverted-hammer shape (upper wick >= 2 x body and lower wick <= 10 % of the range). After a
      downtrend it is a hammer / inverted hammer: bullish. After an uptrend it is a hanging man /
      shooting star: bearish.
    - Engulfing: bullish when the previous candle is red (close < open), the current one is green,
      opens at or below the previous close, closes at or above the previous open, and its body is
      longer than the previous body; bearish is the mirror. No trend condition.
    - Doji after a trend: body < 10 % of the range (`doji_body`); after a downtrend bullish, after an
      uptrend bearish.
    - Morning / evening star (three candles, no gap required): the first is red (morning) with a body
      >= 50 % of its range; the second's body is <= 30 % of the first body; the third is green and
      closes above the midpoint of the first body: bullish. Evening star is the mirror: bearish.

    A candle can count in several families (a dragonfly doji after a downtrend is both a hammer and a
    doji). Combining (SEED `candlestick`): BUY if bullish families outnumber bearish ones (families
    without a pattern do not block), SELL on the mirror, HOLD on a tie; confidence = 0.25 x the
    winning count (`per_pattern`), capped at 1.
    """
    return combine.pattern_count(list(candlestick_votes(c, p).values()), p.per_pattern)


def _warmup(p: CandlestickParams) -> int:
    return p.trend_period + 1


CANDLESTICK = SignalSpec(
    name="candlestick",
    family="composite",
    params_model=CandlestickParams,
    compute=candlestick,
    warmup=_warmup,
    summary="Candle patterns (hammer family, engulfing, doji after a trend, stars): bullish vs bearish count",
    window=_warmup,
)

SIGNALS: tuple[SignalSpec, ...] = (CANDLESTICK,)
