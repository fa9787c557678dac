"""``pia backfill``: fetch closed candles for chosen instruments, timeframes and dates into the store.

Work is split per (instrument, interval) into chunks of ``chunk_bars`` candles; each chunk is
committed on its own, so an interrupted run loses at most one chunk and the next run resumes after
the newest stored candle in the range (resumable). Rows are inserted with ``INSERT OR IGNORE`` on the
(symbol, interval, open_time) key, so running it twice changes nothing (idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from tqdm import tqdm

from pia.clock import Clock
from pia.config import Settings
from pia.feeds.live import KlineSource, LiveFeed
from pia.intervals import iso, parse_interval
from pia.store.bars import array_rows, insert_bars, last_open_time
from pia.store.db import open_db, store_path, transaction

log = logging.getLogger(__name__)


@dataclass
class BackfillReport:
    fetched: dict[str, int] = field(default_factory=dict)  # "SYMBOL interval" -> candles received
    inserted: dict[str, int] = field(default_factory=dict)  # -> new rows stored
    resumed_from: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # instruments with no configured source

    def line(self) -> str:
        return (
            f"backfill done: {sum(self.fetched.values()):,} candles fetched, {sum(self.inserted.values()):,} new rows "
            f"stored for {len(self.fetched)} (instrument, interval) pairs"
            + (f"; no source for {', '.join(self.skipped)}" if self.skipped else "")
        )


def venue_feeds(settings: Settings, session: aiohttp.ClientSession, clock: Clock) -> list[LiveFeed]:
    """The live venue feeds (their REST sources are what backfill uses)."""
    from pia.feeds.alpaca import build_alpaca_feed
    from pia.feeds.binance import build_binance_feeds

    live = settings.config.feed.live
    instruments = settings.universe.instruments
    intervals = [t.interval for t in settings.universe.timeframes]
    feeds: list[LiveFeed] = []
    if live.binance.enabled:
        feeds += build_binance_feeds(live, instruments, intervals, session, clock)
    if live.alpaca.enabled:
        alpaca = build_alpaca_feed(live, settings.secrets, instruments, intervals, session, clock)
        if alpaca is not None:
            feeds.append(alpaca)
    return feeds


async def backfill(
    settings: Settings,
    *,
    symbols: Sequence[str],
    intervals: Sequence[str],
    start_ns: int,
    end_ns: int,
    clock: Clock,
    chunk_bars: int = 1000,
    progress: bool = True,
) -> BackfillReport:
    report = BackfillReport()
    conn = open_db(store_path(settings.data_dir, settings.config.store), settings.config.store)
    try:
        async with aiohttp.ClientSession() as session:
            sources: dict[str, KlineSource] = {}
            for feed in venue_feeds(settings, session, clock):
                for inst in feed.instruments:
                    sources[inst.symbol] = feed.source
            report.skipped = [s for s in symbols if s not in sources]
            plan = [(s, iv) for s in symbols if s in sources for iv in intervals]
            total = sum(_expected(iv, start_ns, end_ns) for _, iv in plan)
            with tqdm(total=total, unit="bar", disable=not progress, desc="backfill", dynamic_ncols=True) as bar:
                for symbol, iv in plan:
                    await _one(conn, sources[symbol], symbol, iv, start_ns, end_ns, chunk_bars, report, bar)
    finally:
        conn.close()
    return report


def _tick(bar: tqdm[Any], n: int) -> None:
    left = int(bar.total or 0) - int(bar.n)
    bar.update(max(0, min(n, left)))


def _expected(interval: str, start_ns: int, end_ns: int) -> int:
    return max(0, (end_ns - start_ns) // parse_interval(interval).nominal_ns)


async def _one(
    conn: Any,
    source: KlineSource,
    symbol: str,
    interval: str,
    start_ns: int,
    end_ns: int,
    chunk_bars: int,
    report: BackfillReport,
    bar: tqdm[Any],
) -> None:
    key = f"{symbol} {interval}"
    iv = parse_interval(interval)
    cursor = iv.floor(start_ns)
    stored = last_open_time(conn, symbol, interval)
    if stored is not None and cursor <= stored < end_ns:
        cursor = iv.next_open(stored)
        report.resumed_from[key] = iso(cursor)
        _tick(bar, _expected(interval, start_ns, cursor))
    report.fetched.setdefault(key, 0)
    report.inserted.setdefault(key, 0)
    while cursor < end_ns:
        chunk_end = min(end_ns, cursor + chunk_bars * iv.nominal_ns)
        bars = await source.fetch(symbol, interval, start_ns=cursor, end_ns=chunk_end, limit=chunk_bars)
        bars = bars[(bars["open_time"] >= cursor) & (bars["open_time"] < chunk_end)]
        with transaction(conn):
            added = insert_bars(conn, array_rows(symbol, interval, bars, source.name))
        report.fetched[key] += len(bars)
        report.inserted[key] += added
        _tick(bar, _expected(interval, cursor, chunk_end))
        cursor = chunk_end
    log.info(
        "backfilled",
        extra={
            "symbol": symbol,
            "interval": interval,
            "fetched": report.fetched[key],
            "inserted": report.inserted[key],
        },
    )
