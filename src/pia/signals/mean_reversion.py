"""The ``mean_reversion`` composite (SEED-SPEC §2.3): seven short-horizon reversal rules, majority vote.

:func:`mean_reversion_votes` gives the named sub-votes and :func:`mean_reversion` folds them with
:func:`pia.signals.combine.majority`.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from pia.signals import combine, ta
from pia.signals.base import F64, I8, Bool, Context, Params, SignalOutput, SignalSpec


class MeanReversionParams(Params):
    rsi_fast: Annotated[int, Field(ge=2, le=50, description="Period of the fast RSI (Connors' RSI(2)).")] = 2
    rsi_fast_low: Annotated[float, Field(gt=0, lt=50, description="Fast RSI: BUY below this level.")] = 10.0
    rsi_fast_high: Annotated[float, Field(gt=50, lt=100, description="Fast RSI: SELL above this level.")] = 90.0
    rsi_slow: Annotated[int, Field(ge=2, le=50, description="Period of the second RSI.")] = 3
    rsi_slow_low: Annotated[float, Field(gt=0, lt=50, description="Second RSI: BUY below this level.")] = 15.0
    rsi_slow_high: Annotated[float, Field(gt=50, lt=100, description="Second RSI: SELL above this level.")] = 85.0
    ibs_low: Annotated[
        float, Field(gt=0, lt=0.5, description="Internal bar strength (close - low) / (high - low): BUY below.")
    ] = 0.2
    ibs_high: Annotated[float, Field(gt=0.5, lt=1, description="Internal bar strength: SELL above.")] = 0.8
    streak: Annotated[
        int, Field(ge=1, le=20, description="Consecutive lower (higher) closes that vote BUY (SELL).")
    ] = 3
    gap_pct: Annotated[
        float, Field(gt=0, le=20, description="Gap fade: minimum gap between the open and the previous close, %.")
    ] = 0.5
    gap_fill: Annotated[
        float, Field(gt=0, le=1, description="Gap fade: minimum fraction of the gap the close has filled.")
    ] = 0.3
    bb_period: Annotated[int, Field(ge=2, le=400, description="Bollinger %B: SMA period.")] = 20
    bb_dev: Annotated[float, Field(gt=0, le=10, description="Bollinger %B: band width in standard deviations.")] = 2.0
    pct_b_low: Annotated[float, Field(lt=0.5, ge=-1, description="Bollinger %B: BUY below this level.")] = 0.2
    pct_b_high: Annotated[float, Field(gt=0.5, le=2, description="Bollinger %B: SELL above this level.")] = 0.8


def rsi_moving(c: Context, period: int) -> F64:
    """TA-Lib's Wilder RSI, NaN where the last ``period + 1`` closes are all equal and it reads 0 (no
    change at all: TA-Lib reports 0, which would read as oversold)."""

    def compute() -> F64:
        r = c.rsi(period)
        if r.all():  # no 0 anywhere (NaN counts as true): the shared RSI as it is
            return r
        zero = r == 0
        # Only the zeros need the flat test: MINMAX (causal, so the same values) runs up to the last one.
        end = len(r) - int(zero[::-1].argmax())
        lowest, highest = ta.MINMAX(c.close[:end], period + 1)
        zero[:end] &= highest == lowest
        return np.where(zero, np.nan, r)

    return c.cached(("rsi_moving", period), compute)


def internal_bar_strength(high: F64, low: F64, close: F64) -> F64:
    """(close - low) / (high - low), NaN for a bar with no range."""
    rng = high - low
    out = np.empty(close.shape)
    out.fill(np.nan)
    np.divide(close - low, rng, out=out, where=rng > 0)
    return out


def gap_fade(open_: F64, close: F64, gap_pct: float = 0.5, fill: float = 0.3) -> tuple[Bool, Bool]:
    """(BUY, SELL) masks of the gap fade.

    A gap up: this bar opens more than ``gap_pct`` % above the previous close; by the close at least
    ``fill`` of it is filled, i.e. (open - close) >= fill x (open - previous close): the fade has
    started → SELL. A gap down and a close at least ``fill`` of the way back up → BUY.
    """
    buy = np.zeros(close.shape, dtype=np.bool_)
    sell = np.zeros(close.shape, dtype=np.bool_)
    buy[1:], sell[1:] = _gap_fade_after_first(open_, close, gap_pct, fill)
    return buy, sell


def _gap_fade_after_first(open_: F64, close: F64, gap_pct: float, fill: float) -> tuple[Bool, Bool]:
    """:func:`gap_fade`'s (BUY, SELL) masks of bars ``1 ..`` (the first bar has no previous close)."""
    o, pc = open_[1:], close[:-1]
    gap = o - pc
    filled = o - close[1:]  # positive when the close is back below the open
    least = pc * (gap_pct / 100.0)
    part = fill * gap
    return (gap < -least) & (filled <= part), (gap > least) & (filled >= part)


def mean_reversion_warmup(p: MeanReversionParams) -> int:
    """Bars before every sub-indicator can vote on the last bar."""
    return max(p.rsi_fast + 1, p.rsi_slow + 1, p.bb_period, p.streak + 1)


