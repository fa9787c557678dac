"""momentum composite: indicator values (TA-Lib, ta), each sub-vote rule, the majority combining rule,
live window == vectorised history, and votes on real candles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from pia.signals.base import Context, Ohlcv
from pia.signals.momentum import MOMENTUM, MomentumParams, momentum, momentum_votes, ppo, stoch_rsi
from pia.signals.registry import ResolvedSignal
from pia.testing.signals import (
    assert_live_matches_vectorised,
    assert_valid_output,
    load_btc_5m,
    load_spy_daily,
    random_ohlcv,
    tail,
)

P = MomentumParams()
W = MOMENTUM.warmup(P)


def bars(close: np.ndarray, spread: float = 0.002) -> Ohlcv:
    close = np.ascontiguousarray(close, dtype=np.float64)
    n = len(close)
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    return Ohlcv(np.arange(n, dtype=np.int64) * 60_000_000_000, open_, high, low, close, np.ones(n))


@pytest.fixture(scope="module")
def btc(shared_data: Path) -> Ohlcv:
    return tail(load_btc_5m(shared_data), 4000)


def vote(buy: np.ndarray, sell: np.ndarray) -> np.ndarray:
    return buy.astype(np.int8) - sell.astype(np.int8)


def prev(a: np.ndarray, k: int = 1) -> np.ndarray:
    return np.r_[np.full(k, np.nan), a[:-k]]


# --- indicator values ----------------------------------------------------------------------


def test_stoch_rsi_equals_talib_fast_k(btc: Ohlcv) -> None:
    r = talib.RSI(btc.close, 14)
    fast_k, _ = talib.STOCHRSI(btc.close, timeperiod=14, fastk_period=14, fastd_period=3, fastd_matype=0)
    got = stoch_rsi(r, 14)
    assert np.isnan(got[:27]).all() and not np.isnan(got[27:]).any()
    np.testing.assert_allclose(got[29:] * 100, fast_k[29:], rtol=1e-10, atol=1e-9)  # TA-Lib's own lookback is 29
    # a flat RSI has no stochastic (TA-Lib says 0, which would read as "oversold")
    flat = stoch_rsi(np.r_[np.full(14, np.nan), np.full(40, 50.0)], 14)
    assert np.isnan(flat).all()


def test_ppo_equals_talib_and_ta(btc: Ohlcv) -> None:
    import pandas as pd
    import ta

    c = btc.close
    line, sig = ppo(talib.EMA(c, 12), talib.EMA(c, 26), 9)
    np.testing.assert_allclose(line, talib.PPO(c, fastperiod=12, slowperiod=26, matype=1), rtol=1e-12)
    assert np.isnan(sig[:33]).all() and not np.isnan(sig[33:]).any()
    # ta seeds its EMAs with the first close instead of an SMA: equal once the seed has decayed
    ref = ta.momentum.PercentagePriceOscillator(pd.Series(c), window_slow=26, window_fast=12, window_sign=9)
    np.testing.assert_allclose(line[400:], ref.ppo().to_numpy()[400:], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sig[400:], ref.ppo_signal().to_numpy()[400:], rtol=1e-9, atol=1e-9)


# --- sub-vote rules ---------------------------------------------------------------------------


def test_sub_votes_follow_their_rules_on_real_candles(btc: Ohlcv) -> None:
    v = momentum_votes(Context(btc), P)
    h, lo, c = btc.high, btc.low, btc.close
    n = len(c)
    r = talib.RSI(c, 14)
    # divergence by brute force: the newer 7 bars against the 7 before them
    div = np.zeros(n, dtype=np.int8)
    for t in range(13, n):
        pn, po, rn, ro = c[t - 6 : t + 1], c[t - 13 : t - 6], r[t - 6 : t + 1], r[t - 13 : t - 6]
        if np.isnan(ro).any():
            continue
        bull = pn.min() < po.min() and rn.min() > ro.min()
        bear = pn.max() > po.max() and rn.max() < ro.max()
        div[t] = int(bull) - int(bear)
    np.testing.assert_array_equal(v["rsi_divergence"], div)
    k, d = talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)
    pk, pd = prev(k), prev(d)
    np.testing.assert_array_equal(
        v["stochastic"], vote((pk <= pd) & (k > d) & (k < 20), (pk >= pd) & (k < d) & (k > 80))
    )
    fast_k, _ = talib.STOCHRSI(c, 14, 14, 3, 0)
    np.testing.assert_array_equal(v["stoch_rsi"][29:], vote(fast_k < 20, fast_k > 80)[29:])
    cci = talib.CCI(h, lo, c, 20)
    np.testing.assert_array_equal(v["cci"], vote(cci < -100, cci > 100))
    willr = talib.WILLR(h, lo, c, 14)
    np.testing.assert_array_equal(v["williams_r"], vote(willr < -80, willr > -20))
    roc = talib.ROC(c, 12)
    np.testing.assert_array_equal(v["roc"], vote((roc > 0) & (roc > prev(roc)), (roc < 0) & (roc < prev(roc))))
    line = talib.PPO(c, 12, 26, 1)
    sig = talib.EMA(line, 9)
    np.testing.assert_array_equal(
        v["ppo"], vote((prev(line) <= prev(sig)) & (line > sig), (prev(line) >= prev(sig)) & (line < sig))
    )
    ema = talib.EMA(c, 13)
    np.testing.assert_array_equal(v["elder_power"], vote((h > ema) & (lo > ema), (h < ema) & (lo < ema)))
    for name, votes in v.items():  # every rule fires both ways, and abstains, on 4,000 real bars
        assert (votes == 1).any() and (votes == -1).any() and (votes == 0).any(), name


def test_rsi_divergence_by_hand() -> None:
    # 40 calm bars, then: a sharp drop to 90 in the older half, a bounce and a slow drift to 89.8 in the newer
    calm = 100 + 0.3 * np.sin(np.arange(40))
    close = np.r_[calm, [100, 100, 100, 90, 92, 94, 95, 94, 93, 92, 91, 90.5, 90.0, 89.8]]
    r = talib.RSI(close, 14)
    assert close[-7:].min() < close[-14:-7].min()  # lower low in price
    assert r[-7:].min() > r[-14:-7].min() + 10  # higher low in RSI (26 against 9)
    assert momentum_votes(Context(bars(close)), P)["rsi_divergence"][-1] == 1
    # the mirror image is a bearish divergence
    assert momentum_votes(Context(bars(200 - close)), P)["rsi_divergence"][-1] == -1
    # without the sharp drop, the slow drift is a lower low with a lower RSI low: no divergence
    plain = np.r_[calm, [100, 99.5, 99, 98.5, 98, 97.5, 97, 96, 95, 94, 93, 92, 91, 90]]
    assert momentum_votes(Context(bars(plain)), P)["rsi_divergence"][-1] == 0


def test_steady_climb_votes_momentum_and_its_reversal() -> None:
    close = np.r_[100 * 1.003 ** np.arange(100), 100 * 1.003**99 * 0.997 ** np.arange(1, 101)]
    v = momentum_votes(Context(bars(close)), P)
    # the climb: bull and bear power both positive; CCI and %R overbought (contrarian SELL); the fall: mirrored
    assert v["elder_power"][90] == 1 and v["elder_power"][190] == -1
    assert v["cci"][90] == -1 and v["cci"][190] == 1  # contrarian
    assert v["williams_r"][90] == -1 and v["williams_r"][190] == 1


def test_ppo_votes_on_the_crossing_bars() -> None:
    # a slow decline keeps PPO under its signal line; a 5 % jump at bar 80 lifts it above (BUY) and as the
    # jump fades from the fast EMA it crosses back under (SELL)
    close = np.r_[100 * 0.999 ** np.arange(80), 105 * 0.999 ** np.arange(40)]
    v = momentum_votes(Context(bars(close)), P)["ppo"]
    assert np.flatnonzero(v).tolist() == [80, 93]
    assert v[80] == 1 and v[93] == -1


# --- combining ----------------------------------------------------------------------------------


def test_composite_is_the_majority_of_the_sub_votes(btc: Ohlcv) -> None:
    out = momentum(Context(btc), P)
    m = np.vstack(list(momentum_votes(Context(btc), P).values()))
    b, s = (m == 1).sum(axis=0), (m == -1).sum(axis=0)
    h = 8 - b - s
    w = MOMENTUM.warmup(P) - 1  # bars before the warm-up hold whatever the sub-votes say
    assert (out.action[:w] == 0).all() and (out.confidence[:w] == 0).all()
    b[:w] = s[:w] = h[:w] = 0
    np.testing.assert_array_equal(out.action == 1, (b > s) & (b > h))
    np.testing.assert_array_equal(out.action == -1, (s > b) & (s > h))
    voted = out.action != 0
    assert voted.any()
    np.testing.assert_allclose(out.confidence[voted], np.maximum(b, s)[voted] / (b + s)[voted])
    # four of eight agreeing is not enough when the other four abstain
    blocked = ((b == 4) & (s == 0)) | ((s == 4) & (b == 0))
    assert blocked.any() and (out.action[blocked] == 0).all()


def test_flat_prices_hold() -> None:
    assert (momentum(Context(bars(np.full(300, 50.0))), P).action == 0).all()


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="ppo_fast"):
        MomentumParams(ppo_fast=30)
    with pytest.raises(ValueError, match="stoch_low"):
        MomentumParams(stoch_low=90)
    assert MOMENTUM.warmup(P) == 35 and MOMENTUM.family == "composite"


def test_warmup_is_when_the_slowest_sub_indicator_can_first_vote() -> None:
    # the PPO signal line first exists at index 33, so a crossing (this bar and the previous) at index 34
    close = random_ohlcv(3, 60).close
    _, sig = ppo(talib.EMA(close, 12), talib.EMA(close, 26), 9)
    assert np.isnan(sig[32]) and not np.isnan(sig[33])
    assert MOMENTUM.warmup(P) == 34 + 1


@pytest.mark.parametrize("n", [0, 1, 2, 27, W - 1, W, W + 50])
def test_short_histories_hold_until_the_warmup(n: int) -> None:
    o = (
        tail(random_ohlcv(7, 400, vol=0.03), n)
        if n
        else Ohlcv(*(np.zeros(0, dtype=t) for t in (np.int64,) + (float,) * 5))
    )
    out = momentum(Context(o), P)
    assert_valid_output(out, n)
    assert not out.action[: W - 1].any()


# --- live == vectorised, and real candles ---------------------------------------------------------


def test_live_window_equals_vectorised_on_btc_5m(shared_data: Path) -> None:
    sig = ResolvedSignal(MOMENTUM, P)
    out = assert_live_matches_vectorised(sig, tail(load_btc_5m(shared_data), sig.window + 1500))
    assert (out.action == 1).any() and (out.action == -1).any()


def test_live_window_equals_vectorised_on_spy_daily(shared_data: Path) -> None:
    sig = ResolvedSignal(MOMENTUM, P)
    out = assert_live_matches_vectorised(sig, tail(load_spy_daily(shared_data), sig.window + 1500))
    assert (out.action == 1).any() and (out.action == -1).any()


@settings(max_examples=8, deadline=None)
@given(st.integers(min_value=0, max_value=2**31), st.sampled_from([0.002, 0.01, 0.03]))
def test_live_window_equals_vectorised_on_random_series(seed: int, vol: float) -> None:
    sig = ResolvedSignal(MOMENTUM, P)
    assert_live_matches_vectorised(sig, random_ohlcv(seed, sig.window + 250, vol=vol))


@pytest.mark.parametrize("loader", [load_btc_5m, load_spy_daily])
def test_votes_both_ways_on_real_candles(shared_data: Path, loader: Callable[[Path], Ohlcv]) -> None:
    o = loader(shared_data)
    out = momentum(Context(o), P)
    assert_valid_output(out, len(o.close))
    buy, sell = (out.action == 1).mean(), (out.action == -1).mean()
    assert 0.002 < buy < 0.2 and 0.002 < sell < 0.2, (buy, sell)
    assert (out.confidence[out.action != 0] > 0.5).all()
