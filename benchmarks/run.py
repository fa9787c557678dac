"""`make bench`: measure pia's hot paths, each beside its limit measured in the same run.

Writes a JSON report to benchmarks/reports/latest.json (and prints a summary). Never asserts on
time: it reports figures and ratios. Run on an otherwise idle machine for stable numbers.
"""

from __future__ import annotations

import asyncio
import json
import platform
import sys
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.signals import bench_signals_burst, bench_signals_history, bench_signals_live
from pia import __version__, topics
from pia.bus import Bus
from pia.clock import LiveClock
from pia.config import ConsensusConfig, SignalsConfig, StoreConfig
from pia.events import BAR_DTYPE, Bar, BarClosed, PriceUpdated
from pia.feeds.aggregate import BarAggregator, aggregate
from pia.feeds.base import BarArray, array_to_bars
from pia.feeds.runner import FeedRunner
from pia.instruments import AssetClass, Instrument, Timeframe, Venue
from pia.intervals import MINUTE
from pia.signals.consensus import ConsensusActor
from pia.signals.registry import REGISTRY
from pia.signals.worker import SignalWorker
from pia.testing.feeds import ArrayFeed

REPORT = Path(__file__).parent / "reports" / "latest.json"
T0 = 1_735_689_600 * 1_000_000_000  # 2025-01-01


def random_bars(n: int, seed: int, start: int = T0, step: int = MINUTE) -> BarArray:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.standard_t(4, n) * 0.001))
    opn = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 0.0005, n)) * close
    arr = np.empty(n, dtype=BAR_DTYPE)
    arr["open_time"] = start + np.arange(n, dtype=np.int64) * step
    arr["open"], arr["close"] = opn, close
    arr["high"] = np.maximum(opn, close) + spread
    arr["low"] = np.minimum(opn, close) - spread
    arr["volume"] = rng.lognormal(3, 1, n)
    return arr


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples), q))


def timeit(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t) / 1000)
    return out


# ------------------------------------------------------------------------------------------------
def bench_bus() -> dict[str, Any]:
    """Events/s through the bus to one subscriber, vs a bare deque append+popleft (the limit)."""
    n = 200_000
    ev = PriceUpdated(ts_event=0, ts_recv=0, symbol="X", price=1.0)

    async def drop_topic() -> float:
        bus = Bus(n + 1)
        sub = bus.subscribe(topics.prices(), "bench")
        t = time.perf_counter()
        for _ in range(n):
            bus.publish_nowait(topics.prices(), ev)
            sub.receive_nowait()
        return n / (time.perf_counter() - t)

    async def block_topic() -> float:
        bus = Bus(1024)
        sub = bus.subscribe(topics.bars(), "bench")
        bar = BarClosed(
            ts_event=0,
            ts_recv=0,
            source="b",
            bar=Bar(symbol="X", interval="1m", open_time=0, open=1, high=1, low=1, close=1, volume=1),
        )

        async def consume() -> None:
            async for _ in sub:
                pass

        task = asyncio.create_task(consume())
        t = time.perf_counter()
        for _ in range(n):
            await bus.publish(topics.bars(), bar)
        bus.close()
        await task
        return n / (time.perf_counter() - t)

    q: deque[object] = deque()
    t = time.perf_counter()
    for _ in range(n):
        q.append(ev)
        q.popleft()
    limit = n / (time.perf_counter() - t)
    drop = asyncio.run(drop_topic())
    block = asyncio.run(block_topic())
    return {
        "events": n,
        "drop_oldest_publish_receive_per_s": drop,
        "back_pressure_with_consumer_task_per_s": block,
        "raw_deque_per_s": limit,
        "ratio_raw_over_drop": limit / drop,
    }


def bench_aggregate() -> dict[str, Any]:
    """1m -> 15m..1w: vectorised and streaming throughput in 1m bars/s."""
    base = random_bars(525_600, 2)  # one year of minutes
    targets = ["15m", "1h", "4h", "1d", "3d", "1w"]
    t = time.perf_counter()
    for tgt in targets:
        aggregate(base, tgt)
    vec = len(base) / (time.perf_counter() - t)
    bars = array_to_bars("X", "1m", base[:100_000])
    agg = BarAggregator("X", "1m", targets)
    t = time.perf_counter()
    for b in bars:
        agg.add(b)
    stream = len(bars) / (time.perf_counter() - t)
    return {"vectorised_1m_bars_per_s_all_targets": vec, "streaming_1m_bars_per_s_all_targets": stream}


