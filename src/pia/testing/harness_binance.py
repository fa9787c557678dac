"""The data side of the fake Binance, and the contract harness around it.

- :func:`recorded_minutes`: real Binance one-minute candles (OctoBot's BTC/USDT and ETH/USDT captures
  in ``shared/data``), ETH moved by whole days onto BTC's day so one virtual clock serves both.
- :class:`BinanceMarket`: the fake's market (no I/O): candles per (market, symbol, interval), a virtual
  ``now`` in whole minutes, what REST shows (closed candles plus the one forming), and the kline events
  one minute streams.
- :class:`VirtualClock`: the fake's ``now`` as wall time; sleeping and ``monotonic`` from a real clock.
- :class:`BinanceHarness`: :class:`pia.testing.harness.FeedHarness` for the shared contract suite.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import numpy as np

from pia.clock import Clock
from pia.config import ReconnectConfig
from pia.feeds.aggregate import aggregate
from pia.feeds.backoff import Backoff
from pia.feeds.base import BarArray
from pia.feeds.binance import BinanceKlines
from pia.feeds.binance_wire import INTERVALS, MAX_KLINES_LIMIT, MS, Market, kline_event, rest_kline_row
from pia.feeds.breaker import CircuitBreaker
from pia.feeds.http import HttpClient, Source
from pia.feeds.live import LiveFeed
from pia.feeds.ohlcv_files import load_ohlcv
from pia.instruments import AssetClass, Instrument, Venue
from pia.intervals import DAY, HOUR, MINUTE, parse_interval

if TYPE_CHECKING:
    from pia.testing.fake_binance import FakeBinance

Row = tuple[int, float, float, float, float, float]  # open ns, o, h, l, c, v
I64 = np.ndarray[Any, np.dtype[np.int64]]
_PATHS: dict[Market, tuple[str, ...]] = {
    "spot": ("/api/v3/klines", "/api/v3/uiKlines", "/api/v3/ping", "/api/v3/time"),
    "futures": ("/fapi/v1/klines", "/fapi/v1/premiumIndex", "/fapi/v1/fundingRate", "/fapi/v1/ping", "/fapi/v1/time"),
}
_SYMBOL_RE = re.compile(r"^[A-Z0-9\-_.]{1,20}$")

OCTOBOT = {
    "BTCUSDT": "candles/binance/octobot/binance_BTC_USDT_20180428_121156.json.gz",
    "ETHUSDT": "candles/binance/octobot/binance_ETH_USDT_20180716_131148.json.gz",
}


def shared_data_dir() -> Path:
    """``$PIA_SHARED_DATA``, else ``<repo>/../shared/data``."""
    env = os.environ.get("PIA_SHARED_DATA", "").strip()
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "data"


def recorded_minutes(data_dir: Path | None = None) -> dict[str, BarArray]:
    """Real 1m candles: ``BTCUSDT`` as recorded, ``ETHUSDT`` shifted by whole days onto BTC's dates."""
    base = data_dir or shared_data_dir()
    out = {sym: load_ohlcv(base / rel, interval="1m").bars for sym, rel in OCTOBOT.items()}
    btc, eth = out["BTCUSDT"], out["ETHUSDT"].copy()
    eth["open_time"] -= (int(eth["open_time"][0]) - int(btc["open_time"][0])) // DAY * DAY
    out["ETHUSDT"] = eth
    return out


def row(r: np.void) -> Row:
    t, o, h, lo, c, v = r["open_time"], r["open"], r["high"], r["low"], r["close"], r["volume"]
    return (int(t), float(o), float(h), float(lo), float(c), float(v))


