"""Signal benchmarks: full-history computation and live bar-close latency, each beside its limits.

- **History**: every bar-based signal over 31 instruments x 7 timeframes, built from two years of
  15-minute bars per instrument (aggregated to 1h .. 1M), compared with
  (a) the raw limit: exactly the TA-Lib calls the signals made, replayed on the same arrays with no
      framework and no vote logic around them (recorded by wrapping the ``talib`` functions), and
  (b) a pure-pandas baseline: the same indicators computed with the ``ta`` package, on a subset of
      instruments (it is slow), compared per bar.
- **Live**: bar close -> ``SignalsComputed`` published (the worker's whole path: window append, every
  signal, regime, event) and -> ``ConsensusChanged`` decided, for one (instrument, timeframe), p50/p99
  over thousands of bars, beside the replayed TA-Lib calls on the same windows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from pia import topics
from pia.bus import Bus
from pia.clock import LiveClock
from pia.config import ConsensusConfig, SignalsConfig
from pia.events import BAR_DTYPE, BarClosed
from pia.feeds.aggregate import aggregate
from pia.feeds.base import BarArray, array_to_bars
from pia.instruments import Timeframe
from pia.intervals import MINUTE, parse_interval
from pia.signals import ta as signal_ta  # not the pandas `ta` package of the baseline
from pia.signals.base import Context, tail_ohlcv
from pia.signals.consensus import ConsensusActor
from pia.signals.history import compute_history
from pia.signals.registry import REGISTRY
from pia.signals.snapshot import ohlcv
from pia.signals.worker import SignalWorker

T0 = 1_704_067_200 * 1_000_000_000  # 2024-01-01
TWO_YEARS_15M = 2 * 365 * 96
INTERVALS = ("15m", "1h", "4h", "1d", "3d", "1w", "1M")
LABELS = ("Now", "12h", "2d", "7d", "1mo", "3mo", "6mo")


def walk(n: int, seed: int, step: int) -> BarArray:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.standard_t(4, n) * 0.004))
    opn = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 0.002, n)) * close
    arr = np.empty(n, dtype=BAR_DTYPE)
    arr["open_time"] = T0 + np.arange(n, dtype=np.int64) * step
    arr["open"], arr["close"] = opn, close
    arr["high"] = np.maximum(opn, close) + spread
    arr["low"] = np.minimum(opn, close) - spread
    arr["volume"] = rng.lognormal(8, 0.7, n)
    return arr


def universe_arrays(instruments: int) -> list[tuple[str, str, BarArray]]:
    out = []
    for k in range(instruments):
        base = walk(TWO_YEARS_15M, 100 + k, 15 * MINUTE)
        for iv in INTERVALS:
            arr = base if iv == "15m" else aggregate(base, parse_interval(iv))
            out.append((f"I{k:02d}", iv, arr))
    return out


class TalibRecorder:
    """Records the TA-Lib calls (with their argument arrays) the signals make, to replay them as the raw limit.

    Signal code calls TA-Lib through ``pia.signals.ta`` (the C functions, as attributes of that module);
    each is replaced by a recording wrapper for the duration of the ``with`` block.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []
        self._saved: dict[str, Callable[..., Any]] = {}

    def __enter__(self) -> TalibRecorder:
        for name in signal_ta.FUNCTIONS:
            fn = getattr(signal_ta, name)
            self._saved[name] = fn

            def wrapper(*args: Any, _fn: Callable[..., Any] = fn, **kwargs: Any) -> Any:
                self.calls.append((_fn, args, kwargs))
                return _fn(*args, **kwargs)

            setattr(signal_ta, name, wrapper)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, fn in self._saved.items():
            setattr(signal_ta, name, fn)


def replay(calls: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]) -> None:
    for fn, args, kwargs in calls:
        fn(*args, **kwargs)


