"""The ``trend`` composite (SEED-SPEC §2.3): seven trend-following sub-indicators folded by majority vote.

TA-Lib provides SMA, ATR, SAR and ADX/+DI/-DI. Supertrend and Ichimoku are not in TA-Lib and are
defined here (:func:`supertrend`, :func:`ichimoku_cloud`).
"""

from __future__ import annotations

from itertools import pairwise, repeat
from operator import length_hint
from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from pia.signals import combine, ta
from pia.signals.base import F64, I8, SETTLE_BARS, Context, Params, SignalOutput, SignalSpec


class TrendParams(Params):
    cross_fast: Annotated[int, Field(ge=2, le=400, description="Fast SMA of the golden/death cross.")] = 50
    cross_slow: Annotated[
        int, Field(ge=3, le=800, description="Slow SMA of the golden/death cross; also the price-vs-SMA line.")
    ] = 200
    ribbon: Annotated[
        tuple[int, ...],
        Field(min_length=2, max_length=8, description="SMA ribbon periods, shortest first (strictly increasing)."),
    ] = (10, 20, 50, 100, 200)
    st_period: Annotated[int, Field(ge=2, le=200, description="Supertrend ATR period.")] = 10
    st_mult: Annotated[float, Field(gt=0, le=20, description="Supertrend band width in ATRs.")] = 3.0
    sar_step: Annotated[float, Field(gt=0, le=1, description="Parabolic SAR acceleration step.")] = 0.02
    sar_max: Annotated[float, Field(gt=0, le=1, description="Parabolic SAR maximum acceleration.")] = 0.2
    tenkan: Annotated[int, Field(ge=2, le=200, description="Ichimoku conversion-line period.")] = 9
    kijun: Annotated[
        int, Field(ge=2, le=200, description="Ichimoku base-line period; also the cloud's forward displacement.")
    ] = 26
    senkou: Annotated[int, Field(ge=2, le=400, description="Ichimoku leading span B period.")] = 52
    adx_period: Annotated[int, Field(ge=2, le=200, description="ADX / directional-indicator period.")] = 14
    adx_min: Annotated[
        float, Field(gt=0, lt=100, description="ADX above which the trend is strong enough to vote.")
    ] = 25.0

    @model_validator(mode="after")
    def _ordered(self) -> TrendParams:
        if self.cross_fast >= self.cross_slow:
            raise ValueError("cross_fast must be shorter than cross_slow")
        if any(a >= b for a, b in pairwise(self.ribbon)) or self.ribbon[0] < 2:
            raise ValueError("ribbon periods must be >= 2 and strictly increasing")
        if self.ribbon[-1] > 800:
            raise ValueError("ribbon periods must be <= 800")
        if self.sar_step > self.sar_max:
            raise ValueError("sar_step must not exceed sar_max")
        if not self.tenkan < self.kijun < self.senkou:
            raise ValueError("Ichimoku periods must satisfy tenkan < kijun < senkou")
        return self


def supertrend(high: F64, low: F64, close: F64, period: int, mult: float, atr: F64 | None = None) -> I8:
    """Supertrend direction per bar: +1 up, -1 down, 0 until known (TradingView's rules).

    Bands: ``hl2 ± mult × ATR(period)`` (Wilder ATR). The upper band only moves down (it resets to the
    basic band when the previous close was above it), the lower band only moves up (resets when the
    previous close was below it). A down trend turns up when the close rises above the upper band, an
    up trend turns down when the close falls below the lower band. The direction is unknown (0) from the
    first bar with an ATR until the close first leaves the bands (TradingView seeds it "down" instead).

    The bands are a running minimum/maximum whose resets depend on the bands themselves, so this is
    an O(n) Python loop over plain floats (~50 µs for 600 bars); no TA-Lib or numpy primitive computes it.
    The loop only notes the bars where the direction turns; the output is their cumulative sum.
    """
    if atr is None:
        atr = ta.ATR(high, low, close, timeperiod=period)
    n = len(close)
    out = np.zeros(n, dtype=np.int8)
    s = period  # TA-Lib's first ATR
    if n <= s:
        return out
    hl2 = (high[s:] + low[s:]) * 0.5
    band = mult * atr[s:]
    # The arrays' memoryviews (`.data`) hand out one float at a time: cheaper than three .tolist() copies.
    ups, los = (hl2 + band).data, (hl2 - band).data
    unread = repeat(None, n - s)  # read along with the bars: its length hint is the number of bars not read yet
    bars = zip(ups, los, close[s:].data, unread, strict=True)
    fu, fl, pc, _ = next(bars)  # final upper/lower bands, previous close
    for u, lo, c, _ in bars:  # direction unknown until the close leaves the bands
        if u < fu or pc > fu:
            fu = u
        if lo > fl or pc < fl:
            fl = lo
        if c > fu:
            up = True
            break
        if c < fl:
            up = False
            break
        pc = c
    else:
        return out
    turns: list[int] = []  # bars where the direction is set or turns
    steps = [1 if up else -1]  # and its change there
    # Within an up trend the previous close is never below the lower band (the trend would have turned),
    # so that band only ratchets up; likewise the upper band in a down trend. The one exception, a turn
    # whose close was beyond both bands, restarts that band at the next bar before the trend's loop.
    while True:
        nxt = n - length_hint(unread)  # the bar after the turn
        turns.append(nxt - 1)
        if up:
            if c < fl and nxt < n:
                fl = los[nxt - s]
            pc = c
            for u, lo, c, _ in bars:
                if u < fu or pc > fu:
                    fu = u
                if lo > fl:
                    fl = lo
                if c < fl:
                    break
                pc = c
            else:
                break
            up = False
            steps.append(-2)
        else:
            if c > fu and nxt < n:
                fu = ups[nxt - s]
            pc = c
            for u, lo, c, _ in bars:
                if u < fu:
                    fu = u
                if lo > fl or pc < fl:
                    fl = lo
                if c > fu:
                    break
                pc = c
            else:
                break
            up = True
            steps.append(2)
    out[turns] = steps
    return np.cumsum(out, out=out)


