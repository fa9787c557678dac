"""The ``heikin_ashi`` composite (SEED-SPEC §2.3): Heikin-Ashi candles and six trend tools, majority of all.

Indicators TA-Lib lacks are small public functions here (``heikin_ashi_candles``, ``smma``,
``hull_ma``, ``ttm_squeeze``); :func:`heikin_ashi_votes` gives the named sub-votes and
:func:`heikin_ashi` folds them with :func:`pia.signals.combine.majority_of_all`.
"""

from __future__ import annotations

import math
from typing import Annotated, NamedTuple

import numpy as np
from pydantic import Field, model_validator

from pia.signals import combine, ta
from pia.signals.base import F64, I8, SETTLE_BARS, Bool, Context, Params, SignalOutput, SignalSpec

MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
"""The MACD of the Elder impulse system."""


class HeikinAshiParams(Params):
    strong_run: Annotated[
        int, Field(ge=1, le=20, description="Strong HA candles in a row (no opposing wick) for the run vote.")
    ] = 3
    doji_body: Annotated[
        float, Field(gt=0, lt=1, description="HA doji: body smaller than this fraction of the HA range.")
    ] = 0.1
    doji_streak: Annotated[
        int, Field(ge=1, le=20, description="Same-colour HA candles before the doji that make it a reversal.")
    ] = 3
    hull_fast: Annotated[int, Field(ge=2, le=200, description="Fast Hull moving average period.")] = 9
    hull_slow: Annotated[int, Field(ge=3, le=400, description="Slow Hull moving average period.")] = 21
    jaw: Annotated[int, Field(ge=2, le=100, description="Alligator jaw: SMMA period of the median price.")] = 13
    teeth: Annotated[int, Field(ge=2, le=100, description="Alligator teeth: SMMA period of the median price.")] = 8
    lips: Annotated[int, Field(ge=2, le=100, description="Alligator lips: SMMA period of the median price.")] = 5
    jaw_shift: Annotated[int, Field(ge=0, le=50, description="Alligator jaw: bars it is shifted forward.")] = 8
    teeth_shift: Annotated[int, Field(ge=0, le=50, description="Alligator teeth: bars it is shifted forward.")] = 5
    lips_shift: Annotated[int, Field(ge=0, le=50, description="Alligator lips: bars it is shifted forward.")] = 3
    impulse_ema: Annotated[int, Field(ge=2, le=200, description="Elder impulse: EMA period of the close.")] = 13
    squeeze_period: Annotated[
        int, Field(ge=2, le=200, description="TTM squeeze: period of the Bollinger and Keltner channels.")
    ] = 20
    squeeze_bb_dev: Annotated[
        float, Field(gt=0, le=10, description="TTM squeeze: Bollinger band width in standard deviations.")
    ] = 2.0
    squeeze_kc_mult: Annotated[
        float, Field(gt=0, le=10, description="TTM squeeze: Keltner channel width in average true ranges.")
    ] = 1.5

    @model_validator(mode="after")
    def _ordered(self) -> HeikinAshiParams:
        if self.hull_fast >= self.hull_slow:
            raise ValueError("hull_fast must be shorter than hull_slow")
        return self


# --- indicators TA-Lib lacks ---------------------------------------------------------------------


class HeikinAshi(NamedTuple):
    open: F64
    high: F64
    low: F64
    close: F64


def heikin_ashi_candles(open_: F64, high: F64, low: F64, close: F64) -> HeikinAshi:
    """Heikin-Ashi candles: close = (O + H + L + C) / 4; open[0] = (O[0] + C[0]) / 2 and
    open[t] = (open[t-1] + close[t-1]) / 2; high = max(H, open, close); low = min(L, open, close).

    The open recursion is an EMA with alpha 1/2 of the HA close, one bar late: TA-Lib's EMA(3) (alpha
    2/(3+1)) computes it in C, seeded exactly by prefixing three copies of the seed (its SMA seed is then
    the seed itself). It forgets the seed by half every bar, so a window of 60 bars already gives the
    full-history values to 1e-18.
    """
    n = len(close)
    if not n:
        return HeikinAshi(np.empty(0), np.empty(0), np.empty(0), np.empty(0))
    # the EMA's input: three copies of the seed, then the HA close (written in place, its last value unused)
    x = np.empty(n + 3)
    ha_close = x[3:]
    np.add(open_, high, out=ha_close)
    ha_close += low
    ha_close += close
    ha_close *= 0.25
    x[:3] = (open_[0] + close[0]) * 0.5
    ha_open = ta.EMA(x[:-1], 3)[2:]
    ha_high = np.maximum(ha_open, ha_close)
    np.maximum(high, ha_high, out=ha_high)
    ha_low = np.minimum(ha_open, ha_close)
    np.minimum(low, ha_low, out=ha_low)
    return HeikinAshi(ha_open, ha_high, ha_low, ha_close)


