"""The core technical signals of the original system (SEED-SPEC §2.2): ``rsi``, ``macd``, ``ema``, ``bb``, ``volume``.

The input-driven core signals (``fear_greed``, ``sentiment``, ``llm``, ``ml``, ``funding``) live in
:mod:`pia.signals.core_inputs`.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import Field, model_validator

from pia.signals import ta
from pia.signals.base import F64, SETTLE_BARS, Context, Params, SignalOutput, SignalSpec, from_masks


def settle_bars(decay: float) -> int:
    """Bars after which a recursive indicator with per-bar seed decay ``decay`` has forgotten its seed.

    At least :data:`SETTLE_BARS`; longer for slow smoothing (``decay ** bars <= 1e-11``), so large
    periods also get a live window that reproduces the full-history values.
    """
    return max(SETTLE_BARS, math.ceil(math.log(1e-11) / math.log(decay)))


def _ema_decay(period: int) -> float:
    """Per-bar seed decay of an EMA with smoothing 2 / (period + 1)."""
    return (period - 1) / (period + 1)


def rolling_percentiles(x: F64, lookback: int, min_values: int, qs: tuple[float, ...]) -> tuple[F64, ...]:
    """Causal rolling percentiles: at bar ``t``, the ``q``-th percentiles of the non-NaN ``x[t-lookback+1 .. t]``.

    Linear interpolation between order statistics (numpy's and pandas' default); NaN where the window
    holds fewer than ``min_values`` non-NaN values. Equals pandas
    ``Series(x).rolling(lookback, min_periods=min_values).quantile(q / 100)``. Vectorised: one sort of
    the (n, lookback) sliding-window view (NaNs sort last), then a gather per percentile.
    """
    n = len(x)
    if n == 0:
        return tuple(np.empty(0, dtype=np.float64) for _ in qs)
    padded = np.concatenate([np.full(lookback - 1, np.nan), x])
    s = np.sort(sliding_window_view(padded, lookback), axis=1)
    valid = np.concatenate([[0], np.cumsum(~np.isnan(padded))])
    k = valid[lookback:] - valid[:-lookback]  # non-NaN values per window
    ok = k >= min_values
    rows = np.arange(n)
    out = []
    for q in qs:
        pos = (q / 100.0) * np.maximum(k - 1, 0)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, np.maximum(k - 1, 0))
        a, b = s[rows, lo], s[rows, hi]
        out.append(np.where(ok, a + (b - a) * (pos - lo), np.nan))
    return tuple(out)


class RsiParams(Params):
    period: Annotated[int, Field(ge=2, le=200, description="Wilder RSI period, bars.")] = 14
    lower: Annotated[float, Field(gt=0, lt=100, description="Fixed bounds: BUY below this RSI.")] = 30.0
    upper: Annotated[float, Field(gt=0, lt=100, description="Fixed bounds: SELL above this RSI.")] = 70.0
    bounds: Annotated[
        Literal["fixed", "adaptive"],
        Field(description="`fixed` (default): lower/upper; `adaptive`: the original's rolling-percentile bounds."),
    ] = "fixed"
    adaptive_lookback: Annotated[
        int, Field(ge=20, le=1000, description="Adaptive bounds: RSI values (bars) the percentiles look back over.")
    ] = 100
    adaptive_min_values: Annotated[
        int, Field(ge=2, le=1000, description="Adaptive bounds: fewest RSI values for percentiles; else lower/upper.")
    ] = 20
    adaptive_floor: Annotated[
        float, Field(gt=0, lt=100, description="Adaptive bounds: the BUY bound is at least this RSI.")
    ] = 15.0
    adaptive_cap: Annotated[
        float, Field(gt=0, lt=100, description="Adaptive bounds: the SELL bound is at most this RSI.")
    ] = 85.0

    @model_validator(mode="after")
    def _ordered(self) -> RsiParams:
        if self.lower >= self.upper:
            raise ValueError("lower must be below upper")
        if self.adaptive_floor >= self.adaptive_cap:
            raise ValueError("adaptive_floor must be below adaptive_cap")
        if self.adaptive_min_values > self.adaptive_lookback:
            raise ValueError("adaptive_min_values must not exceed adaptive_lookback")
        return self


def rsi_bounds(c: Context, p: RsiParams, r: F64) -> tuple[F64 | float, F64 | float]:
    """The (BUY below, SELL above) RSI bounds: the fixed numbers, or per bar the original's adaptive percentiles."""
    if p.bounds == "fixed":
        return p.lower, p.upper
    p20, p80 = c.cached(
        ("rsi_pct", p.period, p.adaptive_lookback, p.adaptive_min_values),
        lambda: rolling_percentiles(r, p.adaptive_lookback, p.adaptive_min_values, (20.0, 80.0)),
    )
    few = np.isnan(p20)
    lo = np.where(few, p.lower, np.maximum(p20, p.adaptive_floor))
    hi = np.where(few, p.upper, np.minimum(p80, p.adaptive_cap))
    return lo, hi