def mean_reversion_window(p: MeanReversionParams) -> int:
    """Live window: warm-up plus the bars the Wilder RSIs (alpha 1/period) need to forget their seed
    below ~1e-11: 100 bars for RSI(3), 30 per period beyond."""
    return mean_reversion_warmup(p) + max(100, 30 * max(p.rsi_fast, p.rsi_slow))


MEAN_REVERSION_VOTES = ("rsi_fast", "rsi_slow", "ibs", "streak", "gap_fade", "percent_b", "ibs_and_rsi")


def mean_reversion_votes(c: Context, p: MeanReversionParams) -> dict[str, I8]:
    """The seven named sub-votes (+1 BUY, -1 SELL, 0 HOLD per bar)."""
    return dict(zip(MEAN_REVERSION_VOTES, _mean_reversion_vote_matrix(c, p), strict=True))


def _mean_reversion_vote_matrix(c: Context, p: MeanReversionParams) -> I8:
    """The sub-votes as the rows of one (7, n) matrix, in :data:`MEAN_REVERSION_VOTES` order."""
    close, n = c.close, c.n
    votes = np.empty((len(MEAN_REVERSION_VOTES), n), dtype=np.int8)
    rsi_fast, rsi_slow, ibs_vote, streak, gap, percent_b, ibs_and_rsi = votes

    r_fast = rsi_moving(c, p.rsi_fast)
    r_slow = rsi_moving(c, p.rsi_slow)
    ibs = c.cached(("internal_bar_strength",), lambda: internal_bar_strength(c.high, c.low, close))
    fast_low, fast_high = r_fast < p.rsi_fast_low, r_fast > p.rsi_fast_high
    ibs_low, ibs_high = ibs < p.ibs_low, ibs > p.ibs_high
    combine.vote(fast_low, fast_high, out=rsi_fast)
    combine.vote(r_slow < p.rsi_slow_low, r_slow > p.rsi_slow_high, out=rsi_slow)
    combine.vote(ibs_low, ibs_high, out=ibs_vote)
    combine.vote(ibs_low & fast_low, ibs_high & fast_high, out=ibs_and_rsi)

    # Shifted slices compare bar t with bar t - 1; a streak of k moves can first vote on bar k.
    k = min(p.streak, n)
    streak[:k] = 0
    if n > k:
        now, before = close[1:], close[:-1]
        fell, rose = now < before, now > before  # index i: bar i + 1 against bar i
        m = n - k
        falls, rises = fell[k - 1 :], rose[k - 1 :]  # bars k ..: the move into bar t, then the j-th before it
        for j in range(1, k):
            falls = falls & fell[k - 1 - j : k - 1 - j + m]
            rises = rises & rose[k - 1 - j : k - 1 - j + m]
        combine.vote(falls, rises, out=streak[k:])
    gap[:1] = 0
    combine.vote(*_gap_fade_after_first(c.open, close, p.gap_pct, p.gap_fill), out=gap[1:])

    upper, _, lower = c.bbands(p.bb_period, p.bb_dev)
    width = upper - lower
    pct_b = np.empty(n)
    pct_b.fill(np.nan)
    np.divide(close - lower, width, out=pct_b, where=width > 0)
    combine.vote(pct_b < p.pct_b_low, pct_b > p.pct_b_high, out=percent_b)
    return votes


def mean_reversion(c: Context, p: MeanReversionParams) -> SignalOutput:
    """Seven short-horizon mean-reversion rules (contrarian), each voting BUY, SELL or HOLD on every bar (the numbers
    below are the default parameters):

    - **rsi_fast**: RSI(2) below 10 BUY, above 90 SELL.
    - **rsi_slow**: RSI(3) below 15 BUY, above 85 SELL.
    - **ibs**: internal bar strength (close - low) / (high - low) below 0.2 BUY, above 0.8 SELL (a bar
      with no range abstains).
    - **streak**: 3 closes in a row each lower than the one before (3 down closes) BUY; 3 higher SELL.
    - **gap_fade**: the bar opens more than 0.5 % above the previous close and closes at least 30 % of
      the way back, (open - close) >= 0.3 x (open - previous close) → SELL; the mirror after a gap down
      → BUY.
    - **percent_b**: Bollinger %B (20 bars, 2 population standard deviations) below 0.2 BUY, above 0.8 SELL.
    - **ibs_and_rsi**: IBS below 0.2 and RSI(2) below 10 together BUY; IBS above 0.8 and RSI(2) above 90
      SELL.

    The RSIs are TA-Lib's (Wilder); where the closes have not moved at all over the RSI's span it abstains.

    Combining (majority): BUY if the BUY votes outnumber both the SELL votes and the HOLD votes (SELL
    likewise); otherwise HOLD. Confidence = winning votes / (BUY + SELL votes).
    """
    return combine.majority(_mean_reversion_vote_matrix(c, p))


MEAN_REVERSION = SignalSpec(
    name="mean_reversion",
    family="composite",
    params_model=MeanReversionParams,
    compute=mean_reversion,
    warmup=mean_reversion_warmup,
    window=mean_reversion_window,
    summary="Majority of 7 reversal rules: RSI(2), RSI(3), IBS, close streaks, gap fade, %B, IBS with RSI(2)",
)

SIGNALS: tuple[SignalSpec, ...] = (MEAN_REVERSION,)
