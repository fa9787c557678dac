"""volume_flow composite: indicator values (TA-Lib, ta), each sub-vote rule, the majority combining rule,
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
from pia.signals.registry import ResolvedSignal
from pia.signals.volume_flow import (
    VOLUME_FLOW,
    VolumeFlowParams,
    cumulative_minus_sma,
    money_flow_index,
    money_flow_volume,
    obv_increments,
    volume_flow,
    volume_flow_votes,
)
from pia.testing.signals import (
    assert_live_matches_vectorised,
    assert_valid_output,
    load_btc_5m,
    load_spy_daily,
    random_ohlcv,
    tail,
)

P = VolumeFlowParams()
W = VOLUME_FLOW.warmup(P)


@pytest.fixture(scope="module", params=["btc", "spy"])
def real(request: pytest.FixtureRequest, shared_data: Path) -> Ohlcv:
    if request.param == "btc":
        return tail(load_btc_5m(shared_data), 4000)
    return load_spy_daily(shared_data)


def vote(buy: np.ndarray, sell: np.ndarray) -> np.ndarray:
    return buy.astype(np.int8) - sell.astype(np.int8)


def series(close: list[float], volume: list[float], spread: float = 0.01) -> Ohlcv:
    c = np.asarray(close, dtype=np.float64)
    n = len(c)
    open_ = np.r_[c[0], c[:-1]]
    return Ohlcv(
        np.arange(n, dtype=np.int64),
        open_,
        np.maximum(open_, c) * (1 + spread),
        np.minimum(open_, c) * (1 - spread),
        c,
        np.asarray(volume, dtype=np.float64),
    )


# --- indicator values ----------------------------------------------------------------------


def test_obv_and_ad_distance_from_their_sma_equal_talib(real: Ohlcv) -> None:
    h, lo, c, v = real.high, real.low, real.close, real.volume
    obv = talib.OBV(c, v)
    got = cumulative_minus_sma(obv_increments(c, v), 20)
    want = obv - talib.SMA(obv, 20)
    assert np.isnan(got[:19]).all() and not np.isnan(got[19:]).any()
    np.testing.assert_allclose(got[19:], want[19:], rtol=0, atol=1e-12 * np.abs(obv).max())
    ad = talib.AD(h, lo, c, v)
    got = cumulative_minus_sma(money_flow_volume(h, lo, c, v), 20)
    want = ad - talib.SMA(ad, 20)
    np.testing.assert_allclose(got[19:], want[19:], rtol=0, atol=1e-12 * np.abs(ad).max())


def test_cumulative_minus_sma_by_hand() -> None:
    # running total 1, 3, 6, 10 of increments 1, 2, 3, 4; SMA(3) at the last bar = 19 / 3; 10 - 19/3 = 11/3
    # = (1/3) * 3 + (2/3) * 4 from the last two increments
    got = cumulative_minus_sma(np.array([1.0, 2, 3, 4]), 3)
    assert np.isnan(got[:2]).all()
    np.testing.assert_allclose(got[2:], [6 - 10 / 3, 10 - 19 / 3])


def test_mfi_has_no_value_once_a_stretch_without_volume_fills_its_period() -> None:
    # each window is summed on its own: after a burst of flow, a whole period of zero volume is exactly no
    # flow (NaN, abstain), not a running total's rounding residue, and not TA-Lib's 0 ("oversold")
    n, period = 40, 5
    close = 100 + np.sin(np.arange(n))
    volume = np.zeros(n)
    volume[:12] = 1e9
    got = money_flow_index(close + 1, close - 1, close, volume, period)
    assert not np.isnan(got[period:12]).any()
    assert np.isnan(got[12 + period - 1 :]).all()


def test_vwap_cmf_mfi_equal_ta(real: Ohlcv) -> None:
    import pandas as pd
    import ta

    h, lo, c, v = (pd.Series(a) for a in (real.high, real.low, real.close, real.volume))
    tp = (real.high + real.low + real.close) / 3
    vwap = talib.SUM(tp * real.volume, 100) / talib.SUM(real.volume, 100)
    want = ta.volume.VolumeWeightedAveragePrice(h, lo, c, v, window=100).volume_weighted_average_price()
    np.testing.assert_allclose(vwap, want.to_numpy(), rtol=1e-12)
    mfv = money_flow_volume(real.high, real.low, real.close, real.volume)
    cmf = talib.SUM(mfv, 20) / talib.SUM(real.volume, 20)
    want = ta.volume.ChaikinMoneyFlowIndicator(h, lo, c, v, window=20).chaikin_money_flow()
    np.testing.assert_allclose(cmf, want.to_numpy(), rtol=1e-9, atol=1e-12)
    mfi = money_flow_index(real.high, real.low, real.close, real.volume, 14)
    want = ta.volume.MFIIndicator(h, lo, c, v, window=14).money_flow_index().to_numpy()
    assert np.isnan(mfi[:14]).all()
    np.testing.assert_allclose(mfi[14:], want[14:], rtol=1e-10, atol=1e-10)


def test_mfi_equals_talib_where_there_is_flow(shared_data: Path) -> None:
    o = tail(load_btc_5m(shared_data), 4000)  # no unchanged typical price in these bars
    np.testing.assert_allclose(
        money_flow_index(o.high, o.low, o.close, o.volume, 14), talib.MFI(o.high, o.low, o.close, o.volume, 14)
    )
    # after a climb, 14 bars with an unchanged typical price have no money flow at all: TA-Lib reports 0
    # ("oversold", a BUY); here there is no MFI and the sub-indicator abstains
    rise_then_flat = series([*np.linspace(10, 11, 20).tolist(), *[11.0] * 20], [5.0] * 40)
    h, lo, c, v = rise_then_flat[2:]
    assert (talib.MFI(h, lo, c, v, 14)[34:] == 0).all()
    ours = money_flow_index(h, lo, c, v, 14)
    np.testing.assert_allclose(ours[14:34], 100.0)
    assert np.isnan(ours[34:]).all()
    assert (volume_flow_votes(Context(rise_then_flat), P)["mfi"][34:] == 0).all()


def test_mfi_by_definition(shared_data: Path) -> None:
    o = load_spy_daily(shared_data)
    h, lo, c, v = o.high, o.low, o.close, o.volume
    tp = (h + lo + c) / 3
    ours = money_flow_index(h, lo, c, v, 14)
    for t in (14, 333, 334, 1000, 4000, len(c) - 1):
        j = np.arange(t - 13, t + 1)
        flow = tp[j] * v[j]
        pos, neg = flow[tp[j] > tp[j - 1]].sum(), flow[tp[j] < tp[j - 1]].sum()
        assert ours[t] == pytest.approx(100 * pos / (pos + neg), rel=1e-12)


# --- sub-vote rules ---------------------------------------------------------------------------


def test_sub_votes_follow_their_rules_on_real_candles(real: Ohlcv) -> None:
    v = volume_flow_votes(Context(real), P)
    h, lo, c, o, vol = real.high, real.low, real.close, real.open, real.volume
    obv = talib.OBV(c, vol)
    obv_gap = obv - talib.SMA(obv, 20)
    clear = np.abs(obv_gap) > 1e-9 * np.abs(obv).max()  # away from rounding ties
    np.testing.assert_array_equal(v["obv"][clear], vote(obv_gap > 0, obv_gap < 0)[clear])
    ad = talib.AD(h, lo, c, vol)
    ad_gap = ad - talib.SMA(ad, 20)
    clear = np.abs(ad_gap) > 1e-9 * np.abs(ad).max()
    np.testing.assert_array_equal(v["ad_line"][clear], vote(ad_gap > 0, ad_gap < 0)[clear])
    tp = (h + lo + c) / 3
    vwap = talib.SUM(tp * vol, 100) / talib.SUM(vol, 100)
    np.testing.assert_array_equal(v["vwap"], vote(c > vwap, c < vwap))
    cmf = talib.SUM(money_flow_volume(h, lo, c, vol), 20) / talib.SUM(vol, 20)
    np.testing.assert_array_equal(v["cmf"], vote(cmf > 0.05, cmf < -0.05))
    mfi = money_flow_index(h, lo, c, vol, 14)
    np.testing.assert_array_equal(v["mfi"], vote(mfi < 20, mfi > 80))
    vrsi = talib.RSI(vol, 14)
    np.testing.assert_array_equal(v["volume_rsi"], vote((vrsi > 70) & (c > o), (vrsi > 70) & (c < o)))
    for name, votes in v.items():  # every rule fires both ways, and abstains
        assert (votes == 1).any() and (votes == -1).any() and (votes == 0).any(), name


def test_accumulation_on_rising_volume_votes_buy() -> None:
    # 30 quiet bars, then 10 up-closes near their highs on growing volume
    quiet = [100.0 + 0.1 * (i % 2) for i in range(30)]
    close = quiet + [100.0 + i for i in range(1, 11)]
    volume = [1000.0] * 30 + [3000.0 * 1.2**i for i in range(10)]
    o = series(close, volume, spread=0.0)
    o = Ohlcv(o.open_time, o.open, o.high + 0.05, o.low - 0.5, o.close, o.volume)  # closes near the highs
    v = volume_flow_votes(Context(o), VolumeFlowParams(vwap_period=20))
    assert v["obv"][-1] == 1 and v["ad_line"][-1] == 1 and v["vwap"][-1] == 1 and v["cmf"][-1] == 1
    assert v["mfi"][-1] == -1  # money flow index above 80: contrarian SELL
    assert v["volume_rsi"][-1] == 1  # volume surging on an up bar
    assert volume_flow(Context(o), VolumeFlowParams(vwap_period=20)).action[-1] == 1
    # the mirror image: distribution
    down = series([200 - x for x in close], volume, spread=0.0)
    down = Ohlcv(down.open_time, down.open, down.high + 0.5, down.low - 0.05, down.close, down.volume)
    w = volume_flow_votes(Context(down), VolumeFlowParams(vwap_period=20))
    assert [w[k][-1] for k in ("obv", "ad_line", "vwap", "cmf", "mfi", "volume_rsi")] == [-1, -1, -1, -1, 1, -1]


def test_obv_ignores_where_the_series_starts(real: Ohlcv) -> None:
    full = volume_flow_votes(Context(real), P)
    part = volume_flow_votes(Context(tail(real, 500)), P)
    np.testing.assert_array_equal(part["obv"][19:], full["obv"][-481:])
    np.testing.assert_array_equal(part["ad_line"][19:], full["ad_line"][-481:])


# --- combining ----------------------------------------------------------------------------------


def test_composite_is_the_majority_of_the_sub_votes(real: Ohlcv) -> None:
    out = volume_flow(Context(real), P)
    m = np.vstack(list(volume_flow_votes(Context(real), P).values()))
    b, s = (m == 1).sum(axis=0), (m == -1).sum(axis=0)
    h = 6 - b - s
    w = VOLUME_FLOW.warmup(P) - 1  # bars before the warm-up hold whatever the sub-votes say
    assert (out.action[:w] == 0).all() and (out.confidence[:w] == 0).all()
    b[:w] = s[:w] = h[:w] = 0
    np.testing.assert_array_equal(out.action == 1, (b > s) & (b > h))
    np.testing.assert_array_equal(out.action == -1, (s > b) & (s > h))
    voted = out.action != 0
    np.testing.assert_allclose(out.confidence[voted], np.maximum(b, s)[voted] / (b + s)[voted])
    # three against three abstentions is not enough; three against two SELLs and one abstention is
    blocked = (b == 3) & (s == 0)
    assert blocked.any() and (out.action[blocked] == 0).all()
    won = (b == 3) & (s == 2)
    assert won.any() and (out.action[won] == 1).all()
    np.testing.assert_allclose(out.confidence[won], 0.6)


def test_flat_prices_hold() -> None:
    close = np.full(300, 50.0)
    o = Ohlcv(np.arange(300, dtype=np.int64), close, close * 1.001, close * 0.999, close, np.ones(300))
    assert (volume_flow(Context(o), P).action == 0).all()


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="mfi_low"):
        VolumeFlowParams(mfi_low=90)
    assert VOLUME_FLOW.warmup(P) == 100 and VOLUME_FLOW.family == "composite"


@pytest.mark.parametrize(
    "n", [0, 1, 2, 27, VOLUME_FLOW.warmup(P) - 1, VOLUME_FLOW.warmup(P), VOLUME_FLOW.warmup(P) + 50]
)
def test_short_histories_hold_until_the_warmup(n: int) -> None:
    o = (
        tail(random_ohlcv(7, 400, vol=0.03), n)
        if n
        else Ohlcv(*(np.zeros(0, dtype=t) for t in (np.int64,) + (float,) * 5))
    )
    out = volume_flow(Context(o), P)
    assert_valid_output(out, n)
    assert not out.action[: W - 1].any()


# --- live == vectorised, and real candles ---------------------------------------------------------


def test_live_window_equals_vectorised_on_btc_5m(shared_data: Path) -> None:
    sig = ResolvedSignal(VOLUME_FLOW, P)
    out = assert_live_matches_vectorised(sig, tail(load_btc_5m(shared_data), sig.window + 1500))
    assert (out.action == 1).any() and (out.action == -1).any()


def test_live_window_equals_vectorised_on_spy_daily(shared_data: Path) -> None:
    sig = ResolvedSignal(VOLUME_FLOW, P)
    out = assert_live_matches_vectorised(sig, tail(load_spy_daily(shared_data), sig.window + 1500))
    assert (out.action == 1).any() and (out.action == -1).any()


@settings(max_examples=8, deadline=None)
@given(st.integers(min_value=0, max_value=2**31), st.sampled_from([0.002, 0.01, 0.03]))
def test_live_window_equals_vectorised_on_random_series(seed: int, vol: float) -> None:
    sig = ResolvedSignal(VOLUME_FLOW, P)
    assert_live_matches_vectorised(sig, random_ohlcv(seed, sig.window + 250, vol=vol))


@pytest.mark.parametrize("loader", [load_btc_5m, load_spy_daily])
def test_votes_both_ways_on_real_candles(shared_data: Path, loader: Callable[[Path], Ohlcv]) -> None:
    o = loader(shared_data)
    out = volume_flow(Context(o), P)
    assert_valid_output(out, len(o.close))
    buy, sell = (out.action == 1).mean(), (out.action == -1).mean()
    assert 0.05 < buy < 0.7 and 0.05 < sell < 0.7, (buy, sell)
    assert (out.confidence[out.action != 0] > 0.5).all()
