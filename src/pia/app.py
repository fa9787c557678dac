"""The composition root: :func:`build` wires every component by constructor injection, and
:meth:`App.run` runs them in one ``asyncio.TaskGroup`` until a stop is requested, the duration
elapses, or every feed has ended.

Shutdown is orderly and bounded (``service.shutdown_timeout_seconds``, 10 s by default): feeds stop
first; then the pipeline drains stage by stage (bars -> signal workers and store; signals ->
consensus; consensus -> notifier), so every bar already received is processed and stored. A stage
that overruns its share of the timeout is cancelled. An unexpected error in any component stops the
whole process (the TaskGroup propagates it); a service manager restarts it and the durable store
loses nothing committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

import aiohttp

from pia import __version__, topics
from pia.bus import Bus, Topic
from pia.clock import Clock, LiveClock
from pia.config import FeedKind, Settings
from pia.feeds.base import Feed
from pia.feeds.runner import FeedRunner
from pia.feeds.wiring import Service, build_live
from pia.intervals import DAY
from pia.notify.console import ConsoleNotifier
from pia.signals.consensus import ConsensusActor
from pia.signals.registry import REGISTRY
from pia.signals.worker import SignalWorker
from pia.store.writer import StoreWriter

log = logging.getLogger(__name__)
SCHEDULE_WARN_DAYS = 30


class Component(Protocol):
    async def run(self) -> None: ...


@dataclass
class RunSummary:
    reason: str
    wall_seconds: float
    bars: Counter[str] = field(default_factory=Counter)
    history_bars: int = 0
    signal_sets: int = 0
    consensus_changes: int = 0
    dropped_events: int = 0
    rejected_bars: int = 0
    rows_stored: int = 0

    def line(self) -> str:
        per = " · ".join(f"{k} {v:,}" for k, v in sorted(self.bars.items(), key=lambda kv: _order(kv[0])))
        return (
            f"pia stopped ({self.reason}) after {self.wall_seconds:.1f} s: "
            f"{sum(self.bars.values()):,} bars streamed ({per or 'none'}), {self.history_bars:,} history bars, "
            f"{self.signal_sets:,} signal sets, {self.consensus_changes:,} consensus changes, "
            f"{self.rejected_bars:,} bad bars rejected, {self.dropped_events:,} events dropped, "
            f"{self.rows_stored:,} rows stored"
        )


def _order(code: str) -> int:
    from pia.intervals import parse_interval

    return parse_interval(code).nominal_ns


def make_feed(settings: Settings, clock: Clock) -> Feed:
    cfg = settings.config.feed
    instruments = settings.universe.instruments
    if cfg.kind is FeedKind.LIVE:
        raise ValueError("live feeds are built by pia.feeds.wiring once the event loop runs")
    if cfg.kind is FeedKind.SIMULATED:
        from pia.feeds.simulated import SimulatedMarket

        return SimulatedMarket(cfg.simulated, instruments, clock)
    from pia.feeds.replay import ReplayFeed

    wanted = {f.symbol for f in cfg.replay.files}
    return ReplayFeed(cfg.replay, [i for i in instruments if i.symbol in wanted], clock)


class App:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock,
        bus: Bus,
        runners: Sequence[FeedRunner],
        store: StoreWriter,
        workers: Sequence[SignalWorker],
        consensus: ConsensusActor,
        notifier: ConsoleNotifier | None,
        live: Callable[[aiohttp.ClientSession], tuple[list[FeedRunner], list[Service]]] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.bus = bus
        self.runners = tuple(runners)
        self.store = store
        self.workers = tuple(workers)
        self.consensus = consensus
        self.notifier = notifier
        self.services: tuple[Service, ...] = ()
        self._live = live
        self._stop = asyncio.Event()
        self._stop_reason = ""
        self._started_mono = 0.0

    # ------------------------------------------------------------------------------ control
    def request_stop(self, reason: str) -> None:
        if not self._stop.is_set():
            self._stop_reason = reason
            log.info("stop requested", extra={"reason": reason})
            self._stop.set()

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self._stop.is_set():
            sys.stderr.write(f"\npia: second {name}: exiting now without draining\n")
            sys.stderr.flush()
            os._exit(130)
        self.request_stop(name)

    # ------------------------------------------------------------------------------ running
    def _warn_about_schedules(self) -> None:
        """The shipped economic schedules are dated: say when one has run out or soon will (SEED-SPEC §10)."""
        from pia.signals.schedules import SCHEDULE_SIGNALS, default_schedules

        users = [n for n in self.settings.config.signals.enabled if n in SCHEDULE_SIGNALS]
        if not users:
            return
        schedules = default_schedules()
        now = datetime.fromtimestamp(self.clock.now_ns() / 1e9, UTC)
        for kind in schedules.kinds:
            left = schedules.days_left(kind, now)
            if left < 0:
                log.warning(
                    "economic schedule has run out; signals abstain on its events",
                    extra={"schedule": kind, "valid_until": str(schedules.runs_out(kind)), "signals": users},
                )
            elif left <= SCHEDULE_WARN_DAYS:
                log.warning(
                    "economic schedule runs out soon; add the publisher's next dates",
                    extra={"schedule": kind, "valid_until": str(schedules.runs_out(kind)), "days_left": left},
                )

    async def run(self, duration: float | None = None, *, handle_signals: bool = False) -> RunSummary:
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._on_signal, sig)
        self._started_mono = self.clock.monotonic()
        log.info(
            "pia starting",
            extra={
                "instruments": len(self.settings.universe.instruments),
                "timeframes": [t.label for t in self.settings.universe.timeframes],
                "feed": str(self.settings.config.feed.kind),
                "data_dir": str(self.settings.data_dir),
            },
        )
        self._warn_about_schedules()
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self._live is not None:
                    session = await stack.enter_async_context(
                        aiohttp.ClientSession(headers={"User-Agent": f"pia/{__version__}"})
                    )
                    runners, services = self._live(session)
                    self.runners = (*self.runners, *runners)
                    self.services = (*self.services, *services)
                await self._run_graph(duration)
        finally:
            if handle_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
        summary = self.summary()
        log.info("pia stopped", extra={"summary": summary.line()})
        return summary

    async def _run_graph(self, duration: float | None) -> None:
        async with asyncio.TaskGroup() as tg:
            store = tg.create_task(self.store.run(), name="store")
            workers = [tg.create_task(w.run(), name=w.name) for w in self.workers]
            consensus = tg.create_task(self.consensus.run(), name="consensus")
            notifier = [tg.create_task(self.notifier.run(), name="notifier")] if self.notifier else []
            feeds = [tg.create_task(r.run(), name=f"feed:{r.name}") for r in self.runners]
            services = [tg.create_task(s.run(), name=f"service:{s.name}") for s in self.services]
            heartbeat = tg.create_task(self._heartbeat(), name="heartbeat")
            await self._wait_for_stop(feeds, duration)
            stages: list[tuple[list[Topic[Any]], list[asyncio.Task[None]]]] = [
                (
                    [topics.bars(), topics.history(), topics.prices(), topics.fear_greed(), topics.funding()],
                    [*workers, store],
                ),
                ([topics.signals(), topics.signal_health()], [consensus]),
                ([topics.consensus()], notifier),
            ]
            await self._shutdown([*feeds, *services], stages)
            heartbeat.cancel()

    async def _wait_for_stop(self, feeds: list[asyncio.Task[None]], duration: float | None) -> None:
        async def feeds_ended() -> None:
            await asyncio.wait(feeds)
            self.request_stop("all feeds ended")

        async def timer() -> None:
            assert duration is not None
            await self.clock.sleep(duration)
            self.request_stop("duration reached")

        async with asyncio.TaskGroup() as tg:
            watchers = [tg.create_task(feeds_ended())] if feeds else []
            if duration is not None:
                watchers.append(tg.create_task(timer()))
            await self._stop.wait()
            for w in watchers:
                w.cancel()

    async def _shutdown(
        self, feeds: list[asyncio.Task[None]], stages: list[tuple[list[Topic[Any]], list[asyncio.Task[None]]]]
    ) -> None:
        budget = self.settings.config.service.shutdown_timeout_seconds
        deadline = asyncio.get_running_loop().time() + budget * 0.9
        for task in feeds:
            task.cancel()
        await asyncio.wait(feeds)
        for closing, waiting in stages:
            for topic in closing:
                self.bus.close_topic(topic)
            if not waiting:
                continue
            left = deadline - asyncio.get_running_loop().time()
            _, pending = await asyncio.wait(waiting, timeout=max(0.05, left))
            if pending:
                log.error(
                    "shutdown stage overran its time; cancelling",
                    extra={"tasks": sorted(t.get_name() for t in pending)},
                )
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending)
        self.bus.close()

    async def _heartbeat(self) -> None:
        every = self.settings.config.service.heartbeat_seconds
        while True:
            before = self.clock.monotonic()
            await self.clock.sleep(every)
            lag_ms = max(0.0, (self.clock.monotonic() - before - every) * 1000)
            log.info(
                "heartbeat",
                extra={
                    "uptime_s": round(self.clock.monotonic() - self._started_mono, 1),
                    "loop_lag_ms": round(lag_ms, 2),
                    "feeds": {r.name: r.statistics() for r in self.runners},
                    "services": {s.name: s.statistics() for s in self.services},
                    "bus": self.bus.statistics(),
                    "store": self.store.statistics(),
                },
            )

    def summary(self) -> RunSummary:
        bars: Counter[str] = Counter()
        rejected = 0
        for r in self.runners:
            bars.update(r.bars_published)
            rejected += sum(r.statistics()["dropped"].values())
        store_stats = self.store.statistics()
        return RunSummary(
            reason=self._stop_reason or "stopped",
            wall_seconds=self.clock.monotonic() - self._started_mono,
            bars=bars,
            history_bars=sum(r.history_bars for r in self.runners),
            signal_sets=sum(w.stats.evaluations for w in self.workers),
            consensus_changes=self.consensus.changes,
            dropped_events=self.bus.total_dropped(),
            rejected_bars=rejected,
            rows_stored=int(store_stats.get("rows_written", 0)),
        )


def build(settings: Settings, *, clock: Clock | None = None, console: TextIO | None = None) -> App:
    """Construct every component for ``settings``. Nothing runs until :meth:`App.run`."""
    clock = clock or LiveClock()
    cfg = settings.config
    bus = Bus(cfg.bus.queue_size)
    timeframes = settings.universe.timeframes
    # Subscribers first, so they see everything the feeds publish.
    store = StoreWriter(settings.data_dir / cfg.store.file, cfg.store, bus)
    signals = REGISTRY.resolve(cfg.signals)
    # One worker per timeframe group: intraday candles close often and must not queue behind the daily
    # and longer ones, which close together (217 windows at a weekly close).
    intraday = [t for t in timeframes if t.candle.nominal_ns < DAY]
    daily = [t for t in timeframes if t.candle.nominal_ns >= DAY]
    workers = [
        SignalWorker(
            bus,
            clock,
            group,
            signals,
            asset_classes={i.symbol: i.asset_class.value for i in settings.universe.instruments},
            max_consecutive_failures=cfg.signals.max_consecutive_failures,
            name=name,
        )
        for name, group in (("signals-intraday", intraday), ("signals-daily", daily))
        if group
    ]
    consensus = ConsensusActor(
        bus, clock, cfg.consensus, [t.label for t in timeframes], core=frozenset(s.name for s in REGISTRY if s.core)
    )
    notifier = ConsoleNotifier(bus, cfg.notifier.console, console) if cfg.notifier.console.enabled else None
    runners: list[FeedRunner] = []
    live = None
    if cfg.feed.kind is FeedKind.LIVE:

        def live(session: aiohttp.ClientSession) -> tuple[list[FeedRunner], list[Service]]:
            return build_live(settings, bus, clock, session)

    else:
        runners.append(FeedRunner(make_feed(settings, clock), bus, clock, [t.interval for t in timeframes]))
    return App(
        settings,
        clock=clock,
        bus=bus,
        runners=runners,
        store=store,
        workers=workers,
        consensus=consensus,
        notifier=notifier,
        live=live,
    )