def best_of(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


# ------------------------------------------------------------------------------------------------
def ta_baseline(arr: BarArray) -> int:
    """The signals' indicators computed with the pure-pandas ``ta`` package; returns the count."""
    import warnings

    import pandas as pd
    import ta

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h, lo, c, v = (pd.Series(arr[k]) for k in ("high", "low", "close", "volume"))
        o = pd.Series(arr["open"])
        results = [
            ta.momentum.RSIIndicator(c, 14).rsi(),
            ta.momentum.RSIIndicator(c, 2).rsi(),
            ta.momentum.RSIIndicator(c, 3).rsi(),
            ta.trend.MACD(c).macd_diff(),
            ta.trend.EMAIndicator(c, 9).ema_indicator(),
            ta.trend.EMAIndicator(c, 21).ema_indicator(),
            ta.trend.EMAIndicator(c, 13).ema_indicator(),
            ta.volatility.BollingerBands(c, 20, 2).bollinger_pband(),
            *(ta.trend.SMAIndicator(c, n).sma_indicator() for n in (10, 20, 50, 100, 200)),
            ta.volatility.AverageTrueRange(h, lo, c, 14).average_true_range(),
            ta.volatility.AverageTrueRange(h, lo, c, 10).average_true_range(),
            ta.trend.PSARIndicator(h, lo, c).psar(),
            # ta's ADX indexes past the end of series shorter than ~2 windows (the 1M arrays)
            *([ta.trend.ADXIndicator(h, lo, c, 14).adx()] if len(c) >= 3 * 14 else []),
            ta.trend.IchimokuIndicator(h, lo).ichimoku_a(),
            ta.momentum.StochasticOscillator(h, lo, c, 14, 3).stoch_signal(),
            ta.momentum.StochRSIIndicator(c).stochrsi(),
            ta.trend.CCIIndicator(h, lo, c, 20).cci(),
            ta.momentum.WilliamsRIndicator(h, lo, c, 14).williams_r(),
            ta.momentum.ROCIndicator(c, 12).roc(),
            ta.momentum.ROCIndicator(c, 20).roc(),
            ta.momentum.PercentagePriceOscillator(c).ppo_hist(),
            ta.volume.OnBalanceVolumeIndicator(c, v).on_balance_volume(),
            ta.volume.AccDistIndexIndicator(h, lo, c, v).acc_dist_index(),
            ta.volume.ChaikinMoneyFlowIndicator(h, lo, c, v, 20).chaikin_money_flow(),
            ta.volume.MFIIndicator(h, lo, c, v, 14).money_flow_index(),
            ta.volume.VolumeWeightedAveragePrice(h, lo, c, v, 20).volume_weighted_average_price(),
            ta.volatility.KeltnerChannel(h, lo, c, 20, 10).keltner_channel_hband(),
            ta.volatility.DonchianChannel(h, lo, c, 20).donchian_channel_hband(),
            ta.volatility.DonchianChannel(h, lo, c, 55).donchian_channel_hband(),
            ta.momentum.AwesomeOscillatorIndicator(h, lo).awesome_oscillator(),
            ta.trend.AroonIndicator(h, lo, 25).aroon_indicator(),
            ta.trend.VortexIndicator(h, lo, c, 14).vortex_indicator_diff(),
            ta.trend.KSTIndicator(c).kst_diff(),
            ta.trend.STCIndicator(c).stc(),
            ta.trend.TRIXIndicator(c, 15).trix(),
            ta.trend.WMAIndicator(c, 9).wma(),
            (c - o).rolling(20).mean(),
        ]
    return len(results)


def bench_signals_history(instruments: int = 31, ta_instruments: int = 2, repeat: int = 3) -> dict[str, Any]:
    signals = REGISTRY.resolve(SignalsConfig(enabled=tuple(REGISTRY.names())))
    bar_signals = [s for s in signals if not s.spec.inputs or s.spec.family != "core"]
    data = universe_arrays(instruments)
    bars = sum(len(a) for _, _, a in data)
    frames = [ohlcv(a) for _, _, a in data]

    def ours() -> None:
        for o in frames:
            compute_history(o, bar_signals, "crypto")

    recorded = []
    for o in frames:
        with TalibRecorder() as rec:
            compute_history(o, bar_signals, "crypto")
        recorded.append(rec.calls)
    calls = sum(len(c) for c in recorded)
    ours_s = best_of(ours, repeat)
    raw_s = best_of(lambda: [replay(c) for c in recorded], repeat)
    breakdown = history_breakdown(frames, bar_signals)

    subset = [a for (sym, _, a) in data if int(sym[1:]) < ta_instruments]
    subset_frames = [ohlcv(a) for a in subset]
    subset_bars = sum(len(a) for a in subset)
    ta_s = best_of(lambda: [ta_baseline(a) for a in subset], 1)
    ours_subset_s = best_of(lambda: [compute_history(o, bar_signals, "crypto") for o in subset_frames], repeat)
    return {
        "instruments": instruments,
        "timeframes": list(INTERVALS),
        "windows": len(data),
        "bars": bars,
        "signals": [s.name for s in bar_signals],
        "ours_s": round(ours_s, 4),
        "ours_bars_per_s": round(bars / ours_s),
        "raw_talib_calls": calls,
        "raw_talib_s": round(raw_s, 4),
        "ratio_vs_raw": round(ours_s / raw_s, 3),
        "target_ratio_vs_raw": 1.5,
        "per_signal_ms": breakdown,
        "ta_pandas": {
            "instruments": ta_instruments,
            "bars": subset_bars,
            "ta_s": round(ta_s, 3),
            "ours_s": round(ours_subset_s, 4),
            "speedup": round(ta_s / ours_subset_s, 1),
            "target_speedup": 10,
        },
    }


def history_breakdown(frames: list[Any], signals: list[Any]) -> dict[str, dict[str, float]]:
    """Per signal over all frames (one shared indicator memo per frame, as in ``compute_history``): its
    time, and the time of the TA-Lib calls it made (an indicator shared through the memo is counted
    for the first signal that asks for it)."""
    ours: dict[str, float] = {s.name: 0.0 for s in signals}
    calls: dict[str, list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]] = {s.name: [] for s in signals}
    for o in frames:
        ctx = Context(o)
        for s in signals:
            t = time.perf_counter()
            s.compute(ctx)
            ours[s.name] += time.perf_counter() - t
    for o in frames:
        ctx = Context(o)
        for s in signals:
            with TalibRecorder() as rec:
                s.compute(ctx)
            calls[s.name].extend(rec.calls)
    out = {}
    for s in signals:
        raw = best_of(lambda c=calls[s.name]: replay(c), 1)
        out[s.name] = {"ours": round(ours[s.name] * 1e3, 2), "raw_talib": round(raw * 1e3, 2)}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["ours"]))