class ApiError(Exception):
    """A Binance error answer: HTTP 400 with ``{"code", "msg"}``."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def parse_stream(stream: str) -> tuple[str, str] | None:
    """``btcusdt@kline_15m`` -> (``BTCUSDT``, ``15m``); ``btcusdt@markPrice[@1s]`` -> (``BTCUSDT``, ``markPrice``)."""
    symbol, _, rest = stream.partition("@")
    if not symbol or symbol != symbol.lower():
        return None  # Binance stream names are lowercase; others deliver nothing
    if rest.startswith("kline_"):
        return symbol.upper(), rest[len("kline_") :]
    if rest in ("markPrice", "markPrice@1s"):
        return symbol.upper(), "markPrice"
    return None


class BinanceMarket:
    """Recorded one-minute candles per market and venue symbol, and a virtual ``now`` (whole minutes)."""

    def __init__(self, data: Mapping[Market, Mapping[str, BarArray]], start_ns: int | None = None) -> None:
        self.data: dict[Market, dict[str, BarArray]] = {m: dict(data.get(m, {})) for m in ("spot", "futures")}
        firsts = [int(a["open_time"][0]) for d in self.data.values() for a in d.values() if len(a)]
        if start_ns is None:
            start_ns = (min(firsts) // HOUR + 2) * HOUR if firsts else 0
        if start_ns % MINUTE:
            raise ValueError("start_ns must be on a minute boundary")
        self.now_ns = start_ns
        self.funding_rates: dict[str, float] = dict.fromkeys(self.data["futures"], 0.0001)
        self._candles: dict[tuple[Market, str, str], tuple[BarArray, I64]] = {}

    def has(self, market: Market, symbol: str) -> bool:
        return symbol in self.data[market]

    def candles(self, market: Market, symbol: str, interval: str) -> tuple[BarArray, I64]:
        """Every candle of the data set (future ones too) and their close times."""
        key = (market, symbol, interval)
        got = self._candles.get(key)
        if got is None:
            minutes = self.data[market][symbol]
            arr = minutes if interval == "1m" else aggregate(minutes, interval)
            got = self._candles[key] = (arr, parse_interval(interval).next_open_array(arr["open_time"]))
        return got

    def closed(self, market: Market, symbol: str, interval: str) -> BarArray:
        """The truth: every candle closed by ``now``."""
        arr, closes = self.candles(market, symbol, interval)
        return arr[: int(np.searchsorted(closes, self.now_ns, side="right"))]

    def forming(self, market: Market, symbol: str, interval: str, at_ns: int) -> Row | None:
        """The candle in progress at ``at_ns``: the minutes traded so far, else the next open with no volume."""
        iv = parse_interval(interval)
        start = iv.floor(at_ns)
        minutes = self.data[market][symbol]
        t = minutes["open_time"]
        lo, hi = int(np.searchsorted(t, start)), int(np.searchsorted(t, at_ns))
        if hi > lo:
            part = minutes[lo:hi]
            return (
                start,
                float(part["open"][0]),
                float(part["high"].max()),
                float(part["low"].min()),
                float(part["close"][-1]),
                float(part["volume"].sum()),
            )
        if hi < len(t) and int(t[hi]) < iv.next_open(start):
            o = float(minutes["open"][hi])
            return (start, o, o, o, o, 0.0)
        return None

    def rest_rows(self, market: Market, symbol: str, interval: str) -> list[Row]:
        """What ``klines`` can show now: closed candles, then the one still forming."""
        rows = [row(r) for r in self.closed(market, symbol, interval)]
        forming = self.forming(market, symbol, interval, self.now_ns)
        if forming is not None and (not rows or forming[0] > rows[-1][0]):
            rows.append(forming)
        return rows

    def step_events(self, market: Market, stream: str, old: int, new: int) -> list[tuple[str, dict[str, Any]]]:
        """(kind, raw event) for one stream as time moves from ``old`` to ``new``: for a kline stream,
        the forming updates of the minute traded (``x:false``), then every candle that closed (``x:true``)."""
        parsed = parse_stream(stream)
        if parsed is None or not self.has(market, parsed[0]):
            return []
        symbol, interval = parsed
        if interval == "markPrice":
            return [("mark_price", self.mark_event(symbol))] if market == "futures" else []
        if interval not in INTERVALS[market] or interval == "1s":
            return []
        out: list[tuple[str, dict[str, Any]]] = []
        t = self.data[market][symbol]["open_time"]
        i = int(np.searchsorted(t, old))
        if i < len(t) and int(t[i]) < new:
            traded = int(t[i])  # before that minute's trades, then (above 1m) after them
            for at in (traded,) if interval == "1m" else (traded, traded + 1):
                state = self.forming(market, symbol, interval, at)
                if state is not None:
                    out.append(("forming", kline_event(symbol, interval, state, closed=False, event_ms=at // MS + 1)))
        arr, closes = self.candles(market, symbol, interval)
        for j in range(int(np.searchsorted(closes, old, side="right")), int(np.searchsorted(closes, new, "right"))):
            out.append(("closed", kline_event(symbol, interval, row(arr[j]), closed=True, event_ms=new // MS + 7)))
        return out

    def mark_price(self, symbol: str) -> float:
        minutes = self.data["futures"][symbol]
        i = int(np.searchsorted(minutes["open_time"], self.now_ns)) - 1
        return float(minutes["close"][i] if i >= 0 else minutes["open"][0])

    def next_funding_ms(self) -> int:
        return (self.now_ns // (8 * HOUR) + 1) * 8 * HOUR // MS

    def premium_index(self, symbol: str) -> dict[str, Any]:
        p = self.mark_price(symbol)
        return {
            "symbol": symbol,
            "markPrice": f"{p:.8f}",
            "indexPrice": f"{p * 0.9998:.8f}",
            "estimatedSettlePrice": f"{p * 0.9999:.8f}",
            "lastFundingRate": f"{self.funding_rates.get(symbol, 0.0001):.8f}",
            "interestRate": "0.00010000",
            "nextFundingTime": self.next_funding_ms(),
            "time": self.now_ns // MS,
        }

    def mark_event(self, symbol: str) -> dict[str, Any]:
        p = self.premium_index(symbol)
        return {
            "e": "markPriceUpdate",
            "E": p["time"],
            "s": symbol,
            "p": p["markPrice"],
            "i": p["indexPrice"],
            "P": p["estimatedSettlePrice"],
            "r": p["lastFundingRate"],
            "T": p["nextFundingTime"],
        }

    def funding_history(self, symbol: str) -> list[dict[str, Any]]:
        first = int(self.data["futures"][symbol]["open_time"][0])
        rate = f"{self.funding_rates.get(symbol, 0.0001):.8f}"
        times = range((first // (8 * HOUR) + 1) * 8 * HOUR, self.now_ns + 1, 8 * HOUR)
        return [{"symbol": symbol, "fundingRate": rate, "fundingTime": t // MS, "markPrice": "0"} for t in times]

    # ---------------------------------------------------------------------------------- REST
    def serves(self, market: Market, path: str) -> bool:
        return path in _PATHS[market]

    def rest(self, market: Market, path: str, params: Mapping[str, str]) -> tuple[Any, int]:
        """(JSON payload, request weight) of a REST call, by Binance's rules; :class:`ApiError` for bad params."""
        endpoint = path.rsplit("/", 1)[-1]
        if endpoint == "ping":
            return {}, 1
        if endpoint == "time":
            return {"serverTime": self.now_ns // MS}, 1
        if endpoint in ("klines", "uiKlines"):
            return self._klines(market, params)
        if endpoint == "premiumIndex":
            return self._premium_index(market, params)
        return self._funding_rate(market, params)

    def _klines(self, market: Market, params: Mapping[str, str]) -> tuple[Any, int]:
        symbol = self._symbol_param(market, params, required=True)
        interval = params.get("interval")
        if not interval:
            raise ApiError(-1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.")
        if interval not in INTERVALS[market] or interval == "1s":
            raise ApiError(-1120, "Invalid interval.")
        start, end = _int_param(params, "startTime"), _int_param(params, "endTime")
        limit = _int_param(params, "limit")
        limit = 500 if limit is None else limit
        if not 1 <= limit <= MAX_KLINES_LIMIT[market]:
            raise ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
        if start is not None and end is not None and start > end:
            raise ApiError(-1023, "Start time is greater than end time.")
        rows = self.rest_rows(market, symbol, interval)
        if start is not None:
            rows = [r for r in rows if r[0] >= start * MS]
        if end is not None:
            rows = [r for r in rows if r[0] <= end * MS]
        rows = rows[:limit] if start is not None else rows[-limit:]
        weight = 2 if market == "spot" else (1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10)
        return [rest_kline_row(interval, r) for r in rows], weight

    def _premium_index(self, market: Market, params: Mapping[str, str]) -> tuple[Any, int]:
        symbol = self._symbol_param(market, params, required=False)
        if symbol:
            return self.premium_index(symbol), 1
        return [self.premium_index(s) for s in self.data["futures"]], 10

    def _funding_rate(self, market: Market, params: Mapping[str, str]) -> tuple[Any, int]:
        symbol = self._symbol_param(market, params, required=True)
        limit = _int_param(params, "limit") or 100
        if not 1 <= limit <= 1000:
            raise ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
        start, end = _int_param(params, "startTime"), _int_param(params, "endTime")
        out = [
            r
            for r in self.funding_history(symbol)
            if (start is None or r["fundingTime"] >= start) and (end is None or r["fundingTime"] <= end)
        ]
        return (out[:limit] if start is not None else out[-limit:]), 1

    def _symbol_param(self, market: Market, params: Mapping[str, str], *, required: bool) -> str:
        symbol = params.get("symbol", "")
        if not symbol:
            if required:
                raise ApiError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
            return ""
        if not _SYMBOL_RE.match(symbol):
            raise ApiError(
                -1100, "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'."
            )
        if not self.has(market, symbol):
            raise ApiError(-1121, "Invalid symbol.")
        return symbol


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if not value.isdigit() or len(value) > 20:
        raise ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.")
    return int(value)


class VirtualClock:
    """Wall time is the fake's virtual ``now``; ``monotonic`` and ``sleep`` come from ``base``."""

    def __init__(self, market: BinanceMarket, base: Clock) -> None:
        self._market = market
        self._base = base

    def now_ns(self) -> int:
        return self._market.now_ns

    def monotonic(self) -> float:
        return self._base.monotonic()

    async def sleep(self, seconds: float) -> None:
        await self._base.sleep(seconds)


_SYMBOLS: dict[Market, tuple[tuple[str, str, str, AssetClass], ...]] = {  # pia, venue, recorded data, class
    "spot": (
        ("BTC-USD", "BTCUSDT", "BTCUSDT", AssetClass.CRYPTO),
        ("ETH-USD", "ETHUSDT", "ETHUSDT", AssetClass.CRYPTO),
    ),
    "futures": (
        ("XAU-USD", "XAUUSDT", "BTCUSDT", AssetClass.METALS),
        ("XAG-USD", "XAGUSDT", "ETHUSDT", AssetClass.METALS),
    ),
}


class BinanceHarness:
    """The contract harness: a :class:`FakeBinance` serving recorded candles to the real Binance feed.

    ``market="spot"`` serves BTC-USD/ETH-USD; ``"futures"`` serves XAU-USD/XAG-USD (the BTC and ETH
    minutes under the metals' names). Streams 1m, 5m and 15m by default; the virtual clock starts two
    hours after the first whole hour both recordings cover (2018-04-28 05:00 UTC), so there is history.
    """

    def __init__(
        self,
        market: Literal["spot", "futures"] = "spot",
        intervals: tuple[str, ...] = ("1m", "5m", "15m"),
        *,
        data_dir: Path | None = None,
        receive_timeout: float = 1.0,
        ping_interval: float = 0.4,
    ) -> None:
        self.market: Market = market
        self.name = f"binance_{market}"
        self.intervals = intervals
        self.symbols = tuple(s for s, *_ in _SYMBOLS[market])
        self.instruments = tuple(
            Instrument(
                symbol=s,
                asset_class=ac,
                venue=Venue.BINANCE_SPOT if market == "spot" else Venue.BINANCE_FUTURES,
                venue_symbol=vs,
                name=s,
            )
            for s, vs, _, ac in _SYMBOLS[market]
        )
        self._venue = {s: vs for s, vs, *_ in _SYMBOLS[market]}
        self._data_dir = data_dir
        self._receive_timeout = receive_timeout
        self._ping_interval = ping_interval
        self._fake: FakeBinance | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def fake(self) -> FakeBinance:
        if self._fake is None:
            raise RuntimeError("the harness is not running (use `async with harness.running()`)")
        return self._fake

    def running(self) -> AbstractAsyncContextManager[BinanceHarness]:
        return self._running()

    @asynccontextmanager
    async def _running(self) -> AsyncIterator[BinanceHarness]:
        from pia.testing.fake_binance import FakeBinance

        minutes = recorded_minutes(self._data_dir)
        start = max(int(a["open_time"][0]) for a in minutes.values())
        start = (start // HOUR + 1) * HOUR  # the first whole hour both symbols cover
        data = {vs: minutes[src][minutes[src]["open_time"] >= start] for _, vs, src, _ in _SYMBOLS[self.market]}
        market = BinanceMarket({self.market: data}, start + 2 * HOUR)
        async with FakeBinance(market, ping_interval=self._ping_interval, pong_timeout=5.0) as fake:
            self._fake = fake
            try:
                async with aiohttp.ClientSession() as session:
                    self._session = session
                    yield self
            finally:
                self._fake = self._session = None

    def make_feed(self, clock: Clock) -> LiveFeed:
        fake, session = self.fake, self._session
        assert session is not None
        vclock = VirtualClock(fake.market, clock)
        http = HttpClient(session, vclock, retries=3, backoff_seconds=0.02, timeout_seconds=5.0, max_retry_after=2.0)
        source = Source(self.name, CircuitBreaker(self.name, vclock, failure_threshold=5, reset_seconds=0.5))
        reconnect = ReconnectConfig(
            initial_seconds=0.02, max_seconds=0.2, receive_timeout_seconds=self._receive_timeout
        )
        klines = BinanceKlines(
            self.name,
            fake.rest_url(self.market),
            fake.ws_url(self.market),
            self.market,
            self.instruments,
            http,
            source,
            vclock,
            reconnect,
            session=session,
        )
        return LiveFeed(
            klines, self.instruments, self.intervals, vclock, history_bars=1000, backoff=Backoff(0.02, 2, 0.2)
        )

    def expected(self, symbol: str, interval: str) -> BarArray:
        return self.fake.market.closed(self.market, self._venue[symbol], interval)

    async def advance(self, steps: int) -> None:
        """Each minute waits (up to 5 s) for a live stream connection, so the stream, not only REST, carries it."""
        for _ in range(steps):
            await self.fake.wait_for_connection(self.market, within=5.0)
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
