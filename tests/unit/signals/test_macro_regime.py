"""macro_regime: each sub-vote against TA-Lib SMAs or crafted inputs and dates, missing inputs hold,
the majority rule, live == vectorised on real candles with inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from pia.signals.base import Context, Inputs, Ohlcv
from pia.signals.macro_regime import MACRO_REGIME, MacroRegimeParams, macro_regime, macro_regime_votes
from pia.signals.registry import ResolvedSignal
from pia.testing.signals import (
    assert_live_matches_vectorised,
    assert_valid_output,
    load_btc_5m,
    load_spy_daily,
    random_ohlcv,
    tail,
)

DAY = 86_400 * 10**9


def daily(close: np.ndarray, start: str = "2019-01-01") -> Ohlcv:
    close = np.ascontiguousarray(close, dtype=np.float64)
    n = len(close)
    t = int(np.datetime64(start, "ns").astype(np.int64)) + np.arange(n, dtype=np.int64) * DAY
    return Ohlcv(t, close, close * 1.01, close * 0.99, close, np.ones(n))


def proxy_inputs(o: Ohlcv, seed: int = 0) -> Inputs:
    """Macro inputs for tests: a dollar that moves against the asset (its 5-bar change, inverted and
    scaled), a random 2s10s spread and 10Y change, with gaps (NaN)."""
    rng = np.random.default_rng(seed)
    n = len(o.close)
    dxy = -talib.ROC(o.close, 5) / 3
    spread = rng.normal(0.25, 0.5, n)
    us10y = rng.normal(0, 2, n)
    for a in (dxy, spread, us10y):
        a[rng.random(n) < 0.05] = np.nan
    return Inputs(dxy_change_pct=dxy, spread_2s10s=spread, us10y_change_pct=us10y)


def test_trend_and_sma_cross_follow_talib() -> None:
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.015, 900)))
    votes = macro_regime_votes(Context(daily(close)), MacroRegimeParams())
    sma200, sma50 = talib.SMA(close, 200), talib.SMA(close, 50)
    np.testing.assert_array_equal(votes["trend"] == 1, close > sma200 * 1.01)
    np.testing.assert_array_equal(votes["trend"] == -1, close < sma200 * 0.99)
    np.testing.assert_array_equal(votes["sma_cross"] == 1, (sma50 > sma200) & (close > sma50))
    np.testing.assert_array_equal(votes["sma_cross"] == -1, (sma50 < sma200) & (close < sma50))
    for k in ("trend", "sma_cross"):
        assert (votes[k][:199] == 0).all() and (votes[k] == 1).any() and (votes[k] == -1).any(), k
    # inside the 1 % band: no trend vote
    inside = np.abs(close / sma200 - 1) <= 0.01
    assert inside.any() and (votes["trend"][inside] == 0).all()


def test_macro_inputs_thresholds_and_missing_values_hold() -> None:
    o = daily(np.full(8, 100.0))
    nan = np.nan
    inputs = Inputs(
        dxy_change_pct=np.array([0.31, 0.3, -0.31, -0.3, nan, 0.0, 1.0, -1.0]),
        spread_2s10s=np.array([-0.01, 0.0, 0.51, 0.5, nan, 0.2, -1.0, 1.0]),
        us10y_change_pct=np.array([1.51, 1.5, -1.51, -1.5, nan, 0.0, 3.0, -3.0]),
    )
    votes = {k: v.tolist() for k, v in macro_regime_votes(Context(o, inputs), MacroRegimeParams()).items()}
    assert votes["dxy"] == [-1, 0, 1, 0, 0, 0, -1, 1]
    assert votes["yield_curve"] == [-1, 0, 1, 0, 0, 0, -1, 1]
    assert votes["us10y"] == [-1, 0, 1, 0, 0, 0, -1, 1]
    # no feed at all (None): those sub-votes hold on every bar
    none = macro_regime_votes(Context(o), MacroRegimeParams())
    for k in ("dxy", "yield_curve", "us10y"):
        assert (none[k] == 0).all(), k


def test_fomc_within_two_days_sells_and_abstains_where_unknown() -> None:
    # FOMC 2026-03-18 18:00 UTC; daily bars open at 00:00 UTC
    o = daily(np.full(6, 100.0), start="2026-03-14")  # 14 .. 19 March
    assert macro_regime_votes(Context(o), MacroRegimeParams())["fomc"].tolist() == [0, 0, -1, -1, -1, 0]
    assert macro_regime_votes(Context(o), MacroRegimeParams(fomc_days=0))["fomc"].tolist() == [0, 0, 0, 0, -1, 0]
    # outside the shipped schedule (before 2023, after 2028-01-26): never a vote
    for start in ("2022-12-10", "2028-03-10"):
        o = daily(np.full(10, 100.0), start=start)
        assert (macro_regime_votes(Context(o), MacroRegimeParams())["fomc"] == 0).all(), start


def test_majority_rule_over_the_six_sub_votes() -> None:
    close = np.r_[np.full(250, 100.0), np.linspace(100, 140, 100)]  # a steady climb above both SMAs
    o = daily(close, start="2019-01-01")  # before the FOMC schedule: that sub-vote holds
    n = len(close)
    bull = Inputs(dxy_change_pct=np.full(n, -1.0), spread_2s10s=np.full(n, 1.0), us10y_change_pct=np.full(n, -2.0))
    out = macro_regime(Context(o, bull), MacroRegimeParams())
    assert out.action[-1] == 1 and out.confidence[-1] == 1.0  # 5 BUY, 1 HOLD
    mixed = bull._replace(spread_2s10s=np.full(n, -1.0))  # 4 BUY, 1 SELL, 1 HOLD -> 0.8
    out = macro_regime(Context(o, mixed), MacroRegimeParams())
    assert out.action[-1] == 1 and out.confidence[-1] == pytest.approx(0.8)
    three = bull._replace(spread_2s10s=np.full(n, np.nan), us10y_change_pct=np.full(n, 2.0))  # 3 BUY 1 SELL 2 HOLD
    assert macro_regime(Context(o, three), MacroRegimeParams()).action[-1] == 1
    tie = three._replace(spread_2s10s=np.full(n, -1.0))  # 3 BUY, 2 SELL, 1 HOLD: B > S and B > H
    assert macro_regime(Context(o, tie), MacroRegimeParams()).confidence[-1] == pytest.approx(0.6)
    weak = three._replace(dxy_change_pct=np.full(n, np.nan))  # 2 BUY, 1 SELL, 3 HOLD -> HOLD
    assert macro_regime(Context(o, weak), MacroRegimeParams()).action[-1] == 0
    # without any macro feed the trend and cross votes cannot outnumber three HOLDs
    assert (macro_regime(Context(o), MacroRegimeParams()).action == 0).all()


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="fast must be shorter than slow"):
        MacroRegimeParams(fast=200, slow=200)
    with pytest.raises(ValueError, match="curve_low must not exceed curve_high"):
        MacroRegimeParams(curve_low=1.0, curve_high=0.5)
    assert MACRO_REGIME.inputs == ("dxy_change_pct", "spread_2s10s", "us10y_change_pct")


def test_live_matches_vectorised_on_real_candles(shared_data: Path) -> None:
    sig = ResolvedSignal(MACRO_REGIME, MACRO_REGIME.default_params())
    assert sig.window == 200 and sig.warmup == 200
    btc = tail(load_btc_5m(shared_data), 900)
    out = assert_live_matches_vectorised(sig, btc, proxy_inputs(btc, 1))
    assert_valid_output(out, len(btc.close))
    spy = tail(load_spy_daily(shared_data), 900)
    out = assert_live_matches_vectorised(sig, spy, proxy_inputs(spy, 2))
    assert (out.action == 1).any() and (out.action == -1).any()


def test_vote_rates_on_real_candles(shared_data: Path) -> None:
    spy = load_spy_daily(shared_data)
    assert (macro_regime(Context(spy), MacroRegimeParams()).action == 0).all()  # no macro feed: never votes
    out = macro_regime(Context(spy, proxy_inputs(spy)), MacroRegimeParams())
    assert_valid_output(out, len(spy.close))
    buy, sell = (out.action == 1).mean(), (out.action == -1).mean()
    assert 0.10 < buy < 0.40 and 0.03 < sell < 0.25, (buy, sell)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(250, 500), step_h=st.sampled_from([1, 24]))
def test_live_matches_vectorised_on_random_series(seed: int, n: int, step_h: int) -> None:
    o = random_ohlcv(seed, n, step_ns=step_h * 3_600 * 10**9)
    sig = ResolvedSignal(MACRO_REGIME, MACRO_REGIME.default_params())
    assert_valid_output(assert_live_matches_vectorised(sig, o, proxy_inputs(o, seed)), n)
