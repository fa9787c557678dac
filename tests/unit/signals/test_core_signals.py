"""rsi, macd, ema, bb, volume: values against TA-Lib / pandas, hand-worked rules; live window == vectorised history."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from pia.config import SignalsConfig
from pia.events import Bar
from pia.signals import core
from pia.signals.base import ALL_CLASSES, Context, Ohlcv, SignalSpec
from pia.signals.core import (
    BB,
    RSI,
    VOLUME,
    BbParams,
    EmaParams,
    MacdParams,
    RsiParams,
    VolumeParams,
    bb,
    ema,
    macd,
    rolling_percentiles,
    rsi,
    volume,
)
from pia.signals.registry import REGISTRY, ResolvedSignal
from pia.signals.window import BarWindow
from pia.testing.signals import (
    assert_live_matches_vectorised,
    assert_valid_output,
    load_btc_5m,
    load_spy_daily,
    random_ohlcv,
    tail,
)


def series(close: np.ndarray) -> Ohlcv:
    close = np.ascontiguousarray(close, dtype=np.float64)
    n = len(close)
    return Ohlcv(np.arange(n, dtype=np.int64) * 60, close, close * 1.001, close * 0.999, close, np.ones(n))


def test_rsi_votes_follow_talib_and_fixed_bounds() -> None:
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 600)))
    o = series(close)
    out = rsi(Context(o), RsiParams())
    r = talib.RSI(close, 14)
    np.testing.assert_array_equal(out.action == 1, r < 30)
    np.testing.assert_array_equal(out.action == -1, r > 70)
    assert (out.action == 1).any() and (out.action == -1).any()
    i = int(np.flatnonzero(out.action == 1)[0])
    assert out.confidence[i] == pytest.approx(0.5 + 0.5 * (30 - r[i]) / 30)
    assert (out.action[:14] == 0).all() and (out.confidence[out.action == 0] == 0).all()


def test_macd_votes_on_histogram_crossings_only() -> None:
    rng = np.random.default_rng(2)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 600)))
    out = macd(Context(series(close)), MacdParams())
    _, _, hist = talib.MACD(close, 12, 26, 9)
    ups = [i for i in range(1, 600) if hist[i - 1] <= 0 < hist[i]]
    downs = [i for i in range(1, 600) if hist[i - 1] >= 0 > hist[i]]
    assert np.flatnonzero(out.action == 1).tolist() == ups
    assert np.flatnonzero(out.action == -1).tolist() == downs
    assert len(ups) > 3 and len(downs) > 3
    assert set(out.confidence[out.action != 0]) == {1.0}


def test_ema_votes_only_beyond_the_gap() -> None:
    # a steady climb then a steady fall: EMA9 leads EMA21 up, then down
    close = np.r_[np.linspace(100, 130, 150), np.linspace(130, 100, 150)]
    out = ema(Context(series(close)), EmaParams())
    fast, slow = talib.EMA(close, 9), talib.EMA(close, 21)
    gap = (fast - slow) / slow * 100
    np.testing.assert_array_equal(out.action == 1, gap >= 0.5)
    np.testing.assert_array_equal(out.action == -1, gap <= -0.5)
    assert out.action[100] == 1 and out.action[290] == -1
    assert out.confidence[100] == pytest.approx(min(1.0, abs(gap[100]) / 1.0))


def test_flat_prices_never_vote() -> None:
    o = series(np.full(300, 50.0))
    for sig in REGISTRY.resolve(SignalsConfig()):
        if sig.spec.family == "calendar" or sig.name == "calendar":
            continue  # they vote on dates, not prices
        out = sig.compute(Context(o))
        assert (out.action == 0).all(), sig.name


def test_registry_declares_name_family_warmup_and_params() -> None:
    resolved = REGISTRY.resolve(SignalsConfig(enabled=("rsi", "macd", "ema"), params={"rsi": {"period": 7}}))
    assert [(s.name, s.spec.family, s.warmup) for s in resolved] == [
        ("rsi", "core", 8),
        ("macd", "core", 35),
        ("ema", "core", 21),
    ]
    with pytest.raises(ValueError, match=r"signals.params.rsi.period: Input should be greater than or equal to 2"):
        REGISTRY.resolve(SignalsConfig(params={"rsi": {"period": 1}}))


def window_matches_history(close: np.ndarray, capacity: int) -> None:
    """Feed bars one at a time into a window; the last vote equals the full-history vote at that bar."""
    signals = REGISTRY.resolve(SignalsConfig(enabled=("rsi", "macd", "ema")))
    full = series(close)
    want = {s.name: s.compute(Context(full)) for s in signals}
    win = BarWindow(capacity)
    warm = 400  # the window length that makes TA-Lib's recursive indicators converge to full history
    for i, px in enumerate(close):
        win.append(
            Bar(
                symbol="X",
                interval="1m",
                open_time=i * 60,
                open=float(full.open[i]),
                high=float(full.high[i]),
                low=float(full.low[i]),
                close=float(px),
                volume=1.0,
            )
        )
        if i < warm:
            continue
        ctx = Context(win.view())
        for s in signals:
            got = s.compute(ctx)
            assert got.action[-1] == want[s.name].action[i], (s.name, i)
            assert got.confidence[-1] == pytest.approx(want[s.name].confidence[i], abs=1e-6), (s.name, i)


def test_live_window_equals_vectorised_on_real_candles(shared_data: Path) -> None:
    raw = json.loads(
        gzip.decompress((shared_data / "candles/binance/octobot/binance_BTC_USDT_20180428_121156.json.gz").read_bytes())
    )
    close = np.asarray(raw["1h"][4], dtype=np.float64)
    assert len(close) >= 499
    window_matches_history(close, capacity=450)


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=0, max_value=2**31), st.floats(min_value=0.001, max_value=0.05))
def test_live_window_equals_vectorised_on_generated_series(seed: int, vol: float) -> None:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.standard_t(4, 700) * vol))
    window_matches_history(close, capacity=500)


def test_window_rejects_old_bars_and_stays_bounded() -> None:
    win = BarWindow(5)

    def bar(t: int) -> Bar:
        return Bar(symbol="X", interval="1m", open_time=t, open=1.0, high=1.0, low=1.0, close=float(t), volume=1.0)

    for t in range(1, 23):
        assert win.append(bar(t))
    assert not win.append(bar(22)) and not win.append(bar(3))
    assert len(win) == 5
    assert win.view().close.tolist() == [18.0, 19.0, 20.0, 21.0, 22.0]
    assert win.view().open_time.tolist() == [18, 19, 20, 21, 22]
    assert win.view().close.flags["C_CONTIGUOUS"]


# --- module declaration -----------------------------------------------------------------------


def test_module_declares_the_five_technical_core_signals() -> None:
    assert [s.name for s in core.SIGNALS] == ["rsi", "macd", "ema", "bb", "volume"]
    for spec in core.SIGNALS:
        assert isinstance(spec, SignalSpec)
        assert spec.family == "core" and spec.inputs == () and spec.asset_classes == ALL_CLASSES
        assert spec.summary and "\n" not in spec.summary
        for name, field in spec.params_model.model_fields.items():
            assert field.description, (spec.name, name)
    warm = {s.name: ResolvedSignal(s, s.default_params()) for s in core.SIGNALS}
    assert {k: (v.warmup, v.window) for k, v in warm.items()} == {
        "rsi": (15, 415),
        "macd": (35, 435),
        "ema": (21, 421),
        "bb": (20, 20),
        "volume": (21, 21),
    }
    adaptive = ResolvedSignal(RSI, RsiParams(bounds="adaptive"))
    assert (adaptive.warmup, adaptive.window) == (15, 514)
    # slow smoothing gets a longer live window than the default 400 settle bars
    # Wilder RSI(40) keeps 39/40 of its seed per bar: (39/40) ** 1001 <= 1e-11 < (39/40) ** 1000
    assert (39 / 40) ** 1001 <= 1e-11 < (39 / 40) ** 1000
    assert ResolvedSignal(RSI, RsiParams(period=40)).window == 41 + 1001


# --- rsi: adaptive bounds ---------------------------------------------------------------------


def test_rolling_percentiles_hand_worked() -> None:
    x = np.array([np.nan, 1.0, 5.0, 3.0, np.nan, 9.0, 7.0])
    p25, p50 = rolling_percentiles(x, 4, 2, (25.0, 50.0))
    # lookback 4 = bars t-3..t; the non-NaN values, sorted, and their percentiles (position q * (k - 1)):
    # t=0 [] and t=1 [1]: fewer than 2 values -> NaN.  t=2 [1,5]: p25 at 0.25 -> 1 + 0.25 * 4 = 2, p50 -> 3.
    # t=3 [1,3,5]: p25 at 0.5 -> 2, p50 at 1 -> 3.  t=4 [1,3,5] (bar 4 is NaN): 2, 3.
    # t=5 [3,5,9]: p25 at 0.5 -> 4, p50 -> 5.  t=6 [3,7,9]: p25 at 0.5 -> 5, p50 -> 7.
    np.testing.assert_allclose(p25, [np.nan, np.nan, 2.0, 2.0, 2.0, 4.0, 5.0])
    np.testing.assert_allclose(p50, [np.nan, np.nan, 3.0, 3.0, 3.0, 5.0, 7.0])
    empty = rolling_percentiles(np.empty(0), 4, 2, (50.0,))
    assert empty[0].shape == (0,)


def test_rolling_percentiles_equal_the_originals_pandas_rolling_quantile(shared_data: Path) -> None:
    pd = pytest.importorskip("pandas")
    r = talib.RSI(tail(load_btc_5m(shared_data), 3000).close, 14)
    p20, p80 = rolling_percentiles(r, 100, 20, (20.0, 80.0))
    want20 = pd.Series(r).rolling(100, min_periods=20).quantile(0.2).to_numpy()
    want80 = pd.Series(r).rolling(100, min_periods=20).quantile(0.8).to_numpy()
    np.testing.assert_allclose(p20, want20, rtol=1e-12)
    np.testing.assert_allclose(p80, want80, rtol=1e-12)
    assert np.isnan(p20[:33]).all() and not np.isnan(p20[33:]).any()  # 14 NaN RSI + 19 more bars


def test_adaptive_rsi_follows_rolling_percentiles_with_floor_cap_and_fallback() -> None:
    rng = np.random.default_rng(5)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 800)))
    p = RsiParams(bounds="adaptive")
    out = rsi(Context(series(close)), p)
    r = talib.RSI(close, 14)
    p20, p80 = rolling_percentiles(r, 100, 20, (20.0, 80.0))
    lo = np.where(np.isnan(p20), 30.0, np.maximum(p20, 15.0))
    hi = np.where(np.isnan(p80), 70.0, np.minimum(p80, 85.0))
    np.testing.assert_array_equal(out.action == 1, r < lo)
    np.testing.assert_array_equal(out.action == -1, r > hi)
    # before 20 RSI values exist (bars 14..32) the fixed 30/70 bounds apply
    assert np.isnan(p20[32]) and not np.isnan(p20[33])
    np.testing.assert_array_equal(out.action[14:33] == 1, r[14:33] < 30)
    i = int(np.flatnonzero(out.action == 1)[-1])
    assert out.confidence[i] == pytest.approx(0.5 + 0.5 * (lo[i] - r[i]) / lo[i])
    j = int(np.flatnonzero(out.action == -1)[-1])
    assert out.confidence[j] == pytest.approx(0.5 + 0.5 * (r[j] - hi[j]) / (100 - hi[j]))
    # adaptive votes far more often than fixed (about 40 % by construction)
    fixed = rsi(Context(series(close)), RsiParams())
    assert (out.action != 0).mean() > 0.3 > 0.15 > (fixed.action != 0).mean()


def test_adaptive_rsi_floor_and_cap_bind_on_extreme_regimes() -> None:
    # a long steady fall: RSI stays very low, so p20 sits below 15 and the floor 15 is the BUY bound
    close = 100 * np.exp(np.cumsum(np.r_[0.0, np.tile([-0.01, -0.01, -0.01, 0.002], 60)]))
    for c, floor_binds in ((close, True), (1e4 / close, False)):  # the mirror (a steady climb) binds the cap 85
        r = talib.RSI(c, 14)
        p20, p80 = rolling_percentiles(r, 100, 20, (20.0, 80.0))
        out = rsi(Context(series(c)), RsiParams(bounds="adaptive"))
        lo, hi = np.maximum(p20, 15.0), np.minimum(p80, 85.0)
        late = slice(150, None)  # the percentiles are defined and the regime has set in
        np.testing.assert_array_equal(out.action[late] == 1, ((r < lo) & ~(r > hi))[late])
        np.testing.assert_array_equal(out.action[late] == -1, ((r > hi) & ~(r < lo))[late])
        if floor_binds:
            assert (p20[late] < 15).all()
            # RSI between p20 and the floor votes BUY only because of the floor
            extra = (r >= p20) & (r < 15) & ~(r > hi)
            assert (out.action[late][extra[late]] == 1).all() and extra[late].sum() >= 5
        else:
            assert (p80[late] > 85).all()
            extra = (r <= p80) & (r > 85) & ~(r < lo)
            assert (out.action[late][extra[late]] == -1).all() and extra[late].sum() >= 5


def test_rsi_vote_rates_on_real_candles_fixed_vs_adaptive(shared_data: Path) -> None:
    o = load_btc_5m(shared_data)
    fixed = rsi(Context(o), RsiParams())
    adaptive = rsi(Context(o), RsiParams(bounds="adaptive"))
    f_buy, f_sell = (fixed.action == 1).mean(), (fixed.action == -1).mean()
    a_buy, a_sell = (adaptive.action == 1).mean(), (adaptive.action == -1).mean()
    # measured: fixed 2.0 % BUY / 3.7 % SELL, adaptive 23.0 % / 22.8 %
    assert 0.005 < f_buy < 0.05 and 0.005 < f_sell < 0.08
    assert 0.15 < a_buy < 0.3 and 0.15 < a_sell < 0.3
    assert_valid_output(adaptive, len(o.close))


# --- bb ---------------------------------------------------------------------------------------


def test_bb_bands_are_talib_bbands_and_votes_follow_them(shared_data: Path) -> None:
    o = tail(load_btc_5m(shared_data), 3000)
    c = Context(o)
    out = bb(c, BbParams())
    upper, middle, lower = talib.BBANDS(o.close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0)
    got = c.bbands(20, 2.0)
    np.testing.assert_array_equal(got[0], upper)
    np.testing.assert_array_equal(got[1], middle)
    np.testing.assert_array_equal(got[2], lower)
    np.testing.assert_array_equal(out.action == 1, o.close <= lower)
    np.testing.assert_array_equal(out.action == -1, o.close >= upper)
    assert (out.action[:19] == 0).all()
    sigma = (upper - middle) / 2.0
    buys, sells = np.flatnonzero(out.action == 1), np.flatnonzero(out.action == -1)
    assert len(buys) > 10 and len(sells) > 10
    np.testing.assert_allclose(out.confidence[buys], np.minimum(1, 0.5 + 0.5 * (lower - o.close)[buys] / sigma[buys]))
    np.testing.assert_allclose(
        out.confidence[sells], np.minimum(1, 0.5 + 0.5 * (o.close - upper)[sells] / sigma[sells])
    )
    assert (out.confidence[buys] < 1).any() and (out.confidence[buys] == 1).any()


def test_bb_votes_when_the_close_is_exactly_on_a_band() -> None:
    # period 2, 1 sigma: mean of (a, b) +- |a - b| / 2 puts the newest close exactly on a band
    close = np.array([100.0, 102.0, 100.0, 100.0, 96.0])
    out = bb(Context(series(close)), BbParams(period=2, dev=1.0))
    upper, _, lower = talib.BBANDS(close, timeperiod=2, nbdevup=1.0, nbdevdn=1.0, matype=0)
    assert upper[1] == 102.0 and lower[2] == 100.0 and lower[4] == 96.0
    # rising close on the upper band: SELL; falling on the lower: BUY; unchanged (zero width): HOLD
    assert out.action.tolist() == [0, -1, 1, 0, 1]
    assert out.confidence.tolist() == [0.0, 0.5, 0.5, 0.0, 0.5]


def test_bb_holds_on_flat_prices() -> None:
    out = bb(Context(series(np.full(60, 42.0))), BbParams())
    assert (out.action == 0).all() and (out.confidence == 0).all()


# --- volume -----------------------------------------------------------------------------------


def volume_series(close: list[float], vol: list[float]) -> Ohlcv:
    o = series(np.asarray(close))
    return Ohlcv(o.open_time, o.open, o.high, o.low, o.close, np.asarray(vol, dtype=np.float64))


def test_volume_rule_hand_worked() -> None:
    base = [100.0] * 20
    # bar 20: volume 151 vs the previous 20 bars' mean 100 -> ratio 1.51 > 1.5; close 11 vs close[17] 10 -> BUY
    # (had the current bar been in the baseline, the mean would be 102.45 and the ratio 1.47: no vote)
    close = [10.0] * 20 + [11.0]
    out = volume(Context(volume_series(close, [*base, 151.0])), VolumeParams())
    assert out.action.tolist() == [0] * 20 + [1]
    assert out.confidence[20] == pytest.approx(0.5 * 1.51 / 1.5)
    # exactly 1.5x: no vote
    assert volume(Context(volume_series(close, [*base, 150.0])), VolumeParams()).action[20] == 0
    # a falling close: SELL; twice the threshold and more: confidence capped at 1
    out = volume(Context(volume_series([10.0] * 20 + [9.0], [*base, 400.0])), VolumeParams())
    assert (out.action[20], out.confidence[20]) == (-1, 1.0)
    # unchanged close over 3 bars (a move inside them does not count): HOLD
    flat = [10.0] * 17 + [10.0, 12.0, 8.0, 10.0]
    assert volume(Context(volume_series(flat, [*base, 500.0])), VolumeParams()).action[20] == 0
    # the direction compares with close[t-3] exactly: close[17] = 9, close[20] = 9.5 -> BUY although bar 19 was higher
    up = [10.0] * 17 + [9.0, 12.0, 12.0, 9.5]
    assert volume(Context(volume_series(up, [*base, 500.0])), VolumeParams()).action[20] == 1
    # a zero baseline abstains rather than dividing by zero
    zero = volume(Context(volume_series(close, [0.0] * 20 + [5.0])), VolumeParams())
    assert zero.action[20] == 0


def test_volume_matches_a_loop_on_real_candles(shared_data: Path) -> None:
    o = tail(load_btc_5m(shared_data), 2000)
    out = volume(Context(o), VolumeParams())
    want = np.zeros(len(o.close), dtype=np.int8)
    for t in range(20, len(o.close)):
        ratio = o.volume[t] / np.mean(o.volume[t - 20 : t])
        if ratio > 1.5 and o.close[t] != o.close[t - 3]:
            want[t] = 1 if o.close[t] > o.close[t - 3] else -1
    np.testing.assert_array_equal(out.action, want)
    assert (want == 1).sum() > 20 and (want == -1).sum() > 20


# --- real candles: live == vectorised, vote rates, valid output ---------------------------------

NEW = [(BB, BbParams()), (VOLUME, VolumeParams()), (RSI, RsiParams(bounds="adaptive"))]


@pytest.mark.parametrize(("spec", "params"), NEW, ids=["bb", "volume", "rsi_adaptive"])
def test_live_equals_vectorised_and_votes_both_ways_on_real_candles(
    shared_data: Path, spec: SignalSpec, params: core.Params
) -> None:
    sig = ResolvedSignal(spec, params)
    for o in (tail(load_btc_5m(shared_data), sig.window + 700), tail(load_spy_daily(shared_data), sig.window + 700)):
        out = assert_live_matches_vectorised(sig, o)
        assert_valid_output(out, len(o.close))
        assert (out.action == 1).sum() >= 5 and (out.action == -1).sum() >= 5, spec.name


@settings(max_examples=8, deadline=None)
@given(st.integers(min_value=0, max_value=2**31))
def test_live_equals_vectorised_on_generated_series(seed: int) -> None:
    for spec, params in [*NEW, (RSI, RsiParams(period=40))]:
        sig = ResolvedSignal(spec, params)
        o = random_ohlcv(seed, sig.window + 200)
        out = assert_live_matches_vectorised(sig, o)
        assert_valid_output(out, len(o.close))
