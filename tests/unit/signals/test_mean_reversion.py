"""mean_reversion: indicator values against TA-Lib / hand-worked cases, each sub-vote rule, majority,
live == vectorised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from pia.signals.base import Context, Ohlcv
from pia.signals.mean_reversion import (
    MEAN_REVERSION,
    MeanReversionParams,
    gap_fade,
    internal_bar_strength,
    mean_reversion,
    mean_reversion_votes,
    mean_reversion_warmup,
    mean_reversion_window,
    rsi_moving,
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

P = MeanReversionParams()


def bars(o: list[float], h: list[float], lo: list[float], c: list[float]) -> Ohlcv:
    n = len(c)
    f = np.asarray
    return Ohlcv(np.arange(n, dtype=np.int64), f(o, float), f(h, float), f(lo, float), f(c, float), np.ones(n))


# --- indicator values -------------------------------------------------------------------------------


def test_rsi_is_talib_and_abstains_only_without_any_move() -> None:
    o = random_ohlcv(2, 300)
    c = Context(o)
    np.testing.assert_array_equal(rsi_moving(c, 2), talib.RSI(o.close, 2))
    flat = np.r_[np.linspace(10, 12, 20), np.full(10, 12.0)]
    r = rsi_moving(Context(bars(list(flat), list(flat + 1), list(flat - 1), list(flat))), 2)
    assert np.isfinite(r[2:20]).all() and r[19] == 100.0
    # after a rise, flat closes keep a Wilder RSI of 100 (no loss since): defined, not abstaining
    assert (r[20:] == 100.0).all()
    f = np.full(10, 5.0)
    assert np.isnan(rsi_moving(Context(bars(list(f), list(f + 1), list(f - 1), list(f))), 2)).all()
    assert (talib.RSI(f, 2)[2:] == 0).all()  # what TA-Lib says there: "oversold"


def test_internal_bar_strength_and_gap_fade_by_hand() -> None:
    ibs = internal_bar_strength(np.array([12.0, 10.0, 11.0]), np.array([10.0, 10.0, 9.0]), np.array([10.5, 10.0, 10.8]))
    np.testing.assert_allclose(ibs, [0.25, np.nan, 0.9])
    # previous close 100: gap up to 101 (1 %) closing at 100.6 (40 % filled) -> SELL; at 100.8 (20 %) -> no vote
    # gap down to 99 (1 %) closing at 99.4 (40 % back) -> BUY; gap of 0.4 % -> no vote
    open_ = np.array([100.0, 101.0, 100.0, 101.0, 100.0, 99.0, 100.0, 100.4])
    close = np.array([100.0, 100.6, 100.0, 100.8, 100.0, 99.4, 100.0, 100.0])
    buy, sell = gap_fade(open_, close, 0.5, 0.3)
    assert sell.tolist() == [False, True, False, False, False, False, False, False]
    assert buy.tolist() == [False, False, False, False, False, True, False, False]
    # a gap that keeps running (closes beyond the open) is not faded
    buy, sell = gap_fade(np.array([100.0, 101.0]), np.array([100.0, 102.0]))
    assert not sell.any() and not buy.any()


def test_percent_b_uses_talib_bollinger_bands(shared_data: Path) -> None:
    o = tail(load_btc_5m(shared_data), 500)
    up, _, lo = talib.BBANDS(o.close, 20, 2.0, 2.0, 0)
    pct_b = (o.close - lo) / (up - lo)
    v = mean_reversion_votes(Context(o), P)["percent_b"]
    np.testing.assert_array_equal(v == 1, pct_b < 0.2)
    np.testing.assert_array_equal(v == -1, pct_b > 0.8)


def test_warmup_and_window() -> None:
    assert mean_reversion_warmup(P) == 20  # the Bollinger bands
    assert mean_reversion_window(P) == 120
    o = random_ohlcv(9, 20)
    up, _, _ = Context(o).bbands(20, 2.0)
    assert np.isfinite(up[19]) and np.isnan(up[18])


# --- sub-vote rules -----------------------------------------------------------------------------------


def expected_votes(o: Ohlcv) -> dict[str, np.ndarray]:
    n = len(o.close)
    r2, r3 = talib.RSI(o.close, 2), talib.RSI(o.close, 3)
    up, _, lo = talib.BBANDS(o.close, 20, 2.0, 2.0, 0)
    out = {k: np.zeros(n, dtype=np.int8) for k in ("rsi_fast", "rsi_slow", "ibs", "streak", "gap_fade", "percent_b")}
    out["ibs_and_rsi"] = np.zeros(n, dtype=np.int8)
    c = o.close
    for t in range(n):
        rng = o.high[t] - o.low[t]
        ibs = (c[t] - o.low[t]) / rng if rng > 0 else np.nan
        out["rsi_fast"][t] = int(r2[t] < 10) - int(r2[t] > 90)
        out["rsi_slow"][t] = int(r3[t] < 15) - int(r3[t] > 85)
        out["ibs"][t] = int(ibs < 0.2) - int(ibs > 0.8)
        out["ibs_and_rsi"][t] = int(ibs < 0.2 and r2[t] < 10) - int(ibs > 0.8 and r2[t] > 90)
        if t >= 3:
            out["streak"][t] = int(c[t] < c[t - 1] < c[t - 2] < c[t - 3]) - int(c[t] > c[t - 1] > c[t - 2] > c[t - 3])
        if t >= 1:
            gap = o.open[t] - c[t - 1]
            if abs(gap) > 0.005 * c[t - 1]:
                filled = (o.open[t] - c[t]) / gap
                out["gap_fade"][t] = (1 if gap < 0 else -1) if filled >= 0.3 else 0
        pb = (c[t] - lo[t]) / (up[t] - lo[t])
        out["percent_b"][t] = int(pb < 0.2) - int(pb > 0.8)
    return out


def test_sub_votes_follow_their_rules_on_real_candles(shared_data: Path) -> None:
    for o in (tail(load_btc_5m(shared_data), 2000), tail(load_spy_daily(shared_data), 2000)):
        got = mean_reversion_votes(Context(o), P)
        want = expected_votes(o)
        assert list(got) == ["rsi_fast", "rsi_slow", "ibs", "streak", "gap_fade", "percent_b", "ibs_and_rsi"]
        for name, v in got.items():
            np.testing.assert_array_equal(v, want[name], err_msg=name)
    # every rule fires both ways on SPY (the gaps are overnight)
    for name, v in mean_reversion_votes(Context(load_spy_daily(shared_data)), P).items():
        assert (v == 1).sum() > 20 and (v == -1).sum() > 20, name


def test_crafted_streaks_and_extremes() -> None:
    # three lower closes, each bar closing near its low: streak, IBS, RSI(2), RSI(3) all BUY on the 3rd down bar
    close = [10.0, 10.2, 10.4, 10.6, 10.8, 11.0, 10.6, 10.2, 9.8]
    o = bars([c + 0.1 for c in close], [c + 0.2 for c in close], [c - 0.02 for c in close], close)
    v = mean_reversion_votes(Context(o), P)
    assert v["streak"].tolist() == [0, 0, 0, -1, -1, -1, 0, 0, 1]
    assert v["ibs"].tolist() == [1] * 9  # close 0.02 above a 0.22 range's low: IBS 0.09
    r2 = talib.RSI(o.close, 2)
    assert r2[8] < 10 and v["rsi_fast"][8] == 1 and v["ibs_and_rsi"][8] == 1
    assert v["rsi_fast"][5] == -1 and v["ibs_and_rsi"][5] == 0  # RSI(2) high but IBS low: no combined vote


# --- combining ---------------------------------------------------------------------------------------


def test_composite_is_the_majority_with_hold_quorum(shared_data: Path) -> None:
    o = tail(load_spy_daily(shared_data), 2000)
    votes = np.vstack(list(mean_reversion_votes(Context(o), P).values()))
    out = mean_reversion(Context(o), P)
    for t in range(votes.shape[1]):
        b, s = int((votes[:, t] == 1).sum()), int((votes[:, t] == -1).sum())
        h = 7 - b - s
        want = 1 if b > s and b > h else -1 if s > b and s > h else 0
        assert out.action[t] == want, t
        assert out.confidence[t] == pytest.approx(max(b, s) / (b + s) if want else 0.0)
    assert (out.confidence[out.action != 0] < 1).any() and (out.confidence[out.action != 0] == 1).any()
    assert_valid_output(out, len(o.close))


def test_flat_prices_never_vote() -> None:
    f = np.full(300, 50.0)
    o = Ohlcv(np.arange(300, dtype=np.int64), f, f * 1.001, f * 0.999, f, np.ones(300))
    assert all((v == 0).all() for v in mean_reversion_votes(Context(o), P).values())


# --- real candles: live == vectorised, vote rates ---------------------------------------------------


def test_live_equals_vectorised_on_real_candles(shared_data: Path) -> None:
    sig = ResolvedSignal(MEAN_REVERSION, MEAN_REVERSION.default_params())
    for o in (load_btc_5m(shared_data), load_spy_daily(shared_data)):
        out = assert_live_matches_vectorised(sig, tail(o, sig.window + 400))
        assert (out.action == 1).any() and (out.action == -1).any()


@settings(max_examples=8, deadline=None)
@given(st.integers(min_value=0, max_value=2**31), st.floats(min_value=0.002, max_value=0.05))
def test_live_equals_vectorised_on_generated_series(seed: int, vol: float) -> None:
    sig = ResolvedSignal(MEAN_REVERSION, MEAN_REVERSION.default_params())
    o = random_ohlcv(seed, sig.window + 100, vol=vol)
    assert_valid_output(assert_live_matches_vectorised(sig, o), len(o.close))


def test_votes_both_ways_on_real_candles(shared_data: Path) -> None:
    # measured: BTC 5m (10,999 bars) BUY 6.3 % SELL 7.7 %; SPY daily (5,241 bars) BUY 6.6 % SELL 12.8 %
    for o in (load_btc_5m(shared_data), load_spy_daily(shared_data)):
        out = mean_reversion(Context(o), P)
        assert_valid_output(out, len(o.close))
        assert (out.action == 1).mean() > 0.03 and (out.action == -1).mean() > 0.03


def test_short_and_empty_histories_are_valid() -> None:
    w = MEAN_REVERSION.warmup(MEAN_REVERSION.default_params())
    for n in (0, 1, 2, 3, 5, w - 1, w, w + 1):
        o = random_ohlcv(2, n) if n else Ohlcv(np.empty(0, np.int64), *(np.empty(0),) * 5)
        assert_valid_output(MEAN_REVERSION.compute(Context(o), MEAN_REVERSION.default_params()), n)
