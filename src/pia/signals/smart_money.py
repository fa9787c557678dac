"""``smart_money`` (SEED-SPEC §2.3): swing structure, fair-value gaps, liquidity sweeps and supply/demand zones.

Swings are fractal pivots confirmed ``k`` bars after the pivot bar, so nothing reads the future. A
swing, gap or zone is remembered for ``memory`` bars after it is confirmed; that bound is what lets a
live window of :func:`_window` bars reproduce the full-history votes exactly. "The last swing" at
each bar is found without a Python loop: a running maximum of the flagged bars' positions.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

import numpy as np
import numpy.typing as npt
from pydantic import Field

from pia.signals import combine, ta
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


def _swing_flags(high: F64, low: F64, k: int) -> Bool:
    """:func:`swing_points` as one (2, n) array: row 0 the swing highs, row 1 the swing lows."""
    flags = np.empty((2, len(high)), dtype=np.bool_)
    _swing_flags_into(flags, high, low, k)
    return flags


def _swing_flags_into(flags: Bool, high: F64, low: F64, k: int) -> None:
    """Write :func:`_swing_flags` into the (2, n) ``flags``."""
    n = len(high)
    if n < 2 * k + 1:
        flags[:] = False
        return
    flags[:, : 2 * k] = False
    # hmax[i] = max(high[i-k+1 .. i]) (TA-Lib needs a period of at least 2)
    hmax = ta.MAX(high, timeperiod=k) if k > 1 else high
    lmin = ta.MIN(low, timeperiod=k) if k > 1 else low
    # the pivot j = t - k for t = 2k .. n-1 beats the k bars before it and the k bars after it: the higher
    # (lower) side is enough, and a NaN side fails the comparison either way
    np.greater(high[k : n - k], np.maximum(hmax[k - 1 : n - k - 1], hmax[2 * k :]), out=flags[0, 2 * k :])
    np.less(low[k : n - k], np.minimum(lmin[k - 1 : n - k - 1], lmin[2 * k :]), out=flags[1, 2 * k :])


def swing_points(high: F64, low: F64, k: int) -> tuple[Bool, Bool]:
    """Fractal swings, flagged on the bar that confirms them (``k`` bars after the pivot).

    ``sh[t]`` is True when bar ``j = t - k`` is a swing high: its high is strictly above the highs of
    the ``k`` bars before and the ``k`` bars after it (bars j-k .. j+k). ``sl`` likewise for lows.
    """
    sh, sl = _swing_flags(high, low, k)
    return sh, sl


# Flag positions below are 1-based positions in the flattened (rows, n) flag array, 0 meaning "none":
# a position indexes an array holding NaN at index 0 and then the flattened values, so "none" reads NaN.


_CACHED_LAYOUT_BARS = 4096
"""Layouts up to this many bars (every live window) are cached; a long history's (MBs) is built per call."""


