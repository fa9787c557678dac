"""momentum_factors: each sub-vote rule against a bar-by-bar restatement and crafted cases, majority,
live == vectorised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pia.signals.base import Context, Ohlcv
from pia.signals.momentum_factors import (
    MOMENTUM_FACTORS,
    MomentumFactorsParams,
    momentum_factor_votes,
    momentum_factors,
    momentum_factors_warmup,
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

P = MomentumFactorsParams()
NAMES = ["time_series_momentum", "roc", "near_high", "low_bounce", "bar_run", "acceleration", "volume_expansion"]


def expected_votes(o: Ohlcv, p: MomentumFactorsParams = P) -> dict[str, np.ndarray]:
    """The rules re-stated bar by bar with plain Python."""
    n = len(o.close)
    c, op, h, lo, vol = o.close, o.open, o.high, o.low, o.volume
    out = {k: np.zeros(n, dtype=np.int8) for k in NAMES}
    for t in range(n):
        if t >= p.lookback:
            r = c[t - p.skip] / c[t - p.lookback] - 1
            out["time_series_momentum"][t] = int(r > 0) - int(r < 0)
        if t >= p.roc_period:
            roc = 100 * (c[t] / c[t - p.roc_period] - 1)
            out["roc"][t] = int(roc > p.roc_pct) - int(roc < -p.roc_pct)
        if t >= p.range_period - 1:
            hh = h[t - p.range_period + 1 : t + 1].max()
            ll = lo[t - p.range_period + 1 : t + 1].min()
            out["near_high"][t] = int(c[t] / hh > p.near_high) - int(c[t] / hh < p.far_from_high)
            greens = t >= p.green_bars - 1 and all(c[j] > op[j] for j in range(t - p.green_bars + 1, t + 1))
            bounce = c[t] <= ll * (1 + p.near_low_pct / 100) and greens
            new_low = False
            if t >= p.range_period:
                prior_low = lo[t - p.range_period : t].min()
                new_low = lo[t] < prior_low and c[t] <= lo[t] * (1 + p.new_low_pct / 100)
            out["low_bounce"][t] = int(bounce) - int(new_low)
        if t >= p.run - 1:
            w = range(t - p.run + 1, t + 1)
            out["bar_run"][t] = int(all(c[j] > op[j] for j in w)) - int(all(c[j] < op[j] for j in w))
        k = p.accel_period
        if t >= 2 * k:
            recent, before = c[t] / c[t - k] - 1, c[t - k] / c[t - 2 * k] - 1
            out["acceleration"][t] = int(recent > before > 0) - int(recent < before < 0)
        m, q = p.volume_recent, p.volume_prior
        if t >= m + q - 1:
            expanding = vol[t - m + 1 : t + 1].mean() > p.volume_ratio * vol[t - m - q + 1 : t - m + 1].mean()
            change = c[t] - c[t - m]
            out["volume_expansion"][t] = int(expanding and change > 0) - int(expanding and change < 0)
    return out


def test_warmup_and_window() -> None:
    assert momentum_factors_warmup(P) == 251  # the new-low rule: this bar against the previous 250
    assert ResolvedSignal(MOMENTUM_FACTORS, P).window == 251
    small = MomentumFactorsParams(lookback=50, skip=5, range_period=40)
    assert momentum_factors_warmup(small) == 51
    with pytest.raises(ValueError, match="skip must be shorter"):
        MomentumFactorsParams(lookback=20, skip=20)


def test_sub_votes_follow_their_rules_on_real_candles(shared_data: Path) -> None:
    for o in (tail(load_btc_5m(shared_data), 1500), tail(load_spy_daily(shared_data), 1500)):
        got = momentum_factor_votes(Context(o), P)
        want = expected_votes(o)
        assert list(got) == NAMES
        for name, v in got.items():
            np.testing.assert_array_equal(v, want[name], err_msg=name)
    # every rule fires both ways on SPY daily (where the 5 % thresholds mean something)
    for name, v in momentum_factor_votes(Context(load_spy_daily(shared_data)), P).items():
        assert (v == 1).sum() > 0 and (v == -1).sum() > 0, name


def test_sub_votes_on_generated_series_with_small_lookbacks() -> None:
    p = MomentumFactorsParams(lookback=30, skip=3, range_period=25, roc_pct=2.0)
    o = random_ohlcv(7, 800, vol=0.02)
    got = momentum_factor_votes(Context(o), p)
    want = expected_votes(o, p)
    for name in NAMES:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_crafted_cases() -> None:
    n = 300
    t = np.arange(n, dtype=np.int64)
    # a steady 0.1 %/bar climb with every bar green and volume rising: momentum, high, run all BUY
    # (acceleration is left out: a constant rate makes its two returns tie, up to rounding)
    close = 100 * 1.001 ** np.arange(n)
    o = Ohlcv(t, close / 1.0005, close * 1.001, close / 1.001, close, np.linspace(1, 3, n))
    v = momentum_factor_votes(Context(o), P)
    assert {k: int(x[-1]) for k, x in v.items() if k != "acceleration"} == {
        "time_series_momentum": 1,
        "roc": 0,  # 20 bars x 0.1 % = 2 %: below the 5 % bar
        "near_high": 1,
        "low_bounce": 0,
        "bar_run": 1,
        "volume_expansion": 1,
    }
    out = momentum_factors(Context(o), P)
    assert out.action[-1] == 1
    # the mirror, a steady fall of red bars: SELL, with a new low every bar closing within 1 % of it;
    # the close is 0.999^250 / 1.001 = 0.78 of the 250-bar high: far from it
    close = 100 * 0.999 ** np.arange(n)
    o = Ohlcv(t, close * 1.0005, close * 1.001, close / 1.001, close, np.linspace(1, 3, n))
    v = momentum_factor_votes(Context(o), P)
    assert {k: int(x[-1]) for k, x in v.items() if k != "acceleration"} == {
        "time_series_momentum": -1,
        "roc": 0,
        "near_high": -1,
        "low_bounce": -1,
        "bar_run": -1,
        "volume_expansion": -1,
    }
    out = momentum_factors(Context(o), P)
    assert out.action[-1] == -1 and out.confidence[-1] == 1.0  # 5 SELL (or 6), 0 BUY
    # acceleration: 10 bars of +1 % then 10 bars of +2 % -> BUY; 10 of -1 % then 10 of -2 % -> SELL
    up = np.r_[np.ones(5), 1.01 ** np.arange(1, 11), 1.01**10 * 1.02 ** np.arange(1, 11)]
    k = len(up)
    o = Ohlcv(np.arange(k, dtype=np.int64), up, up, up, up, np.ones(k))
    assert momentum_factor_votes(Context(o), P)["acceleration"][-1] == 1
    down = 1 / up
    o = Ohlcv(np.arange(k, dtype=np.int64), down, down, down, down, np.ones(k))
    assert momentum_factor_votes(Context(o), P)["acceleration"][-1] == -1


def test_low_bounce_buys_three_green_bars_near_the_low() -> None:
    # a fall to 80, then three small green bars: within 5 % of the 250-bar low -> BUY
    fall = np.linspace(100, 80, 260)
    close = np.r_[fall, 80.4, 80.8, 81.2]
    open_ = np.r_[fall + 0.1, 80.1, 80.5, 80.9]
    n = len(close)
    o = Ohlcv(
        np.arange(n, dtype=np.int64),
        open_,
        np.maximum(open_, close) + 0.05,
        np.minimum(open_, close) - 0.05,
        close,
        np.ones(n),
    )
    v = momentum_factor_votes(Context(o), P)["low_bounce"]
    assert v[-1] == 1 and v[-2] == 0 and v[-4] == -1  # two green bars are not enough; the fall made new lows


# --- combining ---------------------------------------------------------------------------------------


def test_composite_is_the_majority_with_hold_quorum(shared_data: Path) -> None:
    o = tail(load_spy_daily(shared_data), 2000)
    votes = np.vstack(list(momentum_factor_votes(Context(o), P).values()))
    out = momentum_factors(Context(o), P)
    for t in range(votes.shape[1]):
        b, s = int((votes[:, t] == 1).sum()), int((votes[:, t] == -1).sum())
        h = 7 - b - s
        want = 1 if b > s and b > h else -1 if s > b and s > h else 0
        assert out.action[t] == want, t
        assert out.confidence[t] == pytest.approx(max(b, s) / (b + s) if want else 0.0)
    assert_valid_output(out, len(o.close))


def test_flat_prices_never_vote() -> None:
    f = np.full(400, 50.0)
    o = Ohlcv(np.arange(400, dtype=np.int64), f, f * 1.001, f * 0.999, f, np.ones(400))
    v = momentum_factor_votes(Context(o), P)
    assert (v["near_high"][250:] == 1).all()  # 50 / 50.05: near the high
    assert all((x == 0).all() for k, x in v.items() if k != "near_high")
    assert (momentum_factors(Context(o), P).action == 0).all()


# --- real candles: live == vectorised, vote rates ---------------------------------------------------


def test_live_equals_vectorised_on_real_candles(shared_data: Path) -> None:
    sig = ResolvedSignal(MOMENTUM_FACTORS, MOMENTUM_FACTORS.default_params())
    for o in (load_btc_5m(shared_data), load_spy_daily(shared_data)):
        out = assert_live_matches_vectorised(sig, tail(o, sig.window + 400))
        assert (out.action == 1).any() and (out.action == -1).any()


@settings(max_examples=8, deadline=None)
@given(st.integers(min_value=0, max_value=2**31), st.floats(min_value=0.002, max_value=0.05))
def test_live_equals_vectorised_on_generated_series(seed: int, vol: float) -> None:
    sig = ResolvedSignal(MOMENTUM_FACTORS, MOMENTUM_FACTORS.default_params())
    o = random_ohlcv(seed, sig.window + 100, vol=vol)
    assert_valid_output(assert_live_matches_vectorised(sig, o), len(o.close))


def test_votes_both_ways_on_real_candles(shared_data: Path) -> None:
    # measured: BTC 5m (10,999 bars) BUY 8.9 % SELL 1.0 %; SPY daily (5,241 bars) BUY 7.3 % SELL 5.1 %
    for o in (load_btc_5m(shared_data), load_spy_daily(shared_data)):
        out = momentum_factors(Context(o), P)
        assert_valid_output(out, len(o.close))
        assert (out.action == 1).mean() > 0.02 and (out.action == -1).mean() > 0.005


def test_short_and_empty_histories_are_valid() -> None:
    w = MOMENTUM_FACTORS.warmup(MOMENTUM_FACTORS.default_params())
    for n in (0, 1, 2, 3, 5, w - 1, w, w + 1):
        o = random_ohlcv(2, n) if n else Ohlcv(np.empty(0, np.int64), *(np.empty(0),) * 5)
        assert_valid_output(MOMENTUM_FACTORS.compute(Context(o), MOMENTUM_FACTORS.default_params()), n)
