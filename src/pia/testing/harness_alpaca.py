"""The data side of the fake Alpaca, and the contract harness around it.

- :func:`real_daily`: real daily stock candles from ``shared/data`` (zipline's AAPL/IBM/KO/MSFT
  2012-2014, backtrader's NVDA 1999-2014), by New York date.
- :class:`AlpacaMarket`: the fake's market (no I/O). For every regular session it generates, from the
  session's real daily candle and a seed, minute bars that aggregate exactly to it (first open, last
  close, the day's high and low, volumes summing to the day's): about 15 % of minutes have no trades,
  but the last minute of every 15-minute slot always does. Some minutes are first published with
  provisional values and corrected 30 s later (a ``u`` message, and REST from then on). Pre- and
  post-market minute bars are sparse (one in 20 minutes). A virtual ``now`` moves only in :meth:`step`.
- :class:`VirtualClock`: the fake's ``now`` as wall time; sleeping and ``monotonic`` from a real clock.
- :class:`AlpacaHarness`: :class:`pia.testing.harness.FeedHarness` for the shared contract suite.

The truth (:meth:`AlpacaMarket.closed`) is computed here independently of the feed's code, from the
calendar alone: intraday candles from the session open, ``nd`` by session count from
:data:`pia.market_hours.SESSION_ANCHOR`, ISO weeks, calendar months.
"""

from __future__ import annotations

import csv
import gzip
import os
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import aiohttp
import numpy as np
import numpy.typing as npt
from pydantic import SecretStr

from pia.clock import Clock
from pia.config import AlpacaConfig, ReconnectConfig
from pia.errors import BadData
from pia.events import BAR_DTYPE
from pia.feeds.alpaca import AlpacaBars, AlpacaLiveFeed
from pia.feeds.alpaca_wire import SUB_DTYPE, SubArray, format_time
from pia.feeds.backoff import Backoff
from pia.feeds.base import BarArray
from pia.feeds.breaker import CircuitBreaker
from pia.feeds.http import HttpClient, Source
from pia.feeds.live import LiveFeed
from pia.instruments import AssetClass, Instrument, Venue
from pia.intervals import DAY, HOUR, MINUTE, NS, parse_interval
from pia.market_hours import NyseCalendar, calendar

if TYPE_CHECKING:
    from pia.testing.fake_alpaca import FakeAlpaca

Daily = tuple[float, float, float, float, float]  # o, h, l, c, v
CORRECTION_DELAY = 30 * NS
_NY = ZoneInfo("America/New_York")
KEY_ID = "PKTEST0000FAKEALPACA"
SECRET_KEY = "fake-secret-0123456789abcdefghijklmnopqrstuv"
DAILY_FILES = {
    "AAPL": "candles/us_equity/zipline/daily/AAPL.csv.gz",
    "MSFT": "candles/us_equity/zipline/daily/MSFT.csv.gz",
    "IBM": "candles/us_equity/zipline/daily/IBM.csv.gz",
    "KO": "candles/us_equity/zipline/daily/KO.csv.gz",
    "NVDA": "candles/us_equity/backtrader/nvda-1999-2014.txt",
}


def shared_data_dir() -> Path:
    """``$PIA_SHARED_DATA``, else ``<repo>/../shared/data``."""
    env = os.environ.get("PIA_SHARED_DATA", "").strip()
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "data"


def real_daily(symbol: str, data_dir: Path | None = None) -> dict[date, Daily]:
    """A symbol's real daily candles by date (zipline or Yahoo CSV layout)."""
    path = (data_dir or shared_data_dir()) / DAILY_FILES[symbol]
    opener = gzip.open if path.suffix == ".gz" else open
    out: dict[date, Daily] = {}
    with opener(path, "rt", newline="") as fh:
        for rec in csv.DictReader(fh):
            low = {k.lower(): v for k, v in rec.items()}
            o, h, lo, c = (float(low[k]) for k in ("open", "high", "low", "close"))
            out[date.fromisoformat(low["date"])] = (o, h, lo, c, float(int(float(low["volume"]))))
    return out