def _layout(rows: int, n: int, memory: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """For (rows, n) flags: each cell's 1-based flat position, and the newest position that no longer
    counts there (a flag counts for ``memory`` bars, within its own row)."""
    return _cached_layout(rows, n, memory) if n <= _CACHED_LAYOUT_BARS else _build_layout(rows, n, memory)


@lru_cache(maxsize=16)
def _cached_layout(rows: int, n: int, memory: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    return _build_layout(rows, n, memory)


def _build_layout(rows: int, n: int, memory: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    position = np.arange(1, rows * n + 1, dtype=np.int64).reshape(rows, n)
    row_start = np.arange(rows, dtype=np.int64)[:, None] * n
    too_old = row_start + np.maximum(np.arange(n, dtype=np.int64) - memory + 1, 0)
    position.flags.writeable = too_old.flags.writeable = False
    return position, too_old


_NAN = np.array([np.nan])


def _with_nan_first(a: npt.NDArray[np.float64]) -> F64:
    """NaN, then ``a`` flattened: what a 1-based flat position reads (0: NaN)."""
    out = np.empty(a.size + 1)
    out[0] = np.nan
    out[1:] = a.ravel()
    return out


def _newest(flag: Bool, memory: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """For (rows, n) flags: the position of the newest flag at or before each cell (whether it still counts
    or not), and the newest position that no longer counts there."""
    rows, n = flag.shape
    position, too_old = _layout(rows, n, memory)
    newest = position * flag
    np.maximum.accumulate(newest, axis=1, out=newest)
    return newest, too_old


def _latest_positions(
    flag: Bool, memory: int, zones: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """For (rows, n) flags, the 1-based flat positions (0 where none still counts) of: in the first ``zones``
    rows, the last flag before each bar (:func:`last_before`); in the other rows, the last and the
    second-to-last flags at or before each bar (:func:`last_two`)."""
    newest, too_old = _newest(flag, memory)
    # the newest flag at the cell before flat position q: shifted[q] (a row's first cell reads the previous
    # row's newest flag, which is too old by construction; the very first cell reads 0)
    shifted = np.empty(flag.size + 1, dtype=np.int64)
    shifted[:2] = 0
    shifted[2:] = newest.ravel()[:-1]
    before = shifted[1:].reshape(flag.shape)[:zones]
    last = newest[zones:]
    # the flag before the one at position q is the newest flag at the cell before it
    second = shifted.take(last)
    old = too_old[zones:]
    before *= before > too_old[:zones]  # in place: neither shifted nor newest is read again
    last *= last > old
    second *= second > old
    return before, last, second


def last_two(flag: Bool, value: F64, memory: int) -> tuple[F64, F64]:
    """At every bar, the values at the last and second-to-last flagged bars up to it (NaN if none).

    A flagged bar counts for ``memory`` bars: at bar t only flags at t - memory + 1 .. t are used.
    ``value`` is read at the flagged bar itself. ``flag`` and ``value`` are ``(n,)`` or ``(m, n)`` (m
    series at once, bars along the last axis).
    """
    rows = flag[None, :] if flag.ndim == 1 else flag
    _, last, prev = _latest_positions(rows, memory, 0)
    values = _with_nan_first(value)
    return values.take(last).reshape(flag.shape), values.take(prev).reshape(flag.shape)


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


VOTE_NAMES = ("bos", "choch", "fvg", "sweep", "zones")
_BOS, _CHOCH, _FVG, _SWEEP, _ZONES = range(len(VOTE_NAMES))


_NANS = np.full(20, np.nan)  # at least the largest k and 2: the bars before a shifted series starts
_NANS.flags.writeable = False


def _vote_rows(c: Context, p: SmartMoneyParams) -> I8:
    """The five sub-votes (+1 BUY, -1 SELL, 0 HOLD) per bar, as rows in :data:`VOTE_NAMES` order."""
    o, h, low, close = c.open, c.high, c.low, c.close
    n, k, i8 = c.n, p.k, np.int8
    votes = np.empty((len(VOTE_NAMES), n), dtype=i8)

    # flag rows: bullish gap, demand candle, bearish gap, supply candle (flagged on their own bar), then swing
    # high, swing low (flagged on their confirmation bar)
    flags = np.empty((6, n), dtype=np.bool_)
    # fair-value gaps: a three-candle gap on bar j between bar j-2 and bar j
    flags[0, :2] = flags[2, :2] = False
    np.greater(low[2:], h[: max(n - 2, 0)], out=flags[0, 2:])  # zone [high[j-2], low]
    np.less(h[2:], low[: max(n - 2, 0)], out=flags[2, 2:])  # zone [h, low[j-2]]
    # zone candles: demand = a big green candle (zone low .. open), supply = a big red one (zone open .. high)
    body = close - o
    size = np.abs(body)
    avg_body = c.cached(("sma_body", p.body_period), lambda: ta.SMA(size, timeperiod=p.body_period))
    big = np.empty(n, dtype=np.bool_)
    big[:1] = False
    np.greater(size[1:], p.zone_body * avg_body[:-1], out=big[1:])  # above the average of the bars before
    np.logical_and(big, body > 0, out=flags[1])
    np.logical_and(big, body < 0, out=flags[3])
    _swing_flags_into(flags[4:], h, low, k)

    # positions of the latest zone of each kind before each bar (within memory), and of the last and previous
    # swings; a swing's level is the pivot's high / low, read on its confirmation bar
    at, last_at, prev_at = _latest_positions(flags, p.memory, 4)
    pivot_nans, gap_nans = _NANS[: min(k, n)], _NANS[: min(2, n)]
    values = np.concatenate((_NAN, low, o, h, o, pivot_nans, h[: max(n - k, 0)], pivot_nans, low[: max(n - k, 0)]))

    last, prev = values.take(last_at), values.take(prev_at)
    last_sh, last_sl = last
    above, below = close > last, close < last  # rows: against the last swing high, the last swing low
    combine.vote(above[0], below[1], out=votes[_BOS])
    combine.vote((last_sh < prev[0]) & above[0], (last_sl > prev[1]) & below[1], out=votes[_CHOCH])
    sweep_f = p.sweep_pct / 100.0
    combine.vote(
        (low < last_sl * (1.0 - sweep_f)) & above[1], (h > last_sh * (1.0 + sweep_f)) & below[0], out=votes[_SWEEP]
    )

    # each zone's edge the bar must reach (bullish: top, bearish: bottom) and the edge its close must hold
    # (bullish: bottom, bearish: top)
    reach = values.take(at)
    hold = np.concatenate((_NAN, gap_nans, h[: max(n - 2, 0)], low, gap_nans, low[: max(n - 2, 0)], h)).take(at)
    bullish = (low <= reach[:2]) & (close >= hold[:2])  # rows: gap, zone
    bearish = (h >= reach[2:]) & (close <= hold[2:])
    combine.vote(bullish[0], bearish[0], out=votes[_FVG])
    combine.vote(bullish[1], bearish[1], out=votes[_ZONES])
    return votes


def smart_money_votes(c: Context, p: SmartMoneyParams) -> dict[str, I8]:
    """The five sub-votes (+1 BUY, -1 SELL, 0 HOLD) per bar."""
    return dict(zip(VOTE_NAMES, _vote_rows(c, p), strict=True))


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
    return combine.majority(_vote_rows(c, p))


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