def ichimoku_cloud(high: F64, low: F64, tenkan: int, kijun: int, senkou: int) -> tuple[F64, F64]:
    """(leading span A, leading span B) as plotted at each bar: the spans computed ``kijun`` bars earlier.

    Span A = (conversion + base) / 2 with conversion = midpoint of the ``tenkan``-bar high/low range and
    base = midpoint of the ``kijun``-bar range; span B = midpoint of the ``senkou``-bar range. Shifting
    them forward by ``kijun`` bars gives the cloud drawn under the current bar, which is causal.
    """
    span_a, span_b = _ichimoku_spans(high, low, tenkan, kijun, senkou)
    n = len(high)
    a = np.full(n, np.nan)
    b = np.full(n, np.nan)
    if n > kijun:
        a[kijun:] = span_a[: n - kijun]
        b[kijun:] = span_b[: n - kijun]
    return a, b


def _ichimoku_spans(high: F64, low: F64, tenkan: int, kijun: int, senkou: int) -> tuple[F64, F64]:
    """Leading spans A and B as computed at each bar, before :func:`ichimoku_cloud` shifts them forward."""
    span_a = (ta.MIDPRICE(high, low, timeperiod=tenkan) + ta.MIDPRICE(high, low, timeperiod=kijun)) * 0.5
    return span_a, ta.MIDPRICE(high, low, timeperiod=senkou)


TREND_VOTES = ("golden_cross", "sma_ribbon", "price_vs_sma", "supertrend", "parabolic_sar", "ichimoku", "adx")


def trend_votes(c: Context, p: TrendParams) -> dict[str, I8]:
    """The seven named sub-votes (+1 BUY, -1 SELL, 0 HOLD per bar)."""
    return dict(zip(TREND_VOTES, _trend_vote_matrix(c, p), strict=True))


