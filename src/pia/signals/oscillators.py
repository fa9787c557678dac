"""The ``oscillators`` composite (SEED-SPEC §2.3): eight momentum oscillators, majority vote.

Indicators TA-Lib lacks are small public functions here (``awesome_oscillator``, ``vortex``,
``chande_momentum``, ``kst``, ``schaff_trend_cycle``, ``coppock``); :func:`oscillator_votes` gives the
named sub-votes and :func:`oscillators` folds them with :func:`pia.signals.combine.majority`.
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from pia.signals import combine, ta
from pia.signals.base import F64, I8, SETTLE_BARS, Bool, Context, Params, SignalOutput, SignalSpec

KST_ROC = (10, 15, 20, 30)
"""Pring's KST: the rate-of-change periods, ..."""
KST_SMA = (10, 10, 10, 15)
"""... their smoothing SMAs, ..."""
KST_WEIGHTS = (1.0, 2.0, 3.0, 4.0)
"""... and their weights."""


class OscillatorsParams(Params):
    ao_fast: Annotated[int, Field(ge=2, le=100, description="Awesome Oscillator: fast SMA of the median price.")] = 5
    ao_slow: Annotated[int, Field(ge=3, le=400, description="Awesome Oscillator: slow SMA of the median price.")] = 34
    aroon_period: Annotated[int, Field(ge=2, le=400, description="Aroon oscillator period.")] = 25
    aroon_level: Annotated[
        float, Field(gt=0, lt=100, description="Aroon oscillator level: BUY above +level, SELL below -level.")
    ] = 50.0
    vortex_period: Annotated[int, Field(ge=2, le=400, description="Vortex indicator period.")] = 14
    vortex_level: Annotated[
        float, Field(ge=0, le=5, description="Vortex: the dominant VI must also be above this level.")
    ] = 1.0
    cmo_period: Annotated[int, Field(ge=2, le=400, description="Chande momentum oscillator period.")] = 9
    cmo_level: Annotated[
        float, Field(gt=0, lt=100, description="Chande momentum: BUY above +level, SELL below -level.")
    ] = 50.0
    kst_signal: Annotated[int, Field(ge=2, le=100, description="KST signal line: SMA period of the KST.")] = 9
    stc_fast: Annotated[int, Field(ge=2, le=200, description="Schaff trend cycle: fast EMA of the MACD.")] = 23
    stc_slow: Annotated[int, Field(ge=3, le=200, description="Schaff trend cycle: slow EMA of the MACD.")] = 50
    stc_cycle: Annotated[
        int, Field(ge=2, le=100, description="Schaff trend cycle: lookback of both stochastic passes.")
    ] = 10
    stc_smooth: Annotated[
        int, Field(ge=1, le=50, description="Schaff trend cycle: EMA period smoothing each stochastic pass.")
    ] = 3
    stc_low: Annotated[float, Field(gt=0, lt=50, description="Schaff trend cycle: BUY below this level.")] = 25.0
    stc_high: Annotated[float, Field(gt=50, lt=100, description="Schaff trend cycle: SELL above this level.")] = 75.0
    trix_period: Annotated[int, Field(ge=2, le=100, description="TRIX: period of each of the three EMAs.")] = 15
    trix_signal: Annotated[int, Field(ge=2, le=100, description="TRIX signal line: EMA period of the TRIX.")] = 9
    coppock_long: Annotated[int, Field(ge=2, le=200, description="Coppock curve: the longer rate of change.")] = 14
    coppock_short: Annotated[int, Field(ge=1, le=200, description="Coppock curve: the shorter rate of change.")] = 11
    coppock_wma: Annotated[int, Field(ge=2, le=200, description="Coppock curve: WMA period of the summed ROCs.")] = 10

    @model_validator(mode="after")
    def _ordered(self) -> OscillatorsParams:
        if self.ao_fast >= self.ao_slow:
            raise ValueError("ao_fast must be shorter than ao_slow")
        if self.stc_fast >= self.stc_slow:
            raise ValueError("stc_fast must be shorter than stc_slow")
        return self


# --- indicators TA-Lib lacks ---------------------------------------------------------------------