# ------------------------------------------------------------------------------------------------
def bench_signals_live(bars_n: int = 3000) -> dict[str, Any]:
    """Bar close -> SignalsComputed (worker) and -> consensus decided, one (instrument, Now)."""
    signals = REGISTRY.resolve(SignalsConfig(enabled=tuple(REGISTRY.names())))
    tf = Timeframe(label="Now", interval="15m")
    clock = LiveClock()
    bus = Bus(100_000)
    worker = SignalWorker(bus, clock, [tf], signals, asset_classes={"BTC-USD": "crypto"})
    core = frozenset(s.name for s in signals if s.spec.core)
    consensus = ConsensusActor(bus, clock, ConsensusConfig(), [tf.label], core=core)
    sub = bus.subscribe(topics.signals(), "bench")
    arr = walk(worker.window_capacity(tf) + bars_n, 7, 15 * MINUTE)
    cap = worker.window_capacity(tf)
    history = array_to_bars("BTC-USD", "15m", arr)

    per_signal: dict[str, list[float]] = {}

    async def run() -> tuple[list[float], list[float], list[float]]:
        to_signals: list[float] = []
        to_consensus: list[float] = []
        raw: list[float] = []
        per_signal.update({s.name: [] for s in signals})
        for b in history[:cap]:
            worker._window("BTC-USD", tf).append(b)
        # one untimed bar first: lazy one-off loads (the economic schedules) belong to start-up, not a bar close
        warm = history[cap]
        await worker.on_bar(BarClosed(ts_event=warm.open_time + 15 * MINUTE, ts_recv=0, bar=warm, source="bench"))
        sub.receive_nowait()
        for b in history[cap + 1 :]:
            ev = BarClosed(ts_event=b.open_time + 15 * MINUTE, ts_recv=0, bar=b, source="bench")
            t = time.perf_counter_ns()
            await worker.on_bar(ev)
            t1 = time.perf_counter_ns()
            computed = sub.receive_nowait()
            assert computed is not None
            await consensus.on_signals(computed)
            t2 = time.perf_counter_ns()
            to_signals.append((t1 - t) / 1000)
            to_consensus.append((t2 - t) / 1000)
            view = worker._window("BTC-USD", tf).view()
            contexts: dict[int, Context] = {}
            for s, bucket in worker.signals_for("crypto"):
                ctx = contexts.get(bucket)
                if ctx is None:
                    ctx = contexts[bucket] = Context(tail_ohlcv(view, bucket))
                t = time.perf_counter_ns()
                s.compute(ctx)
                per_signal[s.name].append((time.perf_counter_ns() - t) / 1000)
            with TalibRecorder() as rec:
                ctx = Context(view)
                for s in signals:
                    s.compute(ctx)
            t = time.perf_counter_ns()
            replay(rec.calls)
            raw.append((time.perf_counter_ns() - t) / 1000)
        return to_signals, to_consensus, raw

    to_signals, to_consensus, raw = asyncio.run(run())

    def pct(xs: list[float], q: float) -> float:
        return round(float(np.percentile(xs, q)), 1)

    return {
        "bars": len(to_signals),
        "window": cap,
        "signals": len(signals),
        "bar_to_signals_us": {"p50": pct(to_signals, 50), "p99": pct(to_signals, 99), "max": pct(to_signals, 100)},
        "bar_to_consensus_us": {"p50": pct(to_consensus, 50), "p99": pct(to_consensus, 99)},
        "raw_talib_us": {"p50": pct(raw, 50), "p99": pct(raw, 99)},
        "ratio_p50_vs_raw": round(float(np.percentile(to_signals, 50) / np.percentile(raw, 50)), 2),
        "target_p99_us": 2000,
        "per_signal_p50_us": dict(sorted(((k, pct(v, 50)) for k, v in per_signal.items()), key=lambda kv: -kv[1])),
    }