def _rsi_values(c: Context, period: int) -> F64:
    def compute() -> F64:
        r = c.rsi(period)
        span = period + 1
        flat = (r == 0) & (ta.MAX(c.close, span) - ta.MIN(c.close, span) == 0)
        return np.where(flat, np.nan, r)

    return c.cached(("rsi_voting", period), compute)


def rsi(c: Context, p: RsiParams) -> SignalOutput:
    """Wilder RSI(14), contrarian: BUY when RSI is below the lower bound, SELL when above the upper bound.

    - `fixed` bounds (the default): BUY if RSI < `lower` (30), SELL if RSI > `upper` (70).
    - `adaptive` bounds (the original system's rule, optional): p20 and p80 are the 20th and 80th
      percentiles (linear interpolation) of the last `adaptive_lookback` (100) bars' RSI values,
      including the current bar; BUY if RSI < max(p20, `adaptive_floor` = 15), SELL if RSI >
      min(p80, `adaptive_cap` = 85). While fewer than `adaptive_min_values` (20) RSI values exist in
      that lookback, the fixed `lower`/`upper` apply.

    Fixed bounds are the default because percentile bounds make RSI vote about 40 % of the time by
    construction (SEED-SPEC §10: roughly 20 % of bars sit below their own 20th percentile and 20 %
    above the 80th), whatever the market does; fixed thresholds vote only at real extremes.

    Confidence grows linearly from 0.5 at the bound in force to 1.0 at the extreme (0 or 100). A
    series with no change at all over the RSI period has no RSI (TA-Lib reports 0 there, which would
    read as "oversold"): it abstains.
    """
    r = _rsi_values(c, p.period)
    lo, hi = rsi_bounds(c, p, r)
    buy = r < lo
    sell = r > hi
    conf = np.where(buy, 0.5 + 0.5 * (lo - r) / lo, 0.5 + 0.5 * (r - hi) / (100.0 - hi))
    return from_masks(buy, sell, conf)


class MacdParams(Params):
    fast: Annotated[int, Field(ge=2, le=200, description="Fast EMA period, bars.")] = 12
    slow: Annotated[int, Field(ge=3, le=400, description="Slow EMA period, bars.")] = 26
    signal: Annotated[int, Field(ge=2, le=200, description="Signal-line EMA period, bars.")] = 9

    @model_validator(mode="after")
    def _ordered(self) -> MacdParams:
        if self.fast >= self.slow:
            raise ValueError("fast must be shorter than slow")
        return self


def macd(c: Context, p: MacdParams) -> SignalOutput:
    """MACD histogram crossing: BUY on the bar it crosses from <= 0 to > 0, SELL on the mirror crossing.

    A crossing is a binary event: confidence 1.0.
    """
    hist = c.macd(p.fast, p.slow, p.signal)[2]
    prev = c.prev(hist)
    buy = (prev <= 0) & (hist > 0)
    sell = (prev >= 0) & (hist < 0)
    return from_masks(buy, sell, 1.0)


class EmaParams(Params):
    fast: Annotated[int, Field(ge=2, le=400, description="Fast EMA period, bars.")] = 9
    slow: Annotated[int, Field(ge=3, le=800, description="Slow EMA period, bars.")] = 21
    min_gap_pct: Annotated[
        float, Field(ge=0, le=50, description="Smallest |fast - slow| gap, percent of the slow EMA, that votes.")
    ] = 0.5

    @model_validator(mode="after")
    def _ordered(self) -> EmaParams:
        if self.fast >= self.slow:
            raise ValueError("fast must be shorter than slow")
        return self


def ema(c: Context, p: EmaParams) -> SignalOutput:
    """EMA fast/slow gap: when |EMA9 - EMA21| >= 0.5 % of EMA21, BUY if EMA9 is above, else SELL.

    Confidence is 0.5 at the minimum gap, rising linearly to 1.0 at twice it.
    """
    fast = c.ema(p.fast)
    slow = c.ema(p.slow)
    gap_pct = (fast - slow) / slow * 100.0
    wide = np.abs(gap_pct) >= p.min_gap_pct
    conf = 0.5 * np.abs(gap_pct) / p.min_gap_pct if p.min_gap_pct > 0 else np.ones_like(gap_pct)
    return from_masks(wide & (gap_pct > 0), wide & (gap_pct < 0), conf)


class BbParams(Params):
    period: Annotated[int, Field(ge=2, le=400, description="Bollinger middle band: SMA period, bars.")] = 20
    dev: Annotated[
        float, Field(gt=0, le=10, description="Band half-width in population standard deviations of the close.")
    ] = 2.0