def awesome_oscillator(high: F64, low: F64, fast: int = 5, slow: int = 34) -> F64:
    """Bill Williams' AO: SMA(fast) - SMA(slow) of the median price (high + low) / 2."""
    median = high + low
    median *= 0.5
    ao: F64 = ta.SMA(median, fast)
    ao -= ta.SMA(median, slow)
    return ao


def _vortex_from_bar_1(high: F64, low: F64, close: F64, period: int) -> tuple[F64, F64]:
    """:func:`vortex` from bar 1 on (one element shorter than ``high``; bar 0 has no previous bar)."""
    vip = high[1:] - low[:-1]
    vim = low[1:] - high[:-1]
    np.abs(vip, out=vip)
    np.abs(vim, out=vim)
    tr = ta.SUM(ta.TRANGE(high, low, close), period)[1:]  # TA-Lib's SUM skips TRANGE's leading NaN: same sums
    vip = ta.SUM(vip, period)
    vim = ta.SUM(vim, period)
    with np.errstate(divide="ignore", invalid="ignore"):  # no true range (flat bars): inf or NaN, no vote
        vip /= tr
        vim /= tr
    return vip, vim


def vortex(high: F64, low: F64, close: F64, period: int = 14) -> tuple[F64, F64]:
    """(VI+, VI-): sum(|high - previous low|) and sum(|low - previous high|) over ``period`` bars, each
    divided by the sum of the true range over the same bars."""
    vip = np.empty_like(high)
    vim = np.empty_like(high)
    vip[:1] = vim[:1] = np.nan
    vip[1:], vim[1:] = _vortex_from_bar_1(high, low, close, period)
    return vip, vim


def _chande_from_bar_1(out: F64, close: F64, period: int) -> None:
    """:func:`chande_momentum` from bar 1 on, into ``out`` (one element shorter than ``close``)."""
    d = close[1:] - close[:-1]  # the moves into bars 1.. (TA-Lib's SUM skips a leading NaN: same sums)
    total = ta.SUM(np.abs(d), period)
    su = ta.SUM(np.maximum(d, 0.0, out=d), period)
    total[total <= 0] = np.nan  # no move: NaN, without dividing by zero
    su *= 2.0
    su -= total
    su *= 100.0
    np.divide(su, total, out=out)


def chande_momentum(close: F64, period: int = 9) -> F64:
    """Chande's momentum oscillator as he defined it: 100 x (Su - Sd) / (Su + Sd), with Su and Sd the
    plain sums of the up and down close-to-close moves over the last ``period`` bars (NaN if there was
    no move). TA-Lib's ``CMO`` Wilder-smooths the moves instead (it equals 2 x RSI - 100)."""
    out = np.empty_like(close)
    out[:1] = np.nan
    _chande_from_bar_1(out[1:], close, period)
    return out


def kst(close: F64, signal: int = 9) -> tuple[F64, F64]:
    """(KST, signal): Pring's Know Sure Thing, sum of w_i x SMA(ROC(close, r_i), s_i) with
    r = 10/15/20/30, s = 10/10/10/15, w = 1/2/3/4 (ROC in percent); the signal is its SMA(``signal``)."""
    # the weighted SMAs summed in place, in order (starting from 0.0 would change nothing: they are never -0.0)
    k, *rest = [ta.SMA(ta.ROC(close, r), s) for r, s in zip(KST_ROC, KST_SMA, strict=True)]
    if KST_WEIGHTS[0] != 1.0:  # (x 1.0 changes no bit)
        k *= KST_WEIGHTS[0]
    for term, w in zip(rest, KST_WEIGHTS[1:], strict=True):
        term *= w
        k += term
    return k, ta.SMA(k, signal)


def stochastic(x: F64, cycle: int) -> F64:
    """100 x (x - lowest) / (highest - lowest) over the last ``cycle`` values; where that range is zero, the
    previous value (50 if there is none yet). Leading NaNs stay NaN."""
    k: F64
    rng: F64
    k, rng = ta.MINMAX(x, cycle)  # lowest, highest: the same loops as MIN and MAX, in one call
    rng -= k
    np.subtract(x, k, out=k)
    k *= 100.0
    if np.count_nonzero(rng) == len(rng):  # no zero range (NaN is not zero)
        k /= rng
        return k
    flat = rng == 0
    # no range: the stochastic is undefined; carry its last defined value (50 if it never had one),
    # which keeps the EMA chain that follows free of NaN
    rng[flat] = np.nan  # NaN instead of 0 / 0; with the leading NaNs, it marks the bars without a value
    k /= rng
    gaps = np.flatnonzero(np.isnan(rng))
    # a run of consecutive gap bars has a constant gaps[i] - i: its first bar is the first i with that value
    d = gaps - np.arange(len(gaps))
    src = d + np.searchsorted(d, d) - 1  # the bar before the run: the last bar with a value (-1: none yet)
    fill = flat[gaps]
    src, gaps = src[fill], gaps[fill]
    k[gaps] = np.where(src >= 0, k[src], 50.0)
    return k


