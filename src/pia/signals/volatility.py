"""The ``volatility_sig`` composite (SEED-SPEC §2.3): six volatility breakout rules folded by majority vote.

TA-Lib provides BBANDS, SMA, EMA, ATR, STDDEV, MAX and MIN; Keltner and Donchian channels are
assembled from them here.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from pia.signals import combine, ta
from pia.signals.base import F64, I8, Context, Params, SignalOutput, SignalSpec


class VolatilityParams(Params):
    bb_period: Annotated[int, Field(ge=2, le=400, description="Bollinger band SMA period.")] = 20
    bb_dev: Annotated[float, Field(gt=0, le=10, description="Bollinger band width in standard deviations.")] = 2.0
    squeeze_ratio: Annotated[
        float, Field(gt=0, lt=1, description="A squeeze is a band width below this fraction of its mean width.")
    ] = 0.5
    squeeze_mean: Annotated[int, Field(ge=2, le=1000, description="Bars in the mean band width.")] = 120
    atr_period: Annotated[int, Field(ge=2, le=200, description="ATR period of the ATR expansion rule.")] = 14
    atr_mean: Annotated[int, Field(ge=2, le=400, description="SMA period the ATR is compared with.")] = 20
    atr_ratio: Annotated[
        float, Field(gt=1, le=10, description="ATR above this multiple of its SMA is an expansion.")
    ] = 1.5
    kc_ema: Annotated[int, Field(ge=2, le=400, description="Keltner channel middle line EMA period.")] = 20
    kc_atr: Annotated[int, Field(ge=2, le=200, description="Keltner channel ATR period.")] = 10
    kc_mult: Annotated[float, Field(gt=0, le=10, description="Keltner channel half-width in ATRs.")] = 1.5
    rv_period: Annotated[int, Field(ge=2, le=400, description="Bars of log returns in the realised volatility.")] = 20
    rv_change: Annotated[int, Field(ge=1, le=100, description="Bars over which the realised volatility must rise.")] = 5
    donchian: Annotated[int, Field(ge=2, le=400, description="Donchian channel period.")] = 20


def keltner(ema: F64, atr: F64, mult: float) -> tuple[F64, F64]:
    """(upper, lower) Keltner channel: EMA ± ``mult`` × ATR."""
    half = mult * atr
    return ema + half, ema - half


def _log_return_vol(close: F64, period: int) -> F64:
    """:func:`realised_vol` of bars ``1 ..`` (the caller silences numpy's warnings for prices <= 0)."""
    out: F64 = ta.STDDEV(np.log(close[1:] / close[:-1]), timeperiod=period, nbdev=1.0)
    return out


def realised_vol(close: F64, period: int) -> F64:
    """Population standard deviation of the last ``period`` log returns (not annualised)."""
    out: F64 = np.full(len(close), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[1:] = _log_return_vol(close, period)
    return out


VOTES = ("bb_squeeze", "bb_breakout", "atr_expansion", "keltner", "realised_vol", "donchian")
"""The sub-indicators, in the order of the rows of :func:`_vote_rows`."""


def _vote_rows(c: Context, p: VolatilityParams) -> I8:
    """The sub-votes, one row per :data:`VOTES` entry (0 where a sub-indicator is not ready).

    A vote on bar ``t`` that compares with bar ``t - k`` is written from bar ``k`` on, comparing shifted views.
    """
    close = c.close
    votes = np.zeros((len(VOTES), c.n), dtype=np.int8)
    squeeze_vote, bb_vote, atr_vote, kc_vote, rv_vote, dc_vote = votes

    upper, middle, lower = c.bbands(p.bb_period, p.bb_dev)
    combine.vote(close > upper, close < lower, out=bb_vote)
    with np.errstate(invalid="ignore", divide="ignore"):
        width = (upper - lower) / middle
        squeeze = width < p.squeeze_ratio * ta.SMA(width, timeperiod=p.squeeze_mean)
        # the first bar out of a squeeze votes the breakout
        np.multiply(bb_vote[1:], squeeze[:-1] > squeeze[1:], out=squeeze_vote[1:])

        atr = c.atr(p.atr_period)
        combine.vote(close > c.open, close < c.open, out=atr_vote)
        atr_vote *= atr > p.atr_ratio * ta.SMA(atr, timeperiod=p.atr_mean)

        kc_up, kc_dn = keltner(c.ema(p.kc_ema), c.atr(p.kc_atr), p.kc_mult)
        combine.vote(close > kc_up, close < kc_dn, out=kc_vote)

        k = p.rv_change
        rv = c.cached(("log_return_vol", p.rv_period), lambda: _log_return_vol(close, p.rv_period))  # bars 1..
        now, past = close[k + 1 :], close[1:-k]
        combine.vote(now > past, now < past, out=rv_vote[k + 1 :])
        rv_vote[k + 1 :] *= rv[k:] > rv[:-k]

        hi, lo = _donchian(c, p.donchian)
        now = close[1:]
        combine.vote(now > hi[:-1], now < lo[:-1], out=dc_vote[1:])
    return votes


def _donchian(c: Context, period: int) -> tuple[F64, F64]:
    """(highest high, lowest low) of the ``period`` bars ending at each bar."""
    return (
        c.cached(("max", "high", period), lambda: ta.MAX(c.high, timeperiod=period)),
        c.cached(("min", "low", period), lambda: ta.MIN(c.low, timeperiod=period)),
    )


def volatility_votes(c: Context, p: VolatilityParams) -> dict[str, I8]:
    return dict(zip(VOTES, _vote_rows(c, p), strict=True))


def volatility_sig(c: Context, p: VolatilityParams) -> SignalOutput:
    """Volatility breakouts: six sub-indicators each vote BUY, SELL or abstain on every bar.

    The numbers are the parameter defaults.

    - Bollinger squeeze release: the band width (upper - lower) / middle of BB(20, 2) is in a squeeze
      when below 0.5 × its 120-bar mean; on the first bar out of a squeeze, BUY if the close is above
      the upper band, SELL if below the lower band.
    - Bollinger breakout: BUY when the close is above the upper band of BB(20, 2), SELL when below
      the lower band.
    - ATR expansion: when ATR(14) > 1.5 × its 20-bar SMA, vote the direction of the bar (BUY if it
      closed above its open, SELL if below).
    - Keltner breakout: BUY when the close is above EMA20 + 1.5 × ATR10, SELL when below
      EMA20 - 1.5 × ATR10.
    - Realised volatility: when the standard deviation of the last 20 log returns is higher than 5
      bars earlier, vote the direction of the close over those 5 bars (BUY up, SELL down).
    - Donchian breakout: BUY when the close is above the previous bar's 20-bar channel (the highest
      high of the 20 bars before this one), SELL when below its lowest low.

    Combining (majority): BUY only if the BUY votes outnumber both the SELL votes and the abstentions
    (SELL likewise); a BUY/SELL tie holds. Confidence = winning votes / (BUY + SELL votes).
    No vote before the warm-up (140 bars: the 120-bar mean band width and the bar before),
    even if enough faster sub-indicators agree.
    """
    # bars before the warm-up hold, however many sub-indicators are ready
    return combine.majority(_vote_rows(c, p), hold_before=_volatility_warmup(p) - 1)


def _volatility_warmup(p: VolatilityParams) -> int:
    return max(
        p.bb_period + p.squeeze_mean,  # the mean width, then the previous bar for the release
        p.atr_period + p.atr_mean,
        p.kc_ema,
        p.kc_atr + 1,
        p.rv_period + 1 + p.rv_change,
        p.donchian + 1,
    )


VOLATILITY_SIG = SignalSpec(
    name="volatility_sig",
    family="composite",
    params_model=VolatilityParams,
    compute=volatility_sig,
    warmup=_volatility_warmup,
    summary="Volatility majority of 6: BB squeeze release, BB, ATR expansion, Keltner, realised vol, Donchian",
)

SIGNALS: tuple[SignalSpec, ...] = (VOLATILITY_SIG,)
