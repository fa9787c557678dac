"""The ``momentum`` composite (SEED-SPEC §2.3): eight momentum oscillators folded by majority vote.

TA-Lib provides RSI, STOCH, CCI, WILLR, ROC and EMA. StochRSI, PPO (EMA-based) and Elder power are
built here from the shared RSI and EMAs so that nothing is computed twice.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from pia.signals import combine, ta
from pia.signals.base import F64, I8, Bool, Context, Params, SignalOutput, SignalSpec


class MomentumParams(Params):
    rsi_period: Annotated[int, Field(ge=2, le=200, description="RSI period (divergence and StochRSI).")] = 14
    div_lookback: Annotated[
        int, Field(ge=4, le=200, description="Bars compared for RSI divergence, split into two halves.")
    ] = 14
    stoch_k: Annotated[int, Field(ge=2, le=200, description="Stochastic %K range period.")] = 14
    stoch_slow: Annotated[int, Field(ge=1, le=50, description="Stochastic %K smoothing (SMA).")] = 3
    stoch_d: Annotated[int, Field(ge=1, le=50, description="Stochastic %D period (SMA of %K).")] = 3
    stoch_low: Annotated[float, Field(gt=0, lt=100, description="%K/%D crossing up below this level votes BUY.")] = 20.0
    stoch_high: Annotated[
        float, Field(gt=0, lt=100, description="%K/%D crossing down above this level votes SELL.")
    ] = 80.0
    stochrsi_period: Annotated[int, Field(ge=2, le=200, description="StochRSI range period over the RSI.")] = 14
    stochrsi_low: Annotated[float, Field(gt=0, lt=1, description="StochRSI below this votes BUY.")] = 0.2
    stochrsi_high: Annotated[float, Field(gt=0, lt=1, description="StochRSI above this votes SELL.")] = 0.8
    cci_period: Annotated[int, Field(ge=2, le=200, description="CCI period.")] = 20
    cci_bound: Annotated[float, Field(gt=0, le=1000, description="CCI below -bound votes BUY, above +bound SELL.")] = (
        100.0
    )
    willr_period: Annotated[int, Field(ge=2, le=200, description="Williams %R period.")] = 14
    willr_low: Annotated[float, Field(gt=-100, lt=0, description="Williams %R below this votes BUY.")] = -80.0
    willr_high: Annotated[float, Field(gt=-100, lt=0, description="Williams %R above this votes SELL.")] = -20.0
    roc_period: Annotated[int, Field(ge=1, le=200, description="Rate-of-change period.")] = 12
    ppo_fast: Annotated[int, Field(ge=2, le=200, description="PPO fast EMA period.")] = 12
    ppo_slow: Annotated[int, Field(ge=3, le=400, description="PPO slow EMA period.")] = 26
    ppo_signal: Annotated[int, Field(ge=2, le=200, description="PPO signal line (EMA of PPO) period.")] = 9
    elder_period: Annotated[int, Field(ge=2, le=200, description="Elder bull/bear power EMA period.")] = 13

    @model_validator(mode="after")
    def _ordered(self) -> MomentumParams:
        if self.stoch_low >= self.stoch_high:
            raise ValueError("stoch_low must be below stoch_high")
        if self.stochrsi_low >= self.stochrsi_high:
            raise ValueError("stochrsi_low must be below stochrsi_high")
        if self.willr_low >= self.willr_high:
            raise ValueError("willr_low must be below willr_high")
        if self.ppo_fast >= self.ppo_slow:
            raise ValueError("ppo_fast must be shorter than ppo_slow")
        return self


def _stoch_rsi(rsi: F64, period: int) -> F64:
    """:func:`stoch_rsi`, dividing by a zero range without ``np.errstate`` (the caller's)."""
    lo: F64
    rng: F64
    lo, rng = ta.MINMAX(rsi, timeperiod=period)  # (low, high)
    rng -= lo  # high - low
    out = rsi - lo
    out /= rng  # a zero range is a flat window: the RSI is its low too, and 0 / 0 is NaN
    return out


def stoch_rsi(rsi: F64, period: int) -> F64:
    """(RSI - its ``period``-bar low) / (its ``period``-bar high - low), in [0, 1]; NaN where the range is 0.

    Equal to TA-Lib's ``STOCHRSI`` fast %K / 100, except that a flat RSI has no value (TA-Lib reports 0).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return _stoch_rsi(rsi, period)


def _ppo_line(fast_ema: F64, slow_ema: F64) -> F64:
    """:func:`ppo`'s line, dividing by a zero EMA without ``np.errstate`` (the caller's)."""
    line = fast_ema - slow_ema
    line /= slow_ema
    line *= 100.0
    return line


def ppo(fast_ema: F64, slow_ema: F64, signal: int) -> tuple[F64, F64]:
    """(PPO, signal line): PPO = (EMA fast - EMA slow) / EMA slow × 100, signal = EMA(signal) of PPO."""
    with np.errstate(invalid="ignore", divide="ignore"):
        line = _ppo_line(fast_ema, slow_ema)
    return line, ta.EMA(line, timeperiod=signal)


VOTE_NAMES = ("rsi_divergence", "stochastic", "stoch_rsi", "cci", "williams_r", "roc", "ppo", "elder_power")
"""The sub-votes, in the order of the rows of :func:`momentum_vote_matrix`."""
_DIVERGENCE, _STOCHASTIC, _STOCH_RSI, _CCI, _WILLIAMS_R, _ROC, _PPO, _ELDER = range(len(VOTE_NAMES))

# Each sub-vote writes its BUY condition into ``buy`` and its SELL condition into ``sell`` (the zeroed rows of two
# boolean matrices, or their views from a later bar on: the bars before hold); the votes are one subtraction.


def _band_vote(buy: Bool, sell: Bool, x: F64, low: float, high: float) -> None:
    """BUY below ``low``, SELL above ``high``."""
    np.less(x, low, out=buy)
    np.greater(x, high, out=sell)


def _divergence_vote(buy: Bool, sell: Bool, close: F64, rsi: F64, lookback: int) -> None:
    """The newer half of the lookback (its extremes now) against the older half (theirs ``half`` bars ago)."""
    n = len(close)
    half = lookback // 2
    older = lookback - half
    p_lo_new, p_hi_new = ta.MINMAX(close, timeperiod=half)
    r_lo_new, r_hi_new = ta.MINMAX(rsi, timeperiod=half)
    if older == half:
        p_lo_old, p_hi_old, r_lo_old, r_hi_old = p_lo_new, p_hi_new, r_lo_new, r_hi_new
    else:
        p_lo_old, p_hi_old = ta.MINMAX(close, timeperiod=older)
        r_lo_old, r_hi_old = ta.MINMAX(rsi, timeperiod=older)
    if half < n:
        now, then = slice(half, None), slice(None, n - half)
        np.logical_and(p_lo_new[now] < p_lo_old[then], r_lo_new[now] > r_lo_old[then], out=buy[now])
        np.logical_and(p_hi_new[now] > p_hi_old[then], r_hi_new[now] < r_hi_old[then], out=sell[now])


def _stochastic_vote(buy: Bool, sell: Bool, c: Context, p: MomentumParams) -> None:
    """From bar 1 on: %K crossing above %D below ``stoch_low`` BUY, crossing below it above ``stoch_high`` SELL."""
    k, d = ta.STOCH(
        c.high,
        c.low,
        c.close,
        fastk_period=p.stoch_k,
        slowk_period=p.stoch_slow,
        slowk_matype=ta.MA_SMA,
        slowd_period=p.stoch_d,
        slowd_matype=ta.MA_SMA,
    )
    combine.crossings(k, d, buy, sell)
    k_now = k[1:]
    buy &= k_now < p.stoch_low
    sell &= k_now > p.stoch_high


def _roc_vote(buy: Bool, sell: Bool, roc: F64) -> None:
    """From bar 1 on: BUY when positive and higher than on the previous bar, SELL when negative and lower; as
    one comparison with the larger (smaller) of 0 and the previous value, which is NaN if that is."""
    roc_now, roc_before = roc[1:], roc[:-1]
    np.greater(roc_now, np.maximum(roc_before, 0.0), out=buy)
    np.less(roc_now, np.minimum(roc_before, 0.0), out=sell)


def _elder_vote(buy: Bool, sell: Bool, high: F64, low: F64, ema: F64) -> None:
    """Elder bull power high - EMA and bear power low - EMA, compared with 0: BUY if both high and low are above
    the EMA (the smaller of them is), SELL if both are below it (the larger is); NaN propagates."""
    np.greater(np.minimum(high, low), ema, out=buy)
    np.less(np.maximum(high, low), ema, out=sell)


def momentum_vote_matrix(c: Context, p: MomentumParams) -> I8:
    """The eight sub-votes (+1 BUY, -1 SELL, 0 HOLD per bar) as the rows of a (8, bars) matrix, in the order
    of :data:`VOTE_NAMES`.

    Indicators only this signal uses are not kept in the context's memo: each is dropped once its vote is
    cast, which keeps a long history's memory small.
    """
    close, high, low = c.close, c.high, c.low
    votes = np.zeros((len(VOTE_NAMES), c.n), dtype=np.int8)
    buy = votes.view(np.bool_)  # the BUY conditions, then the votes: BUY - SELL
    sell = np.zeros(buy.shape, dtype=np.bool_)
    rsi = c.rsi(p.rsi_period)
    roc = c.cached(("roc", p.roc_period), lambda: ta.ROC(close, timeperiod=p.roc_period))
    _divergence_vote(buy[_DIVERGENCE], sell[_DIVERGENCE], close, rsi, p.div_lookback)
    _stochastic_vote(buy[_STOCHASTIC, 1:], sell[_STOCHASTIC, 1:], c, p)
    with np.errstate(invalid="ignore", divide="ignore"):  # StochRSI's flat windows, a zero slow EMA: NaN, no vote
        srsi = _stoch_rsi(rsi, p.stochrsi_period)
        line = _ppo_line(c.ema(p.ppo_fast), c.ema(p.ppo_slow))
    _band_vote(buy[_STOCH_RSI], sell[_STOCH_RSI], srsi, p.stochrsi_low, p.stochrsi_high)
    del srsi
    combine.crossings(line, ta.EMA(line, timeperiod=p.ppo_signal), buy[_PPO, 1:], sell[_PPO, 1:])
    del line
    cci = ta.CCI(high, low, close, timeperiod=p.cci_period)
    _band_vote(buy[_CCI], sell[_CCI], cci, -p.cci_bound, p.cci_bound)
    del cci
    willr = ta.WILLR(high, low, close, timeperiod=p.willr_period)
    _band_vote(buy[_WILLIAMS_R], sell[_WILLIAMS_R], willr, p.willr_low, p.willr_high)
    del willr
    _roc_vote(buy[_ROC, 1:], sell[_ROC, 1:], roc)
    _elder_vote(buy[_ELDER], sell[_ELDER], high, low, c.ema(p.elder_period))
    votes -= sell.view(np.int8)  # NumPy bools are the bytes 0 and 1: BUY - SELL without a cast
    return votes


def momentum_votes(c: Context, p: MomentumParams) -> dict[str, I8]:
    """The eight named sub-votes (+1 BUY, -1 SELL, 0 HOLD per bar).

    Indicators only this signal uses are not kept in the context's memo: each is dropped once its vote is
    cast, which keeps a long history's memory small.
    """
    return dict(zip(VOTE_NAMES, momentum_vote_matrix(c, p), strict=True))


def momentum(c: Context, p: MomentumParams) -> SignalOutput:
    """Momentum oscillators: eight sub-indicators each vote BUY, SELL or abstain on every bar.

    The numbers are the parameter defaults.

    - RSI(14) divergence over 14 bars, split into the newer 7 and the older 7: BUY (bullish) when
      the newer half's lowest close is below the older half's while its lowest RSI is above the older
      half's; SELL (bearish) when the newer highest close is above the older one while its highest RSI
      is below.
    - Stochastic(14, 3, 3) (slow %K and %D, both SMA-smoothed): BUY on the bar %K crosses above %D
      with %K below 20, SELL on the bar %K crosses below %D with %K above 80.
    - StochRSI(14) = (RSI - 14-bar RSI low) / (14-bar RSI high - low): BUY below 0.2, SELL above 0.8;
      a flat RSI (zero range) abstains.
    - CCI(20): BUY below -100, SELL above +100.
    - Williams %R(14): BUY below -80, SELL above -20.
    - ROC(12): BUY when positive and higher than on the previous bar, SELL when negative and lower.
    - PPO(12, 26, 9) = (EMA12 - EMA26) / EMA26 × 100 with an EMA9 signal line: BUY on the bar PPO
      crosses above the signal, SELL on the bar it crosses below.
    - Elder power (13): bull power = high - EMA13, bear power = low - EMA13; BUY when both are
      positive, SELL when both are negative.

    Combining (majority): BUY only if the BUY votes outnumber both the SELL votes and the abstentions
    (SELL likewise); a BUY/SELL tie holds. Confidence = winning votes / (BUY + SELL votes).
    No vote before the warm-up (35 bars: the PPO signal line on this bar and the one before),
    even if enough faster sub-indicators agree.
    """
    votes = momentum_vote_matrix(c, p)
    # bars before the warm-up hold, however many sub-indicators are ready
    return combine.majority(votes, hold_before=_momentum_warmup(p) - 1)


def _momentum_warmup(p: MomentumParams) -> int:
    return max(
        p.rsi_period + p.div_lookback,  # RSI's first value, then the lookback
        p.stoch_k + p.stoch_slow + p.stoch_d - 1,  # first %D is at index k+slow+d-3, plus the previous bar
        p.rsi_period + p.stochrsi_period,
        p.cci_period,
        p.willr_period,
        p.roc_period + 2,
        p.ppo_slow + p.ppo_signal,  # first signal at index slow+signal-2, plus the previous bar
        p.elder_period,
    )


MOMENTUM = SignalSpec(
    name="momentum",
    family="composite",
    params_model=MomentumParams,
    compute=momentum,
    warmup=_momentum_warmup,
    summary="Momentum majority of 8: RSI divergence, Stochastic, StochRSI, CCI, Williams %R, ROC, PPO, Elder power",
)

SIGNALS: tuple[SignalSpec, ...] = (MOMENTUM,)