def schaff_trend_cycle(
    close: F64, fast: int = 23, slow: int = 50, cycle: int = 10, smooth: int = 3, macd: F64 | None = None
) -> F64:
    """Schaff trend cycle, 0..100: the MACD (EMA fast - EMA slow) through a stochastic over ``cycle``
    bars, EMA(``smooth``), a second stochastic over ``cycle`` bars, EMA(``smooth``). Where a
    stochastic's range is zero it keeps its previous value (50 if it never had one)."""
    m = ta.EMA(close, fast) - ta.EMA(close, slow) if macd is None else macd
    d = stochastic(m, cycle)
    if smooth > 1:
        d = ta.EMA(d, smooth)
    d = stochastic(d, cycle)
    return ta.EMA(d, smooth) if smooth > 1 else d


def coppock(close: F64, long: int = 14, short: int = 11, wma: int = 10) -> F64:
    """Coppock curve: WMA(``wma``) of ROC(long) + ROC(short), ROC in percent."""
    roc = ta.ROC(close, long)
    roc += ta.ROC(close, short)
    out: F64 = ta.WMA(roc, wma)
    return out


def oscillators_warmup(p: OscillatorsParams) -> int:
    """Bars before every sub-indicator can vote on the last bar (the longest lookback, plus the bars a
    crossing or turn compares against)."""
    kst_first = max(r + s - 1 for r, s in zip(KST_ROC, KST_SMA, strict=True)) + p.kst_signal - 1
    return max(
        p.ao_slow + 2,  # saucer reads AO two bars back
        p.aroon_period + 1,
        p.vortex_period + 1,
        p.cmo_period + 1,
        kst_first + 2,
        p.stc_slow + 2 * (p.stc_cycle - 1) + 2 * (p.stc_smooth - 1) + 1,  # STC first value, plus the 50-cross
        3 * (p.trix_period - 1) + p.trix_signal + 2,  # TRIX first value + its EMA signal, plus the crossing
        max(p.coppock_long, p.coppock_short) + p.coppock_wma + 2,  # the turn reads two bars back
    )


def oscillators_window(p: OscillatorsParams) -> int:
    """Live window: warm-up plus the bars the slowest EMA (the STC's slow MACD leg) needs to forget its
    seed below ~1e-11, i.e. SETTLE_BARS scaled from period 30 to ``stc_slow``."""
    return oscillators_warmup(p) + max(SETTLE_BARS, math.ceil(SETTLE_BARS * (p.stc_slow + 1) / 31))


# --- sub-votes and composite --------------------------------------------------------------------


VOTE_NAMES = ("awesome", "aroon", "vortex", "chande", "kst", "schaff", "trix", "coppock")
"""The sub-votes, in the order of the rows of :func:`oscillator_vote_matrix`."""


_AWESOME, _AROON, _VORTEX, _CHANDE, _KST, _SCHAFF, _TRIX, _COPPOCK = range(len(VOTE_NAMES))

# Each sub-vote writes its BUY condition into ``buy`` and its SELL condition into ``sell`` (the zeroed rows of two
# boolean matrices, or their views from bar 1 or 2 on: the bars before hold); the votes are one subtraction.


