"""volatility_sig composite: indicator values (TA-Lib, ta, pandas), each sub-vote rule, the majority
combining rule, live window == vectorised history, and votes on real candles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from pia.signals.base import Context, Ohlcv
from pia.signals.registry import ResolvedSignal
from pia.signals.volatility import (
    VOLATILITY_SIG,
    VolatilityParams,
    keltner,
    realised_vol,
    volatility_sig,
    volatility_votes,
)
from pia.testing.signals import (
    assert_live_matches_vectorised,
    assert_valid_output,
    load_btc_5m,
    load_spy_daily,
    random_ohlcv,
    tail,
)

P = VolatilityParams()
W = VOLATILITY_SIG.warmup(P)


@pytest.fixture(scope="module")
def btc(shared_data: Path) -> Ohlcv:
    return tail(load_btc_5m(shared_data), 4000)


def vote(buy: np.ndarray, sell: np.ndarray) -> np.ndarray:
    return buy.astype(np.int8) - sell.astype(np.int8)


def prev(a: np.ndarray, k: int = 1) -> np.ndarray:
    return np.r_[np.full(k, np.nan), a[:-k]]


def from_returns(r: np.ndarray) -> Ohlcv:
    close = 100 * np.exp(np.cumsum(r))
    n = len(close)
    open_ = np.r_[close[0], close[:-1]]
    return Ohlcv(
        np.arange(n, dtype=np.int64),
        open_,
        np.maximum(open_, close) * 1.001,
        np.minimum(open_, close) * 0.999,
        close,
        np.ones(n),
    )


def squeeze_then_jump(jump: float) -> Ohlcv:
    """200 bars of 1 % noise, 40 bars of 0.05 % noise (a squeeze), a ``jump`` at bar 240, 5 quiet bars."""
    rng = np.random.default_rng(0)
    return from_returns(np.r_[rng.normal(0, 0.01, 200), rng.normal(0, 0.0005, 40), [jump], rng.normal(0, 0.0005, 5)])


# --- indicator values ----------------------------------------------------------------------


def test_keltner_equals_ta(btc: Ohlcv) -> None:
    import pandas as pd
    import ta

    h, lo, c = pd.Series(btc.high), pd.Series(btc.low), pd.Series(btc.close)
    ref = ta.volatility.KeltnerChannel(h, lo, c, window=20, window_atr=10, original_version=False, multiplier=1.5)
    up, dn = keltner(talib.EMA(btc.close, 20), talib.ATR(btc.high, btc.low, btc.close, 10), 1.5)
    # ta seeds its EMA with the first close and its ATR differently: equal once the seeds have decayed
    np.testing.assert_allclose(up[400:], ref.keltner_channel_hband().to_numpy()[400:], rtol=1e-9)
    np.testing.assert_allclose(dn[400:], ref.keltner_channel_lband().to_numpy()[400:], rtol=1e-9)


def test_donchian_is_ta_channel_of_the_previous_bar(btc: Ohlcv) -> None:
    import pandas as pd
    import ta

    ref = ta.volatility.DonchianChannel(pd.Series(btc.high), pd.Series(btc.low), pd.Series(btc.close), window=20)
    up, dn = prev(talib.MAX(btc.high, 20)), prev(talib.MIN(btc.low, 20))  # what the donchian sub-vote compares with
    assert np.isnan(up[:20]).all() and not np.isnan(up[20:]).any()
    np.testing.assert_array_equal(up[20:], ref.donchian_channel_hband().shift(1).to_numpy()[20:])
    np.testing.assert_array_equal(dn[20:], ref.donchian_channel_lband().shift(1).to_numpy()[20:])


def test_realised_vol_is_the_rolling_std_of_log_returns(btc: Ohlcv) -> None:
    import pandas as pd

    want = np.log(pd.Series(btc.close)).diff().rolling(20).std(ddof=0).to_numpy()
    got = realised_vol(btc.close, 20)
    assert np.isnan(got[:20]).all() and not np.isnan(got[20:]).any()
    np.testing.assert_allclose(got[20:], want[20:], rtol=1e-9)


def test_band_width_matches_ta(btc: Ohlcv) -> None:
    import pandas as pd
    import ta

    up, mid, dn = talib.BBANDS(btc.close, 20, 2.0, 2.0, 0)
    ref = ta.volatility.BollingerBands(pd.Series(btc.close), window=20, window_dev=2).bollinger_wband().to_numpy()
    np.testing.assert_allclose((up - dn) / mid, ref / 100, rtol=1e-9)


# --- sub-vote rules ---------------------------------------------------------------------------


def test_sub_votes_follow_their_rules_on_real_candles(btc: Ohlcv) -> None:
    v = volatility_votes(Context(btc), P)
    h, lo, c, o = btc.high, btc.low, btc.close, btc.open
    up, mid, dn = talib.BBANDS(c, 20, 2.0, 2.0, 0)
    width = (up - dn) / mid
    squeeze = width < 0.5 * talib.SMA(width, 120)
    release = np.r_[False, squeeze[:-1] & ~squeeze[1:]]
    np.testing.assert_array_equal(v["bb_squeeze"], vote(release & (c > up), release & (c < dn)))
    np.testing.assert_array_equal(v["bb_breakout"], vote(c > up, c < dn))
    atr = talib.ATR(h, lo, c, 14)
    big = atr > 1.5 * talib.SMA(atr, 20)
    np.testing.assert_array_equal(v["atr_expansion"], vote(big & (c > o), big & (c < o)))
    ema, atr10 = talib.EMA(c, 20), talib.ATR(h, lo, c, 10)
    np.testing.assert_array_equal(v["keltner"], vote(c > ema + 1.5 * atr10, c < ema - 1.5 * atr10))
    rv = realised_vol(c, 20)
    rising = rv > prev(rv, 5)
    np.testing.assert_array_equal(v["realised_vol"], vote(rising & (c > prev(c, 5)), rising & (c < prev(c, 5))))
    hi, low = prev(talib.MAX(h, 20)), prev(talib.MIN(lo, 20))
    np.testing.assert_array_equal(v["donchian"], vote(c > hi, c < low))
    for name, votes in v.items():  # every rule but the rare squeeze release fires both ways on real bars
        if name != "bb_squeeze":
            assert (votes == 1).any() and (votes == -1).any() and (votes == 0).any(), name
    assert squeeze.any() and release.any()


@pytest.mark.parametrize("jump", [0.05, -0.05])
def test_squeeze_release_breakout_is_unanimous(jump: float) -> None:
    o = squeeze_then_jump(jump)
    up, mid, dn = talib.BBANDS(o.close, 20, 2.0, 2.0, 0)
    width = (up - dn) / mid
    squeeze = width < 0.5 * talib.SMA(width, 120)
    assert squeeze[225:240].all() and not squeeze[240]  # squeezed before the jump, released on it
    v = volatility_votes(Context(o), P)
    side = 1 if jump > 0 else -1
    assert np.flatnonzero(v["bb_squeeze"]).tolist() == [240] and v["bb_squeeze"][240] == side
    assert all(votes[240] == side for votes in v.values())
    out = volatility_sig(Context(o), P)
    assert out.action[240] == side and out.confidence[240] == 1.0
    # quiet bars inside the squeeze do not vote at all
    assert (out.action[225:240] == 0).all()


def test_no_release_without_a_squeeze() -> None:
    # a steady zig-zag: the band width barely changes, so it is never below half its mean
    o = from_returns(np.tile([0.01, -0.01], 200) * (1 + 0.3 * np.sin(np.arange(400) / 15)))
    v = volatility_votes(Context(o), P)["bb_squeeze"]
    up, mid, dn = talib.BBANDS(o.close, 20, 2.0, 2.0, 0)
    width = (up - dn) / mid
    assert not (width < 0.5 * talib.SMA(width, 120)).any()
    assert (v == 0).all()
    assert (volatility_votes(Context(o), P)["bb_breakout"] == 0).all()


def test_atr_expansion_votes_the_direction_of_the_bar() -> None:
    rng = np.random.default_rng(2)
    r = np.r_[rng.normal(0, 0.002, 100), [-0.03]]
    v = volatility_votes(Context(from_returns(r)), P)
    assert v["atr_expansion"][99] == 0 and v["atr_expansion"][100] == -1


def test_donchian_compares_with_the_previous_bars_channel() -> None:
    close = np.r_[np.full(30, 100.0), 100.5]
    n = len(close)
    o = Ohlcv(np.arange(n, dtype=np.int64), close, np.full(n, 101.0), np.full(n, 99.0), close, np.ones(n))
    # the last close 100.5 is inside the previous channel (99 .. 101): no breakout
    assert volatility_votes(Context(o), P)["donchian"][-1] == 0
    o = Ohlcv(o.open_time, o.open, o.high, o.low, np.r_[close[:-1], 101.5], o.volume)
    # 101.5 is above the previous 20 bars' highs (a bar's own high can never be exceeded by its close)
    assert volatility_votes(Context(o), P)["donchian"][-1] == 1


# --- combining ----------------------------------------------------------------------------------


def test_composite_is_the_majority_of_the_sub_votes(btc: Ohlcv) -> None:
    out = volatility_sig(Context(btc), P)
    m = np.vstack(list(volatility_votes(Context(btc), P).values()))
    b, s = (m == 1).sum(axis=0), (m == -1).sum(axis=0)
    h = 6 - b - s
    w = VOLATILITY_SIG.warmup(P) - 1  # bars before the warm-up hold whatever the sub-votes say
    assert (out.action[:w] == 0).all() and (out.confidence[:w] == 0).all()
    b[:w] = s[:w] = h[:w] = 0
    np.testing.assert_array_equal(out.action == 1, (b > s) & (b > h))
    np.testing.assert_array_equal(out.action == -1, (s > b) & (s > h))
    voted = out.action != 0
    assert voted.any()
    np.testing.assert_allclose(out.confidence[voted], np.maximum(b, s)[voted] / (b + s)[voted])
    blocked = (b == 3) & (s == 0)
    assert blocked.any() and (out.action[blocked] == 0).all()


def test_flat_prices_hold() -> None:
    close = np.full(300, 50.0)
    o = Ohlcv(np.arange(300, dtype=np.int64), close, close * 1.001, close * 0.999, close, np.ones(300))
    assert (volatility_sig(Context(o), P).action == 0).all()


def test_warmup() -> None:
    # the mean band width first exists at index 19 + 119 = 138; a release compares with the bar before
    assert VOLATILITY_SIG.warmup(P) == 140 and VOLATILITY_SIG.family == "composite"
    o = random_ohlcv(5, 200)
    up, mid, dn = talib.BBANDS(o.close, 20, 2.0, 2.0, 0)
    mean = talib.SMA((up - dn) / mid, 120)
    assert np.isnan(mean[137]) and not np.isnan(mean[138])


@pytest.mark.parametrize(
    "n", [0, 1, 2, 27, VOLATILITY_SIG.warmup(P) - 1, VOLATILITY_SIG.warmup(P), VOLATILITY_SIG.warmup(P) + 50]
)
def test_short_histories_hold_until_the_warmup(n: int) -> None:
    o = (
        tail(random_ohlcv(7, 400, vol=0.03), n)
        if n
        else Ohlcv(*(np.zeros(0, dtype=t) for t in (np.int64,) + (float,) * 5))
    )
    out = volatility_sig(Context(o), P)
    assert_valid_output(out, n)
    assert not out.action[: W - 1].any()


# --- live == vectorised, and real candles ---------------------------------------------------------


def test_live_window_equals_vectorised_on_btc_5m(shared_data: Path) -> None:
    sig = ResolvedSignal(VOLATILITY_SIG, P)
    out = assert_live_matches_vectorised(sig, tail(load_btc_5m(shared_data), sig.window + 1500))
    assert (out.action == 1).any() and (out.action == -1).any()


def test_live_window_equals_vectorised_on_spy_daily(shared_data: Path) -> None:
    sig = ResolvedSignal(VOLATILITY_SIG, P)
    out = assert_live_matches_vectorised(sig, tail(load_spy_daily(shared_data), sig.window + 1500))
    assert (out.action == 1).any() and (out.action == -1).any()


@settings(max_examples=8, deadline=None)
@given(st.integers(min_value=0, max_value=2**31), st.sampled_from([0.002, 0.01, 0.03]))
def test_live_window_equals_vectorised_on_random_series(seed: int, vol: float) -> None:
    sig = ResolvedSignal(VOLATILITY_SIG, P)
    assert_live_matches_vectorised(sig, random_ohlcv(seed, sig.window + 250, vol=vol))


@pytest.mark.parametrize("loader", [load_btc_5m, load_spy_daily])
def test_votes_both_ways_on_real_candles(shared_data: Path, loader: Callable[[Path], Ohlcv]) -> None:
    o = loader(shared_data)
    out = volatility_sig(Context(o), P)
    assert_valid_output(out, len(o.close))
    buy, sell = (out.action == 1).mean(), (out.action == -1).mean()
    assert 0.002 < buy < 0.2 and 0.002 < sell < 0.2, (buy, sell)
    assert (out.confidence[out.action != 0] > 0.5).all()
