"""Test helpers for signals: real candles from ``../shared/data``, generated series, and the live == vectorised check.

:func:`assert_live_matches_vectorised` is the property every signal must satisfy: feed the bars one
at a time into a :class:`~pia.signals.window.BarWindow` of the signal's window length, evaluate the
signal on the window after each bar, and compare the last vote with the vote the vectorised
function gives for that bar over the whole history.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from pia.events import Bar
from pia.signals.base import F64, NO_INPUTS, Context, Inputs, Ohlcv, SignalOutput
from pia.signals.registry import ResolvedSignal
from pia.signals.window import BarWindow

OCTOBOT = "candles/binance/octobot"
REAL_SERIES = (
    ("binance_BTC_USDT_20180428_121156.json.gz", "1h"),
    ("binance_ETH_USDT_20180716_131148.json.gz", "15m"),
    ("binance_ETH_USDT_20180716_131148.json.gz", "4h"),
    ("binance_XLM_BTC_20180722_234305.json.gz", "5m"),
)
"""Real Binance spot series of ~500 closed candles used by the signal tests."""


def load_octobot(shared_data: Path, name: str, interval: str) -> Ohlcv:
    """One timeframe of an OctoBot capture as closed candles (the last, still-forming candle dropped)."""
    raw = json.loads(gzip.decompress((shared_data / OCTOBOT / name).read_bytes()))
    t, o, h, low, c, v = (np.asarray(col, dtype=np.float64) for col in raw[interval])
    scale = 1_000_000 if t[0] > 1e11 else 1_000_000_000  # milliseconds in one file, seconds in the others
    times = (t * scale).astype(np.int64)
    sl = slice(0, len(times) - 1)
    return Ohlcv(times[sl], o[sl].copy(), h[sl].copy(), low[sl].copy(), c[sl].copy(), v[sl].copy())


def load_ftx_minutes(shared_data: Path) -> Ohlcv:
    """45,031 real FTX BTC-PERP one-minute candles (2022-01), gap-free."""
    import polars as pl

    df = pl.read_csv(shared_data / "candles/ftx/nautilus/btc-perp-20211231-20220201_1m.csv")
    ts = df["timestamp"].str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_zone="UTC").dt.epoch("ns").to_numpy()
    cols = [df[k].cast(pl.Float64).to_numpy().copy() for k in ("open", "high", "low", "close", "volume")]
    return Ohlcv(ts.astype(np.int64), *cols)


def load_spy_daily(shared_data: Path) -> Ohlcv:
    """5,241 real SPY daily candles, 1999-11 .. 2020-08 (unadjusted; SPY never split)."""
    import polars as pl

    df = pl.read_csv(shared_data / "candles/us_equity/pandas-ta/SPY_D.csv")
    ts = df["date"].str.to_datetime("%Y-%m-%d", time_zone="UTC").dt.epoch("ns").to_numpy()
    cols = [df[k].cast(pl.Float64).to_numpy().copy() for k in ("open", "high", "low", "close", "volume")]
    return Ohlcv(ts.astype(np.int64), *cols)


def load_btc_5m(shared_data: Path) -> Ohlcv:
    """10,999 real BTC/USDT five-minute candles, 2023-01-02 .. 2023-02-09, gap-free."""
    raw = json.loads((shared_data / "candles/unattributed/freqtrade/orderflow_candles_BTC_USDT-5m.json").read_bytes())
    keys = sorted(raw["date"], key=int)
    times = np.asarray([raw["date"][k] for k in keys], dtype=np.int64) * 1_000_000
    cols = [np.asarray([raw[f][k] for k in keys], dtype=np.float64) for f in ("open", "high", "low", "close", "volume")]
    return Ohlcv(times, *cols)


def aggregate_ohlcv(o: Ohlcv, k: int) -> Ohlcv:
    """Every ``k`` consecutive candles as one (for gap-free series only; a trailing partial group is dropped)."""
    m = len(o.close) // k * k

    def g(a: F64) -> F64:
        return np.ascontiguousarray(a[:m].reshape(-1, k))

    return Ohlcv(
        np.ascontiguousarray(o.open_time[:m:k]),
        np.ascontiguousarray(g(o.open)[:, 0]),
        g(o.high).max(axis=1),
        g(o.low).min(axis=1),
        np.ascontiguousarray(g(o.close)[:, -1]),
        g(o.volume).sum(axis=1),
    )


def random_ohlcv(seed: int, n: int, vol: float = 0.01, step_ns: int = 900_000_000_000) -> Ohlcv:
    """A fat-tailed random walk with consistent OHLC (low <= open, close <= high) and positive volume."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.standard_t(4, n) * vol))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0, vol / 4, n))
    top = np.maximum(open_, close)
    bottom = np.minimum(open_, close)
    high = top * (1 + np.abs(rng.normal(0, vol / 2, n)))
    low = bottom * (1 - np.abs(rng.normal(0, vol / 2, n)))
    volume = rng.lognormal(10, 0.6, n)
    times = np.int64(1_735_689_600_000_000_000) + np.arange(n, dtype=np.int64) * step_ns  # from 2025-01-01
    return Ohlcv(times, open_, high, low, close, volume)