def _rng(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def session_minutes(
    symbol: str, open_ns: int, close_ns: int, day: Daily
) -> tuple[
    list[tuple[int, int, float, float, float, float, float]], dict[int, tuple[float, float, float, float, float]]
]:
    """One session's regular minute bars (final values) aggregating exactly to ``day``, and the
    provisional values of the corrected ones (by start)."""
    o, h, lo, c, v = day
    rng = _rng(symbol, open_ns)
    n = (close_ns - open_ns) // MINUTE
    k = np.arange(n)
    present = (rng.random(n) < 0.85) | (k % 15 == 14) | (k == 0) | (k == n - 1)
    idx = np.flatnonzero(present)
    m = len(idx)
    walk = np.cumsum(rng.normal(0.0, (h - lo) / 12 / max(1, m) ** 0.5, m))
    frac = (np.arange(m) + 1) / m
    closes = np.clip(np.round(o + (c - o) * frac + walk - frac * walk[-1], 4), lo, h)
    closes[-1] = c
    opens = np.r_[o, closes[:-1]]
    highs = np.clip(np.round(np.maximum(opens, closes) + np.abs(rng.normal(0, (h - lo) / 40, m)), 4), lo, h)
    lows = np.clip(np.round(np.minimum(opens, closes) - np.abs(rng.normal(0, (h - lo) / 40, m)), 4), lo, h)
    highs = np.maximum(highs, np.maximum(opens, closes))
    lows = np.minimum(lows, np.minimum(opens, closes))
    highs[rng.integers(m)] = h
    lows[rng.integers(m)] = lo
    weights = 1.0 + 2.0 * (np.abs(np.linspace(-1.0, 1.0, m)) ** 2)
    volumes = rng.multinomial(int(v), weights / weights.sum()).astype(float)
    starts = (open_ns + idx * MINUTE).tolist()
    cols = zip(starts, opens.tolist(), highs.tolist(), lows.tolist(), closes.tolist(), volumes.tolist(), strict=True)
    rows = [(t, t + MINUTE, bo, bh, bl, bc, bv) for t, bo, bh, bl, bc, bv in cols]
    provisional: dict[int, tuple[float, float, float, float, float]] = {}
    for j in np.flatnonzero(rng.random(m) < 0.05).tolist():
        t, _, bo, _, _, bc, bv = rows[j]
        if (t - open_ns) // MINUTE % 15 == 14:
            continue  # never the minute that ends a candle: its candle would close before the correction
        provisional[t] = (bo, max(bo, bc), min(bo, bc), bc, max(0.0, bv - 1.0 - float(rng.integers(1, 500))))
    return rows, provisional


def extended_minutes(
    symbol: str, open_ns: int, close_ns: int, day: Daily
) -> list[tuple[int, int, float, float, float, float, float]]:
    """Sparse pre-market (04:00 New York, 5.5 h before the open) and post-market (4 h) minute bars."""
    rng = _rng(symbol, "ext", open_ns)
    out = []
    for start, ref, count in ((open_ns - 330 * MINUTE, day[0], 16), (close_ns, day[3], 12)):
        for i in range(count):
            t = start + (i * 20 + int(rng.integers(0, 20))) * MINUTE
            p = round(ref * (1 + float(rng.normal(0, 0.002))), 4)
            out.append((t, t + MINUTE, p, p, p, p, float(rng.integers(1, 20) * 100)))
    return out


class AlpacaMarket:
    """The fake's market data: minute bars per venue symbol over ``[first_day, last_day]`` and a virtual now."""

    def __init__(
        self,
        daily: Mapping[str, Mapping[date, Daily]],
        now_ns: int,
        first_day: date,
        last_day: date,
        *,
        nyse: NyseCalendar | None = None,
    ) -> None:
        self.cal = nyse or calendar()
        self.now_ns = now_ns
        self.symbols = tuple(daily)
        start = int(np.datetime64(first_day, "ns").astype(np.int64))
        end = int(np.datetime64(last_day + timedelta(days=1), "ns").astype(np.int64))
        self.sessions = self.cal.sessions_between(start, end)
        self.minutes: dict[str, SubArray] = {}
        self.provisional: dict[str, dict[int, tuple[float, float, float, float, float]]] = {}
        for sym, days in daily.items():
            rows: list[tuple[int, int, float, float, float, float, float]] = []
            prov: dict[int, tuple[float, float, float, float, float]] = {}
            for s in self.sessions:
                day = days.get(s.day)
                if day is None:
                    continue
                regular, p = session_minutes(sym, s.open_ns, s.close_ns, day)
                rows.extend(regular)
                rows.extend(extended_minutes(sym, s.open_ns, s.close_ns, day))
                prov.update(p)
            rows.sort()
            self.minutes[sym] = np.array(rows, dtype=SUB_DTYPE)
            self.provisional[sym] = prov
        self._truth: dict[tuple[str, str], tuple[BarArray, npt.NDArray[np.int64]]] = {}

    # ------------------------------------------------------------------------------ time
    def next_step(self) -> int:
        """The end of the next regular-session minute after now."""
        if self.cal.is_open(self.now_ns):
            return self.now_ns // MINUTE * MINUTE + MINUTE
        return self.cal.next_open(self.now_ns) + MINUTE

    def events(self, old: int, new: int) -> list[tuple[int, str, str, tuple[int, float, float, float, float, float]]]:
        """Messages published in ``(old, new]``: (time, ``b``/``u``, venue, (t, o, h, l, c, v)), in order."""
        out = []
        for sym, arr in self.minutes.items():
            prov = self.provisional[sym]
            lo, hi = np.searchsorted(arr["end_time"], [old - CORRECTION_DELAY, new], side="right")
            for t, end, *vals in arr[lo:hi].tolist():
                if old < end <= new:
                    first = prov.get(t, tuple(vals))
                    out.append((end, "b", sym, (t, *first)))
                if t in prov and old < end + CORRECTION_DELAY <= new:
                    out.append((end + CORRECTION_DELAY, "u", sym, (t, *vals)))
        out.sort(key=lambda e: (e[0], e[1] == "b", e[2]))
        return out

    # ------------------------------------------------------------------------------ REST view
    def published(self, sym: str) -> SubArray:
        """Minute bars as REST shows them now: published ones, corrected values once the correction is out."""
        arr = self.minutes.get(sym)
        if arr is None:
            return np.empty(0, dtype=SUB_DTYPE)
        arr = arr[arr["end_time"] <= self.now_ns].copy()
        for t, vals in self.provisional[sym].items():
            if t + MINUTE <= self.now_ns < t + MINUTE + CORRECTION_DELAY:
                i = int(np.searchsorted(arr["open_time"], t))
                arr[i] = (t, t + MINUTE, *vals)
        return arr

    # ------------------------------------------------------------------------------ truth
    def closed(self, sym: str, interval: str) -> BarArray:
        """Every ``interval`` candle of ``sym`` closed by now (final values), oldest first."""
        key = (sym, interval)
        if key not in self._truth:
            self._truth[key] = self._candles(sym, interval)
        candles, ends = self._truth[key]
        return candles[ends <= self.now_ns]

    def _candles(self, sym: str, interval: str) -> tuple[BarArray, npt.NDArray[np.int64]]:
        arr = self.minutes[sym]
        iv = parse_interval(interval)
        keys, ends, rows = [], [], []
        for s in self.sessions:
            lo, hi = np.searchsorted(arr["open_time"], [s.open_ns, s.close_ns])
            if lo == hi:
                continue
            t = arr["open_time"][lo:hi]
            if not iv.months and iv.step_ns < DAY:
                k = s.open_ns + (t - s.open_ns) // iv.step_ns * iv.step_ns
                e = np.minimum(k + iv.step_ns, s.close_ns)
            else:
                first, last = self._period(s.index, s.day, interval)
                k, e = np.full(hi - lo, first), np.full(hi - lo, last)
            keys.append(k)
            ends.append(e)
            rows.append(arr[lo:hi])
        if not rows:
            return np.empty(0, dtype=BAR_DTYPE), np.empty(0, dtype=np.int64)
        key, end, sel = np.concatenate(keys), np.concatenate(ends), np.concatenate(rows)
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        out = np.empty(len(starts), dtype=BAR_DTYPE)
        for n, (a, b) in enumerate(zip(starts.tolist(), [*starts[1:].tolist(), len(sel)], strict=True)):
            part = sel[a:b]
            out[n] = (
                key[a],
                part["open"][0],
                part["high"].max(),
                part["low"].min(),
                part["close"][-1],
                part["volume"].sum(),
            )
        return out, end[starts]

    def _period(self, index: int, day: date, interval: str) -> tuple[int, int]:
        """(open of the first session, close of the last) of the multi-session candle holding ``day``."""
        iv = parse_interval(interval)
        cal = self.cal
        if iv.code == "1w":
            monday = day - timedelta(days=day.weekday())
            lo, hi = monday, monday + timedelta(days=7)
        elif iv.months:
            m = (day.year * 12 + day.month - 1) // iv.months * iv.months
            lo = date(m // 12, m % 12 + 1, 1)
            m += iv.months
            hi = date(m // 12, m % 12 + 1, 1)
        else:
            n = iv.step_ns // DAY
            first = cal.anchor_index + (index - cal.anchor_index) // n * n
            return int(cal.opens[first]), int(cal.closes[first + n - 1])
        inside = cal.sessions_between(_midnight(lo), _midnight(hi))
        return inside[0].open_ns, inside[-1].close_ns


def _midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * NS


class VirtualClock:
    """Wall time is the fake's virtual ``now``; ``monotonic`` and ``sleep`` come from ``base``."""

    def __init__(self, market: AlpacaMarket, base: Clock) -> None:
        self._market = market
        self._base = base

    def now_ns(self) -> int:
        return self._market.now_ns

    def monotonic(self) -> float:
        return self._base.monotonic()

    async def sleep(self, seconds: float) -> None:
        await self._base.sleep(seconds)


class AlpacaHarness:
    """The contract harness: a :class:`~pia.testing.fake_alpaca.FakeAlpaca` serving minute bars built
    from real daily candles (AAPL, MSFT, NVDA; sessions from 2014-09-22) to the real Alpaca feed.
    The virtual clock starts at 2014-10-15 11:00 New York (mid-session) unless told otherwise."""

    name = "alpaca"

    def __init__(
        self,
        symbols: Sequence[str] = ("AAPL", "MSFT", "NVDA"),
        intervals: tuple[str, ...] = ("15m", "1h", "4h", "1d", "3d", "1w", "1M"),
        *,
        start: datetime = datetime(2014, 10, 15, 15, 0, tzinfo=UTC),
        first_day: date = date(2014, 9, 22),
        last_day: date = date(2014, 12, 31),
        data_dir: Path | None = None,
        receive_timeout: float = 1.0,
        close_grace_s: float = 3.0,
    ) -> None:
        self.symbols = tuple(symbols)
        self.intervals = intervals
        self.instruments = tuple(
            Instrument(symbol=s, asset_class=AssetClass.STOCKS, venue=Venue.ALPACA, venue_symbol=s, name=s)
            for s in self.symbols
        )
        self._start = int(start.timestamp()) * NS
        self._days = (first_day, last_day)
        self._data_dir = data_dir
        self._receive_timeout = receive_timeout
        self._grace = close_grace_s
        self._fake: FakeAlpaca | None = None
        self._session: aiohttp.ClientSession | None = None
        self.feeds: list[AlpacaLiveFeed] = []

    @property
    def fake(self) -> FakeAlpaca:
        if self._fake is None:
            raise RuntimeError("the harness is not running (use `async with harness.running()`)")
        return self._fake

    def running(self) -> AbstractAsyncContextManager[AlpacaHarness]:
        return self._running()

    @asynccontextmanager
    async def _running(self) -> AsyncIterator[AlpacaHarness]:
        from pia.testing.fake_alpaca import FakeAlpaca

        daily = {s: real_daily(s, self._data_dir) for s in self.symbols}
        market = AlpacaMarket(daily, self._start, *self._days)
        async with FakeAlpaca(market, key_id=KEY_ID, secret_key=SECRET_KEY) as fake:
            self._fake = fake
            try:
                async with aiohttp.ClientSession() as session:
                    self._session = session
                    yield self
            finally:
                self._fake = self._session = None

    def make_source(self, clock: Clock, *, key_id: str = KEY_ID, secret_key: str = SECRET_KEY) -> AlpacaBars:
        fake, session = self.fake, self._session
        assert session is not None
        http = HttpClient(session, clock, retries=3, backoff_seconds=0.02, timeout_seconds=5.0, max_retry_after=2.0)
        source = Source(self.name, CircuitBreaker(self.name, clock, failure_threshold=5, reset_seconds=0.5))
        reconnect = ReconnectConfig(
            initial_seconds=0.02, max_seconds=0.2, receive_timeout_seconds=self._receive_timeout
        )
        config = AlpacaConfig(rest_url=fake.url, ws_url=fake.ws_url, data_feed="iex", adjustment="split")
        return AlpacaBars(
            config,
            SecretStr(key_id),
            SecretStr(secret_key),
            self.instruments,
            http,
            source,
            clock,
            reconnect,
            session=session,
            nyse=fake.market.cal,
            close_grace_s=self._grace,
        )

    def make_feed(
        self, clock: Clock, *, key_id: str = KEY_ID, secret_key: str = SECRET_KEY, backoff: Backoff | None = None
    ) -> LiveFeed:
        """The real feed on the fake's virtual time (``now`` is the fake's; sleeping is ``clock``'s)."""
        vclock = VirtualClock(self.fake.market, clock)
        source = self.make_source(vclock, key_id=key_id, secret_key=secret_key)
        backoff = backoff or Backoff(0.02, 2, 0.2)
        feed = AlpacaLiveFeed(source, self.instruments, self.intervals, vclock, history_bars=2000, backoff=backoff)
        self.feeds.append(feed)
        return feed

    def expected(self, symbol: str, interval: str) -> BarArray:
        return self.fake.market.closed(symbol, interval)

    async def advance(self, steps: int) -> None:
        """Each regular-session minute waits (up to 5 s) for a live stream connection, so that the stream,
        not only REST, carries it; then the fake publishes what the minute (and any closed time
        jumped over: nights, weekends, holidays) brings."""
        for _ in range(steps):
            await self.fake.wait_for_connection(within=5.0)
            await self.fake.advance(1)

    def drop_connection_after(self, messages: int) -> None:
        self.fake.drop_connection_after(messages)

    def send_malformed(self) -> None:
        self.fake.send_malformed()

    def send_duplicates(self) -> None:
        self.fake.send_duplicates()

    def fail_rest(self, status: int, times: int, retry_after: float | None = None) -> None:
        self.fake.fail_rest(status, times, retry_after)

    def stall(self, seconds: float) -> None:
        self.fake.stall(seconds)


# ---------------------------------------------------------------------------------- REST helpers
def bar_json(t: int, o: float, h: float, lo: float, c: float, v: float) -> dict[str, Any]:
    n, vw = max(1, int(v) // 100), round((h + lo + c) / 3, 4)
    return {"t": format_time(t), "o": o, "h": h, "l": lo, "c": c, "v": int(v), "n": n, "vw": vw}


def int_param(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise BadData("limit", f"invalid integer {text!r}") from None


def timeframe_ns(text: str) -> int:
    """``15Min``/``15T``, ``1Hour``/``1H``, ``1Day``/``1D`` -> bucket length in ns (``DAY`` = New York day)."""
    units = (
        ("Min", MINUTE, 59),
        ("T", MINUTE, 59),
        ("Hour", HOUR, 23),
        ("H", HOUR, 23),
        ("Day", DAY, 1),
        ("D", DAY, 1),
    )
    for suffix, unit, top in units:
        if text.endswith(suffix) and text[: -len(suffix)].isdigit():
            n = int(text[: -len(suffix)])
            if 1 <= n <= top:
                return n * unit
    raise BadData("timeframe", f"invalid timeframe {text!r}")


def resample(minutes: SubArray, step: int) -> SubArray:
    """Alpaca's coarser bars from minute bars: epoch-aligned buckets (days: New York midnights)."""
    if step == MINUTE or len(minutes) == 0:
        return minutes
    t = minutes["open_time"]
    if step == DAY:
        offset = _ny_offset(t)
        key = (t + offset) // DAY * DAY - offset  # New York midnights
    else:
        key = t // step * step
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], len(minutes)] - 1
    out = np.empty(len(starts), dtype=SUB_DTYPE)
    out["open_time"] = key[starts]
    out["end_time"] = key[starts] + step
    out["open"] = minutes["open"][starts]
    out["close"] = minutes["close"][ends]
    out["high"] = np.maximum.reduceat(minutes["high"], starts)
    out["low"] = np.minimum.reduceat(minutes["low"], starts)
    out["volume"] = np.add.reduceat(minutes["volume"], starts)
    return out


def _ny_offset(ts: np.ndarray[Any, np.dtype[np.int64]]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """New York's UTC offset (ns, negative) on each timestamp's UTC day (taken at 12:00 UTC)."""
    days = ts // DAY
    out = np.empty(len(ts), dtype=np.int64)
    for d in np.unique(days).tolist():
        noon = datetime.fromtimestamp(d * 86400 + 43200, UTC).astimezone(_NY)
        offset = noon.utcoffset()
        out[days == d] = int(offset.total_seconds()) * NS if offset is not None else 0
    return out
