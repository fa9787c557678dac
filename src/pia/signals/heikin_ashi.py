"""The ``heikin_ashi`` composite (SEED-SPEC §2.3): Heikin-Ashi candles and six trend tools, majority of all.

Indicators TA-Lib lacks are small public functions here (``heikin_ashi_candles``, ``smma``,
``hull_ma``, ``ttm_squeeze``); :func:`heikin_ashi_votes` gives the named sub-votes and
:func:`heikin_ashi` folds them with :func:`pia.signals.combine.majority_of_all`.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, NamedTuple

import numpy as np
import talib
from pydantic import Field, model_validator

from pia.signals import combine
from pia.signals.base import F64, I8, SETTLE_BARS, Bool, Context, Params, SignalOutput, SignalSpec

_SMA: Any = talib.MA_Type.SMA  # type: ignore[attr-defined]
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
    ha_close = (open_ + high + low + close) * 0.25
    n = len(close)
    seed = (open_[0] + close[0]) * 0.5 if n else 0.0
    x = np.empty(n + 2)
    x[:3] = seed
    x[3:] = ha_close[:-1]
    ha_open = talib.EMA(x, 3)[2:] if n else np.empty(0)
    return HeikinAshi(
        ha_open,
        np.maximum(high, np.maximum(ha_open, ha_close)),
        np.minimum(low, np.minimum(ha_open, ha_close)),
        ha_close,
    )


def smma(x: F64, period: int) -> F64:
    """Smoothed moving average (Wilder's, the Alligator's): SMA of the first ``period`` values, then
    smma[t] = (smma[t-1] x (period - 1) + x[t]) / period. Computed as TA-Lib's EMA(2 x period - 1)
    (alpha 1/period) over ``period - 1`` copies of the first SMA followed by ``x``, which makes its seed
    that SMA. ``x`` must have no NaN."""
    n = len(x)
    if n < period:
        return np.full(n, np.nan)
    pad = np.empty(n + period - 1)
    pad[: period - 1] = x[:period].mean()
    pad[period - 1 :] = x
    return talib.EMA(pad, 2 * period - 1)[period - 1 :]


def hull_ma(close: F64, period: int) -> F64:
    """Hull moving average: WMA(2 x WMA(period // 2) - WMA(period), floor(sqrt(period)))."""
    return talib.WMA(2.0 * talib.WMA(close, period // 2) - talib.WMA(close, period), math.isqrt(period))


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
    upper, mid, _ = bands if bands is not None else talib.BBANDS(close, period, bb_dev, bb_dev, _SMA)
    half_bb = upper - mid
    half_kc = kc_mult * talib.SMA(talib.TRANGE(high, low, close), period)
    on = half_bb < half_kc
    off = half_bb >= half_kc
    donchian_mid = (talib.MAX(high, period) + talib.MIN(low, period)) * 0.5
    mom = talib.LINEARREG(close - (donchian_mid + mid) * 0.5, period)
    return on, off, mom


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


def _ago(a: F64, k: int) -> F64:
    """``a`` as of ``k`` bars ago (NaN for the first ``k`` bars)."""
    out = np.full_like(a, np.nan)
    if k < len(a):
        out[k:] = a[: len(a) - k]
    return out


def _run(mask: Bool, k: int) -> Bool:
    """``mask`` held on each of the last ``k`` bars."""
    out = mask.copy()
    for j in range(1, k):
        out[j:] &= mask[:-j]
        out[:j] = False
    return out


def heikin_ashi_votes(c: Context, p: HeikinAshiParams) -> dict[str, I8]:
    """The seven named sub-votes (+1 BUY, -1 SELL, 0 HOLD per bar)."""
    o, h, lo, close = c.open, c.high, c.low, c.close
    ha = c.cached(("heikin_ashi",), lambda: heikin_ashi_candles(o, h, lo, close))
    bull = ha.close > ha.open
    bear = ha.close < ha.open

    # strong candles: no opposing wick (the HA open is the HA low of a bull candle, the HA high of a bear)
    strong_bull = bull & (ha.open <= lo)
    strong_bear = bear & (ha.open >= h)
    v_run = combine.vote(_run(strong_bull, p.strong_run), _run(strong_bear, p.strong_run))

    rng = ha.high - ha.low
    doji = (np.abs(ha.close - ha.open) < p.doji_body * rng) & (rng > 0)
    after_bull = np.zeros_like(doji)
    after_bear = np.zeros_like(doji)
    after_bull[1:] = _run(bull, p.doji_streak)[:-1]
    after_bear[1:] = _run(bear, p.doji_streak)[:-1]
    v_doji = combine.vote(doji & after_bear, doji & after_bull)

    v_colour = np.zeros(c.n, dtype=np.int8)
    v_colour[1:] = combine.vote(bull[1:] & bear[:-1], bear[1:] & bull[:-1])

    fast = c.cached(("hull", p.hull_fast), lambda: hull_ma(close, p.hull_fast))
    slow = c.cached(("hull", p.hull_slow), lambda: hull_ma(close, p.hull_slow))
    v_hull = combine.vote(fast > slow, fast < slow)

    median = c.cached(("median_price",), lambda: (h + lo) * 0.5)
    jaw = _ago(c.cached(("smma_median", p.jaw), lambda: smma(median, p.jaw)), p.jaw_shift)
    teeth = _ago(c.cached(("smma_median", p.teeth), lambda: smma(median, p.teeth)), p.teeth_shift)
    lips = _ago(c.cached(("smma_median", p.lips), lambda: smma(median, p.lips)), p.lips_shift)
    v_alligator = combine.vote((lips > teeth) & (teeth > jaw), (lips < teeth) & (teeth < jaw))

    ema = c.ema(p.impulse_ema)
    hist = c.macd(MACD_FAST, MACD_SLOW, MACD_SIGNAL)[2]
    v_impulse = np.zeros(c.n, dtype=np.int8)
    v_impulse[1:] = combine.vote(
        (ema[1:] > ema[:-1]) & (hist[1:] > hist[:-1]), (ema[1:] < ema[:-1]) & (hist[1:] < hist[:-1])
    )

    on, off, mom = c.cached(
        ("ttm_squeeze", p.squeeze_period, p.squeeze_bb_dev, p.squeeze_kc_mult),
        lambda: ttm_squeeze(
            h,
            lo,
            close,
            p.squeeze_period,
            p.squeeze_bb_dev,
            p.squeeze_kc_mult,
            bands=c.bbands(p.squeeze_period, p.squeeze_bb_dev),
        ),
    )
    release = np.zeros_like(on)
    release[1:] = on[:-1] & off[1:]
    v_squeeze = combine.vote(release & (mom > 0), release & (mom < 0))

    return {
        "strong_run": v_run,
        "doji_reversal": v_doji,
        "colour_change": v_colour,
        "hull": v_hull,
        "alligator": v_alligator,
        "elder_impulse": v_impulse,
        "ttm_squeeze": v_squeeze,
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