def tail(o: Ohlcv, n: int) -> Ohlcv:
    """The newest ``n`` candles, as contiguous copies."""
    return Ohlcv(
        np.ascontiguousarray(o.open_time[-n:]),
        np.ascontiguousarray(o.open[-n:]),
        np.ascontiguousarray(o.high[-n:]),
        np.ascontiguousarray(o.low[-n:]),
        np.ascontiguousarray(o.close[-n:]),
        np.ascontiguousarray(o.volume[-n:]),
    )


def _slice_inputs(inputs: Inputs, lo: int, hi: int) -> Inputs:
    return Inputs(*(None if a is None else np.ascontiguousarray(a[lo:hi]) for a in inputs))


def assert_live_matches_vectorised(
    sig: ResolvedSignal,
    o: Ohlcv,
    inputs: Inputs = NO_INPUTS,
    *,
    window: int | None = None,
    start: int | None = None,
    conf_tol: float = 1e-9,
) -> SignalOutput:
    """Every bar from ``start`` (default: when the window is full) votes the same live and vectorised.

    Returns the vectorised output so the caller can also check that the signal voted at all.
    """
    cap = window or sig.window
    full = sig.compute(Context(o, inputs))
    n = len(o.close)
    win = BarWindow(cap)
    first = cap - 1 if start is None else start
    for i in range(n):
        win.append(
            Bar(
                symbol="X",
                interval="1m",
                open_time=int(o.open_time[i]),
                open=float(o.open[i]),
                high=float(o.high[i]),
                low=float(o.low[i]),
                close=float(o.close[i]),
                volume=float(o.volume[i]),
            )
        )
        if i < first:
            continue
        lo = i + 1 - len(win)
        got = sig.compute(Context(win.view(), _slice_inputs(inputs, lo, i + 1)))
        assert int(got.action[-1]) == int(full.action[i]), (
            f"{sig.name}: bar {i}: live {int(got.action[-1])} != vectorised {int(full.action[i])}"
        )
        assert abs(float(got.confidence[-1]) - float(full.confidence[i])) <= conf_tol, (
            f"{sig.name}: bar {i}: live confidence {float(got.confidence[-1])} != {float(full.confidence[i])}"
        )
    return full


def assert_valid_output(out: SignalOutput, n: int) -> None:
    """Shape, dtype and range: actions in {-1, 0, 1}, confidence in [0, 1] and 0 exactly where HOLD."""
    assert out.action.shape == (n,) and out.confidence.shape == (n,)
    assert out.action.dtype == np.int8 and out.confidence.dtype == np.float64
    assert set(np.unique(out.action).tolist()) <= {-1, 0, 1}
    conf: F64 = out.confidence
    assert np.isfinite(conf).all() and (conf >= 0).all() and (conf <= 1).all()
    assert (conf[out.action == 0] == 0).all()