# ------------------------------------------------------------------------------------------------
def bench_signals_burst(closes: int = 20) -> dict[str, Any]:
    """Many windows closing together -> every window's consensus decided (PERFORMANCE.md).

    - 31 instruments close a ``Now`` (15m) bar together;
    - all 217 windows (31 instruments x 7 timeframes) close together, as at a month's first weekly close.

    One worker and one consensus actor in one event loop, as the service runs them (single core);
    the burst time is from the first bar handed over to the last consensus decided, over ``closes``
    consecutive bursts. Beside it: the same signals' TA-Lib calls replayed bare for the whole burst.
    """
    signals = REGISTRY.resolve(SignalsConfig(enabled=tuple(REGISTRY.names())))
    core = frozenset(s.name for s in signals if s.spec.core)
    timeframes = [Timeframe(label=lb, interval=iv) for lb, iv in zip(LABELS, INTERVALS, strict=True)]
    out: dict[str, Any] = {}
    for name, tfs in (("31_instruments_now", timeframes[:1]), ("217_windows", timeframes)):
        clock = LiveClock()
        bus = Bus(100_000)
        symbols = [f"I{k:02d}" for k in range(31)]
        worker = SignalWorker(bus, clock, tfs, signals, asset_classes=dict.fromkeys(symbols, "crypto"))
        consensus = ConsensusActor(bus, clock, ConsensusConfig(), [tf.label for tf in tfs], core=core)
        sub = bus.subscribe(topics.signals(), "bench")
        series: dict[tuple[str, str], list[Any]] = {}
        for k, sym in enumerate(symbols):
            for tf in tfs:
                n = worker.window_capacity(tf) + closes + 1
                arr = walk(n, 1000 + k, parse_interval(tf.interval).nominal_ns)
                bars = array_to_bars(sym, tf.interval, arr)
                win = worker._window(sym, tf)
                for b in bars[: worker.window_capacity(tf)]:
                    win.append(b)
                series[(sym, tf.interval)] = bars[worker.window_capacity(tf) :]

        async def run(
            sub: Any = sub, worker: SignalWorker = worker, consensus: ConsensusActor = consensus, series: Any = series
        ) -> list[float]:
            times = []
            for i in range(closes + 1):
                t = time.perf_counter_ns()
                for bars in series.values():
                    b = bars[i]
                    await worker.on_bar(BarClosed(ts_event=b.open_time + 1, ts_recv=0, bar=b, source="bench"))
                    computed = sub.receive_nowait()
                    assert computed is not None
                    await consensus.on_signals(computed)
                if i:  # the first burst warms lazy one-off loads
                    times.append((time.perf_counter_ns() - t) / 1e6)
            return times

        times = asyncio.run(run())
        windows = len(series)
        with TalibRecorder() as rec:
            for (sym, iv), _bars in series.items():
                tf = next(t for t in tfs if t.interval == iv)
                view = worker._window(sym, tf).view()
                ctx = Context(view)
                for s in signals:
                    s.compute(ctx)
        raw_ms = best_of(lambda: replay(rec.calls), 3) * 1e3
        out[name] = {
            "windows": windows,
            "bursts": len(times),
            "burst_ms": {"p50": round(float(np.percentile(times, 50)), 1), "max": round(max(times), 1)},
            "per_window_ms": round(float(np.percentile(times, 50)) / windows, 3),
            "raw_talib_ms": round(raw_ms, 1),
            "target_ms": 20 if windows == 31 else 75,
        }
    return out
