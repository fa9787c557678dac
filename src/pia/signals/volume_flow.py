"""The ``volume_flow`` composite (SEED-SPEC §2.3): six volume-weighted flow measures folded by majority vote.

OBV and the accumulation/distribution line are running totals whose level depends on where the
series starts; only their distance from their own moving average is used, and that distance is
computed from the last bars' increments (:func:`cumulative_minus_sma`), so a live window gives the
same value as the full history. The original's VWAP was cumulative over its 100-bar window; here it
is a rolling ``vwap_period``-bar VWAP (default 100, which is what the original saw at its last bar).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from pia.signals import combine, ta
from pia.signals.base import F64, I8, Context, Params, SignalOutput, SignalSpec


class VolumeFlowParams(Params):
    obv_period: Annotated[int, Field(ge=2, le=400, description="SMA period that OBV is compared with.")] = 20
    vwap_period: Annotated[int, Field(ge=2, le=2000, description="Bars in the rolling VWAP.")] = 100
    ad_period: Annotated[
        int, Field(ge=2, le=400, description="SMA period that the accumulation/distribution line is compared with.")
    ] = 20
    cmf_period: Annotated[int, Field(ge=2, le=400, description="Chaikin money flow period.")] = 20
    cmf_bound: Annotated[float, Field(gt=0, lt=1, description="CMF above +bound votes BUY, below -bound SELL.")] = 0.05
    mfi_period: Annotated[int, Field(ge=2, le=200, description="Money flow index period.")] = 14
    mfi_low: Annotated[float, Field(gt=0, lt=100, description="MFI below this votes BUY.")] = 20.0
    mfi_high: Annotated[float, Field(gt=0, lt=100, description="MFI above this votes SELL.")] = 80.0
    vrsi_period: Annotated[int, Field(ge=2, le=200, description="RSI period of the volume series.")] = 14
    vrsi_level: Annotated[
        float, Field(gt=0, lt=100, description="Volume RSI above this votes in the direction of the bar.")
    ] = 70.0

    @model_validator(mode="after")
    def _ordered(self) -> VolumeFlowParams:
        if self.mfi_low >= self.mfi_high:
            raise ValueError("mfi_low must be below mfi_high")
        return self


def cumulative_minus_sma(increments: F64, n: int) -> F64:
    """``X - SMA(n)(X)`` for the running total ``X`` of ``increments``, from the last ``n - 1`` increments only.

    ``X[t] - mean(X[t-n+1..t]) = sum_{k=1..n-1} (k / n) * increments[t-n+1+k]``: the starting level of
    the running total cancels. NaN for the first ``n - 1`` bars, as for TA-Lib's SMA of the total.
    """
    out: F64 = np.full(len(increments), np.nan)
    if len(increments) >= n:
        out[n - 1 :] = _gaps_from_sma(increments[1:], n)
    return out


@lru_cache(maxsize=64)
def _ones(n: int) -> F64:
    w = np.ones(n)
    w.flags.writeable = False
    return w


@lru_cache(maxsize=64)
def _gap_weights(n: int) -> F64:
    """The weights of :func:`cumulative_minus_sma`, oldest increment first: 1/n, 2/n, ..., (n-1)/n."""
    w = np.arange(1, n, dtype=np.float64) / n
    w.flags.writeable = False
    return w


def _window_sums(a: F64, n: int) -> F64:
    """The sums of each full ``n``-value window of ``a`` (``len(a) - n + 1`` of them; needs ``len(a) >= n``)."""
    out: F64 = np.correlate(a, _ones(n))
    return out


def _gaps_from_sma(steps: F64, n: int) -> F64:
    """:func:`cumulative_minus_sma` at bars ``n - 1 ..`` from the increments of bars ``1 ..`` (at least ``n - 1``)."""
    out: F64 = np.correlate(steps, _gap_weights(n))
    return out


def _obv_steps(close: F64, volume: F64) -> F64:
    """:func:`obv_increments` of bars ``1 ..``."""
    out: F64 = np.sign(close[1:] - close[:-1]) * volume[1:]
    return out


def obv_increments(close: F64, volume: F64) -> F64:
    """On-balance volume per bar: +volume on an up close, -volume on a down close, 0 otherwise (0 on bar 0)."""
    d = np.zeros_like(close)
    d[1:] = _obv_steps(close, volume)
    return d


def money_flow_volume(high: F64, low: F64, close: F64, volume: F64) -> F64:
    """Accumulation/distribution per bar: ((close - low) - (high - close)) / (high - low) × volume, 0 if high == low."""
    rng = high - low
    out: F64 = np.zeros(len(rng))
    np.divide((close - low) - (high - close), rng, out=out, where=rng > 0)
    out *= volume
    return out


def _money_flows(tp: F64, flow: F64, period: int) -> tuple[F64, F64]:
    """The positive flow and the total (positive + negative) flow of :func:`money_flow_index`, at bars ``period ..``."""
    change = tp[1:] - tp[:-1]
    moved = flow[1:]
    pos = _window_sums(np.where(change > 0, moved, 0.0), period)
    return pos, pos + _window_sums(np.where(change < 0, moved, 0.0), period)


def money_flow_index(high: F64, low: F64, close: F64, volume: F64, period: int) -> F64:
    """MFI: 100 × positive flow / (positive + negative flow) over ``period`` bars; NaN when there is no flow.

    Flow = typical price (h + l + c) / 3 × volume, positive when the typical price rose from the previous
    bar, negative when it fell, none when unchanged. Equal to TA-Lib's ``MFI`` (up to the rounding of
    the typical price, which can decide whether it is "unchanged"), except that TA-Lib reports 0
    ("oversold", a false BUY) when there is no flow at all.
    """
    tp = (high + low + close) / 3.0
    out: F64 = np.full(len(tp), np.nan)
    if len(tp) > period:
        with np.errstate(invalid="ignore", divide="ignore"):
            pos, total = _money_flows(tp, tp * volume, period)
            out[period:] = np.where(total > 0, 100.0 * pos / total, np.nan)
    return out


VOTES = ("obv", "vwap", "ad_line", "cmf", "mfi", "volume_rsi")
"""The sub-indicators, in the order of the rows of :func:`_vote_rows`."""


@lru_cache(maxsize=16)
def _bounds(cmf_bound: float, mfi_low: float, mfi_high: float) -> tuple[F64, F64]:
    """Per :func:`_scores` row (as a column), the level above which it votes BUY and the level below which SELL."""
    buy = [0.0, 0.0, 0.0, cmf_bound, -mfi_low, 0.0]
    sell = [0.0, 0.0, 0.0, -cmf_bound, -mfi_high, 0.0]
    bounds = np.array([buy, sell])[:, :, None]
    bounds.flags.writeable = False
    return bounds[0], bounds[1]


def _scores(c: Context, p: VolumeFlowParams) -> F64:
    """One row per :data:`VOTES` entry: BUY above its :func:`_bounds` BUY level, SELL below its SELL level
    (NaN, no vote, where a sub-indicator is not ready).

    The rows: the OBV and A/D gaps from their SMA, close - VWAP, CMF, -MFI (contrarian: BUY when the MFI
    is low), and close - open where the volume RSI is loud (0 where it is not). A difference of two
    floats is > 0 exactly where the first is the greater (and NaN where either is), and negation is exact,
    so each row votes as the comparison it stands for.
    """
    close, high, low, volume, n = c.close, c.high, c.low, c.volume, c.n
    scores = np.empty((len(VOTES), n))
    obv, vwap_gap, ad, cmf, mfi_neg, vrsi_dir = scores
    tp = (high + low + close) / 3.0
    flow = tp * volume
    mfv = money_flow_volume(high, low, close, volume)
    with np.errstate(invalid="ignore", divide="ignore"):
        # OBV and A/D: the gap at bar t >= period - 1 uses the increments of bars t - period + 2 .. t, never bar 0
        _gaps_into(obv, _obv_steps(close, volume), p.obv_period)
        _gaps_into(ad, mfv[1:], p.ad_period)
        np.divide(ta.SUM(flow, timeperiod=p.vwap_period), _volume_sum(c, p.vwap_period), out=vwap_gap)
        np.subtract(close, vwap_gap, out=vwap_gap)
        np.divide(ta.SUM(mfv, timeperiod=p.cmf_period), _volume_sum(c, p.cmf_period), out=cmf)
        m = p.mfi_period
        mfi_neg[: min(m, n)] = np.nan
        if n > m:
            pos, total = _money_flows(tp, flow, m)
            np.divide(pos * -100.0, total, out=mfi_neg[m:])  # -(100 pos / total), exactly
            np.copyto(mfi_neg[m:], np.nan, where=total <= 0)  # no flow: no MFI
    np.subtract(close, c.open, out=vrsi_dir)
    vrsi_dir *= c.cached(("volume_rsi", p.vrsi_period), lambda: ta.RSI(volume, timeperiod=p.vrsi_period)) > p.vrsi_level
    return scores


def _gaps_into(out: F64, steps: F64, period: int) -> None:
    """:func:`cumulative_minus_sma` of the running total of ``steps`` (the increments of bars ``1 ..``)."""
    start = min(period - 1, len(out))
    out[:start] = np.nan
    if start < len(out):
        out[start:] = _gaps_from_sma(steps, period)


def _vote_rows(c: Context, p: VolumeFlowParams) -> I8:
    """The sub-votes, one row per :data:`VOTES` entry (0 where a sub-indicator is not ready)."""
    scores = _scores(c, p)
    buy_level, sell_level = _bounds(p.cmf_bound, p.mfi_low, p.mfi_high)
    return np.subtract((scores > buy_level).view(np.int8), (scores < sell_level).view(np.int8))


def _volume_sum(c: Context, period: int) -> F64:
    return c.cached(("volume_sum", period), lambda: ta.SUM(c.volume, timeperiod=period))


def volume_flow_votes(c: Context, p: VolumeFlowParams) -> dict[str, I8]:
    return dict(zip(VOTES, _vote_rows(c, p), strict=True))


def volume_flow(c: Context, p: VolumeFlowParams) -> SignalOutput:
    """Volume flow: six volume-weighted sub-indicators each vote BUY, SELL or abstain on every bar.

    The numbers are the parameter defaults.

    - OBV vs its 20-bar SMA: BUY when on-balance volume is above its SMA, SELL when below.
    - Close vs VWAP: BUY when the close is above the rolling 100-bar VWAP (typical price
      (h + l + c) / 3 weighted by volume), SELL when below. The original used a VWAP cumulative over
      its 100-bar window, which at the last bar is the same 100-bar VWAP.
    - A/D line vs its 20-bar SMA: BUY when the accumulation/distribution line is above its SMA,
      SELL when below.
    - Chaikin money flow (20): BUY above 0.05, SELL below -0.05.
    - Money flow index (14): BUY below 20, SELL above 80 (contrarian); no flow at all abstains.
    - Volume RSI (14), the RSI of the volume series: above 70, vote the direction of the bar (BUY if
      it closed above its open, SELL if below).

    OBV and A/D are compared with their SMA through their last 19 increments, so the result does not
    depend on where the series starts.

    Combining (majority): BUY only if the BUY votes outnumber both the SELL votes and the abstentions
    (SELL likewise); a BUY/SELL tie holds. Confidence = winning votes / (BUY + SELL votes).
    No vote before the warm-up (100 bars: the VWAP),
    even if enough faster sub-indicators agree.
    """
    # bars before the warm-up hold, however many sub-indicators are ready
    return combine.majority(_vote_rows(c, p), hold_before=_volume_flow_warmup(p) - 1)


def _volume_flow_warmup(p: VolumeFlowParams) -> int:
    return max(p.obv_period, p.vwap_period, p.ad_period, p.cmf_period, p.mfi_period + 1, p.vrsi_period + 1)


VOLUME_FLOW = SignalSpec(
    name="volume_flow",
    family="composite",
    params_model=VolumeFlowParams,
    compute=volume_flow,
    warmup=_volume_flow_warmup,
    summary="Volume-flow majority of 6: OBV and A/D vs their SMA20, close vs VWAP100, CMF, MFI, volume RSI",
)

SIGNALS: tuple[SignalSpec, ...] = (VOLUME_FLOW,)
