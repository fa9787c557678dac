"""``smart_money`` (SEED-SPEC §2.3): swing structure, fair-value gaps, liquidity sweeps and supply/demand zones.

Swings are fractal pivots confirmed ``k`` bars after the pivot bar, so nothing reads the future. A
swing, gap or zone is remembered for ``memory`` bars after it is confirmed; that bound is what lets a
live window of :func:`_window` bars reproduce the full-history votes exactly. "The last swing" at
each bar is found without a Python loop: the cumulative count of confirmed swings indexes the array
of their positions.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import numpy.typing as npt
import talib
from pydantic import Field

from pia.signals import combine
from pia.signals.base import F64, I8, Bool, Context, Params, SignalOutput, SignalSpec


class SmartMoneyParams(Params):
    k: Annotated[int, Field(ge=1, le=20, description="swing pivot: bars on each side it must exceed")] = 2
    memory: Annotated[
        int, Field(ge=5, le=1000, description="bars a swing, gap or zone stays in use after it is confirmed")
    ] = 100
    sweep_pct: Annotated[
        float, Field(gt=0, le=20, description="liquidity sweep: the wick beyond the swing level by more than this %")
    ] = 0.5
    zone_body: Annotated[
        float, Field(gt=0, le=20, description="zone candle: body above this many times the average body")
    ] = 2.0
    body_period: Annotated[int, Field(ge=2, le=400, description="bars in the average body")] = 20


def swing_points(high: F64, low: F64, k: int) -> tuple[Bool, Bool]:
    """Fractal swings, flagged on the bar that confirms them (``k`` bars after the pivot).

    ``sh[t]`` is True when bar ``j = t - k`` is a swing high: its high is strictly above the highs of
    the ``k`` bars before and the ``k`` bars after it (bars j-k .. j+k). ``sl`` likewise for lows.
    """
    n = len(high)
    sh = np.zeros(n, dtype=np.bool_)
    sl = np.zeros(n, dtype=np.bool_)
    if n < 2 * k + 1:
        return sh, sl
    # hmax[i] = max(high[i-k+1 .. i]) (TA-Lib needs a period of at least 2)
    hmax = talib.MAX(high, timeperiod=k) if k > 1 else high
    lmin = talib.MIN(low, timeperiod=k) if k > 1 else low
    piv_h = high[k : n - k]  # the pivot j = t - k for t = 2k .. n-1
    piv_l = low[k : n - k]
    sh[2 * k :] = (piv_h > hmax[k - 1 : n - k - 1]) & (piv_h > hmax[2 * k :])
    sl[2 * k :] = (piv_l < lmin[k - 1 : n - k - 1]) & (piv_l < lmin[2 * k :])
    return sh, sl


def last_two(flag: Bool, value: F64, memory: int) -> tuple[F64, F64]:
    """At every bar, the values at the last and second-to-last flagged bars up to it (NaN if none).

    A flagged bar counts for ``memory`` bars: at bar t only flags at t - memory + 1 .. t are used.
    ``value`` is read at the flagged bar itself.
    """
    n = len(flag)
    pos = np.flatnonzero(flag)
    m = len(pos)
    positions = np.empty(m + 2, dtype=np.int64)
    positions[:2] = -(n + memory + 1)
    positions[2:] = pos
    values = np.empty(m + 2)
    values[:2] = np.nan
    values[2:] = value[pos]
    cnt = np.cumsum(flag)  # cnt + 1 indexes ``positions`` at the last flag at or before each bar
    age_limit = np.arange(-memory, n - memory)  # a flag at position p counts at bar t if p > t - memory
    last = np.where(positions[cnt + 1] > age_limit, values[cnt + 1], np.nan)
    prev = np.where(positions[cnt] > age_limit, values[cnt], np.nan)
    return last, prev


def last_before(flag: Bool, memory: int) -> npt.NDArray[np.int64]:
    """At every bar t, the index of the last flagged bar in t - memory + 1 .. t - 1, else ``n`` (none).

    ``flag`` is ``(n,)`` or ``(m, n)`` (m flag series at once, bars along the last axis). The sentinel
    ``n`` reads NaN through :func:`gather`.
    """
    n = flag.shape[-1]
    t = np.arange(n)
    idx = np.maximum.accumulate(np.where(flag, t, -memory - 1), axis=-1)
    out = np.empty(flag.shape, dtype=np.int64)
    out[..., 0] = n
    out[..., 1:] = idx[..., :-1]
    return np.where(t - out < memory, out, n)


def gather(a: F64, idx: npt.NDArray[np.int64]) -> F64:
    """``a[idx]`` with index ``len(a)`` reading NaN."""
    ext = np.empty(len(a) + 1)
    ext[:-1] = a
    ext[-1] = np.nan
    return ext.take(idx)


def smart_money_votes(c: Context, p: SmartMoneyParams) -> dict[str, I8]:
    """The five sub-votes (+1 BUY, -1 SELL, 0 HOLD) per bar."""
    o, h, low, close = c.open, c.high, c.low, c.close
    k = p.k
    sh, sl = swing_points(h, low, k)
    # the swing's level, known on its confirmation bar
    sh_level = c.prev(h, k)
    sl_level = c.prev(low, k)
    last_sh, prev_sh = last_two(sh, sh_level, p.memory)
    last_sl, prev_sl = last_two(sl, sl_level, p.memory)

    bos = combine.vote(close > last_sh, close < last_sl)
    choch = combine.vote((last_sh < prev_sh) & (close > last_sh), (last_sl > prev_sl) & (close < last_sl))

    sweep_f = p.sweep_pct / 100.0
    sweep = combine.vote(
        (low < last_sl * (1.0 - sweep_f)) & (close > last_sl),
        (h > last_sh * (1.0 + sweep_f)) & (close < last_sh),
    )

    # fair-value gaps: a three-candle gap on bar j between bar j-2 and bar j
    h2, l2 = c.prev(h, 2), c.prev(low, 2)
    bull_gap = low > h2  # zone [h2, low]
    bear_gap = h < l2  # zone [h, l2]
    # zone candles: demand = a big green candle (zone low .. open), supply = a big red one (zone open .. high)
    body = close - o
    avg_body = c.prev(c.cached(("sma_body", p.body_period), lambda: talib.SMA(np.abs(body), timeperiod=p.body_period)))
    big = np.abs(body) > p.zone_body * avg_body
    # the latest of each kind before each bar, within memory
    ib, ie, idm, isp = last_before(np.vstack((bull_gap, bear_gap, big & (body > 0), big & (body < 0))), p.memory)
    fvg = combine.vote(
        (low <= gather(low, ib)) & (close >= gather(h2, ib)),
        (h >= gather(h, ie)) & (close <= gather(l2, ie)),
    )
    zones = combine.vote(
        (low <= gather(o, idm)) & (close >= gather(low, idm)),
        (h >= gather(o, isp)) & (close <= gather(h, isp)),
    )
    return {"bos": bos, "choch": choch, "fvg": fvg, "sweep": sweep, "zones": zones}


def smart_money(c: Context, p: SmartMoneyParams) -> SignalOutput:
    """Smart-money concepts: swing structure breaks, fair-value gaps, liquidity sweeps, supply/demand zones.

    Swings: bar j is a swing high when its high is strictly above the highs of the k = 2 bars before
    and the k bars after it (`k`); a swing low mirrors this with lows. A swing is known only on bar
    j + k (its confirmation bar u) and counts on bars u .. u + 99 (`memory` = 100 bars; a gap or zone
    candle on bar j counts on bars j + 1 .. j + 99): SEED looked over its whole 100-bar frame, a
    fixed memory keeps live and history votes equal. "Last" swing high / low at bar t = the most
    recently confirmed one still counting; "previous" = the one confirmed before it, if still counting.

    - Break of structure: the close above the last swing high: BUY; below the last swing low: SELL.
    - Change of character: the last swing high is below the previous one (a falling sequence of highs)
      and the close breaks above the last swing high: BUY; the last swing low is above the previous one
      (rising lows) and the close breaks below the last swing low: SELL.
    - Fair-value-gap fill: a bullish gap forms on bar j when low[j] > high[j-2] (zone high[j-2] ..
      low[j]); a bearish gap when high[j] < low[j-2] (zone high[j] .. low[j-2]). Using the most recent
      gap of each kind formed before the current bar (and within memory): the bar's low reaches down
      to the bullish zone's top and its close stays at or above the zone's bottom: BUY; the bar's high
      reaches up to the bearish zone's bottom and its close stays at or below its top: SELL.
    - Liquidity sweep (contrarian): the low more than 0.5 % (`sweep_pct`) below the last swing low and
      the close back above it: BUY; the high more than 0.5 % above the last swing high and the close
      back below it: SELL.
    - Supply/demand zones: a zone candle has a body more than 2 x (`zone_body`) the mean absolute body
      of the 20 bars before it (`body_period`). The most recent green one (before the current bar,
      within memory) makes a demand zone low .. open, the most recent red one a supply zone open ..
      high. The bar's low reaching the demand zone's top with the close at or above its bottom: BUY;
      the bar's high reaching the supply zone's bottom with the close at or below its top: SELL.

    Combining (shared majority rule): BUY only if the BUY votes outnumber both the SELL votes and the
    abstentions (SELL likewise), otherwise HOLD; confidence = winning votes / (BUY + SELL votes).
    """
    return combine.majority(list(smart_money_votes(c, p).values()))


def _warmup(p: SmartMoneyParams) -> int:
    return max(2 * p.k + 1, p.body_period + 1, 3)


def _window(p: SmartMoneyParams) -> int:
    # the oldest usable swing (confirmed memory-1 bars ago) needs the 2k bars before its confirmation, the
    # oldest usable gap the 2 bars before it, the oldest usable zone candle the body_period bars before it
    return p.memory + max(2 * p.k, p.body_period, 2)


SMART_MONEY = SignalSpec(
    name="smart_money",
    family="composite",
    params_model=SmartMoneyParams,
    compute=smart_money,
    warmup=_warmup,
    summary="Swing break of structure and change of character, FVG fill, liquidity sweep, supply/demand zones",
    window=_window,
)

SIGNALS: tuple[SignalSpec, ...] = (SMART_MONEY,)
