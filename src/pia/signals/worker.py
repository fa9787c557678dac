"""The signal worker: owns the bar windows of its timeframes and runs every signal on each closed bar.

Signals run as direct synchronous calls (no task or queue per signal); the bus carries one
``SignalsComputed`` per (symbol, timeframe) bar, with every applicable signal's vote (HOLD
included) and the bar's regime. A signal runs only for the asset classes it declares. External
inputs come from the feeds' events: the newest Fear & Greed reading per asset class and the newest
funding rate per symbol; a signal whose input has no reading yet abstains.

Each window holds the longest window any enabled signal declares (warm-up plus convergence), and
signals are evaluated from the first bar on: during warm-up they abstain on their own (their
indicators are NaN), so a timeframe with little history (``6mo``) still gets the short-lookback
signals' votes. Only signal code is wrapped in the safety net: an
exception skips that bar for that signal and is counted; after ``max_consecutive_failures`` in a
row the signal is disabled for that (symbol, timeframe) and ``SignalDisabled`` is published.
Anything else that fails is a framework bug and propagates.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pia import topics
from pia.bus import Bus
from pia.clock import Clock
from pia.events import (
    Action,
    Bar,
    BarClosed,
    FearGreedUpdated,
    FundingUpdated,
    HistoryLoaded,
    SignalDisabled,
    SignalsComputed,
    Vote,
)
from pia.instruments import Timeframe
from pia.intervals import parse_interval
from pia.signals.base import NO_INPUTS, SETTLE_BARS, Context, Inputs, tail_inputs, tail_ohlcv, window_bucket
from pia.signals.regime import detect_regime
from pia.signals.registry import ResolvedSignal
from pia.signals.window import BarWindow

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Health:
    consecutive: int = 0
    disabled: bool = False


@dataclass(slots=True)
class WorkerStats:
    bars: int = 0
    evaluations: int = 0
    out_of_order: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    disabled: list[str] = field(default_factory=list)


class SignalWorker:
    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        timeframes: Sequence[Timeframe],
        signals: Sequence[ResolvedSignal],
        *,
        asset_classes: Mapping[str, str] | None = None,
        max_consecutive_failures: int = 5,
        name: str = "signals",
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._by_interval = {tf.interval: tf for tf in timeframes}
        self._signals = tuple(signals)
        self._asset_classes = dict(asset_classes or {})
        self._by_class: dict[str, tuple[tuple[ResolvedSignal, int], ...]] = {}
        self._min_bars = max(2, min((s.warmup for s in self._signals), default=2))
        self._capacity = max((s.window for s in self._signals), default=2)
        self._needs = frozenset(i for s in self._signals for i in s.spec.inputs)
        self._fear_greed: dict[str, float] = {}
        self._funding: dict[str, float] = {}
        self._max_failures = max_consecutive_failures
        self._windows: dict[tuple[str, str], BarWindow] = {}
        self._health: dict[tuple[str, str, str], _Health] = {}
        self.stats = WorkerStats()
        self.name = name
        self._bars = bus.subscribe(topics.bars(), name)
        self._history = bus.subscribe(topics.history(), name)
        self._fg_sub = bus.subscribe(topics.fear_greed(), name) if "fear_greed" in self._needs else None
        self._funding_sub = bus.subscribe(topics.funding(), name) if "funding_rate" in self._needs else None

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._consume_history())
            tg.create_task(self._consume_bars())
            if self._fg_sub is not None:
                tg.create_task(self._consume_fear_greed())
            if self._funding_sub is not None:
                tg.create_task(self._consume_funding())

    async def _consume_fear_greed(self) -> None:
        assert self._fg_sub is not None
        async for ev in self._fg_sub:
            self.on_fear_greed(ev)

    async def _consume_funding(self) -> None:
        assert self._funding_sub is not None
        async for ev in self._funding_sub:
            self.on_funding(ev)

    def on_fear_greed(self, ev: FearGreedUpdated) -> None:
        if math.isfinite(ev.value):
            self._fear_greed[ev.asset_class] = ev.value

    def on_funding(self, ev: FundingUpdated) -> None:
        if math.isfinite(ev.funding_rate):
            self._funding[ev.symbol] = ev.funding_rate

    def window_capacity(self, tf: Timeframe) -> int:
        """The timeframe's configured window, or longer when a signal needs more bars to converge."""
        return max(tf.window, self._capacity)

    def signals_for(self, asset_class: str) -> tuple[tuple[ResolvedSignal, int], ...]:
        """The signals that apply to ``asset_class``, in order, each with the window bucket it runs on."""
        found = self._by_class.get(asset_class)
        if found is None:
            found = self._by_class[asset_class] = tuple(
                (s, window_bucket(s.window, self._capacity))
                for s in self._signals
                if not asset_class or asset_class in s.spec.asset_classes
            )
        return found

    def _inputs(self, symbol: str, asset_class: str, n: int) -> Inputs:
        if not self._needs:
            return NO_INPUTS
        fg = self._fear_greed.get(asset_class)
        rate = self._funding.get(symbol)
        return Inputs(
            fear_greed=None if fg is None else np.full(n, fg),
            funding_rate=None if rate is None else np.full(n, rate),
        )

    async def _consume_history(self) -> None:
        async for ev in self._history:
            await self.on_history(ev)
            await asyncio.sleep(0)

    async def _consume_bars(self) -> None:
        async for ev in self._bars:
            await self.on_bar(ev)
            # A queued burst (31 instruments closing together, every window at a weekly close) would
            # otherwise run in one event-loop step: yield after each window (~2 ms) so feeds, the store
            # and Telegram keep their turn.
            await asyncio.sleep(0)

    # ------------------------------------------------------------------------------------------
    def _window(self, symbol: str, tf: Timeframe) -> BarWindow:
        key = (symbol, tf.interval)
        win = self._windows.get(key)
        if win is None:
            win = self._windows[key] = BarWindow(self.window_capacity(tf))
        return win

    async def on_history(self, ev: HistoryLoaded) -> None:
        tf = self._by_interval.get(ev.interval)
        if tf is None or len(ev.bars) == 0:
            return
        win = self._window(ev.symbol, tf)
        win.load(ev.bars)
        last = ev.bars[-1]
        close_ns = parse_interval(ev.interval).next_open(int(last["open_time"]))
        await self._evaluate(ev.symbol, tf, win, close_ns, float(last["close"]))

    async def on_bar(self, ev: BarClosed) -> None:
        bar: Bar = ev.bar
        tf = self._by_interval.get(bar.interval)
        if tf is None:
            return
        win = self._window(bar.symbol, tf)
        if not win.append(bar):
            self.stats.out_of_order += 1
            return
        self.stats.bars += 1
        await self._evaluate(bar.symbol, tf, win, ev.ts_event, bar.close)

    async def _evaluate(self, symbol: str, tf: Timeframe, win: BarWindow, ts_event: int, close: float) -> None:
        if len(win) < self._min_bars:
            return
        asset_class = self._asset_classes.get(symbol, "")
        view = win.view()
        inputs = self._inputs(symbol, asset_class, len(win))
        contexts: dict[int, Context] = {}

        def context(bucket: int) -> Context:
            ctx = contexts.get(bucket)
            if ctx is None:
                n = min(bucket, len(view.close))
                ctx = contexts[bucket] = Context(tail_ohlcv(view, n), tail_inputs(inputs, n))
            return ctx

        votes = []
        for sig, bucket in self.signals_for(asset_class):
            key = (sig.name, symbol, tf.label)
            health = self._health.get(key)
            if health is None:
                health = self._health[key] = _Health()
            if health.disabled:
                continue
            try:
                out = sig.compute(context(bucket))
                action = int(out.action[-1])
                confidence = float(out.confidence[-1])
            except Exception as exc:  # the plugin boundary: signal code only
                await self._on_failure(sig.name, symbol, tf.label, health, exc)
                continue
            health.consecutive = 0
            votes.append(Vote(signal=sig.name, action=Action(action), confidence=confidence))
        self.stats.evaluations += 1
        reading = detect_regime(context(window_bucket(SETTLE_BARS + 21, self._capacity)), asset_class)
        await self._bus.publish(
            topics.signals(),
            SignalsComputed(
                ts_event=ts_event,
                ts_recv=self._clock.now_ns(),
                symbol=symbol,
                timeframe=tf.label,
                interval=tf.interval,
                close=close,
                votes=tuple(votes),
                asset_class=asset_class,
                regime=reading.regime.value,
                atr_pct=reading.atr_pct,
                ema_gap_pct=reading.ema_gap_pct,
                rsi=reading.rsi,
            ),
        )

    async def _on_failure(self, name: str, symbol: str, label: str, health: _Health, exc: Exception) -> None:
        health.consecutive += 1
        self.stats.failures[name] += 1
        log.warning(
            "signal failed; bar skipped for this signal",
            extra={"signal": name, "symbol": symbol, "tf": label, "error": repr(exc)},
        )
        if health.consecutive >= self._max_failures:
            health.disabled = True
            self.stats.disabled.append(f"{name}:{symbol}:{label}")
            now = self._clock.now_ns()
            await self._bus.publish(
                topics.signal_health(),
                SignalDisabled(
                    ts_event=now,
                    ts_recv=now,
                    signal=name,
                    symbol=symbol,
                    timeframe=label,
                    failures=health.consecutive,
                    error=repr(exc),
                ),
            )

    def statistics(self) -> dict[str, Any]:
        return {
            "bars": self.stats.bars,
            "evaluations": self.stats.evaluations,
            "out_of_order": self.stats.out_of_order,
            "failures": dict(self.stats.failures),
            "disabled": list(self.stats.disabled),
        }
