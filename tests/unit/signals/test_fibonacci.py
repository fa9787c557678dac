"""fibonacci: pivots by hand, each sub-vote vs a per-bar reference implementation, majority, live == vectorised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pia.signals.base import Context, Ohlcv
from pia.signals.fibonacci import (
    FIBONACCI,
    FibonacciParams,
    camarilla,
    fibonacci,
    fibonacci_votes,
    floor_pivots,
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

P = FibonacciParams()
NAMES = ("retracement", "golden_pocket", "extension", "pivots", "camarilla")


def test_pivots_by_hand() -> None:
    h, low, c = np.array([110.0]), np.array([90.0]), np.array([105.0])
    r1, s1 = floor_pivots(h, low, c)
    # P = 305 / 3 = 101.667; R1 = 2P - L = 113.333; S1 = 2P - H = 93.333
    assert r1[0] == pytest.approx(113.3333333) and s1[0] == pytest.approx(93.3333333)
    r3, s3 = camarilla(h, low, c)
    # C ± 20 x 1.1 / 4 = 105 ± 5.5
    assert r3[0] == pytest.approx(110.5) and s3[0] == pytest.approx(99.5)


def reference_votes(o: Ohlcv, p: FibonacciParams) -> np.ndarray:
    """The docstring's rules, bar by bar with plain Python (no TA-Lib, no shifting tricks)."""
    n, N = len(o.close), p.period
    out = np.zeros((5, n), dtype=np.int8)
    for t in range(n):
        cl, op, hb, lb = o.close[t], o.open[t], o.high[t], o.low[t]
        if t >= 1:
            ph, pl, pc = o.high[t - 1], o.low[t - 1], o.close[t - 1]
            pp = (ph + pl + pc) / 3
            out[3, t] = 1 if cl > 2 * pp - pl else -1 if cl < 2 * pp - ph else 0
            half = (ph - pl) * 1.1 / 4
            out[4, t] = 1 if cl > pc + half else -1 if cl < pc - half else 0
        if t < N - 1:
            continue
        hi, lo = max(o.high[t - N + 1 : t + 1]), min(o.low[t - N + 1 : t + 1])
        r = hi - lo
        if t >= p.trend_sma - 1 + p.slope_bars:
            now = sum(o.close[t - p.trend_sma + 1 : t + 1]) / p.trend_sma
            then = sum(o.close[t - p.slope_bars - p.trend_sma + 1 : t - p.slope_bars + 1]) / p.trend_sma
            up, down = now - then > 1e-9 * now, now - then < -1e-9 * now
            tol = p.touch_pct / 100 * r
            if up and cl > op and any(abs(lb - (hi - f * r)) <= tol and cl > hi - f * r for f in (0.5, 0.618)):
                out[0, t] = 1
            if down and cl < op and any(abs(hb - (lo + f * r)) <= tol and cl < lo + f * r for f in (0.5, 0.618)):
                out[0, t] = -1
            if up and hi - 0.65 * r <= cl <= hi - 0.618 * r:
                out[1, t] = 1
            if down and lo + 0.618 * r <= cl <= lo + 0.65 * r:
                out[1, t] = -1
        if t >= 2 * N - 1:
            rhi, rlo = max(o.high[t - 2 * N + 1 : t - N + 1]), min(o.low[t - 2 * N + 1 : t - N + 1])
            ext_up, ext_dn = rlo + 1.618 * (rhi - rlo), rhi - 1.618 * (rhi - rlo)
            etol = p.ext_tolerance_pct / 100
            near_dn = abs(cl - ext_dn) <= etol * abs(ext_dn)
            near_up = abs(cl - ext_up) <= etol * abs(ext_up)
            out[2, t] = int(near_dn) - int(near_up)
    return out


def test_sub_votes_match_the_reference_rules_on_generated_series() -> None:
    o = random_ohlcv(21, 1500, vol=0.004)
    got = np.vstack([fibonacci_votes(Context(o), P)[k] for k in NAMES])
    want = reference_votes(o, P)
    for i, name in enumerate(NAMES):
        np.testing.assert_array_equal(got[i], want[i], err_msg=name)
        assert (got[i] == 1).any() and (got[i] == -1).any(), name


def test_sub_votes_match_the_reference_rules_on_real_candles(shared_data: Path) -> None:
    o = tail(load_btc_5m(shared_data), 2500)
    p = FibonacciParams(period=50, trend_sma=10, slope_bars=3, touch_pct=5.0, ext_tolerance_pct=0.5)
    got = np.vstack([fibonacci_votes(Context(o), p)[k] for k in NAMES])
    np.testing.assert_array_equal(got, reference_votes(o, p))


def bars(rows: list[tuple[float, float, float, float]]) -> Ohlcv:
    o, h, low, c = (np.array(col, dtype=np.float64) for col in zip(*rows, strict=True))
    n = len(c)
    return Ohlcv(np.arange(n, dtype=np.int64) * 60_000_000_000, o, h, low, c, np.ones(n))


