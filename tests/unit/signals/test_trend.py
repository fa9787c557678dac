"""trend composite: indicator values (TA-Lib, ta, an independent Supertrend loop), each sub-vote rule,
the majority combining rule, live window == vectorised history, and votes on real candles."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from pia.signals import combine
from pia.signals.base import Context, Ohlcv
from pia.signals.registry import ResolvedSignal
from pia.signals.trend import TREND, TrendParams, ichimoku_cloud, supertrend, trend, trend_votes
from pia.testing.signals import (
    assert_live_matches_vectorised,
    assert_valid_output,
    load_btc_5m,
    load_spy_daily,
    random_ohlcv,
    tail,
)

P = TrendParams()
W = TREND.warmup(P)


def bars(close: np.ndarray, spread: float = 0.002) -> Ohlcv:
    close = np.ascontiguousarray(close, dtype=np.float64)
    n = len(close)
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    return Ohlcv(np.arange(n, dtype=np.int64) * 60_000_000_000, open_, high, low, close, np.ones(n))


def rise_then_fall(n: int = 400) -> Ohlcv:
    """A steady 0.3 %/bar climb for n bars, then a steady fall for n bars."""
    up = 100 * 1.003 ** np.arange(n)
    return bars(np.r_[up, up[-1] * 0.997 ** np.arange(1, n + 1)])


@pytest.fixture(scope="module")
def btc(shared_data: Path) -> Ohlcv:
    return tail(load_btc_5m(shared_data), 4000)


def supertrend_reference(o: Ohlcv, period: int, mult: float) -> np.ndarray:
    """TradingView's ``ta.supertrend`` written out bar by bar (its direction: -1 up, +1 down), tracking the
    plotted line, except that the direction is unknown until the close first leaves the bands."""
    atr = talib.ATR(o.high, o.low, o.close, period)
    n = len(o.close)
    direction = np.zeros(n, dtype=np.int8)
    upper = lower = line = math.nan
    for i in range(n):
        if math.isnan(atr[i]):
            continue
        hl2 = (o.high[i] + o.low[i]) / 2
        basic_up, basic_dn = hl2 + mult * atr[i], hl2 - mult * atr[i]
        prev_up, prev_dn, prev_line = upper, lower, line
        first = math.isnan(prev_up)
        upper = basic_up if first or basic_up < prev_up or o.close[i - 1] > prev_up else prev_up
        lower = basic_dn if first or basic_dn > prev_dn or o.close[i - 1] < prev_dn else prev_dn
        if math.isnan(prev_line):  # not yet known (TradingView would start "down")
            tv_dir = -1 if o.close[i] > upper else 1 if o.close[i] < lower else 0
        elif prev_line == prev_up:
            tv_dir = -1 if o.close[i] > upper else 1
        else:
            tv_dir = 1 if o.close[i] < lower else -1
        line = lower if tv_dir == -1 else upper if tv_dir == 1 else math.nan
        direction[i] = -tv_dir
    return direction


# --- indicator values ----------------------------------------------------------------------


def test_supertrend_matches_an_independent_bar_by_bar_implementation(btc: Ohlcv) -> None:
    for period, mult in [(10, 3.0), (7, 2.0), (20, 1.0)]:
        got = supertrend(btc.high, btc.low, btc.close, period, mult)
        want = supertrend_reference(btc, period, mult)
        np.testing.assert_array_equal(got, want)
        first = int(np.flatnonzero(got)[0])
        assert (got[:first] == 0).all() and (got[first:] != 0).all() and first < period + 100
        flips = np.count_nonzero(np.diff(got[period:]))
        assert flips > 20, flips


def test_supertrend_by_hand() -> None:
    # period 2, mult 1, bars of constant range 2 (high = close + 1, low = close - 1), so TR = 2 and ATR = 2
    close = np.array([10.0, 10, 10, 10, 13, 13, 9, 9, 5])
    o = Ohlcv(np.arange(9, dtype=np.int64), close, close + 1, close - 1, close, np.ones(9))
    # TR (from bar 1): 2, 2, 2, 4, 2, 5, 2, 5; Wilder ATR(2) from bar 2: 2, 2, 3, 2.5, 3.75, 2.875, 3.9375.
    # bar 2: bands 10 ± 2 = 12 / 8, close inside: unknown.  bar 3: same bands and close: unknown.
    # bar 4: basic bands 13 ± 3 = 16 / 10; the upper band stays 12 (16 > 12 and the previous close
    #        10 < 12), the lower ratchets up to 10; close 13 > 12: up.
    # bar 5: basic 15.5 / 10.5; the upper band resets to 15.5 (previous close 13 > 12), lower 10.5: up.
    # bar 6: basic 12.75 / 5.25; lower stays 10.5; close 9 < 10.5: down.
    # bar 7: basic 11.875 / 6.125; upper ratchets down to 11.875, close 9 below it: down.
    # bar 8: close 5: down.
    assert supertrend(o.high, o.low, o.close, 2, 1.0).tolist() == [0, 0, 0, 0, 1, 1, -1, -1, -1]


def test_ichimoku_cloud_matches_ta_shifted_forward(btc: Ohlcv) -> None:
    import pandas as pd
    import ta

    h, lo = pd.Series(btc.high), pd.Series(btc.low)
    ind = ta.trend.IchimokuIndicator(h, lo, window1=9, window2=26, window3=52, visual=False)
    want_a = ind.ichimoku_a().shift(26).to_numpy()
    want_b = ind.ichimoku_b().shift(26).to_numpy()  # ta computes span B from partial windows at the start
    a, b = ichimoku_cloud(btc.high, btc.low, 9, 26, 52)
    assert np.isnan(a[:51]).all() and np.isnan(b[:77]).all() and not np.isnan(b[77])
    np.testing.assert_allclose(a, want_a, rtol=1e-12)
    np.testing.assert_allclose(b[77:], want_b[77:], rtol=1e-12)


# --- sub-vote rules ---------------------------------------------------------------------------


def test_sub_votes_follow_their_rules_on_real_candles(btc: Ohlcv) -> None:
    v = trend_votes(Context(btc), P)
    h, lo, c = btc.high, btc.low, btc.close
    s50, s200 = talib.SMA(c, 50), talib.SMA(c, 200)
    gc_buy = (s50[:-1] <= s200[:-1]) & (s50[1:] > s200[1:])
    gc_sell = (s50[:-1] >= s200[:-1]) & (s50[1:] < s200[1:])
    assert v["golden_cross"][0] == 0
    np.testing.assert_array_equal(v["golden_cross"][1:], gc_buy.astype(np.int8) - gc_sell)
    smas = [talib.SMA(c, k) for k in (10, 20, 50, 100, 200)]
    up = (smas[0] > smas[1]) & (smas[1] > smas[2]) & (smas[2] > smas[3]) & (smas[3] > smas[4])
    down = (smas[0] < smas[1]) & (smas[1] < smas[2]) & (smas[2] < smas[3]) & (smas[3] < smas[4])
    np.testing.assert_array_equal(v["sma_ribbon"], up.astype(np.int8) - down)
    np.testing.assert_array_equal(v["price_vs_sma"], (c > s200).astype(np.int8) - (c < s200))
    np.testing.assert_array_equal(v["supertrend"], supertrend_reference(btc, 10, 3.0))
    sar = talib.SAR(h, lo, 0.02, 0.2)
    np.testing.assert_array_equal(v["parabolic_sar"], (sar < c).astype(np.int8) - (sar > c))
    a, b = ichimoku_cloud(h, lo, 9, 26, 52)
    top, bottom = np.maximum(a, b), np.minimum(a, b)
    np.testing.assert_array_equal(v["ichimoku"], (c > top).astype(np.int8) - (c < bottom))
    adx, pdi, mdi = talib.ADX(h, lo, c, 14), talib.PLUS_DI(h, lo, c, 14), talib.MINUS_DI(h, lo, c, 14)
    want_adx = ((adx > 25) & (pdi > mdi)).astype(np.int8) - ((adx > 25) & (mdi > pdi))
    np.testing.assert_array_equal(v["adx"], want_adx)
    for name, votes in v.items():  # every rule fires both ways on 4,000 real bars
        assert (votes == 1).any() and (votes == -1).any(), name
        assert (votes == 0).any(), name


def test_steady_climb_and_fall_vote_every_sub_indicator_each_way() -> None:
    o = rise_then_fall()
    v = trend_votes(Context(o), P)
    for name in ("sma_ribbon", "price_vs_sma", "supertrend", "parabolic_sar", "ichimoku", "adx"):
        assert v[name][399] == 1, name
        assert v[name][799] == -1, name
    # the ribbon needs SMA200 (bar 199); the cloud is first drawn at bar 77
    assert v["sma_ribbon"][198] == 0 and v["sma_ribbon"][199] == 1
    assert v["ichimoku"][76] == 0 and v["ichimoku"][77] == 1
    # exactly one death cross, on the bar SMA50 drops under SMA200, and no golden cross after the climb
    s50, s200 = talib.SMA(o.close, 50), talib.SMA(o.close, 200)
    crosses = np.flatnonzero(v["golden_cross"])
    assert len(crosses) == 1 and v["golden_cross"][crosses[0]] == -1
    t = int(crosses[0])
    assert s50[t - 1] >= s200[t - 1] and s50[t] < s200[t] and 400 < t < 800


def test_golden_cross_votes_only_on_the_crossing_bar() -> None:
    down = 100 * 0.998 ** np.arange(300)
    o = bars(np.r_[down, down[-1] * 1.004 ** np.arange(1, 201)])
    v = trend_votes(Context(o), P)["golden_cross"]
    s50, s200 = talib.SMA(o.close, 50), talib.SMA(o.close, 200)
    t = int(np.flatnonzero(v)[0])
    assert v[t] == 1 and np.count_nonzero(v) == 1
    assert s50[t - 1] <= s200[t - 1] and s50[t] > s200[t]


def test_adx_abstains_without_a_strong_trend() -> None:
    # prices scattered around 100 with no trend: +DI and -DI take turns leading but ADX stays below 25
    close = 100 + np.random.default_rng(2).normal(0, 0.5, 400)
    o = bars(close)
    adx = talib.ADX(o.high, o.low, o.close, 14)
    pdi, mdi = talib.PLUS_DI(o.high, o.low, o.close, 14), talib.MINUS_DI(o.high, o.low, o.close, 14)
    assert 20 < np.nanmax(adx) < 25
    assert (pdi > mdi).sum() > 100 and (mdi > pdi).sum() > 100
    assert (trend_votes(Context(o), P)["adx"] == 0).all()


# --- combining ----------------------------------------------------------------------------------


def test_composite_is_the_majority_of_the_sub_votes(btc: Ohlcv) -> None:
    c = Context(btc)
    out = trend(c, P)
    m = np.vstack(list(trend_votes(Context(btc), P).values()))
    b, s = (m == 1).sum(axis=0), (m == -1).sum(axis=0)
    h = 7 - b - s
    w = TREND.warmup(P) - 1  # bars before the warm-up hold whatever the sub-votes say
    assert (out.action[:w] == 0).all() and (out.confidence[:w] == 0).all()
    b[:w] = s[:w] = h[:w] = 0
    np.testing.assert_array_equal(out.action == 1, (b > s) & (b > h))
    np.testing.assert_array_equal(out.action == -1, (s > b) & (s > h))
    voted = out.action != 0
    np.testing.assert_allclose(out.confidence[voted], np.maximum(b, s)[voted] / (b + s)[voted])
    # three BUYs, one SELL and three abstentions: BUY leads SELL but not the abstentions, so HOLD
    blocked = (b == 3) & (s == 1)
    assert blocked.any() and (out.action[blocked] == 0).all()
    # four BUYs against three SELLs: BUY with confidence 4/7
    close_call = (b == 4) & (s == 3)
    if close_call.any():
        assert (out.action[close_call] == 1).all()
        np.testing.assert_allclose(out.confidence[close_call], 4 / 7)


def test_steady_climb_is_a_unanimous_buy_and_flat_prices_hold() -> None:
    out = trend(Context(rise_then_fall()), P)
    # before SMA200 exists, Supertrend, SAR, Ichimoku and ADX (4 of 7) already agree, but it is too early
    early = combine.majority(list(trend_votes(Context(rise_then_fall()), P).values()))
    assert early.action[150] == 1 and out.action[150] == 0 and out.action[:200].tolist() == [0] * 200
    assert out.action[200] == 1
    assert out.action[399] == 1 and out.confidence[399] == 1.0  # 6 BUY, golden cross abstains
    assert out.action[799] == -1 and out.confidence[799] == 1.0
    flat = bars(np.full(400, 50.0))
    assert (trend(Context(flat), P).action == 0).all()


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        TrendParams(ribbon=(10, 50, 20))
    with pytest.raises(ValueError, match="cross_fast"):
        TrendParams(cross_fast=200, cross_slow=100)
    assert TREND.warmup(P) == 201 and TREND.family == "composite"
    assert ResolvedSignal(TREND, P).window == 601


@pytest.mark.parametrize("n", [0, 1, 2, 27, W - 1, W, W + 50])
def test_short_histories_hold_until_the_warmup(n: int) -> None:
    o = (
        tail(random_ohlcv(7, 400, vol=0.03), n)
        if n
        else Ohlcv(*(np.zeros(0, dtype=t) for t in (np.int64,) + (float,) * 5))
    )
    out = trend(Context(o), P)
    assert_valid_output(out, n)
    assert not out.action[: W - 1].any()


# --- live == vectorised, and real candles ---------------------------------------------------------


def test_live_window_equals_vectorised_on_btc_5m(shared_data: Path) -> None:
    sig = ResolvedSignal(TREND, P)
    out = assert_live_matches_vectorised(sig, tail(load_btc_5m(shared_data), sig.window + 1500))
    assert (out.action == 1).any() and (out.action == -1).any()


def test_live_window_equals_vectorised_on_spy_daily(shared_data: Path) -> None:
    sig = ResolvedSignal(TREND, P)
    out = assert_live_matches_vectorised(sig, tail(load_spy_daily(shared_data), sig.window + 1500))
    assert (out.action == 1).any() and (out.action == -1).any()


@settings(max_examples=8, deadline=None)
@given(st.integers(min_value=0, max_value=2**31), st.sampled_from([0.002, 0.01, 0.03]))
def test_live_window_equals_vectorised_on_random_series(seed: int, vol: float) -> None:
    sig = ResolvedSignal(TREND, P)
    assert_live_matches_vectorised(sig, random_ohlcv(seed, sig.window + 250, vol=vol))


@pytest.mark.parametrize("loader", [load_btc_5m, load_spy_daily])
def test_votes_both_ways_on_real_candles(shared_data: Path, loader: Callable[[Path], Ohlcv]) -> None:
    o = loader(shared_data)
    out = trend(Context(o), P)
    assert_valid_output(out, len(o.close))
    buy, sell = (out.action == 1).mean(), (out.action == -1).mean()
    assert 0.05 < buy < 0.7 and 0.05 < sell < 0.7, (buy, sell)
    assert (out.confidence[out.action != 0] > 0.5).all()  # the winner always outnumbers the loser
    raw = combine.majority(list(trend_votes(Context(o), P).values()))
    assert raw.action[200:].tolist() == out.action[200:].tolist()
