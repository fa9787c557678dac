"""oscillators: indicator values against ta / hand-worked cases, each sub-vote rule, majority, live == vectorised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from pia.signals import combine
from pia.signals.base import Context, Ohlcv
from pia.signals.oscillators import (
    OSCILLATORS,
    OscillatorsParams,
    awesome_oscillator,
    chande_momentum,
    coppock,
    kst,
    oscillator_votes,
    oscillators,
    oscillators_warmup,
    oscillators_window,
    schaff_trend_cycle,
    stochastic,
    vortex,
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

P = OscillatorsParams()


def from_close(close: np.ndarray, spread: float = 0.002) -> Ohlcv:
    close = np.ascontiguousarray(close, dtype=np.float64)
    n = len(close)
    open_ = np.r_[close[0], close[:-1]]
    return Ohlcv(
        np.arange(n, dtype=np.int64) * 60_000_000_000,
        open_,
        np.maximum(open_, close) * (1 + spread),
        np.minimum(open_, close) * (1 - spread),
        close,
        np.ones(n),
    )


def v_shape(n_half: int = 200, depth: float = 0.3) -> np.ndarray:
    """A geometric fall then a geometric rise back (the bottom at bar n_half - 1)."""
    return np.asarray(100 * np.exp(np.r_[np.linspace(0, -depth, n_half), np.linspace(-depth, 0, n_half)[1:]]))


# --- indicator values -------------------------------------------------------------------------------


def test_indicators_match_ta_on_real_candles(shared_data: Path) -> None:
    import pandas as pd
    import ta

    for o in (tail(load_btc_5m(shared_data), 3000), load_spy_daily(shared_data)):
        h, lo, c = (pd.Series(x) for x in (o.high, o.low, o.close))
        want = ta.momentum.AwesomeOscillatorIndicator(h, lo).awesome_oscillator().to_numpy()
        got = awesome_oscillator(o.high, o.low)
        np.testing.assert_allclose(got[33:], want[33:], rtol=1e-9, atol=1e-9 * o.close.mean())
        assert np.isnan(got[:33]).all()

        vi = ta.trend.VortexIndicator(h, lo, c, 14)
        vp, vm = vortex(o.high, o.low, o.close, 14)
        np.testing.assert_allclose(vp[14:], vi.vortex_indicator_pos().to_numpy()[14:], rtol=1e-12)
        np.testing.assert_allclose(vm[14:], vi.vortex_indicator_neg().to_numpy()[14:], rtol=1e-12)
        assert np.isnan(vp[:14]).all()

        # ta fills the first r bars of each ROC with the series mean (non-causal): compare once all are real
        k = ta.trend.KSTIndicator(c)
        got_k, got_sig = kst(o.close, 9)
        np.testing.assert_allclose(got_k[44:], k.kst().to_numpy()[44:], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(got_sig[52:], k.kst_sig().to_numpy()[52:], rtol=1e-9, atol=1e-9)

        # ta seeds its EMAs with the first value, TA-Lib with an SMA: equal once the seeds are forgotten
        stc_ta = ta.trend.STCIndicator(c, window_slow=50, window_fast=23, cycle=10, smooth1=3, smooth2=3).stc()
        got_stc = schaff_trend_cycle(o.close, 23, 50, 10, 3)
        np.testing.assert_allclose(got_stc[1000:], stc_ta.to_numpy()[1000:], atol=1e-5)
        assert np.nanmin(got_stc) >= 0 and np.nanmax(got_stc) <= 100


def test_chande_momentum_is_the_plain_sum_form_worked_by_hand() -> None:
    close = np.array([1.0, 2.0, 4.0, 3.0, 5.0, 5.0, 5.0, 5.0])
    got = chande_momentum(close, 3)
    # moves: +1 +2 -1 +2 0 0 0
    # t=3: up 3, down 1 -> 100 * 2 / 4 = 50; t=4: up 4, down 1 -> 60; t=5: up 2, down 1 -> 33.3;
    # t=6: up 2, down 0 -> 100; t=7: no move at all -> undefined
    np.testing.assert_allclose(got[3:7], [50.0, 60.0, 100 / 3, 100.0])
    assert np.isnan(got[:3]).all() and np.isnan(got[7])
    # TA-Lib's CMO Wilder-smooths the moves (it is 2 x RSI - 100): a different indicator
    rng = np.random.default_rng(0)
    x = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    np.testing.assert_allclose(talib.CMO(x, 9)[50:], 2 * talib.RSI(x, 9)[50:] - 100, atol=1e-9)
    assert np.nanmax(np.abs(chande_momentum(x, 9)[50:] - talib.CMO(x, 9)[50:])) > 5


def test_coppock_is_wma_of_summed_rocs_by_hand() -> None:
    rng = np.random.default_rng(1)
    x = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 80)))
    got = coppock(x, 14, 11, 10)
    w = np.arange(1, 11, dtype=np.float64)
    for t in range(23, 80):
        s = [100 * (x[j] / x[j - 14] - 1) + 100 * (x[j] / x[j - 11] - 1) for j in range(t - 9, t + 1)]
        assert got[t] == pytest.approx(float(np.dot(w, s) / w.sum()), rel=1e-10)
    assert np.isnan(got[:23]).all()


def test_stochastic_keeps_its_value_where_the_range_is_zero() -> None:
    nan = np.nan
    got = stochastic(np.array([nan, 1.0, 3.0, 2.0, 2.0, 2.0, 2.0, 5.0]), 3)
    # t=3: [1 3 2] -> 50; t=4: [3 2 2] -> 0; t=5, 6: [2 2 2] no range -> keeps 0; t=7: [2 2 5] -> 100
    np.testing.assert_array_equal(got, [nan, nan, nan, 50.0, 0.0, 0.0, 0.0, 100.0])
    # no range before any defined value: the midpoint
    np.testing.assert_array_equal(
        stochastic(np.array([nan, 2.0, 2.0, 2.0, 2.0, 4.0]), 3), [nan] * 3 + [50.0] * 2 + [100.0]
    )


def test_warmup_is_the_longest_lookback() -> None:
    o = random_ohlcv(5, 400)

    def first(a: np.ndarray) -> int:
        return int(np.flatnonzero(np.isfinite(a))[0])

    needs = {  # bars needed = first defined index + 1 + the bars the rule looks back
        "awesome": first(awesome_oscillator(o.high, o.low)) + 1 + 2,
        "aroon": first(talib.AROONOSC(o.high, o.low, 25)) + 1,
        "vortex": first(vortex(o.high, o.low, o.close)[0]) + 1,
        "chande": first(chande_momentum(o.close)) + 1,
        "kst": first(kst(o.close)[1]) + 1 + 1,
        "schaff": first(schaff_trend_cycle(o.close)) + 1 + 1,
        "trix": first(talib.EMA(talib.TRIX(o.close, 15), 9)) + 1 + 1,
        "coppock": first(coppock(o.close)) + 1 + 2,
    }
    assert needs == {
        "awesome": 36,
        "aroon": 26,
        "vortex": 15,
        "chande": 10,
        "kst": 54,
        "schaff": 73,
        "trix": 53,
        "coppock": 26,
    }
    assert oscillators_warmup(P) == max(needs.values()) == 73
    assert oscillators_window(P) == 73 + 659  # the STC's EMA(50) settles in 400 x 51 / 31 bars


# --- sub-vote rules -----------------------------------------------------------------------------------


def crossings(a: np.ndarray, b: np.ndarray | float) -> tuple[set[int], set[int]]:
    bb = np.broadcast_to(b, a.shape)
    up = {t for t in range(1, len(a)) if a[t - 1] <= bb[t - 1] and a[t] > bb[t]}
    down = {t for t in range(1, len(a)) if a[t - 1] >= bb[t - 1] and a[t] < bb[t]}
    return up, down


def expected_votes(o: Ohlcv) -> dict[str, np.ndarray]:
    """The rules re-stated bar by bar, from independently computed indicators."""
    n = len(o.close)
    out = {k: np.zeros(n, dtype=np.int8) for k in ("awesome", "aroon", "vortex", "chande", "kst", "schaff", "trix")}
    ao = awesome_oscillator(o.high, o.low)
    up, down = crossings(ao, 0.0)
    for t in range(2, n):
        a0, a1, a2 = ao[t], ao[t - 1], ao[t - 2]
        buy = t in up or (a2 > 0 and a1 > 0 and a0 > 0 and a1 < a2 and a0 > a1)
        sell = t in down or (a2 < 0 and a1 < 0 and a0 < 0 and a1 > a2 and a0 < a1)
        out["awesome"][t] = int(buy) - int(sell)
    aroon = talib.AROONOSC(o.high, o.low, 25)
    out["aroon"] = np.where(aroon > 50, 1, np.where(aroon < -50, -1, 0)).astype(np.int8)
    vp, vm = vortex(o.high, o.low, o.close, 14)
    out["vortex"] = np.where((vp > vm) & (vp > 1), 1, np.where((vm > vp) & (vm > 1), -1, 0)).astype(np.int8)
    cmo = chande_momentum(o.close, 9)
    out["chande"] = np.where(cmo > 50, 1, np.where(cmo < -50, -1, 0)).astype(np.int8)
    k, ks = kst(o.close, 9)
    up, down = crossings(k, ks)
    out["kst"][sorted(up)] = 1
    out["kst"][sorted(down)] = -1
    stc = schaff_trend_cycle(o.close, 23, 50, 10, 3)
    up, down = crossings(stc, 50.0)
    for t in range(n):
        out["schaff"][t] = int(stc[t] < 25 or t in up) - int(stc[t] > 75 or t in down)
    trix = talib.TRIX(o.close, 15)
    sig = talib.EMA(trix, 9)
    up0, down0 = crossings(trix, 0.0)
    up1, down1 = crossings(trix, sig)
    for t in range(n):
        out["trix"][t] = int(t in up0 or t in up1) - int(t in down0 or t in down1)
    cop = coppock(o.close)
    out["coppock"] = np.zeros(n, dtype=np.int8)
    for t in range(2, n):
        c0, c1, c2 = cop[t], cop[t - 1], cop[t - 2]
        out["coppock"][t] = int(c1 < 0 and c1 <= c2 and c0 > c1) - int(c1 > 0 and c1 >= c2 and c0 < c1)
    return out


def test_sub_votes_follow_their_rules_on_real_candles(shared_data: Path) -> None:
    o = tail(load_btc_5m(shared_data), 2500)
    got = oscillator_votes(Context(o), P)
    want = expected_votes(o)
    assert list(got) == list(want)
    for name, v in got.items():
        np.testing.assert_array_equal(v, want[name], err_msg=name)
        assert (v == 1).sum() > 5 and (v == -1).sum() > 5, name


def test_crafted_cycles_fire_the_crossing_and_turning_votes_once_per_cycle() -> None:
    # a pure price cycle: log price = 0.1 sin(2 pi t / 200); troughs at phase 150, peaks at phase 50
    t = np.arange(1000)
    o = from_close(100 * np.exp(0.1 * np.sin(2 * np.pi * t / 200)))
    v = oscillator_votes(Context(o), P)
    w = oscillators_warmup(P)

    def phases(name: str, side: int) -> set[int]:
        return {int((i - 150) % 200) for i in np.flatnonzero(v[name][w:] == side) + w}

    per_cycle = {"awesome": 1, "kst": 1, "coppock": 1, "trix": 2}
    for name, k in per_cycle.items():
        buys, sells = np.flatnonzero(v[name] == 1), np.flatnonzero(v[name] == -1)
        assert 4 * k - 1 <= len(buys) <= 5 * k and 4 * k - 1 <= len(sells) <= 5 * k, name
        # the same place in every cycle, and the SELLs half a cycle from the BUYs (the shape is symmetric)
        assert len(phases(name, 1)) == k, name
        assert phases(name, -1) == {(ph + 100) % 200 for ph in phases(name, 1)}, name
    # the Awesome Oscillator crosses up after the price trough (it lags), Coppock turns before it (it leads)
    assert phases("awesome", 1) == {13} and phases("coppock", 1) == {160}
    # a steady fall: Aroon, Vortex and Chande all SELL; a steady rise: all BUY
    o = from_close(v_shape())
    v = oscillator_votes(Context(o), P)
    for name in ("aroon", "vortex", "chande"):
        assert (v[name][w:199] == -1).all() and (v[name][240:] == 1).all(), name


def test_schaff_levels_and_midline_crossings() -> None:
    t = np.arange(1000)
    o = from_close(100 * np.exp(0.1 * np.sin(2 * np.pi * t / 200)))
    stc = schaff_trend_cycle(o.close)
    v = oscillator_votes(Context(o), P)["schaff"]
    w = oscillators_warmup(P)
    assert (v[w:][stc[w:] < 25] == 1).all() and (v[w:][stc[w:] > 75] == -1).all()
    mid = np.flatnonzero((stc[w:] >= 25) & (stc[w:] <= 75)) + w
    for i in mid:
        want = int(stc[i - 1] <= 50 < stc[i]) - int(stc[i - 1] >= 50 > stc[i])
        assert v[i] == want, i
    assert (stc[w:] < 25).any() and (stc[w:] > 75).any() and (v[mid] != 0).any()


def test_awesome_saucer_and_vortex_level() -> None:
    # AO above zero dips for one bar then turns up: a bullish saucer (no zero cross)
    o = random_ohlcv(11, 3000)
    ao = awesome_oscillator(o.high, o.low)
    v = oscillator_votes(Context(o), P)["awesome"]
    saucers = [t for t in range(36, 3000) if 0 < ao[t - 1] < ao[t - 2] and ao[t] > ao[t - 1]]
    assert saucers and all(v[t] == 1 for t in saucers)
    # vortex: VI+ above VI- but below 1.0 does not vote
    vp, vm = vortex(o.high, o.low, o.close)
    weak = np.flatnonzero((vp > vm) & (vp <= 1.0))
    assert len(weak) > 0
    assert (oscillator_votes(Context(o), P)["vortex"][weak] == 0).all()


# --- combining ---------------------------------------------------------------------------------------


def test_composite_is_the_majority_with_hold_quorum(shared_data: Path) -> None:
    o = tail(load_btc_5m(shared_data), 3000)
    votes = np.vstack(list(oscillator_votes(Context(o), P).values()))
    out = oscillators(Context(o), P)
    for t in range(votes.shape[1]):
        b, s = int((votes[:, t] == 1).sum()), int((votes[:, t] == -1).sum())
        h = 8 - b - s
        want = 1 if b > s and b > h else -1 if s > b and s > h else 0
        assert out.action[t] == want, t
        assert out.confidence[t] == pytest.approx(max(b, s) / (b + s) if want else 0.0)
    assert_valid_output(out, len(o.close))
    # a 4-4 split of BUY and HOLD holds: the quorum rule
    four = [np.ones(1, np.int8)] * 4 + [np.zeros(1, np.int8)] * 4
    assert combine.majority(four).action[0] == 0


def test_flat_prices_never_vote() -> None:
    f = np.full(900, 50.0)
    o = Ohlcv(np.arange(900, dtype=np.int64), f, f * 1.001, f * 0.999, f, np.ones(900))
    out = oscillators(Context(o), P)
    assert (out.action == 0).all()
    assert all((v == 0).all() for v in oscillator_votes(Context(o), P).values())


# --- real candles: live == vectorised, vote rates ---------------------------------------------------


def test_live_equals_vectorised_on_real_candles(shared_data: Path) -> None:
    sig = ResolvedSignal(OSCILLATORS, OSCILLATORS.default_params())
    for o in (load_btc_5m(shared_data), load_spy_daily(shared_data)):
        out = assert_live_matches_vectorised(sig, tail(o, sig.window + 300))
        assert (out.action == 1).any() and (out.action == -1).any()


@settings(max_examples=8, deadline=None)
@given(st.integers(min_value=0, max_value=2**31), st.floats(min_value=0.002, max_value=0.05))
def test_live_equals_vectorised_on_generated_series(seed: int, vol: float) -> None:
    sig = ResolvedSignal(OSCILLATORS, OSCILLATORS.default_params())
    o = random_ohlcv(seed, sig.window + 60, vol=vol)
    assert_valid_output(assert_live_matches_vectorised(sig, o), len(o.close))


def test_votes_both_ways_on_real_candles(shared_data: Path) -> None:
    # measured: BTC 5m (10,999 bars) BUY 1.1 % SELL 1.2 %; SPY daily (5,241 bars) BUY 2.2 % SELL 0.5 %
    for o, lo in ((load_btc_5m(shared_data), 0.005), (load_spy_daily(shared_data), 0.002)):
        out = oscillators(Context(o), P)
        assert_valid_output(out, len(o.close))
        assert (out.action == 1).mean() > lo and (out.action == -1).mean() > lo
        assert (out.confidence[out.action != 0] > 0.5).all()


def test_short_and_empty_histories_are_valid() -> None:
    w = OSCILLATORS.warmup(OSCILLATORS.default_params())
    for n in (0, 1, 2, 3, 5, w - 1, w, w + 1):
        o = random_ohlcv(2, n) if n else Ohlcv(np.empty(0, np.int64), *(np.empty(0),) * 5)
        assert_valid_output(OSCILLATORS.compute(Context(o), OSCILLATORS.default_params()), n)
