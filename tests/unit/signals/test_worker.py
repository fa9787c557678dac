from __future__ import annotations

import numpy as np

from pia import topics
from pia.bus import Bus
from pia.clock import FakeClock
from pia.config import SignalsConfig
from pia.events import BAR_DTYPE, Action, Bar, BarClosed, HistoryLoaded
from pia.instruments import Timeframe
from pia.intervals import MINUTE
from pia.signals.base import Context, Params, SignalOutput, SignalSpec
from pia.signals.registry import REGISTRY, ResolvedSignal
from pia.signals.worker import SignalWorker

TF = Timeframe(label="Now", interval="15m", window=100)
STEP = 15 * MINUTE


class Boom(Params):
    pass


def exploding(c: Context, p: Params) -> SignalOutput:
    raise ZeroDivisionError("bad maths")


BOOM = ResolvedSignal(SignalSpec("boom", "test", Boom, exploding, lambda p: 1, "always fails"), Boom())


def history(n: int) -> np.ndarray:
    arr = np.zeros(n, dtype=BAR_DTYPE)
    arr["open_time"] = np.arange(n) * STEP
    arr["close"] = arr["open"] = 100 + np.sin(np.arange(n) / 5) * 10
    arr["high"] = arr["close"] + 1
    arr["low"] = arr["close"] - 1
    arr["volume"] = 1
    return arr


def bar_event(i: int, close: float = 100.0) -> BarClosed:
    b = Bar(
        symbol="X",
        interval="15m",
        open_time=i * STEP,
        open=close,
        high=close + 1,
        low=close - 1,
        close=close,
        volume=1.0,
    )
    return BarClosed(ts_event=(i + 1) * STEP, ts_recv=0, bar=b, source="test")


async def test_failing_signal_is_skipped_counted_then_disabled_others_unaffected() -> None:
    bus = Bus(1000)
    signals = (*REGISTRY.resolve(SignalsConfig()), BOOM)
    worker = SignalWorker(bus, FakeClock(), [TF], signals, max_consecutive_failures=3)
    out = bus.subscribe(topics.signals(), "test")
    health = bus.subscribe(topics.signal_health(), "test")
    await worker.on_history(
        HistoryLoaded(ts_event=0, ts_recv=0, symbol="X", interval="15m", bars=history(60), source="t")
    )
    for i in range(60, 65):
        await worker.on_bar(bar_event(i))
    computed = [out.receive_nowait() for _ in range(out.depth)]
    assert len(computed) == 6
    for ev in computed:
        assert ev is not None and [v.signal for v in ev.votes] == ["rsi", "macd", "ema"]
    assert worker.stats.failures["boom"] == 3
    disabled = health.receive_nowait()
    assert disabled is not None and disabled.signal == "boom" and disabled.failures == 3
    assert "ZeroDivisionError" in disabled.error
    assert worker.statistics()["disabled"] == ["boom:X:Now"]


async def test_duplicate_and_old_bars_do_not_recompute() -> None:
    bus = Bus(1000)
    worker = SignalWorker(bus, FakeClock(), [TF], REGISTRY.resolve(SignalsConfig()))
    out = bus.subscribe(topics.signals(), "test")
    await worker.on_history(
        HistoryLoaded(ts_event=0, ts_recv=0, symbol="X", interval="15m", bars=history(60), source="t")
    )
    await worker.on_bar(bar_event(59))  # already in history
    await worker.on_bar(bar_event(60, close=130.0))
    await worker.on_bar(bar_event(60, close=130.0))
    assert out.depth == 2  # one from history, one from bar 60
    assert worker.stats.out_of_order == 2
    out.receive_nowait()
    ev = out.receive_nowait()
    assert ev is not None and ev.close == 130.0 and ev.ts_event == 61 * STEP
    assert {v.signal: v.action for v in ev.votes}["rsi"] is Action.SELL  # a jump from ~100 to 130


async def test_too_short_history_waits_for_warmup() -> None:
    bus = Bus(1000)
    worker = SignalWorker(bus, FakeClock(), [TF], REGISTRY.resolve(SignalsConfig()))
    out = bus.subscribe(topics.signals(), "test")
    await worker.on_history(
        HistoryLoaded(ts_event=0, ts_recv=0, symbol="X", interval="15m", bars=history(30), source="t")
    )
    for i in range(30, 34):
        await worker.on_bar(bar_event(i))
    assert out.depth == 0  # macd needs 35 bars
    await worker.on_bar(bar_event(34))
    assert out.depth == 1
