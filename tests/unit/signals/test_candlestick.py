"""candlestick: pattern geometry on hand-worked candles, trend vs TA-Lib, pattern-count rule, live == vectorised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from pia.signals.base import Context, Ohlcv
from pia.signals.candlestick import CANDLESTICK, CandlestickParams, candlestick, candlestick_votes, trend_sign
from pia.signals.registry import ResolvedSignal
from pia.testing.signals import (
    assert_live_matches_vectorised,
    assert_valid_output,
    load_btc_5m,
    load_spy_daily,
    random_ohlcv,
    tail,
)

P = CandlestickParams()
Candle = tuple[float, float, float, float]  # open, high, low, close


def with_trend(direction: int, *candles: Candle) -> Ohlcv:
    """Ten doji-free bars trending ``direction`` (+1 up, -1 down, 0 flat), then ``candles``."""
    closes = 100.0 + direction * np.arange(10, dtype=np.float64) * 0.5
    rows = [(c - 0.1 * direction, c + 0.3, c - 0.3, c) for c in closes] + list(candles)
    o, h, low, c = (np.array(col, dtype=np.float64) for col in zip(*rows, strict=True))
    n = len(o)
    return Ohlcv(np.arange(n, dtype=np.int64) * 60_000_000_000, o, h, low, c, np.ones(n))


def votes_at_last(o: Ohlcv) -> dict[str, int]:
    return {k: int(v[-1]) for k, v in candlestick_votes(Context(o), P).items()}


def test_trend_is_the_sign_of_talibs_regression_slope_on_the_previous_bar() -> None:
    o = random_ohlcv(5, 1500)
    for period in (3, 10, 11):
        want = np.sign(talib.LINEARREG_SLOPE(o.close, period))
        got = trend_sign(o.close, period)
        assert np.isnan(got[:period]).all()
        np.testing.assert_array_equal(got[period:], want[period - 1 : -1])
    # hand-worked, period 4: the slope of y0..y3 has the sign of 3 (y3 - y0) + (y2 - y1)
    close = np.array([1.0, 2.0, 4.0, 3.0, 0.0, 0.0, 0.0, 0.0])
    got = trend_sign(close, 4)
    assert got[4] == 1.0  # 1, 2, 4, 3: 3 * 2 + 2 > 0
    assert got[5] == -1.0  # 2, 4, 3, 0: 3 * -2 - 1 < 0
    assert got[7] == -1.0  # 3, 0, 0, 0
    assert trend_sign(np.full(30, 7.25), 10)[10:].tolist() == [0.0] * 20  # flat: no trend


@pytest.mark.parametrize(
    ("candle", "fires"),
    [
        ((100.0, 100.6, 98.0, 100.5), True),  # body 0.5, lower wick 2.0, upper 0.1 <= 10 % of 2.6
        ((100.5, 100.6, 98.0, 100.0), True),  # red hammer: colour does not matter
        ((100.0, 100.6, 98.6, 100.5), True),  # lower wick 1.4 >= 2 x 0.5, upper 0.1 <= 0.2
        ((100.0, 100.9, 98.0, 100.5), False),  # upper wick 0.4 > 10 % of the 2.9 range
        ((100.0, 100.5, 99.1, 100.5), False),  # lower wick 0.9 < 2 x 0.5
    ],
)
def test_hammer_shape_votes_against_the_trend(candle: Candle, fires: bool) -> None:
    o, h, low, c = candle
    body, lower, upper, rng = abs(c - o), min(o, c) - low, h - max(o, c), h - low
    assert fires == (lower >= 2 * body and upper <= 0.1 * rng)  # the stated geometry, by hand
    after_down = votes_at_last(with_trend(-1, candle))["hammer"]
    after_up = votes_at_last(with_trend(+1, candle))["hammer"]
    after_flat = votes_at_last(with_trend(0, candle))["hammer"]
    assert (after_down, after_up, after_flat) == ((1, -1, 0) if fires else (0, 0, 0))


def test_inverted_hammer_and_shooting_star() -> None:
    star = (100.0, 102.5, 99.95, 100.5)  # upper wick 2.0 >= 2 x 0.5, lower 0.05 <= 0.255
    assert votes_at_last(with_trend(-1, star))["hammer"] == 1  # inverted hammer
    assert votes_at_last(with_trend(+1, star))["hammer"] == -1  # shooting star
    long_lower = (100.0, 102.5, 99.5, 100.5)  # lower wick 0.5 > 10 % of 3.0
    assert votes_at_last(with_trend(+1, long_lower))["hammer"] == 0


def test_engulfing() -> None:
    red, green = (101.0, 101.2, 99.8, 100.0), (99.9, 101.4, 99.7, 101.2)
    assert votes_at_last(with_trend(0, red, green))["engulfing"] == 1
    assert votes_at_last(with_trend(+1, red, green))["engulfing"] == 1  # no trend condition
    short_green = (99.9, 101.4, 99.7, 100.9)  # does not reach the previous open
    assert votes_at_last(with_trend(0, red, short_green))["engulfing"] == 0
    same_size = (100.0, 101.2, 99.8, 101.0)  # covers the body exactly but is not longer
    assert votes_at_last(with_trend(0, red, same_size))["engulfing"] == 0
    g, r = (100.0, 101.2, 99.8, 101.0), (101.1, 101.3, 99.7, 99.9)
    assert votes_at_last(with_trend(0, g, r))["engulfing"] == -1
    assert votes_at_last(with_trend(0, g, g))["engulfing"] == 0  # same colour


def test_doji_after_a_trend() -> None:
    doji = (100.0, 100.5, 99.5, 100.05)  # body 0.05 < 10 % of 1.0
    assert votes_at_last(with_trend(-1, doji))["doji"] == 1
    assert votes_at_last(with_trend(+1, doji))["doji"] == -1
    assert votes_at_last(with_trend(0, doji))["doji"] == 0
    not_doji = (100.0, 100.625, 99.375, 100.125)  # body exactly 10 % of 1.25 (binary-exact): not below it
    assert votes_at_last(with_trend(-1, not_doji))["doji"] == 0
    no_range = (100.0, 100.0, 100.0, 100.0)
    assert votes_at_last(with_trend(-1, no_range)) == {"hammer": 0, "engulfing": 0, "doji": 0, "star": 0}


def test_morning_and_evening_star() -> None:
    first, small = (105.0, 105.5, 99.5, 100.0), (99.8, 100.0, 99.0, 99.5)  # body 5 >= 3; star body 0.3 <= 1.5
    assert votes_at_last(with_trend(0, first, small, (100.0, 103.2, 99.9, 103.0)))["star"] == 1  # 103 > 102.5
    assert votes_at_last(with_trend(0, first, small, (100.0, 102.6, 99.9, 102.4)))["star"] == 0  # below the midpoint
    fat_star = (99.8, 101.8, 99.0, 101.6)  # body 1.8 > 30 % of 5
    assert votes_at_last(with_trend(0, first, fat_star, (100.0, 103.2, 99.9, 103.0)))["star"] == 0
    long_wicks = (105.0, 108.0, 97.0, 100.0)  # body 5 < 50 % of the 11 range: not a long candle
    assert votes_at_last(with_trend(0, long_wicks, small, (100.0, 103.2, 99.9, 103.0)))["star"] == 0
    e1, e2, e3 = (100.0, 105.5, 99.5, 105.0), (105.2, 106.0, 105.0, 105.5), (105.0, 105.1, 101.5, 102.0)
    assert votes_at_last(with_trend(0, e1, e2, e3))["star"] == -1


def test_patterns_are_counted_bullish_against_bearish() -> None:
    dragonfly = (100.0, 100.05, 99.0, 100.02)  # a hammer shape and a doji at once
    out = candlestick(Context(with_trend(-1, dragonfly)), P)
    assert (int(out.action[-1]), float(out.confidence[-1])) == (1, 0.5)
    out = candlestick(Context(with_trend(+1, dragonfly)), P)
    assert (int(out.action[-1]), float(out.confidence[-1])) == (-1, 0.5)
    # a bullish engulfing candle that is also a hanging man after an uptrend (bearish): 1 vs 1 -> HOLD
    red = (100.3, 100.35, 100.15, 100.2)
    green = (100.15, 100.45, 99.4, 100.4)  # body 0.25 covers 100.2..100.3; lower wick 0.75, upper 0.05
    o = with_trend(+1, red, green)
    assert votes_at_last(o) == {"hammer": -1, "engulfing": 1, "doji": 0, "star": 0}
    out = candlestick(Context(o), P)
    assert (int(out.action[-1]), float(out.confidence[-1])) == (0, 0.0)


def test_pattern_count_rule_and_vote_rates_on_real_candles(shared_data: Path) -> None:
    for o in (load_btc_5m(shared_data), load_spy_daily(shared_data)):
        c = Context(o)
        votes = np.vstack(list(candlestick_votes(c, P).values()))
        b, s = (votes == 1).sum(axis=0), (votes == -1).sum(axis=0)
        out = candlestick(c, P)
        assert_valid_output(out, c.n)
        np.testing.assert_array_equal(out.action, np.sign(b - s))
        np.testing.assert_allclose(out.confidence, np.where(b != s, 0.25 * np.maximum(b, s), 0.0))
        for v in votes:  # every family fires both ways
            assert (v == 1).sum() > 20 and (v == -1).sum() > 20
        buy, sell = (out.action == 1).mean(), (out.action == -1).mean()
        assert 0.05 < buy < 0.3 and 0.05 < sell < 0.3  # measured: BTC 5m 17.6 % / 18.4 %, SPY 11.1 % / 14.0 %
        assert (out.confidence[out.action != 0] >= 0.25).all()


def test_live_window_equals_vectorised_on_real_candles(shared_data: Path) -> None:
    sig = ResolvedSignal(CANDLESTICK, CANDLESTICK.default_params())
    assert sig.warmup == 11 and sig.window == 11
    for o in (tail(load_btc_5m(shared_data), 3000), tail(load_spy_daily(shared_data), 3000)):
        out = assert_live_matches_vectorised(sig, o)
        assert (out.action == 1).any() and (out.action == -1).any()


@settings(max_examples=8, deadline=None)
@given(st.integers(min_value=0, max_value=2**31), st.integers(min_value=3, max_value=30))
def test_live_window_equals_vectorised_on_generated_series(seed: int, period: int) -> None:
    sig = ResolvedSignal(CANDLESTICK, CandlestickParams(trend_period=period))
    assert_live_matches_vectorised(sig, random_ohlcv(seed, 400))
