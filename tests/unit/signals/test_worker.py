from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np

from pia import topics
from pia.bus import Bus
from pia.clock import FakeClock
from pia.config import SignalsConfig
from pia.events import BAR_DTYPE, Action, Bar, BarClosed, FearGreedUpdated, FundingUpdated, HistoryLoaded
from pia.instruments import Timeframe
from pia.intervals import MINUTE
from pia.signals.base import Context, Params, SignalOutput, SignalSpec, from_masks, hold
from pia.signals.registry import REGISTRY, ResolvedSignal
from pia.signals.worker import SignalWorker

TF = Timeframe(label="Now", interval="15m", window=100)
THREE = SignalsConfig(enabled=("rsi", "macd", "ema"))
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
    signals = (*REGISTRY.resolve(THREE), BOOM)
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
    worker = SignalWorker(bus, FakeClock(), [TF], REGISTRY.resolve(THREE))
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


async def test_votes_start_at_the_shortest_warmup_and_longer_signals_abstain_until_theirs() -> None:
    bus = Bus(1000)
    worker = SignalWorker(bus, FakeClock(), [TF], REGISTRY.resolve(THREE))
    out = bus.subscribe(topics.signals(), "test")
    await worker.on_history(
        HistoryLoaded(ts_event=0, ts_recv=0, symbol="X", interval="15m", bars=history(14), source="t")
    )
    assert out.depth == 0  # rsi, the shortest, needs 15 bars
    await worker.on_bar(bar_event(14, close=140.0))  # a jump: RSI far above 70
    ev = out.receive_nowait()
    assert ev is not None and len(ev.votes) == 3
    votes = {v.signal: v.action for v in ev.votes}
    assert votes == {"rsi": Action.SELL, "macd": Action.HOLD, "ema": Action.HOLD}  # macd needs 35, ema 21


class Level(Params):
    pass


def contrarian_fg(c: Context, p: Params) -> SignalOutput:
    fg = c.inputs.fear_greed
    if fg is None:
        return hold(c.n)
    return from_masks(fg <= 20, fg >= 80, 1.0)


def funding_sign(c: Context, p: Params) -> SignalOutput:
    rate = c.inputs.funding_rate
    if rate is None:
        return hold(c.n)
    return from_masks(rate < 0, rate > 0, 1.0)


FG = ResolvedSignal(SignalSpec("fg", "core", Level, contrarian_fg, lambda p: 1, "F&G", inputs=("fear_greed",)), Level())
FUND = ResolvedSignal(
    SignalSpec(
        "fund", "core", Level, funding_sign, lambda p: 1, "funding", inputs=("funding_rate",),
        asset_classes=frozenset({"crypto"}),
    ),
    Level(),
)  # fmt: skip


async def test_inputs_come_from_feed_events_and_signals_run_only_for_their_asset_classes() -> None:
    bus = Bus(1000)
    worker = SignalWorker(bus, FakeClock(), [TF], [FG, FUND], asset_classes={"X": "crypto", "S": "stocks"})
    out = bus.subscribe(topics.signals(), "test")
    hist = history(40)
    for sym in ("X", "S"):
        await worker.on_history(HistoryLoaded(ts_event=0, ts_recv=0, symbol=sym, interval="15m", bars=hist, source="t"))
    first = {ev.symbol: ev for ev in (out.receive_nowait(), out.receive_nowait()) if ev is not None}
    # no readings yet: both abstain; the stock has no funding signal at all
    assert [(v.signal, v.action) for v in first["X"].votes] == [("fg", Action.HOLD), ("fund", Action.HOLD)]
    assert [(v.signal, v.action) for v in first["S"].votes] == [("fg", Action.HOLD)]
    assert first["X"].asset_class == "crypto" and first["S"].asset_class == "stocks"
    worker.on_fear_greed(FearGreedUpdated(ts_event=0, ts_recv=0, asset_class="crypto", value=12.0,
                                          classification="Extreme Fear", source="t"))  # fmt: skip
    worker.on_fear_greed(FearGreedUpdated(ts_event=0, ts_recv=0, asset_class="stocks", value=85.0,
                                          classification="Extreme Greed", source="t"))  # fmt: skip
    worker.on_funding(FundingUpdated(ts_event=0, ts_recv=0, symbol="X", funding_rate=0.0005, mark_price=1.0,
                                     next_funding_time=0))  # fmt: skip
    worker.on_funding(FundingUpdated(ts_event=0, ts_recv=0, symbol="X", funding_rate=float("nan"), mark_price=1.0,
                                     next_funding_time=0))  # fmt: skip  # a NaN reading is ignored
    for sym in ("X", "S"):
        b = bar_event(40)
        await worker.on_bar(BarClosed(ts_event=b.ts_event, ts_recv=0, bar=replace(b.bar, symbol=sym), source="t"))
    second = {ev.symbol: ev for ev in (out.receive_nowait(), out.receive_nowait()) if ev is not None}
    assert [(v.signal, v.action) for v in second["X"].votes] == [("fg", Action.BUY), ("fund", Action.SELL)]
    assert [(v.signal, v.action) for v in second["S"].votes] == [("fg", Action.SELL)]


async def test_signals_computed_carries_the_regime_of_the_bar() -> None:
    bus = Bus(1000)
    worker = SignalWorker(bus, FakeClock(), [TF], REGISTRY.resolve(THREE), asset_classes={"X": "crypto"})
    out = bus.subscribe(topics.signals(), "test")
    climb = history(60)
    climb["close"] = climb["open"] = np.linspace(100, 140, 60)
    climb["high"] = climb["close"] * 1.002
    climb["low"] = climb["close"] * 0.998
    await worker.on_history(HistoryLoaded(ts_event=0, ts_recv=0, symbol="X", interval="15m", bars=climb, source="t"))
    ev = out.receive_nowait()
    assert ev is not None
    assert ev.regime == "trending_up"
    assert ev.rsi > 45 and ev.ema_gap_pct > 1.0 and 0 < ev.atr_pct < 4.0


async def test_window_holds_the_longest_signal_window() -> None:
    worker = SignalWorker(Bus(10), FakeClock(), [TF], REGISTRY.resolve(THREE))
    assert TF.window == 100
    assert worker.window_capacity(TF) == max(s.window for s in REGISTRY.resolve(THREE))


async def test_a_burst_of_bars_yields_to_the_event_loop_after_each_window() -> None:
    """31 instruments closing together must not hold the loop for 31 evaluations: between two
    evaluations another task gets a turn."""
    bus = Bus(1000)
    worker = SignalWorker(bus, FakeClock(0), [TF], REGISTRY.resolve(THREE))
    out = bus.subscribe(topics.signals(), "test")
    for i in range(40):
        await bus.publish(topics.bars(), bar_event(i, 100 + i % 7))
    seen: list[int] = []

    async def ticker() -> None:
        while worker.stats.bars < 40:
            seen.append(worker.stats.bars)
            await asyncio.sleep(0)

    async with asyncio.TaskGroup() as tg:
        tick = tg.create_task(ticker())
        run = tg.create_task(worker._consume_bars())
        await tick  # ends once the worker has taken all 40 bars
        run.cancel()
    assert out.depth == worker.stats.evaluations > 20
    assert len(set(seen)) >= 39, f"the other task ran only {len(seen)} times during 40 windows"
    steps = np.diff(seen)
    assert steps.max() <= 1, f"{steps.max()} windows evaluated in one event-loop step"