def bench_replay_pipeline() -> dict[str, Any]:
    """1-minute bars end to end: feed runner (guard, aggregation) -> bus -> signal worker (7 timeframes,
    all 25 signals) -> consensus, for 31 instruments. Target >= 10,000 one-minute bars/s."""
    symbols = [f"S{i:02d}" for i in range(31)]
    instruments = [
        Instrument(symbol=s, asset_class=AssetClass.CRYPTO, venue=Venue.BINANCE_SPOT, venue_symbol=s, name=s)
        for s in symbols
    ]
    minutes = 3 * 1440
    data = {s: random_bars(minutes, i) for i, s in enumerate(symbols)}
    tfs = [
        Timeframe(label=lbl, interval=iv)
        for lbl, iv in [
            ("Now", "15m"),
            ("12h", "1h"),
            ("2d", "4h"),
            ("7d", "1d"),
            ("1mo", "3d"),
            ("3mo", "1w"),
            ("6mo", "1M"),
        ]
    ]
    history = {}
    for i, s in enumerate(symbols):
        for tf in tfs:
            step = tf.candle.nominal_ns
            history[(s, tf.interval)] = random_bars(800, 100 + i, start=tf.candle.floor(T0) - 800 * step, step=step)

    async def run() -> tuple[float, int, int]:
        clock = LiveClock()
        bus = Bus(8192)
        signals = REGISTRY.resolve(SignalsConfig())
        worker = SignalWorker(bus, clock, tfs, signals, asset_classes=dict.fromkeys(symbols, "crypto"))
        core = frozenset(s.name for s in signals if s.spec.core)
        consensus = ConsensusActor(bus, clock, ConsensusConfig(), [t.label for t in tfs], core=core)
        runner = FeedRunner(ArrayFeed(instruments, data, history=history), bus, clock, [t.interval for t in tfs])
        t = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            w = tg.create_task(worker.run())
            c = tg.create_task(consensus.run())
            await runner.run()
            for topic in (topics.bars(), topics.history(), topics.prices(), topics.fear_greed(), topics.funding()):
                bus.close_topic(topic)
            await w
            bus.close_topic(topics.signals())
            await c
        bus.close()
        return time.perf_counter() - t, worker.stats.evaluations, consensus.changes

    elapsed, evaluations, changes = asyncio.run(run())
    total = minutes * len(symbols)
    return {
        "instruments": len(symbols),
        "one_minute_bars": total,
        "signal_sets": evaluations,
        "consensus_changes": changes,
        "seconds": elapsed,
        "one_minute_bars_per_s": total / elapsed,
        "target_per_s": 10_000,
    }


