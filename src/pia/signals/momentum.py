"""The ``momentum`` composite (SEED-SPEC §2.3): eight momentum oscillators folded by majority vote.

TA-Lib provides RSI, STOCH, CCI, WILLR, ROC and EMA. StochRSI, PPO (EMA-based) and Elder power are
built here from the shared RSI and EMAs so that nothing is computed twice.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import talib
from pydantic import Field, model_validator

from pia.signals import combine
from pia.signals.base import F64, I8, Context, Params, SignalOutput, SignalSpec

_SMA: Any = talib.MA_Type.SMA  # type: ignore[attr-defined]


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


def stoch_rsi(rsi: F64, period: int) -> F64:
    """(RSI - its ``period``-bar low) / (its ``period``-bar high - low), in [0, 1]; NaN where the range is 0.

    Equal to TA-Lib's ``STOCHRSI`` fast %K / 100, except that a flat RSI has no value (TA-Lib reports 0).
    """
    lo = talib.MIN(rsi, timeperiod=period)
    rng = talib.MAX(rsi, timeperiod=period) - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        out: F64 = np.where(rng > 0, (rsi - lo) / rng, np.nan)
    return out


def ppo(fast_ema: F64, slow_ema: F64, signal: int) -> tuple[F64, F64]:
    """(PPO, signal line): PPO = (EMA fast - EMA slow) / EMA slow × 100, signal = EMA(signal) of PPO."""
    with np.errstate(invalid="ignore", divide="ignore"):
        line: F64 = (fast_ema - slow_ema) / slow_ema * 100.0
    return line, talib.EMA(line, timeperiod=signal)


def momentum_votes(c: Context, p: MomentumParams) -> dict[str, I8]:
    close, high, low = c.close, c.high, c.low
    rsi = c.rsi(p.rsi_period)

    # divergence: the newer half of the lookback against the older half
    half = p.div_lookback // 2
    older = p.div_lookback - half
    p_lo_new, p_hi_new = talib.MINMAX(close, timeperiod=half)
    p_lo_old, p_hi_old = (c.prev(a, half) for a in talib.MINMAX(close, timeperiod=older))
    r_lo_new, r_hi_new = talib.MINMAX(rsi, timeperiod=half)
    r_lo_old, r_hi_old = (c.prev(a, half) for a in talib.MINMAX(rsi, timeperiod=older))
    bull_div = (p_lo_new < p_lo_old) & (r_lo_new > r_lo_old)
    bear_div = (p_hi_new > p_hi_old) & (r_hi_new < r_hi_old)

    k, d = c.cached(
        ("STOCH", p.stoch_k, p.stoch_slow, p.stoch_d),
        lambda: talib.STOCH(
            high,
            low,
            close,
            fastk_period=p.stoch_k,
            slowk_period=p.stoch_slow,
            slowk_matype=_SMA,
            slowd_period=p.stoch_d,
            slowd_matype=_SMA,
        ),
    )
    pk, pd = c.prev(k), c.prev(d)
    srsi = c.cached(("stoch_rsi", p.rsi_period, p.stochrsi_period), lambda: stoch_rsi(rsi, p.stochrsi_period))
    cci = c.cached(("CCI", p.cci_period), lambda: talib.CCI(high, low, close, timeperiod=p.cci_period))
    willr = c.cached(("WILLR", p.willr_period), lambda: talib.WILLR(high, low, close, timeperiod=p.willr_period))
    roc = c.cached(("ROC", p.roc_period), lambda: talib.ROC(close, timeperiod=p.roc_period))
    proc = c.prev(roc)
    line, sig = c.cached(
        ("ppo", p.ppo_fast, p.ppo_slow, p.ppo_signal),
        lambda: ppo(c.ema(p.ppo_fast), c.ema(p.ppo_slow), p.ppo_signal),
    )
    pline, psig = c.prev(line), c.prev(sig)
    ema = c.ema(p.elder_period)
    bull, bear = high - ema, low - ema
    return {
        "rsi_divergence": combine.vote(bull_div, bear_div),
        "stochastic": combine.vote((pk <= pd) & (k > d) & (k < p.stoch_low), (pk >= pd) & (k < d) & (k > p.stoch_high)),
        "stoch_rsi": combine.vote(srsi < p.stochrsi_low, srsi > p.stochrsi_high),
        "cci": combine.vote(cci < -p.cci_bound, cci > p.cci_bound),
        "williams_r": combine.vote(willr < p.willr_low, willr > p.willr_high),
        "roc": combine.vote((roc > 0) & (roc > proc), (roc < 0) & (roc < proc)),
        "ppo": combine.vote((pline <= psig) & (line > sig), (pline >= psig) & (line < sig)),
        "elder_power": combine.vote((bull > 0) & (bear > 0), (bull < 0) & (bear < 0)),
    }


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
    out = combine.majority(list(momentum_votes(c, p).values()))
    early = _momentum_warmup(p) - 1  # bars before the warm-up hold, however many sub-indicators are ready
    out.action[:early] = 0
    out.confidence[:early] = 0.0
    return out


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