def _awesome_vote(buy: Bool, sell: Bool, ao: F64) -> None:
    """From bar 1 on: BUY on a zero cross up or a bullish saucer (a strict trough above zero on the previous bar),
    SELL on the mirrors: bar ``t`` BUYs if ``ao[t] > 0`` and either ``ao[t-1] <= 0`` (the cross) or ``ao[t-1]``
    fell and ``ao[t]`` rose (then ``ao[t-1] > 0``: a saucer; a NaN ``ao[t-1]`` compares false both ways)."""
    a0, a1 = ao[1:], ao[:-1]  # bar t, bar t-1, for t >= 1
    rise, fall = a0 > a1, a0 < a1
    np.less_equal(a1, 0.0, out=buy)
    buy[1:] |= fall[:-1] & rise[1:]
    buy &= a0 > 0.0
    np.greater_equal(a1, 0.0, out=sell)
    sell[1:] |= rise[:-1] & fall[1:]
    sell &= a0 < 0.0


def _level_vote(buy: Bool, sell: Bool, x: F64, level: float) -> None:
    """BUY above ``+level``, SELL below ``-level``."""
    np.greater(x, level, out=buy)
    np.less(x, -level, out=sell)


def _chande_vote(buy: Bool, sell: Bool, close: F64, period: int, level: float) -> None:
    """From bar 1 on (bar 0 has no move): :func:`chande_momentum` above ``+level`` BUY, below ``-level`` SELL."""
    cmo = np.empty_like(close)[1:]
    _chande_from_bar_1(cmo, close, period)
    _level_vote(buy, sell, cmo, level)


def _vortex_vote(buy: Bool, sell: Bool, vi: tuple[F64, F64], level: float) -> None:
    """BUY if VI+ is above VI- and ``level``, SELL if VI- is."""
    vip, vim = vi
    np.logical_and(vip > level, vip > vim, out=buy)
    np.logical_and(vim > level, vim > vip, out=sell)


def _schaff_vote(buy: Bool, sell: Bool, stc: F64, low: float, high: float) -> None:
    """BUY crossing up through 50 or below ``low``, SELL crossing down through 50 or above ``high``."""
    combine.crossings(stc, 50.0, buy[1:], sell[1:])
    buy |= stc < low
    sell |= stc > high


def _trix_vote(buy: Bool, sell: Bool, trix: F64, signal: int) -> None:
    """From bar 1 on: BUY on an upward crossing of zero or of the EMA(``signal``) signal line, SELL on a downward
    one (both: HOLD)."""
    combine.crossings(trix, 0.0, buy, sell)
    up, down = np.empty((2, len(trix)), dtype=np.bool_)[:, 1:]
    combine.crossings(trix, ta.EMA(trix, signal), up, down)
    buy |= up
    sell |= down


def _coppock_vote(buy: Bool, sell: Bool, cop: F64) -> None:
    """From bar 2 on: BUY when the previous bar was a trough below zero (``c1 <= c2``, ``c1 < c0``, ``c1 < 0``),
    SELL when it was a peak above zero (the mirror).

    ``c1 < 0`` and ``c1 < c0`` are one comparison with the smaller of 0 and ``c0`` (NaN if ``c0`` is), and
    the mirror for SELL."""
    c0, c1, c2 = cop[2:], cop[1:-1], cop[:-2]
    np.less(c1, np.minimum(c0, 0.0), out=buy)
    buy &= c1 <= c2
    np.greater(c1, np.maximum(c0, 0.0), out=sell)
    sell &= c1 >= c2


def oscillator_vote_matrix(c: Context, p: OscillatorsParams) -> I8:
    """The eight sub-votes (+1 BUY, -1 SELL, 0 HOLD per bar) as the rows of a (8, bars) matrix, in the order
    of :data:`VOTE_NAMES`."""
    h, lo, close = c.high, c.low, c.close
    votes = np.zeros((len(VOTE_NAMES), c.n), dtype=np.int8)
    buy = votes.view(np.bool_)  # the BUY conditions, then the votes: BUY - SELL
    sell = np.zeros(buy.shape, dtype=np.bool_)
    # The indicators are this signal's own (only the EMAs are shared, through the memo): each is dropped once
    # its conditions are written, so a long history's temporaries are freed and reused.
    _awesome_vote(buy[_AWESOME, 1:], sell[_AWESOME, 1:], awesome_oscillator(h, lo, p.ao_fast, p.ao_slow))
    _level_vote(buy[_AROON], sell[_AROON], ta.AROONOSC(h, lo, p.aroon_period), p.aroon_level)
    _vortex_vote(buy[_VORTEX, 1:], sell[_VORTEX, 1:], _vortex_from_bar_1(h, lo, close, p.vortex_period), p.vortex_level)
    _chande_vote(buy[_CHANDE, 1:], sell[_CHANDE, 1:], close, p.cmo_period, p.cmo_level)
    combine.crossings(*kst(close, p.kst_signal), buy[_KST, 1:], sell[_KST, 1:])
    macd = c.ema(p.stc_fast) - c.ema(p.stc_slow)
    stc = schaff_trend_cycle(close, p.stc_fast, p.stc_slow, p.stc_cycle, p.stc_smooth, macd=macd)
    _schaff_vote(buy[_SCHAFF], sell[_SCHAFF], stc, p.stc_low, p.stc_high)
    del macd, stc  # dropped like the other indicators
    _trix_vote(buy[_TRIX, 1:], sell[_TRIX, 1:], ta.TRIX(close, p.trix_period), p.trix_signal)
    _coppock_vote(buy[_COPPOCK, 2:], sell[_COPPOCK, 2:], coppock(close, p.coppock_long, p.coppock_short, p.coppock_wma))
    votes -= sell.view(np.int8)  # NumPy bools are the bytes 0 and 1: BUY - SELL without a cast
    return votes