def _trend_vote_matrix(c: Context, p: TrendParams) -> I8:
    """The sub-votes as the rows of one (7, n) matrix, in :data:`TREND_VOTES` order."""
    close, high, low, n = c.close, c.high, c.low, c.n
    votes = np.empty((len(TREND_VOTES), n), dtype=np.int8)
    fast, slow = c.sma(p.cross_fast), c.sma(p.cross_slow)
    sar = ta.SAR(high, low, acceleration=p.sar_step, maximum=p.sar_max)
    adx_period = p.adx_period
    pdi = ta.PLUS_DI(high, low, close, timeperiod=adx_period)
    mdi = ta.MINUS_DI(high, low, close, timeperiod=adx_period)

    # Every "a > b BUY, a < b SELL" comparison at once: row i of `above` / `below` compares row i of `series`
    # with row i + 1 (two of those pairs, the ribbon's last SMA with SMA(cross_fast) and the SAR with +DI,
    # are not read). A NaN compares False both ways, as in the separate comparisons.
    r = len(p.ribbon) - 1  # the ribbon's adjacent pairs: rows 0 .. r - 1
    series = np.array([*(c.sma(k) for k in p.ribbon), fast, slow, close, sar, pdi, mdi])
    now, nxt = series[:-1], series[1:]
    above, below = now > nxt, now < nxt
    cross, vs_sma, vs_sar, di = r + 1, r + 2, r + 3, r + 5  # (fast, slow), (slow, close), (close, SAR), (+DI, -DI)

    # Shifted slices compare each bar with the previous one (the first bar has no previous one: HOLD).
    golden = votes[0]
    golden[:1] = 0
    combine.vote(
        (fast[:-1] <= slow[:-1]) & above[cross, 1:],
        (fast[:-1] >= slow[:-1]) & below[cross, 1:],
        out=golden[1:],
    )
    combine.vote(np.logical_and.reduce(above[:r]), np.logical_and.reduce(below[:r]), out=votes[1])
    combine.vote(below[vs_sma], above[vs_sma], out=votes[2])  # close above SMA(cross_slow): BUY
    votes[3] = supertrend(high, low, close, p.st_period, p.st_mult, c.atr(p.st_period))
    combine.vote(above[vs_sar], below[vs_sar], out=votes[4])  # SAR below the close: BUY

    # The cloud under bar t is the spans of bar t - kijun: compare the closes from bar kijun on with them.
    span_a, span_b = _ichimoku_spans(high, low, p.tenkan, p.kijun, p.senkou)
    cloud = votes[5]
    k = min(p.kijun, n)
    cloud[:k] = 0
    later, m = close[k:], n - k
    combine.vote(later > np.maximum(span_a[:m], span_b[:m]), later < np.minimum(span_a[:m], span_b[:m]), out=cloud[k:])

    adx = ta.ADX(high, low, close, timeperiod=adx_period)
    adx_vote = votes[6]
    combine.vote(above[di], below[di], out=adx_vote)
    adx_vote *= adx > p.adx_min  # only a strong trend votes
    return votes


def trend(c: Context, p: TrendParams) -> SignalOutput:
    """Trend following: seven sub-indicators each vote BUY, SELL or abstain on every bar.

    The numbers are the parameter defaults.

    - Golden/death cross: BUY on the bar SMA50 crosses above SMA200 (at or below it on the previous
      bar, above it now), SELL on the bar it crosses below.
    - SMA ribbon: BUY when SMA10 > SMA20 > SMA50 > SMA100 > SMA200 strictly, SELL when strictly
      in the reverse order.
    - Price vs SMA200: BUY when the close is above SMA200, SELL when below.
    - Supertrend(10, 3 × ATR10): BUY in an up trend, SELL in a down trend. Bands hl2 ± 3 × Wilder
      ATR10 ratchet towards price (the upper band only moves down, the lower only up, until crossed);
      a down trend turns up when the close rises above the upper band, an up trend turns down when it
      falls below the lower band. Abstains until the close first leaves the bands.
    - Parabolic SAR (step 0.02, max 0.2): BUY when the SAR is below the close, SELL when above.
    - Ichimoku (9, 26, 52): BUY when the close is above the cloud, SELL when below it; the cloud at a
      bar is leading spans A and B computed 26 bars earlier (as plotted), so the vote is causal.
    - ADX(14): when ADX > 25, BUY if +DI > -DI, SELL if -DI > +DI.

    Combining (majority): BUY only if the BUY votes outnumber both the SELL votes and the abstentions
    (SELL likewise); a BUY/SELL tie holds. Confidence = winning votes / (BUY + SELL votes).
    No vote before the warm-up (201 bars: SMA200 and the bar before it),
    even if enough faster sub-indicators agree.
    """
    # bars before the warm-up hold, however many sub-indicators are ready
    return combine.majority(_trend_vote_matrix(c, p), hold_before=_trend_warmup(p) - 1)


def _trend_warmup(p: TrendParams) -> int:
    return max(
        p.cross_slow + 1,  # the cross compares with the previous bar's SMAs
        p.ribbon[-1],
        p.st_period + 1,
        p.senkou + p.kijun,  # span B needs `senkou` bars, then is displaced `kijun` bars
        2 * p.adx_period,
    )


TREND = SignalSpec(
    name="trend",
    family="composite",
    params_model=TrendParams,
    compute=trend,
    warmup=_trend_warmup,
    summary="Trend majority of 7: SMA50/200 cross, SMA ribbon, price vs SMA200, Supertrend, SAR, Ichimoku, ADX/DI",
    # Supertrend and SAR carry state from their first bar; on real and random series a run started at
    # any later bar agrees with the full history after at most ~190 bars, well inside the settle margin.
    window=lambda p: _trend_warmup(p) + SETTLE_BARS,
)

SIGNALS: tuple[SignalSpec, ...] = (TREND,)
