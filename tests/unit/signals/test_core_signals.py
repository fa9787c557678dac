"""rsi, macd, ema: values against TA-Lib and hand-worked rules; live window == vectorised history."""

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
from pia.signals.base import Context, Ohlcv
from pia.signals.core import EmaParams, MacdParams, RsiParams, ema, macd, rsi
from pia.signals.registry import REGISTRY
from pia.signals.window import BarWindow


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
        out = sig.compute(Context(o))
        assert (out.action == 0).all(), sig.name


def test_registry_declares_name_family_warmup_and_params() -> None:
    resolved = REGISTRY.resolve(SignalsConfig(params={"rsi": {"period": 7}}))
    assert [(s.name, s.spec.family, s.warmup) for s in resolved] == [
        ("rsi", "core", 8),
        ("macd", "core", 35),
        ("ema", "core", 21),
    ]
    with pytest.raises(ValueError, match=r"signals.params.rsi.period: Input should be greater than or equal to 2"):
        REGISTRY.resolve(SignalsConfig(params={"rsi": {"period": 1}}))


def window_matches_history(close: np.ndarray, capacity: int) -> None:
    """Feed bars one at a time into a window; the last vote equals the full-history vote at that bar."""
    signals = REGISTRY.resolve(SignalsConfig())
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
