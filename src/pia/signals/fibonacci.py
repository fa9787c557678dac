"""``fibonacci`` (SEED-SPEC §2.3): Fibonacci retracements and extension of the rolling swing, and floor pivots."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from pia.signals import combine, ta
from pia.signals.base import F64, I8, Bool, Context, Params, SignalOutput, SignalSpec

FLAT_SLOPE = 1e-9
"""A moving-average change below this fraction of its value is no trend (rounding noise of TA-Lib's running sums)."""


class FibonacciParams(Params):
    period: Annotated[int, Field(ge=2, le=1000, description="bars of the rolling swing high/low")] = 100
    trend_sma: Annotated[int, Field(ge=2, le=400, description="SMA whose slope gives the trend")] = 20
    slope_bars: Annotated[int, Field(ge=1, le=100, description="the SMA slope: its change over this many bars")] = 5
    touch_pct: Annotated[
        float, Field(gt=0, le=50, description="retracement bounce: the wick within this percent of the swing range")
    ] = 3.0
    ext_tolerance_pct: Annotated[
        float, Field(gt=0, le=50, description="extension exhaustion: the close within this percent of the level")
    ] = 1.5


def swing_range(c: Context, n: int) -> tuple[F64, F64]:
    """(highest high, lowest low) of the ``n`` bars ending at each bar (TA-Lib MAX / MIN)."""
    return (
        c.cached(("max", "high", n), lambda: ta.MAX(c.high, timeperiod=n)),
        c.cached(("min", "low", n), lambda: ta.MIN(c.low, timeperiod=n)),
    )


def sma_trend(c: Context, period: int, lag: int) -> tuple[Bool, Bool]:
    """(up, down): SMA(period) now above / below its value ``lag`` bars ago by more than rounding noise."""
    sma = c.sma(period)
    now = sma[lag:]
    d = now - sma[: len(now)]
    noise = FLAT_SLOPE * np.abs(now)
    up = np.zeros(c.n, dtype=np.bool_)
    down = np.zeros(c.n, dtype=np.bool_)
    np.greater(d, noise, out=up[lag:])
    np.less(d, -noise, out=down[lag:])
    return up, down


def floor_pivots(high: F64, low: F64, close: F64) -> tuple[F64, F64]:
    """Standard floor pivots (R1, S1) from one bar's H/L/C: P = (H + L + C) / 3, R1 = 2P - L, S1 = 2P - H."""
    p = (high + low + close) / 3.0
    p *= 2.0
    return p - low, p - high


def camarilla(high: F64, low: F64, close: F64) -> tuple[F64, F64]:
    """Camarilla (R3, S3) from one bar's H/L/C: C ± (H - L) x 1.1 / 4."""
    half = high - low
    half *= 1.1 / 4.0
    return close + half, close - half


VOTES = ("retracement", "golden_pocket", "extension", "pivots", "camarilla")
"""The sub-indicators, in the order of the rows of :func:`_vote_rows`."""


def _near(a: F64, level: F64, tol: F64 | float) -> Bool:
    """``|a - level| <= tol``."""
    d = a - level
    np.abs(d, out=d)
    out: Bool = d <= tol
    return out


def _vote_rows(c: Context, p: FibonacciParams) -> I8:
    """The sub-votes, one row per :data:`VOTES` entry (0 where a sub-indicator is not ready).

    A vote on bar ``t`` that uses bar ``t - k`` is written from bar ``k`` on, from shifted views.
    """
    o, h, low, close = c.open, c.high, c.low, c.close
    votes = np.zeros((len(VOTES), c.n), dtype=np.int8)
    bounce, pocket, extension, pivots, cam = votes
    hi, lo = swing_range(c, p.period)
    rng = hi - lo
    up, down = sma_trend(c, p.trend_sma, p.slope_bars)

    # retracement bounce: uptrend levels measured down from the high, downtrend levels up from the low
    tol = p.touch_pct / 100.0 * rng
    up_50, dn_50 = hi - 0.5 * rng, lo + 0.5 * rng
    up_618, dn_618 = hi - 0.618 * rng, lo + 0.618 * rng
    bull = _near(low, up_50, tol) & (close > up_50)
    bull |= _near(low, up_618, tol) & (close > up_618)
    bull &= up
    bull &= close > o
    bear = _near(h, dn_50, tol) & (close < dn_50)
    bear |= _near(h, dn_618, tol) & (close < dn_618)
    bear &= down
    bear &= close < o
    combine.vote(bull, bear, out=bounce)

    buy = close <= up_618
    buy &= close >= hi - 0.65 * rng
    buy &= up
    sell = close >= dn_618
    sell &= close <= lo + 0.65 * rng
    sell &= down
    combine.vote(buy, sell, out=pocket)

    # 161.8 % extension of the previous swing window (the `period` bars before the current one)
    ref_hi, ref_lo = hi[: -p.period], lo[: -p.period]
    now = close[p.period :]
    ref = ref_hi - ref_lo
    ref *= 1.618
    ext_up = ref_lo + ref
    ext_dn = ref_hi - ref
    etol = p.ext_tolerance_pct / 100.0
    combine.vote(
        _near(now, ext_dn, etol * np.abs(ext_dn)), _near(now, ext_up, etol * np.abs(ext_up)), out=extension[p.period :]
    )

    # pivots of the previous bar
    ph, pl, pc, now = h[:-1], low[:-1], close[:-1], close[1:]
    r1, s1 = floor_pivots(ph, pl, pc)
    combine.vote(now > r1, now < s1, out=pivots[1:])
    r3, s3 = camarilla(ph, pl, pc)
    combine.vote(now > r3, now < s3, out=cam[1:])
    return votes


def fibonacci_votes(c: Context, p: FibonacciParams) -> dict[str, I8]:
    """The five sub-votes (+1 BUY, -1 SELL, 0 HOLD) per bar."""
    return dict(zip(VOTES, _vote_rows(c, p), strict=True))


def fibonacci(c: Context, p: FibonacciParams) -> SignalOutput:
    """Fibonacci levels of the rolling swing plus floor and Camarilla pivots: five sub-votes, majority.

    Swing = the highest high H and lowest low L of the last 100 bars (`period`, current bar included;
    SEED used its whole 100-bar frame), range R = H - L. Trend = the sign of SMA(20) now minus SMA(20)
    5 bars ago (`trend_sma`, `slope_bars`; a change below 1e-9 of the SMA is no trend). In an uptrend a
    retracement level r sits at H - r x R, in a downtrend at L + r x R.

    - Retracement bounce: in an uptrend, the bar's low within 3 % of R (`touch_pct`) of the 50 % or
      61.8 % level, the close above that level and above the open: BUY. In a downtrend, the high within
      3 % of R of the level, the close below it and below the open: SELL.
    - Golden pocket: in an uptrend the close between the 61.8 % and 65 % retracements (H - 0.65 R ..
      H - 0.618 R): BUY; in a downtrend between L + 0.618 R and L + 0.65 R: SELL.
    - 161.8 % extension exhaustion (contrarian): the reference swing is the previous 100-bar window
      (bars t-199 .. t-100, high H', low L', R' = H' - L'). The close within 1.5 % (`ext_tolerance_pct`)
      of L' + 1.618 R' (an up move extended to 161.8 %): SELL; within 1.5 % of H' - 1.618 R': BUY.
    - Standard pivots from the previous bar (SEED used the previous period; a bar is the period here):
      P = (H1 + L1 + C1) / 3, R1 = 2P - L1, S1 = 2P - H1. The close above R1: BUY, below S1: SELL.
    - Camarilla from the previous bar: R3 = C1 + (H1 - L1) x 1.1 / 4, S3 = C1 - (H1 - L1) x 1.1 / 4. The
      close above R3: BUY, below S3: SELL.

    Combining (shared majority rule): BUY only if the BUY votes outnumber both the SELL votes and the
    abstentions (SELL likewise), otherwise HOLD; confidence = winning votes / (BUY + SELL votes).
    No vote before the warm-up (200 bars: the extension's two swing windows), even if enough faster
    sub-indicators agree.
    """
    # bars before the warm-up hold, however many sub-indicators are ready
    return combine.majority(_vote_rows(c, p), hold_before=_warmup(p) - 1)


def _warmup(p: FibonacciParams) -> int:
    return max(2 * p.period, p.trend_sma + p.slope_bars, 2)


FIBONACCI = SignalSpec(
    name="fibonacci",
    family="composite",
    params_model=FibonacciParams,
    compute=fibonacci,
    warmup=_warmup,
    summary="Fibonacci bounce, golden pocket and 161.8 % extension of the 100-bar swing, floor/Camarilla pivots",
    window=_warmup,
)

SIGNALS: tuple[SignalSpec, ...] = (FIBONACCI,)