def bench_binance_ws() -> dict[str, Any]:
    """Binance combined-stream kline frames: parsed and published as BarClosed per second, and the added
    latency from frame received to BarClosed on the bus (p50/p99), beside the raw orjson.loads limit."""
    import orjson

    from pia.feeds.binance_wire import KlineParser, kline_event, stream_name

    n = 50_000
    arr = random_bars(n, 7, step=15 * MINUTE)
    frames = []
    for r in arr:
        row = (
            int(r["open_time"]),
            float(r["open"]),
            float(r["high"]),
            float(r["low"]),
            float(r["close"]),
            float(r["volume"]),
        )
        ev = kline_event("BTCUSDT", "15m", row, closed=True, event_ms=int(r["open_time"]) // 1_000_000 + 900_000)
        frames.append(orjson.dumps({"stream": stream_name("BTCUSDT", "15m"), "data": ev}))
    raw = timeit_each(frames, orjson.loads)
    inst = Instrument(
        symbol="BTC-USD",
        asset_class=AssetClass.CRYPTO,
        venue=Venue.BINANCE_SPOT,
        venue_symbol="BTCUSDT",
        name="Bitcoin",
    )

    class _Feed:
        name = "binance_spot"
        base_interval = None
        instruments = (inst,)

    async def run() -> tuple[list[float], float]:
        bus = Bus(n + 1)
        sub = bus.subscribe(topics.bars(), "bench", maxsize=n + 1)
        runner = FeedRunner(_Feed(), bus, LiveClock(), ["15m"], venue_anchored=True)  # type: ignore[arg-type]
        parser = KlineParser({"BTCUSDT": "BTC-USD"}, ["15m"])
        lat: list[float] = []
        t0 = time.perf_counter()
        for f in frames:
            t = time.perf_counter_ns()
            bar = parser.parse(f)
            assert bar is not None
            await runner.on_bar(bar)
            lat.append((time.perf_counter_ns() - t) / 1000)
        elapsed = time.perf_counter() - t0
        assert sub.depth == n
        return lat, elapsed

    lat, elapsed = asyncio.run(run())
    return {
        "frames": n,
        "parsed_and_published_per_s": n / elapsed,
        "frame_to_bus_us": {"p50": pct(lat, 50), "p99": pct(lat, 99)},
        "raw_orjson_loads_us": {"p50": pct(raw, 50), "p99": pct(raw, 99)},
        "raw_orjson_loads_per_s": 1e6 / (sum(raw) / len(raw)),
    }


def timeit_each(items: list[bytes], fn: Callable[[bytes], object]) -> list[float]:
    out = []
    for item in items:
        t = time.perf_counter_ns()
        fn(item)
        out.append((time.perf_counter_ns() - t) / 1000)
    return out


def bench_store() -> dict[str, Any]:
    """Store writer: rows/s for closed bars through the bus into SQLite (WAL, synchronous=NORMAL)."""
    import tempfile

    from pia.store.writer import StoreWriter

    n = 100_000
    bars = array_to_bars("X", "1m", random_bars(n, 3))

    async def run(path: Path) -> tuple[float, dict[str, Any]]:
        bus = Bus(8192)
        writer = StoreWriter(path, StoreConfig(), bus)
        t = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(writer.run())
            for b in bars:
                await bus.publish(topics.bars(), BarClosed(ts_event=0, ts_recv=0, bar=b, source="bench"))
            bus.close()
            await task
        return time.perf_counter() - t, writer.statistics()

    with tempfile.TemporaryDirectory() as tmp:
        elapsed, stats = asyncio.run(run(Path(tmp) / "bench.sqlite3"))
    return {"rows": n, "rows_per_s": n / elapsed, "writer": stats}


def main() -> int:
    results: dict[str, Any] = {
        "pia": __version__,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": __import__("os").cpu_count(),
    }
    only = set(sys.argv[1:])
    for name, fn in [
        ("signals_live", bench_signals_live),
        ("signals_history", bench_signals_history),
        ("signals_burst", bench_signals_burst),
        ("bus", bench_bus),
        ("aggregate", bench_aggregate),
        ("replay_pipeline", bench_replay_pipeline),
        ("binance_ws", bench_binance_ws),
        ("store", bench_store),
    ]:
        if only and name not in only:
            continue
        sys.stderr.write(f"bench: {name} ...\n")
        t = time.perf_counter()
        results[name] = fn()
        results[name]["bench_seconds"] = round(time.perf_counter() - t, 2)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(results, indent=2, default=float) + "\n")
    s = results
    if "signals_live" in s:
        lv = s["signals_live"]
        print(
            f"signals live ({lv['signals']} signals, window {lv['window']}): bar -> SignalsComputed p50 "
            f"{lv['bar_to_signals_us']['p50']:.0f} us, p99 {lv['bar_to_signals_us']['p99']:.0f} us (target p99 "
            f"{lv['target_p99_us']} us); -> consensus p99 {lv['bar_to_consensus_us']['p99']:.0f} us; raw TA-Lib calls "
            f"p50 {lv['raw_talib_us']['p50']:.0f} us ({lv['ratio_p50_vs_raw']:.2f}x)"
        )
    if "signals_history" in s:
        h = s["signals_history"]
        print(
            f"signals history: {h['bars']:,} bars x {len(h['signals'])} signals in {h['ours_s']:.2f} s "
            f"({h['ours_bars_per_s']:,} bars/s); raw TA-Lib calls {h['raw_talib_s']:.2f} s "
            f"({h['ratio_vs_raw']:.2f}x, target {h['target_ratio_vs_raw']}x); ta (pandas) "
            f"{h['ta_pandas']['speedup']:.0f}x slower (target {h['ta_pandas']['target_speedup']}x)"
        )
    if "signals_burst" in s:
        for key, b in s["signals_burst"].items():
            if not isinstance(b, dict):
                continue
            print(
                f"signals burst {key}: {b['windows']} windows -> consensus p50 {b['burst_ms']['p50']:.1f} ms "
                f"({b['per_window_ms']:.2f} ms a window; target {b['target_ms']} ms); raw TA-Lib calls "
                f"{b['raw_talib_ms']:.1f} ms"
            )
    if "bus" in s:
        print(
            f"bus {s['bus']['drop_oldest_publish_receive_per_s']:,.0f} ev/s drop-oldest, "
            f"{s['bus']['back_pressure_with_consumer_task_per_s']:,.0f} ev/s back-pressure "
            f"(raw deque {s['bus']['raw_deque_per_s']:,.0f}/s)"
        )
    if "replay_pipeline" in s:
        print(
            f"replay pipeline {s['replay_pipeline']['one_minute_bars_per_s']:,.0f} one-minute bars/s "
            f"(target {s['replay_pipeline']['target_per_s']:,})"
        )
    if "binance_ws" in s:
        ws = s["binance_ws"]
        print(
            f"binance ws {ws['parsed_and_published_per_s']:,.0f} klines/s parsed+published; frame->bus p50 "
            f"{ws['frame_to_bus_us']['p50']:.1f} us p99 {ws['frame_to_bus_us']['p99']:.1f} us "
            f"(raw orjson.loads p50 {ws['raw_orjson_loads_us']['p50']:.2f} us)"
        )
    if "store" in s:
        print(f"store {s['store']['rows_per_s']:,.0f} rows/s")
    print(f"report: {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
