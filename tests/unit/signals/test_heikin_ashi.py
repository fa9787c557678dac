"""heikin_ashi: HA candles and the trend tools against hand-written loops, each sub-vote rule, majority of all,
live == vectorised."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from pia.signals.base import Context, Ohlcv
from pia.signals.heikin_ashi import (
    HEIKIN_ASHI,
    HeikinAshiParams,
    heikin_ashi,
    heikin_ashi_candles,
    heikin_ashi_votes,
    heikin_ashi_warmup,
    heikin_ashi_window,
    hull_ma,
    smma,
    ttm_squeeze,
)
from pia.signals.registry import ResolvedSignal
from pia.testing.signals import (
    assert_live_matches_vectorised,
    assert_valid_output,
    load_btc_5m,
    load_spy_daily,
    random_ohlcv,
    tail,
)

P = HeikinAshiParams()


def ref_heikin_ashi(o: Ohlcv) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = len(o.close)
    hc = (o.open + o.high + o.low + o.close) / 4
    ho = np.empty(n)
    ho[0] = (o.open[0] + o.close[0]) / 2
    for t in range(1, n):
        ho[t] = (ho[t - 1] + hc[t - 1]) / 2
    hh = np.array([max(o.high[t], ho[t], hc[t]) for t in range(n)])
    hl = np.array([min(o.low[t], ho[t], hc[t]) for t in range(n)])
    return ho, hh, hl, hc


def ref_wma(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    w = np.arange(1, n + 1, dtype=np.float64)
    for t in range(n - 1, len(x)):
        out[t] = np.dot(w, x[t - n + 1 : t + 1]) / w.sum()
    return out


def ref_smma(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    out[n - 1] = x[:n].mean()
    for t in range(n, len(x)):
        out[t] = (out[t - 1] * (n - 1) + x[t]) / n
    return out


def bars(o: list[float], h: list[float], lo: list[float], c: list[float]) -> Ohlcv:
    n = len(c)
    f = np.asarray
    return Ohlcv(np.arange(n, dtype=np.int64), f(o, float), f(h, float), f(lo, float), f(c, float), np.ones(n))


# --- indicator values -------------------------------------------------------------------------------


def test_heikin_ashi_equals_the_recursive_definition(shared_data: Path) -> None:
    for o in (load_btc_5m(shared_data), load_spy_daily(shared_data), random_ohlcv(1, 50)):
        ha = heikin_ashi_candles(o.open, o.high, o.low, o.close)
        for got, want in zip(ha, ref_heikin_ashi(o), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-13)
    # hand-worked: O H L C = (10 12 9 11), (11 13 10 12)
    ha = heikin_ashi_candles(*(np.array(v) for v in ([10.0, 11.0], [12.0, 13.0], [9.0, 10.0], [11.0, 12.0])))
    assert ha.close.tolist() == [10.5, 11.5]
    assert ha.open.tolist() == [10.5, 10.5]  # (10 + 11) / 2, then (10.5 + 10.5) / 2
    assert ha.high.tolist() == [12.0, 13.0] and ha.low.tolist() == [9.0, 10.0]
    assert len(heikin_ashi_candles(*(np.empty(0),) * 4).open) == 0


def test_smma_and_hull_equal_their_definitions(shared_data: Path) -> None:
    o = tail(load_btc_5m(shared_data), 600)
    median = (o.high + o.low) / 2
    for n in (5, 8, 13):
        got = smma(median, n)
        np.testing.assert_allclose(got, ref_smma(median, n), rtol=1e-12)
        assert np.isnan(got[: n - 1]).all() and np.isfinite(got[n - 1 :]).all()
    assert np.isnan(smma(median[:4], 5)).all()
    for n in (9, 21):
        want = ref_wma(2 * ref_wma(o.close, n // 2) - ref_wma(o.close, n), math.isqrt(n))
        np.testing.assert_allclose(hull_ma(o.close, n), want, rtol=1e-12)
    assert np.isnan(hull_ma(o.close, 21)[:23]).all() and np.isfinite(hull_ma(o.close, 21)[23:]).all()


def test_ttm_squeeze_by_hand() -> None:
    o = random_ohlcv(4, 120)
    on, off, mom = ttm_squeeze(o.high, o.low, o.close, 20, 2.0, 1.5)
    tr = np.r_[np.nan, np.maximum(o.high[1:], o.close[:-1]) - np.minimum(o.low[1:], o.close[:-1])]
    for t in range(20, 120):
        win = o.close[t - 19 : t + 1]
        bb = 2.0 * win.std()  # population standard deviation
        kc = 1.5 * tr[t - 19 : t + 1].mean()
        assert on[t] == (bb < kc) and off[t] == (bb >= kc), t
    assert not on[:20].any() and not off[:20].any()
    delta = np.full(120, np.nan)
    for t in range(19, 120):
        donchian = (o.high[t - 19 : t + 1].max() + o.low[t - 19 : t + 1].min()) / 2
        delta[t] = o.close[t] - (donchian + o.close[t - 19 : t + 1].mean()) / 2
    for t in range(38, 120):
        slope, icpt = np.polyfit(np.arange(20), delta[t - 19 : t + 1], 1)
        assert mom[t] == pytest.approx(icpt + 19 * slope, rel=1e-8, abs=1e-10)
    assert np.isnan(mom[:38]).all()


def test_warmup_is_the_longest_lookback() -> None:
    o = random_ohlcv(5, 200)
    c = Context(o)

    def first(a: np.ndarray) -> int:
        return int(np.flatnonzero(np.isfinite(a))[0])

    _, off, mom = ttm_squeeze(o.high, o.low, o.close)
    needs = {
        "hull": first(hull_ma(o.close, 21)) + 1,
        "alligator": first(smma((o.high + o.low) / 2, 13)) + 8 + 1,
        "elder_impulse": first(c.macd(12, 26, 9)[2]) + 1 + 1,
        "ttm_squeeze": max(first(mom) + 1, int(np.flatnonzero(off)[0]) + 1 + 1),
    }
    assert needs == {"hull": 24, "alligator": 21, "elder_impulse": 35, "ttm_squeeze": 39}
    assert heikin_ashi_warmup(P) == 39 and heikin_ashi_window(P) == 439


# --- sub-vote rules ----------------------------------------------------------------------------------


def expected_votes(o: Ohlcv) -> dict[str, np.ndarray]:
    """The rules re-stated bar by bar from the reference HA candles and independently computed tools."""
    n = len(o.close)
    ho, hh, hl, hc = ref_heikin_ashi(o)
    out = {k: np.zeros(n, dtype=np.int8) for k in ("strong_run", "doji_reversal", "colour_change", "hull")}
    bull = hc > ho
    bear = hc < ho
    for t in range(n):
        if t >= 2:
            sb = all(bull[j] and hl[j] == ho[j] for j in range(t - 2, t + 1))  # no lower wick
            sr = all(bear[j] and hh[j] == ho[j] for j in range(t - 2, t + 1))  # no upper wick
            out["strong_run"][t] = int(sb) - int(sr)
        if t >= 3:
            doji = abs(hc[t] - ho[t]) < 0.1 * (hh[t] - hl[t])
            out["doji_reversal"][t] = int(doji and bear[t - 3 : t].all()) - int(doji and bull[t - 3 : t].all())
        if t >= 1:
            out["colour_change"][t] = int(bull[t] and bear[t - 1]) - int(bear[t] and bull[t - 1])
    fast = ref_wma(2 * ref_wma(o.close, 4) - ref_wma(o.close, 9), 3)
    slow = ref_wma(2 * ref_wma(o.close, 10) - ref_wma(o.close, 21), 4)
    out["hull"] = (fast > slow).astype(np.int8) - (fast < slow).astype(np.int8)
    med = (o.high + o.low) / 2
    jaw, teeth, lips = ref_smma(med, 13), ref_smma(med, 8), ref_smma(med, 5)
    al = np.zeros(n, dtype=np.int8)
    for t in range(20, n):
        j, te, li = jaw[t - 8], teeth[t - 5], lips[t - 3]
        al[t] = int(li > te > j) - int(li < te < j)
    out["alligator"] = al
    ema = talib.EMA(o.close, 13)
    hist = talib.MACD(o.close, 12, 26, 9)[2]
    imp = np.zeros(n, dtype=np.int8)
    for t in range(1, n):
        imp[t] = int(ema[t] > ema[t - 1] and hist[t] > hist[t - 1]) - int(ema[t] < ema[t - 1] and hist[t] < hist[t - 1])
    out["elder_impulse"] = imp
    on, off, mom = ttm_squeeze(o.high, o.low, o.close)
    sq = np.zeros(n, dtype=np.int8)
    for t in range(1, n):
        if on[t - 1] and off[t]:
            sq[t] = int(mom[t] > 0) - int(mom[t] < 0)
    out["ttm_squeeze"] = sq
    return out


def test_sub_votes_follow_their_rules_on_real_candles(shared_data: Path) -> None:
    for o in (tail(load_btc_5m(shared_data), 2500), tail(load_spy_daily(shared_data), 2500)):
        got = heikin_ashi_votes(Context(o), P)
        want = expected_votes(o)
        assert list(got) == list(want)
        for name, v in got.items():
            np.testing.assert_array_equal(v, want[name], err_msg=name)
            assert (v == 1).sum() > 5 and (v == -1).sum() > 5, name


def test_crafted_strong_run_doji_and_colour_change() -> None:
    # a flat bar, 4 bars that open at their low and close at their high, climbing, then a flat-ish bar: the HA
    # open lags (10, 10, 10.25, 10.875, 11.69, 12.59), so every bull HA candle from bar 1 opens at or below the
    # bar's low: no lower wick; 3 in a row from bar 3
    o = bars(
        [10, 10, 11, 12, 13, 14.0],
        [10.1, 11, 12, 13, 14, 14.3],
        [9.9, 10, 11, 12, 13, 13.7],
        [10, 11, 12, 13, 14, 14.0],
    )
    ha = heikin_ashi_candles(o.open, o.high, o.low, o.close)
    np.testing.assert_allclose(ha.open, [10, 10, 10.25, 10.875, 11.6875, 12.59375])
    assert heikin_ashi_votes(Context(o), P)["strong_run"].tolist() == [0, 0, 0, 1, 1, 1]
    mirror = Ohlcv(o.open_time, 30 - o.open, 30 - o.low, 30 - o.high, 30 - o.close, o.volume)
    assert heikin_ashi_votes(Context(mirror), P)["strong_run"].tolist() == [0, 0, 0, -1, -1, -1]
    # a bull HA candle with a lower wick on bar 2 (the bar dips below its HA open) breaks the run until bar 5
    o_wick = bars(o.open.tolist(), o.high.tolist(), [9.9, 10, 10.0, 12, 13, 13.7], o.close.tolist())
    assert heikin_ashi_votes(Context(o_wick), P)["strong_run"].tolist() == [0, 0, 0, 0, 0, 1]
    # a doji after the climb: HA close 12.6 against HA open 12.59 in a 4.8 range -> SELL (reversal)
    o2 = bars(
        [10, 10, 11, 12, 13, 12.6],
        [10.1, 11, 12, 13, 14, 15.0],
        [9.9, 10, 11, 12, 13, 10.2],
        [10, 11, 12, 13, 14, 12.6],
    )
    ha2 = heikin_ashi_candles(o2.open, o2.high, o2.low, o2.close)
    assert abs(ha2.close[5] - ha2.open[5]) < 0.1 * (ha2.high[5] - ha2.low[5])
    v2 = heikin_ashi_votes(Context(o2), P)
    assert v2["doji_reversal"].tolist() == [0, 0, 0, 0, 0, -1]
    # the mirror: a doji after a fall -> BUY
    o3 = Ohlcv(o2.open_time, 30 - o2.open, 30 - o2.low, 30 - o2.high, 30 - o2.close, o2.volume)
    assert heikin_ashi_votes(Context(o3), P)["doji_reversal"].tolist() == [0, 0, 0, 0, 0, 1]
    # colour change: up bars then a sharp down bar
    o4 = bars([10, 10, 11, 12, 13], [10.1, 11, 12, 13, 13.1], [9.9, 10, 11, 12, 9.0], [10, 11, 12, 13, 9.5])
    ha4 = heikin_ashi_candles(o4.open, o4.high, o4.low, o4.close)
    assert ha4.close[3] > ha4.open[3] and ha4.close[4] < ha4.open[4]
    assert heikin_ashi_votes(Context(o4), P)["colour_change"].tolist() == [0, 0, 0, 0, -1]


def test_crafted_trend_orders_the_alligator_and_hull() -> None:
    t = np.arange(300)
    close = 100 * np.exp(np.r_[np.linspace(0, 0.3, 150), np.linspace(0.3, 0, 150)])
    o = Ohlcv(t.astype(np.int64), np.r_[close[0], close[:-1]], close * 1.002, close * 0.998, close, np.ones(300))
    v = heikin_ashi_votes(Context(o), P)
    assert (v["alligator"][21:150] == 1).all() and (v["alligator"][170:] == -1).all()
    assert (v["hull"][24:150] == 1).all() and (v["hull"][155:] == -1).all()
    # impulse: both rising through the climb; both falling just after the turn (later the MACD histogram
    # of a steady geometric fall flattens out and the impulse goes blue)
    assert (v["elder_impulse"][40:148] == 1).all() and (v["elder_impulse"][155:163] == -1).all()


# --- combining ---------------------------------------------------------------------------------------


def test_composite_is_the_majority_of_all_seven(shared_data: Path) -> None:
    o = tail(load_btc_5m(shared_data), 3000)
    votes = np.vstack(list(heikin_ashi_votes(Context(o), P).values()))
    out = heikin_ashi(Context(o), P)
    assert votes.shape[0] == 7
    for t in range(votes.shape[1]):
        b, s = int((votes[:, t] == 1).sum()), int((votes[:, t] == -1).sum())
        h = 7 - b - s
        want = 1 if b > s and b > h else -1 if s > b and s > h else 0
        assert out.action[t] == want, t
        assert out.confidence[t] == pytest.approx(max(b, s) / 7 if want else 0.0)
    assert set(np.round(out.confidence[out.action != 0] * 7).astype(int).tolist()) <= {3, 4, 5, 6, 7}
    assert_valid_output(out, len(o.close))


def test_flat_prices_never_vote() -> None:
    f = np.full(600, 50.0)
    o = Ohlcv(np.arange(600, dtype=np.int64), f, f * 1.001, f * 0.999, f, np.ones(600))
    assert all((v == 0).all() for v in heikin_ashi_votes(Context(o), P).values())
    assert (heikin_ashi(Context(o), P).action == 0).all()


# --- real candles: live == vectorised, vote rates ---------------------------------------------------


def test_live_equals_vectorised_on_real_candles(shared_data: Path) -> None:
    sig = ResolvedSignal(HEIKIN_ASHI, HEIKIN_ASHI.default_params())
    for o in (load_btc_5m(shared_data), load_spy_daily(shared_data)):
        out = assert_live_matches_vectorised(sig, tail(o, sig.window + 300))
        assert (out.action == 1).any() and (out.action == -1).any()


@settings(max_examples=8, deadline=None)
@given(st.integers(min_value=0, max_value=2**31), st.floats(min_value=0.002, max_value=0.05))
def test_live_equals_vectorised_on_generated_series(seed: int, vol: float) -> None:
    sig = ResolvedSignal(HEIKIN_ASHI, HEIKIN_ASHI.default_params())
    o = random_ohlcv(seed, sig.window + 60, vol=vol)
    assert_valid_output(assert_live_matches_vectorised(sig, o), len(o.close))


def test_votes_both_ways_on_real_candles(shared_data: Path) -> None:
    # measured: BTC 5m (10,999 bars) BUY 4.3 % SELL 3.2 %; SPY daily (5,241 bars) BUY 6.1 % SELL 2.6 %
    for o in (load_btc_5m(shared_data), load_spy_daily(shared_data)):
        out = heikin_ashi(Context(o), P)
        assert_valid_output(out, len(o.close))
        assert (out.action == 1).mean() > 0.01 and (out.action == -1).mean() > 0.01


def test_short_and_empty_histories_are_valid() -> None:
    w = HEIKIN_ASHI.warmup(HEIKIN_ASHI.default_params())
    for n in (0, 1, 2, 3, 5, w - 1, w, w + 1):
        o = random_ohlcv(2, n) if n else Ohlcv(np.empty(0, np.int64), *(np.empty(0),) * 5)
        assert_valid_output(HEIKIN_ASHI.compute(Context(o), HEIKIN_ASHI.default_params()), n)