def smma(x: F64, period: int) -> F64:
    """Smoothed moving average (Wilder's, the Alligator's): SMA of the first ``period`` values, then
    smma[t] = (smma[t-1] x (period - 1) + x[t]) / period. Computed as TA-Lib's EMA(2 x period - 1)
    (alpha 1/period) over ``period - 1`` copies of the first SMA followed by ``x``, which makes its seed
    that SMA. ``x`` must have no NaN."""
    n = len(x)
    if n < period:
        return np.full(n, np.nan)
    pad = np.empty(n + period - 1)
    pad[: period - 1] = np.add.reduce(x[:period]) / period  # x[:period].mean(), without np.mean's overhead
    pad[period - 1 :] = x
    out: F64 = ta.EMA(pad, 2 * period - 1)[period - 1 :]
    return out


def hull_ma(close: F64, period: int) -> F64:
    """Hull moving average: WMA(2 x WMA(period // 2) - WMA(period), floor(sqrt(period)))."""
    diff = ta.WMA(close, period // 2)
    diff *= 2.0
    diff -= ta.WMA(close, period)
    out: F64 = ta.WMA(diff, math.isqrt(period))
    return out


def ttm_squeeze(
    high: F64,
    low: F64,
    close: F64,
    period: int = 20,
    bb_dev: float = 2.0,
    kc_mult: float = 1.5,
    bands: tuple[F64, F64, F64] | None = None,
) -> tuple[Bool, Bool, F64]:
    """(squeeze on, squeeze off, momentum) of John Carter's TTM squeeze, as in thinkorswim:

    - Bollinger bands SMA(period) ± ``bb_dev`` population standard deviations; Keltner channel
      SMA(period) ± ``kc_mult`` x the simple average of the true range over ``period`` bars;
    - on: the Bollinger bands lie inside the Keltner channel; off: they do not (both False while
      either channel is undefined);
    - momentum: the linear-regression value (TA-Lib ``LINEARREG``, ``period`` bars) of
      close - ((highest high + lowest low) / 2 + SMA(close)) / 2 over ``period`` bars.

    ``bands``: the (upper, middle, lower) Bollinger bands if already computed.
    """
    upper, mid, _ = bands if bands is not None else ta.BBANDS(close, period, bb_dev, bb_dev, ta.MA_SMA)
    half_bb = upper - mid
    half_kc = ta.SMA(ta.TRANGE(high, low, close), period)
    half_kc *= kc_mult
    on = half_bb < half_kc
    off = half_bb >= half_kc
    delta = ta.MAX(high, period)  # close - ((Donchian high + low) / 2 + SMA) / 2, in place
    delta += ta.MIN(low, period)
    delta *= 0.5
    delta += mid
    delta *= 0.5
    np.subtract(close, delta, out=delta)
    return on, off, ta.LINEARREG(delta, period)


def heikin_ashi_warmup(p: HeikinAshiParams) -> int:
    """Bars before every sub-indicator can vote on the last bar."""
    return max(
        p.strong_run,
        p.doji_streak + 1,
        p.hull_slow + math.isqrt(p.hull_slow) - 1,  # WMA(slow), then WMA(sqrt(slow)) of it
        max(p.jaw + p.jaw_shift, p.teeth + p.teeth_shift, p.lips + p.lips_shift),
        max(p.impulse_ema, MACD_SLOW + MACD_SIGNAL - 1) + 1,  # direction compares with the previous bar
        2 * p.squeeze_period - 1,  # momentum: LINEARREG(period) of a series that starts at bar period - 1
        p.squeeze_period + 2,  # on/off from bar period (the true range starts at bar 1); release reads t-1
    )


def heikin_ashi_window(p: HeikinAshiParams) -> int:
    """Live window: warm-up plus SETTLE_BARS for the recursive parts to forget their seeds (the HA open
    halves its seed's weight every bar; the Alligator SMMAs, EMA13 and MACD 12/26/9 settle within 400 bars)."""
    return heikin_ashi_warmup(p) + SETTLE_BARS


# --- sub-votes and composite --------------------------------------------------------------------


def _held(s: I8, k: int) -> I8:
    """Per bar: the value of ``s`` if it was the same on each of the last ``k`` bars, else 0 (0 on the first k - 1
    bars)."""
    n = len(s)
    out = np.zeros(n, dtype=np.int8)
    if k <= n:
        now = s[k - 1 :]
        held = out[k - 1 :]
        held[:] = now
        for j in range(1, k):
            held *= now == s[k - 1 - j : n - j]
    return out


def _candle_votes(c: Context, p: HeikinAshiParams) -> tuple[I8, I8, I8]:
    """The strong_run, doji_reversal and colour_change votes, from the HA candles."""
    h, lo, n = c.high, c.low, c.n
    ha = heikin_ashi_candles(c.open, h, lo, c.close)
    bull = ha.close > ha.open
    bear = ha.close < ha.open

    # strong candles: no opposing wick (the HA open is the HA low of a bull candle, the HA high of a bear)
    strong = combine.vote(bull & (ha.open <= lo), bear & (ha.open >= h))
    v_run = _held(strong, p.strong_run)

    # a doji (its HA range is never below its body, so a zero range is never a doji) votes against the colour
    # of the doji_streak candles before it
    body = ha.close - ha.open
    np.abs(body, out=body)
    rng = ha.high - ha.low
    rng *= p.doji_body
    doji = body < rng
    against = _held(combine.vote(bear, bull), p.doji_streak)
    v_doji = np.zeros(n, dtype=np.int8)
    np.multiply(against[:-1], doji[1:], out=v_doji[1:])

    v_colour = np.zeros(n, dtype=np.int8)
    combine.vote(bull[1:] & bear[:-1], bear[1:] & bull[:-1], out=v_colour[1:])
    return v_run, v_doji, v_colour


def _hull_vote(c: Context, p: HeikinAshiParams) -> I8:
    fast = hull_ma(c.close, p.hull_fast)
    slow = hull_ma(c.close, p.hull_slow)
    return combine.vote(fast > slow, fast < slow)


def _alligator_vote(c: Context, p: HeikinAshiParams) -> I8:
    """Lips > teeth > jaw BUY, lips < teeth < jaw SELL, each line read its shift bars back (no value before)."""
    n = c.n
    median = c.high + c.low
    median *= 0.5
    jaw, teeth, lips = smma(median, p.jaw), smma(median, p.teeth), smma(median, p.lips)
    out = np.zeros(n, dtype=np.int8)
    start = max(p.jaw_shift, p.teeth_shift, p.lips_shift)  # from this bar on, every line has a past value
    if start < n:
        jaw = jaw[start - p.jaw_shift : n - p.jaw_shift]
        teeth = teeth[start - p.teeth_shift : n - p.teeth_shift]
        lips = lips[start - p.lips_shift : n - p.lips_shift]
        combine.vote((lips > teeth) & (teeth > jaw), (lips < teeth) & (teeth < jaw), out=out[start:])
    return out


def _impulse_vote(c: Context, p: HeikinAshiParams) -> I8:
    ema = c.ema(p.impulse_ema)
    hist = c.macd(MACD_FAST, MACD_SLOW, MACD_SIGNAL)[2]
    out = np.zeros(c.n, dtype=np.int8)
    ema_now, ema_before, hist_now, hist_before = ema[1:], ema[:-1], hist[1:], hist[:-1]
    combine.vote(
        (ema_now > ema_before) & (hist_now > hist_before),
        (ema_now < ema_before) & (hist_now < hist_before),
        out=out[1:],
    )
    return out


def _squeeze_vote(c: Context, p: HeikinAshiParams) -> I8:
    bands = c.bbands(p.squeeze_period, p.squeeze_bb_dev)
    on, off, mom = ttm_squeeze(
        c.high, c.low, c.close, p.squeeze_period, p.squeeze_bb_dev, p.squeeze_kc_mult, bands=bands
    )
    out = np.zeros(c.n, dtype=np.int8)
    release = on[:-1] & off[1:]
    mom_now = mom[1:]
    combine.vote(release & (mom_now > 0), release & (mom_now < 0), out=out[1:])
    return out


def heikin_ashi_votes(c: Context, p: HeikinAshiParams) -> dict[str, I8]:
    """The seven named sub-votes (+1 BUY, -1 SELL, 0 HOLD per bar).

    The indicators only this signal uses (HA candles, Hull MAs, Alligator, TTM squeeze) are not kept in the
    context's memo: each is dropped once its vote is cast, which keeps a long history's memory small.
    """
    v_run, v_doji, v_colour = _candle_votes(c, p)
    return {
        "strong_run": v_run,
        "doji_reversal": v_doji,
        "colour_change": v_colour,
        "hull": _hull_vote(c, p),
        "alligator": _alligator_vote(c, p),
        "elder_impulse": _impulse_vote(c, p),
        "ttm_squeeze": _squeeze_vote(c, p),
    }


def heikin_ashi(c: Context, p: HeikinAshiParams) -> SignalOutput:
    """Heikin-Ashi candles and six trend tools, each voting BUY, SELL or HOLD on every bar (the
    numbers below are the default parameters).

    HA candles: close = (O + H + L + C) / 4; open = (previous HA open + previous HA close) / 2, seeded
    with (O + C) / 2 on the first bar; high = max(H, HA open, HA close); low = min(L, HA open, HA close).
    A candle is bullish if its HA close is above its HA open, bearish if below.

    - **strong_run**: the last 3 HA candles all bullish with no lower wick (HA open <= low) → BUY; all
      bearish with no upper wick (HA open >= high) → SELL.
    - **doji_reversal**: an HA doji (body < 10 % of the HA high-low range) right after 3 bullish HA candles
      → SELL; after 3 bearish ones → BUY.
    - **colour_change**: bearish HA candle then bullish → BUY; bullish then bearish → SELL.
    - **hull**: Hull MA(9) above Hull MA(21) BUY, below SELL; HMA(n) = WMA(2 x WMA(n/2) - WMA(n), sqrt(n)).
    - **alligator**: Williams Alligator on the median price (H + L) / 2: jaw = SMMA(13) of 8 bars ago,
      teeth = SMMA(8) of 5 bars ago, lips = SMMA(5) of 3 bars ago. Lips > teeth > jaw BUY, lips < teeth <
      jaw SELL.
    - **elder_impulse**: EMA(13) and the MACD(12, 26, 9) histogram both higher than on the previous bar
      BUY (green bar), both lower SELL (red bar); otherwise HOLD (blue bar).
    - **ttm_squeeze**: the bar the squeeze releases (Bollinger bands 20/2 were inside the Keltner channel
      SMA20 ± 1.5 x the 20-bar average true range on the previous bar and are not now): BUY if the TTM
      momentum (20-bar linear-regression value of close minus the mean of the Donchian(20) midpoint and
      SMA20) is positive, SELL if negative.

    Combining (majority of all): BUY if the BUY votes outnumber both the SELL votes and the HOLD votes
    (SELL likewise); otherwise HOLD. Confidence = winning votes / 7 (all sub-indicators, HOLDs included).
    """
    return combine.majority_of_all(list(heikin_ashi_votes(c, p).values()))


HEIKIN_ASHI = SignalSpec(
    name="heikin_ashi",
    family="composite",
    params_model=HeikinAshiParams,
    compute=heikin_ashi,
    warmup=heikin_ashi_warmup,
    window=heikin_ashi_window,
    summary="Majority of all 7: Heikin-Ashi run, doji, colour change, Hull 9/21, Alligator, Elder impulse, TTM squeeze",
)

SIGNALS: tuple[SignalSpec, ...] = (HEIKIN_ASHI,)