def bb(c: Context, p: BbParams) -> SignalOutput:
    """Close outside the Bollinger bands (SMA(20) ± 2 population standard deviations), contrarian.

    - BUY when close <= the lower band; SELL when close >= the upper band (SEED-SPEC §2.1 `price_vs_bb`).
    - A flat window (zero deviation: close on both bands at once) abstains.

    Confidence: 0.5 at the band, rising linearly with the distance beyond it measured in standard
    deviations, reaching 1.0 one standard deviation beyond the band (3 sigma from the middle with the
    default 2-sigma bands): 0.5 + 0.5 * distance / sigma, capped at 1.
    """
    upper, middle, lower = c.bbands(p.period, p.dev)
    close = c.close
    sigma = (upper - middle) / p.dev
    buy = close <= lower
    sell = close >= upper
    beyond = np.where(buy, lower - close, close - upper)
    with np.errstate(divide="ignore", invalid="ignore"):
        conf = np.where(sigma > 0, 0.5 + 0.5 * beyond / sigma, 0.0)
    return from_masks(buy, sell, conf)


class VolumeParams(Params):
    lookback: Annotated[
        int, Field(ge=2, le=400, description="Bars before the current one whose mean volume is the baseline.")
    ] = 20
    min_ratio: Annotated[
        float, Field(gt=0, le=100, description="The bar's volume must exceed this multiple of the baseline.")
    ] = 1.5
    change_bars: Annotated[
        int, Field(ge=1, le=100, description="The vote's direction: close now vs close this many bars ago.")
    ] = 3


def volume(c: Context, p: VolumeParams) -> SignalOutput:
    """Volume spike: the bar's volume against the mean volume of the previous 20 bars, voting with the price move.

    - ratio = volume[t] / mean(volume[t-20 .. t-1]) (only closed bars exist, so the current bar is the
      last completed one of SEED-SPEC §2.2).
    - When ratio > `min_ratio` (1.5): BUY if close[t] > close[t-3], SELL if close[t] < close[t-3];
      an unchanged close abstains. A zero baseline (no volume in the lookback) abstains.

    Confidence is 0.5 at the minimum ratio, rising linearly to 1.0 at twice it (ratio 3):
    0.5 * ratio / min_ratio, capped at 1.
    """
    base = c.cached(("volume_base", p.lookback), lambda: c.prev(ta.SMA(c.volume, timeperiod=p.lookback)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(base > 0, c.volume / base, np.nan)
    move = c.close - c.prev(c.close, p.change_bars)
    spike = ratio > p.min_ratio
    return from_masks(spike & (move > 0), spike & (move < 0), 0.5 * ratio / p.min_ratio)


RSI = SignalSpec(
    name="rsi",
    family="core",
    params_model=RsiParams,
    compute=rsi,
    warmup=lambda p: p.period + 1,
    summary="RSI(14), contrarian: BUY below 30, SELL above 70 (optional adaptive percentile bounds)",
    window=lambda p: (
        p.period + 1 + settle_bars(1 - 1 / p.period) + (p.adaptive_lookback - 1 if p.bounds == "adaptive" else 0)
    ),
)
MACD = SignalSpec(
    name="macd",
    family="core",
    params_model=MacdParams,
    compute=macd,
    warmup=lambda p: p.slow + p.signal,
    summary="MACD(12,26,9) histogram crossing zero: BUY up, SELL down",
    window=lambda p: p.slow + p.signal + settle_bars(_ema_decay(max(p.slow, p.signal))),
)
EMA = SignalSpec(
    name="ema",
    family="core",
    params_model=EmaParams,
    compute=ema,
    warmup=lambda p: p.slow,
    summary="EMA(9) vs EMA(21) gap of at least 0.5 %: BUY above, SELL below",
    window=lambda p: p.slow + settle_bars(_ema_decay(p.slow)),
)
BB = SignalSpec(
    name="bb",
    family="core",
    params_model=BbParams,
    compute=bb,
    warmup=lambda p: p.period,
    summary="Bollinger(20, 2), contrarian: BUY at or below the lower band, SELL at or above the upper",
    window=lambda p: p.period,
)
VOLUME = SignalSpec(
    name="volume",
    family="core",
    params_model=VolumeParams,
    compute=volume,
    warmup=lambda p: max(p.lookback, p.change_bars) + 1,
    summary="Volume over 1.5x its 20-bar mean: vote the direction of the 3-bar close change",
    window=lambda p: max(p.lookback, p.change_bars) + 1,
)

SIGNALS: tuple[SignalSpec, ...] = (RSI, MACD, EMA, BB, VOLUME)