def test_retracement_bounce_and_golden_pocket_by_hand() -> None:
    # swing 100 .. 120 (R = 20) over the last 100 bars; the 20-bar SMA rising over the last 5 bars
    closes = np.r_[np.linspace(100, 120, 30), np.linspace(119.5, 105, 40), np.linspace(105.2, 109.8, 29)]
    rows = [(c, c + 0.05, c - 0.05, c) for c in closes]
    rows[0] = (100.0, 100.05, 100.0, 100.0)
    rows[29] = (120.0, 120.0, 119.95, 120.0)
    p = FibonacciParams(period=100, trend_sma=20, slope_bars=5)

    def last(row: tuple[float, float, float, float]) -> dict[str, int]:
        o = bars([*rows, row])
        assert (o.high.max(), o.low.min()) == (120.0, 100.0)
        return {k: int(v[-1]) for k, v in fibonacci_votes(Context(o), p).items()}

    # 50 % level = 110, touch tolerance 3 % of 20 = 0.6: low 109.5, close 110.3 above it and the open
    assert last((109.9, 110.4, 109.5, 110.3))["retracement"] == 1
    assert last((110.5, 110.6, 109.5, 110.3))["retracement"] == 0  # red candle: no bounce
    assert last((109.9, 110.4, 109.3, 110.3))["retracement"] == 0  # low 0.7 below the level
    # 61.8 % level = 107.64: low 107.6, close 107.7
    assert last((107.65, 107.8, 107.6, 107.7))["retracement"] == 1
    # golden pocket 107.0 .. 107.64 in an uptrend
    assert last((107.65, 107.8, 107.0, 107.3))["golden_pocket"] == 1
    assert last((107.65, 107.8, 107.0, 107.7))["golden_pocket"] == 0
    assert last((106.8, 107.0, 106.8, 106.9))["golden_pocket"] == 0


def test_extension_is_contrarian() -> None:
    # previous 10-bar swing 100 .. 110: extensions 116.18 (up) and 93.82 (down); tolerance 1.5 %
    p = FibonacciParams(period=10, trend_sma=2, slope_bars=1)
    rows = [(105.0, 110.0 if i == 3 else 105.5, 100.0 if i == 6 else 104.5, 105.0) for i in range(10)]
    rows += [(112.0, 112.5, 111.5, 112.0)] * 9
    v = fibonacci_votes(Context(bars([*rows, (115.0, 115.5, 114.0, 115.0)])), p)
    assert int(v["extension"][-1]) == -1  # |115 - 116.18| = 1.18 <= 1.74
    v = fibonacci_votes(Context(bars([*rows, (113.0, 113.5, 112.0, 113.0)])), p)
    assert int(v["extension"][-1]) == 0  # 3.18 away
    v = fibonacci_votes(Context(bars([*rows, (95.0, 95.5, 94.0, 95.0)])), p)
    assert int(v["extension"][-1]) == 1  # |95 - 93.82| = 1.18 <= 1.41


def majority_by_hand(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    b, s = (votes == 1).sum(axis=0), (votes == -1).sum(axis=0)
    h = votes.shape[0] - b - s
    action = np.where((b > s) & (b > h), 1, np.where((s > b) & (s > h), -1, 0))
    return action, np.where(action != 0, np.maximum(b, s) / np.maximum(b + s, 1), 0.0)


def test_majority_rule_and_vote_rates_on_real_candles(shared_data: Path) -> None:
    for o in (load_btc_5m(shared_data), load_spy_daily(shared_data)):
        c = Context(o)
        votes = np.vstack([fibonacci_votes(c, P)[k] for k in NAMES])
        out = fibonacci(c, P)
        assert_valid_output(out, c.n)
        action, conf = majority_by_hand(votes)
        early = FIBONACCI.warmup(P) - 1
        assert not out.action[:early].any() and not out.confidence[:early].any()  # no vote before the warm-up
        np.testing.assert_array_equal(out.action[early:], action[early:])
        np.testing.assert_allclose(out.confidence[early:], conf[early:])
        # a majority of five needs at least three agreeing votes
        assert ((votes == out.action).sum(axis=0)[out.action != 0] >= 3).all()
        # measured: BTC 5m BUY 5.1 % SELL 6.4 %; SPY daily BUY 1.5 % SELL 3.6 %
        assert 0.005 < (out.action == 1).mean() < 0.1 and 0.005 < (out.action == -1).mean() < 0.1


@pytest.mark.parametrize("which", ["btc", "spy"])
def test_live_window_equals_vectorised_on_real_candles(shared_data: Path, which: str) -> None:
    sig = ResolvedSignal(FIBONACCI, FIBONACCI.default_params())
    assert sig.warmup == 200 and sig.window == 200
    o = load_btc_5m(shared_data) if which == "btc" else load_spy_daily(shared_data)
    out = assert_live_matches_vectorised(sig, tail(o, 2500))
    assert (out.action == 1).any() and (out.action == -1).any()


@settings(max_examples=8, deadline=None)
@given(st.integers(min_value=0, max_value=2**31), st.integers(min_value=5, max_value=120))
def test_live_window_equals_vectorised_on_generated_series(seed: int, period: int) -> None:
    sig = ResolvedSignal(FIBONACCI, FibonacciParams(period=period))
    assert_live_matches_vectorised(sig, random_ohlcv(seed, 600, vol=0.004))
