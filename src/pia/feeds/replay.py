"""The replay feed: recorded OHLCV files streamed back as closed bars, paced on the injected clock.

Every file holds one instrument's bars of one base interval (usually 1m; all files share it) and the
:class:`~pia.feeds.runner.FeedRunner` aggregates them to the configured timeframes. Several files may
name the same symbol (e.g. one file per day): their bars are merged, the first file winning a tie.
Files are read and validated off the event loop (:func:`~pia.feeds.ohlcv_files.load_ohlcv`); the stream
merges all symbols in time order (by open time, then symbol) and, at ``speed`` replayed seconds per
wall second, publishes each bar when its close is due relative to the first bar's close. ``speed = 0``
replays as fast as the consumer takes bars, yielding to the loop every :data:`YIELD_EVERY` bars.
History is empty: replay warms windows by streaming.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pia.clock import Clock
from pia.config import ReplayFeedConfig
from pia.errors import ConfigError
from pia.events import BAR_DTYPE, Bar
from pia.feeds.base import BarArray, History, empty_bars
from pia.feeds.ohlcv_files import DUPLICATE_TIME, LoadedFile, load_ohlcv
from pia.instruments import Instrument
from pia.intervals import NS, Interval, iso, parse_interval

log = logging.getLogger(__name__)

YIELD_EVERY = 100
"""Without a real sleep for this many bars, the stream still yields to the event loop once."""
_CHUNK = 4096  # bars converted to Python objects at a time


@dataclass(frozen=True, slots=True)
class ReplayStatistics:
    yielded: Mapping[str, int]
    """Bars yielded so far, per symbol (over every :meth:`ReplayFeed.stream` call)."""
    bars: Mapping[str, int]
    """Valid bars loaded per symbol (after merging that symbol's files)."""
    rows: Mapping[str, int]
    """Rows read per file (by path)."""
    dropped: Mapping[str, Mapping[str, int]]
    """Rows dropped per file (by path), per reason (see :mod:`pia.feeds.ohlcv_files`)."""


@dataclass(frozen=True, slots=True)
class _Timeline:
    """Every bar of every symbol in stream order (open_time, then symbol)."""

    symbols: tuple[str, ...]
    symbol_idx: npt.NDArray[np.intp]
    bars: BarArray


class ReplayFeed:
    """Streams the configured files' bars (see the module docstring)."""

    name = "replay"

    def __init__(self, config: ReplayFeedConfig, instruments: Sequence[Instrument], clock: Clock) -> None:
        if not config.files:
            raise ConfigError("feed.replay.files: no files to replay")
        intervals = sorted({f.interval for f in config.files})
        if len(intervals) > 1:
            raise ConfigError(
                f"feed.replay.files: all files must have the same interval (the stream's base interval), "
                f"found {', '.join(intervals)}"
            )
        known = {i.symbol for i in instruments}
        for n, f in enumerate(config.files):
            if f.symbol not in known:
                raise ConfigError(f"feed.replay.files.{n}.symbol: unknown instrument {f.symbol!r} ({f.path})")
        self._config = config
        self._clock = clock
        self._interval: Interval = parse_interval(intervals[0])
        self.base_interval: str | None = intervals[0]
        self.instruments: tuple[Instrument, ...] = tuple(instruments)
        with_files = {f.symbol for f in config.files}
        self._symbols = tuple(i.symbol for i in self.instruments if i.symbol in with_files)
        self._lock = asyncio.Lock()
        self._timeline: _Timeline | None = None
        self._files: list[LoadedFile] = []
        self._file_dropped: dict[str, dict[str, int]] = {}
        self._per_symbol: dict[str, int] = {}
        self._yielded: Counter[str] = Counter()

    # ------------------------------------------------------------------------------------ loading
    async def load(self) -> None:
        """Read and validate every file (once, in a worker thread). Raises :class:`ConfigError`."""
        async with self._lock:
            if self._timeline is None:
                self._timeline = await asyncio.to_thread(self._load_all)

    def _load_all(self) -> _Timeline:
        files = [load_ohlcv(f.path, f.format, interval=f.interval) for f in self._config.files]
        dropped = {str(lf.path): dict(lf.dropped) for lf in files}
        per_symbol: dict[str, BarArray] = {}
        for symbol in self._symbols:
            mine = [lf for lf, f in zip(files, self._config.files, strict=True) if f.symbol == symbol]
            per_symbol[symbol] = self._merge_symbol(mine, dropped)
        for lf in files:
            info = {"path": str(lf.path), "rows": lf.rows, "bars": len(lf.bars), "dropped": dropped[str(lf.path)]}
            log.log(logging.INFO if len(lf.bars) else logging.WARNING, "replay file loaded", extra=info)
        self._files = files
        self._file_dropped = dropped
        self._per_symbol = {s: len(a) for s, a in per_symbol.items()}
        return _build_timeline(per_symbol)

    @staticmethod
    def _merge_symbol(mine: list[LoadedFile], dropped: dict[str, dict[str, int]]) -> BarArray:
        """One symbol's bars from its files, sorted; a time already seen in an earlier file is dropped."""
        if len(mine) == 1:
            return mine[0].bars
        arr = np.concatenate([lf.bars for lf in mine])
        src = np.repeat(np.arange(len(mine)), [len(lf.bars) for lf in mine])
        order = np.argsort(arr["open_time"], kind="stable")
        arr, src = arr[order], src[order]
        dup = np.zeros(len(arr), dtype=np.bool_)
        dup[1:] = arr["open_time"][1:] == arr["open_time"][:-1]
        for k, count in zip(*np.unique(src[dup], return_counts=True), strict=True):
            counts = dropped[str(mine[int(k)].path)]
            counts[DUPLICATE_TIME] = counts.get(DUPLICATE_TIME, 0) + int(count)
        return arr[~dup]

    # ------------------------------------------------------------------------------ feed contract
    async def history(self, intervals: Sequence[str]) -> list[History]:
        """Empty history per (instrument with a file, interval); loads the files, so errors surface now."""
        await self.load()
        codes = dict.fromkeys([*intervals, self._interval.code])
        return [History(symbol, code, empty_bars()) for symbol in self._symbols for code in codes]

    async def stream(self) -> AsyncIterator[Bar]:
        """Every loaded bar, oldest first (ties by symbol), with ``interval`` = the base interval."""
        await self.load()
        timeline = self._timeline
        assert timeline is not None
        speed = self._config.speed
        interval, code = self._interval, self._interval.code
        clock = self._clock
        symbols = timeline.symbols
        prev_open: int | None = None
        first_close = 0
        start = 0.0
        since_pause = 0
        for lo in range(0, len(timeline.bars), _CHUNK):
            chunk = timeline.bars[lo : lo + _CHUNK]
            rows = zip(
                timeline.symbol_idx[lo : lo + _CHUNK].tolist(),
                chunk["open_time"].tolist(),
                chunk["open"].tolist(),
                chunk["high"].tolist(),
                chunk["low"].tolist(),
                chunk["close"].tolist(),
                chunk["volume"].tolist(),
                strict=True,
            )
            for k, t, o, h, low, c, v in rows:
                if speed > 0 and t != prev_open:  # a new batch: wait until its close is due
                    close = interval.next_open(t)
                    if prev_open is None:
                        first_close, start = close, clock.monotonic()
                    else:
                        delay = start + (close - first_close) / NS / speed - clock.monotonic()
                        if delay > 0:
                            await clock.sleep(delay)
                            since_pause = 0
                prev_open = t
                symbol = symbols[k]
                yield Bar(symbol=symbol, interval=code, open_time=t, open=o, high=h, low=low, close=c, volume=v)
                self._yielded[symbol] += 1
                since_pause += 1
                if since_pause >= YIELD_EVERY:
                    since_pause = 0
                    await asyncio.sleep(0)
        if prev_open is not None:
            log.info(
                "replay finished",
                extra={
                    "source": self.name,
                    "last_close": iso(interval.next_open(prev_open)),
                    "bars": dict(self._yielded),
                },
            )

    # ---------------------------------------------------------------------------------- reporting
    def statistics(self) -> ReplayStatistics:
        return ReplayStatistics(
            yielded=dict(self._yielded),
            bars=dict(self._per_symbol),
            rows={str(lf.path): lf.rows for lf in self._files},
            dropped={path: dict(counts) for path, counts in self._file_dropped.items()},
        )


def _build_timeline(per_symbol: Mapping[str, BarArray]) -> _Timeline:
    """Merge per-symbol arrays by (open_time, symbol): the order a heapq merge of the files would give."""
    symbols = tuple(sorted(per_symbol))
    arrays = [per_symbol[s] for s in symbols]
    bars = np.concatenate(arrays) if arrays else np.empty(0, dtype=BAR_DTYPE)
    idx = np.repeat(np.arange(len(symbols), dtype=np.intp), [len(a) for a in arrays])
    order = np.lexsort((idx, bars["open_time"]))
    return _Timeline(symbols=symbols, symbol_idx=idx[order], bars=bars[order])
