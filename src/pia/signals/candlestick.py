"""``candlestick`` (SEED-SPEC §2.3): four families of candle patterns, counted bullish against bearish.

The pattern geometry is defined here (not TA-Lib's recognisers, whose thresholds adapt to averages of
earlier candles and whose hammer rules embed their own trend test), so that every rule is stated in
the signal's docstring and checked on hand-worked candles in the tests.
"""

from __future__ import annotations

from functools import lru_cache
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


_LOOP_WINDOWS = 8
"""Up to this many regression windows, :func:`trend_sign` sums with plain floats (a live window has one)."""


@lru_cache(maxsize=32)
def _taps(period: int) -> tuple[tuple[int, int], ...]:
    """(weight n-1-2j, j) for j < n/2: the slope's taps (see :func:`trend_sign`)."""
    return tuple((period - 1 - 2 * j, j) for j in range(period // 2))


def trend_sign(close: F64, period: int) -> F64:
    """Sign of the least-squares slope of the ``period`` closes ending at the *previous* bar (NaN in warm-up).

    +1 uptrend, -1 downtrend, 0 flat: the trend a pattern on the current bar reacts to. The slope of
    y_0..y_{n-1} has the sign of sum_j (n-1-2j) * (y_{n-1-j} - y_j) over j < n/2; computing that sum
    tap by tap (rather than with TA-Lib's running sums, whose rounding depends on where the series
    starts) makes a flat stretch exactly 0 and the value independent of the window.
    """
    n = len(close)
    m = n - period  # windows ending at bars period-1 .. n-2, read by bars period .. n-1
    out = np.empty(n)
    out[: min(period, n)] = np.nan
    if m <= 0:
        return out
    taps = _taps(period)
    if m <= _LOOP_WINDOWS:
        # the same float operations, in the same order, as the array loop below
        y = close.tolist()
        sums = []
        for start in range(m):
            total = 0.0
            for w, j in taps:
                total += w * (y[start + period - 1 - j] - y[start + j])
            sums.append(total)
        out[period:] = np.sign(sums)
        return out
    acc = np.zeros(m)
    for w, j in taps:
        acc += w * (close[period - 1 - j : n - 1 - j] - close[j : j + m])
    out[period:] = np.sign(acc)
    return out


def pattern_masks(c: Context, p: CandlestickParams) -> dict[str, tuple[Bool, Bool]]:
    """Per family, its (bullish, bearish) masks per bar: never both on one bar (see each family's rule)."""
    o, h, low, cl = c.open, c.high, c.low, c.close
    n = c.n
    body = np.abs(cl - o)
    rng = h - low
    upper = h - np.maximum(o, cl)
    lower = np.minimum(o, cl) - low
    has_range = rng > 0
    green = cl > o
    red = cl < o
    trend = c.cached(("linreg_trend", p.trend_period), lambda: trend_sign(c.close, p.trend_period))
    up = trend > 0
    down = trend < 0

    # hammer / hanging man (long lower wick) and inverted hammer / shooting star (long upper wick)
    short = p.short_wick * rng
    long_wick = p.wick_ratio * body
    shape = has_range & (((lower >= long_wick) & (upper <= short)) | ((upper >= long_wick) & (lower <= short)))

    # engulfing: the current body covers the previous, opposite-coloured body and is longer; bars 1..n-1
    # against bars 0..n-2 (bar 0 has no previous candle)
    po, pc, pbody = o[:-1], cl[:-1], body[:-1]
    longer = body[1:] > pbody
    bull_engulf = np.zeros(n, dtype=np.bool_)
    bear_engulf = np.zeros(n, dtype=np.bool_)
    bull_engulf[1:] = red[:-1] & green[1:] & (o[1:] <= pc) & (cl[1:] >= po) & longer
    bear_engulf[1:] = green[:-1] & red[1:] & (o[1:] >= pc) & (cl[1:] <= po) & longer

    # doji after a trend: reversal against the trend
    doji_shape = has_range & (body < p.doji_body * rng)

    # morning / evening star (no gap required): bars 2..n-1, the first candle two bars back
    body2 = body[:-2]
    first_long_second_small = (body2 >= 0.5 * rng[:-2]) & (body[1:-1] <= 0.3 * body2)
    mid2 = 0.5 * (o[:-2] + cl[:-2])
    morning = np.zeros(n, dtype=np.bool_)
    evening = np.zeros(n, dtype=np.bool_)
    morning[2:] = red[:-2] & first_long_second_small & green[2:] & (cl[2:] > mid2)
    evening[2:] = green[:-2] & first_long_second_small & red[2:] & (cl[2:] < mid2)
    return {
        "hammer": (shape & down, shape & up),
        "engulfing": (bull_engulf, bear_engulf),
        "doji": (doji_shape & down, doji_shape & up),
        "star": (morning, evening),
    }


def candlestick_votes(c: Context, p: CandlestickParams) -> dict[str, I8]:
    """The four family votes (+1 bullish, -1 bearish, 0 none) per bar."""
    return {name: combine.vote(bull, bear) for name, (bull, bear) in pattern_masks(c, p).items()}


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
    masks = pattern_masks(c, p)
    votes = np.empty((len(masks), c.n), dtype=np.int8)
    for row, (bull, bear) in zip(votes, masks.values(), strict=True):
        combine.vote(bull, bear, out=row)
    return combine.pattern_count(votes, p.per_pattern)


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
