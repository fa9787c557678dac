"""The console notifier: one readable line per consensus change, and (for chosen timeframes) one line
per closed bar with its votes, so a person can watch the pipeline work.

    12:15 BTC-USD     Now   95,012.30  rsi BUY   macd ·     ema SELL
    12:15 ▲ BTC-USD  HOLD → BUY  0.67  (8 buy / 4 sell)  Now BUY · 12h SELL · 2d BUY ...
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from pia import topics
from pia.bus import Bus
from pia.config import ConsoleNotifierConfig
from pia.events import Action, ConsensusChanged, SignalsComputed
from pia.intervals import NS, iso

_MARK = {Action.BUY: "▲", Action.SELL: "▼", Action.HOLD: "■"}
_SHORT = {Action.BUY: "BUY", Action.SELL: "SELL", Action.HOLD: "·"}


def _hhmm(ts_ns: int) -> str:
    secs = ts_ns // NS
    return f"{secs // 3600 % 24:02d}:{secs // 60 % 60:02d}"


def _day(ts_ns: int) -> int:
    return ts_ns // (86400 * NS)


def format_price(price: float) -> str:
    if price >= 1000:
        return f"{price:,.2f}"
    if price >= 1:
        return f"{price:.2f}"
    return f"{price:.6f}"


def format_signals(ev: SignalsComputed) -> str:
    votes = "  ".join(f"{v.signal} {_SHORT[v.action]:<4}" for v in ev.votes)
    return f"{_hhmm(ev.ts_event)} {ev.symbol:<9} {ev.timeframe:<4} {format_price(ev.close):>12}  {votes}"


def format_consensus(ev: ConsensusChanged) -> str:
    tfs = " · ".join(f"{label} {_SHORT[action]}" for label, action in ev.detail)
    before = f"{ev.previous_action.name} {ev.previous_confidence:.2f}"
    after = f"{ev.action.name} {ev.confidence:.2f}"
    return (
        f"{_hhmm(ev.ts_event)} {_MARK[ev.action]} {ev.symbol:<9} {before:>9} → {after:<9}  "
        f"({ev.buy} buy / {ev.sell} sell)  {format_price(ev.price)}  [{tfs}]"
    )


class ConsoleNotifier:
    def __init__(self, bus: Bus, config: ConsoleNotifierConfig, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._show = set(config.show_signals)
        self._consensus = bus.subscribe(topics.consensus(), "console")
        self._signals = bus.subscribe(topics.signals(), "console") if self._show else None
        self.lines = 0
        self._last_day: int | None = None

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._consume_consensus())
            if self._signals is not None:
                tg.create_task(self._consume_signals())

    async def _consume_consensus(self) -> None:
        async for ev in self._consensus:
            self._write(ev.ts_event, format_consensus(ev))

    async def _consume_signals(self) -> None:
        assert self._signals is not None
        async for ev in self._signals:
            if ev.timeframe in self._show:
                self._write(ev.ts_event, format_signals(ev))

    def _write(self, ts_ns: int, line: str) -> None:
        day = _day(ts_ns)
        if day != self._last_day:
            self._last_day = day
            self._out.write(f"── {iso(ts_ns)[:10]} (UTC) ──\n")
        self._out.write(line + "\n")
        self._out.flush()
        self.lines += 1