def oscillator_votes(c: Context, p: OscillatorsParams) -> dict[str, I8]:
    """The eight named sub-votes (+1 BUY, -1 SELL, 0 HOLD per bar)."""
    return dict(zip(VOTE_NAMES, oscillator_vote_matrix(c, p), strict=True))


def oscillators(c: Context, p: OscillatorsParams) -> SignalOutput:
    """Eight momentum oscillators, each voting BUY, SELL or HOLD on every bar (the numbers
    below are the default parameters):

    - **awesome**: Awesome Oscillator AO = SMA5 - SMA34 of the median price (high + low) / 2. BUY when AO
      crosses above zero (previous bar <= 0, this bar > 0) or on a bullish saucer (three bars above zero,
      the middle one lower than the first and the last higher than the middle); SELL on the mirror
      (crossing below zero, or a bearish saucer below zero).
    - **aroon**: Aroon oscillator (25) above +50 BUY, below -50 SELL.
    - **vortex**: Vortex (14): BUY if VI+ > VI- and VI+ > 1.0, SELL if VI- > VI+ and VI- > 1.0.
    - **chande**: Chande momentum oscillator (9), Chande's plain-sum form 100 x (up moves - down moves) /
      (up moves + down moves) over the last 9 closes (not TA-Lib's Wilder-smoothed CMO). Momentum-style:
      above +50 BUY, below -50 SELL.
    - **kst**: Pring's KST (ROC 10/15/20/30 smoothed by SMA 10/10/10/15, weights 1/2/3/4) crossing its
      9-bar SMA signal line: up BUY, down SELL.
    - **schaff**: Schaff trend cycle (MACD = EMA23 - EMA50 through two stochastic passes over 10 bars, each
      EMA(3)-smoothed; a pass with no range keeps its previous value): below 25 BUY, above 75 SELL
      (contrarian levels); also BUY when it crosses up through 50 and SELL when it crosses down through 50.
    - **trix**: TRIX (15, TA-Lib: one-bar percent change of a triple EMA) crossing zero or its EMA(9) signal
      line: an upward crossing of either BUY, a downward crossing of either SELL (both at once: HOLD).
    - **coppock**: Coppock curve WMA10(ROC14 + ROC11) turning: BUY when the previous bar was a trough below
      zero (below zero, not above the bar before it) and the curve now rises; SELL when the previous bar was
      a peak above zero and the curve now falls.

    Combining (majority): BUY if the BUY votes outnumber both the SELL votes and the HOLD votes (SELL
    likewise); otherwise HOLD. Confidence = winning votes / (BUY + SELL votes).
    """
    return combine.majority(oscillator_vote_matrix(c, p))


OSCILLATORS = SignalSpec(
    name="oscillators",
    family="composite",
    params_model=OscillatorsParams,
    compute=oscillators,
    warmup=oscillators_warmup,
    window=oscillators_window,
    summary="Majority of 8 oscillators: Awesome, Aroon, Vortex, Chande, KST, Schaff, TRIX, Coppock",
)

SIGNALS: tuple[SignalSpec, ...] = (OSCILLATORS,)
