"""Binance feeds: spot klines, USD-M futures klines (the metals), and funding rate + mark price.

- :class:`BinanceKlines` is the venue's :class:`~pia.feeds.live.KlineSource`: REST klines for history
  and gaps, one combined-stream websocket for closed candles. :class:`~pia.feeds.live.LiveFeed` does
  the reconnecting, backfilling and deduplicating.
- :class:`FundingFeed` polls ``/fapi/v1/premiumIndex`` and publishes
  :class:`~pia.events.FundingUpdated` on ``topics.funding()``.
- :func:`build_binance_feeds` makes one :class:`LiveFeed` per market that has instruments.

Wire formats and their validation are in :mod:`pia.feeds.binance_wire`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal

import aiohttp
import numpy as np

from pia.bus import Bus
from pia.clock import Clock
from pia.config import LiveFeedConfig, ReconnectConfig
from pia.errors import BadData, ConfigError, FeedDisconnected, FeedError
from pia.events import Bar, FundingUpdated
from pia.feeds.backoff import Backoff
from pia.feeds.base import BarArray, empty_bars
from pia.feeds.binance_wire import (
    DEFAULT_MAX_FRAME_BYTES,
    INTERVALS,
    KLINES_PATH,
    MAX_KLINES_LIMIT,
    MAX_STREAMS,
    MS,
    PREMIUM_INDEX_PATH,
    KlineParser,
    Market,
    ServerShutdown,
    combined_stream_url,
    parse_premium_index,
    parse_rest_klines,
    stream_name,
)
from pia.feeds.breaker import CircuitBreaker
from pia.feeds.http import HttpClient, Source
from pia.feeds.live import LiveFeed
from pia.instruments import Instrument, Venue
from pia.intervals import parse_interval
from pia.topics import funding

log = logging.getLogger(__name__)

_VENUE: dict[Market, Venue] = {"spot": Venue.BINANCE_SPOT, "futures": Venue.BINANCE_FUTURES}


class _RateLimitedLog:
    """Counts problems by reason; logs each reason at most once per ``every`` seconds (with the count)."""

    def __init__(self, source: str, clock: Clock, message: str, every: float = 60.0) -> None:
        self._source = source
        self._clock = clock
        self._message = message
        self._every = every
        self.counts: Counter[str] = Counter()
        self._unlogged: Counter[str] = Counter()
        self._logged_at: dict[str, float] = {}

    def add(self, reason: str, detail: str = "", n: int = 1) -> None:
        self.counts[reason] += n
        self._unlogged[reason] += n
        now = self._clock.monotonic()
        last = self._logged_at.get(reason)
        if last is None or now - last >= self._every:
            log.warning(
                self._message,
                extra={
                    "source": self._source,
                    "reason": reason,
                    "detail": detail[:200],
                    "count": self._unlogged[reason],
                    "total": self.counts[reason],
                },
            )
            self._logged_at[reason] = now
            self._unlogged[reason] = 0


class BinanceKlines:
    """Binance klines for one market (``spot``: ``/api/v3``; ``futures``: USD-M ``/fapi/v1``)."""

    contiguous = True

    def __init__(
        self,
        name: str,
        rest_url: str,
        ws_url: str,
        market: Literal["spot", "futures"],
        instruments: Sequence[Instrument],
        http: HttpClient,
        source: Source,
        clock: Clock,
        reconnect: ReconnectConfig,
        *,
        session: aiohttp.ClientSession | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        future_tolerance_s: float = 60.0,
        log_every: float = 60.0,
    ) -> None:
        self.name = name
        self.market: Market = market
        self._rest = rest_url.rstrip("/") + KLINES_PATH[market]
        self._ws_url = ws_url
        self._http = http
        self._source = source
        self._clock = clock
        self._reconnect = reconnect
        # HttpClient does not expose its session; the websocket shares it (one session per service).
        self._session: aiohttp.ClientSession = session if session is not None else http.session
        self._max_frame_bytes = max_frame_bytes
        self._future_ms = int(future_tolerance_s * 1000)
        self._to_venue = {i.symbol: i.venue_symbol for i in instruments}
        self._malformed = _RateLimitedLog(name, clock, "kline frame dropped", log_every)
        self._rest_dropped = _RateLimitedLog(name, clock, "REST kline rows dropped", log_every)
        self._parser: KlineParser | None = None
        self._forming = 0
        self._control = 0
        self.messages = 0
        self.closed_bars = 0
        self.connections = 0
        self.disconnects: Counter[str] = Counter()
        self.rest_pages = 0
        self.rest_bars = 0
        self.connected = False

    # ------------------------------------------------------------------------------------ REST
    async def fetch(self, symbol: str, interval: str, *, start_ns: int | None, end_ns: int, limit: int) -> BarArray:
        """Closed candles (close <= ``end_ns``), oldest first: pages forward from ``start_ns``, else back."""
        venue_symbol = self._to_venue.get(symbol)
        if venue_symbol is None:
            raise ValueError(f"{self.name}: {symbol!r} is not one of this feed's instruments")
        self._check_interval(interval)
        page = max(1, min(limit, MAX_KLINES_LIMIT[self.market]))
        if start_ns is not None:
            return await self._forward(venue_symbol, interval, start_ns, end_ns, page)
        return await self._backward(venue_symbol, interval, end_ns, max(0, limit))

    async def _forward(self, venue_symbol: str, interval: str, start_ns: int, end_ns: int, page: int) -> BarArray:
        parts: list[BarArray] = []
        cursor = -(-start_ns // MS)  # ceil to ms: open times >= start_ns
        end_ms = end_ns // MS
        while cursor <= end_ms:
            got, raw_count, last_open_ms = await self._page(venue_symbol, interval, cursor, end_ms, page)
            parts.append(got)
            if raw_count < page or last_open_ms is None or last_open_ms < cursor:
                break
            cursor = last_open_ms + 1
        return self._closed(parts, interval, end_ns)

    async def _backward(self, venue_symbol: str, interval: str, end_ns: int, limit: int) -> BarArray:
        parts: list[BarArray] = []
        have = 0
        end_ms = end_ns // MS
        while have < limit:
            page = min(limit - have + 1, MAX_KLINES_LIMIT[self.market])  # +1: the candle still forming
            got, raw_count, _ = await self._page(venue_symbol, interval, None, end_ms, page)
            got = self._closed([got], interval, end_ns)
            parts.insert(0, got)
            have += len(got)
            if raw_count < page or not len(got):
                break
            end_ms = int(got["open_time"][0]) // MS - 1
        out = self._closed(parts, interval, end_ns)
        return out[-limit:] if limit else out[:0]

    async def _page(
        self, venue_symbol: str, interval: str, start_ms: int | None, end_ms: int, limit: int
    ) -> tuple[BarArray, int, int | None]:
        params: dict[str, str | int] = {"symbol": venue_symbol, "interval": interval, "endTime": end_ms, "limit": limit}
        if start_ms is not None:
            params["startTime"] = start_ms
        payload = await self._http.get_json(self._source, self._rest, params)
        self.rest_pages += 1
        try:
            bars, dropped = parse_rest_klines(payload, interval)
        except BadData as exc:
            self._rest_dropped.add(exc.reason, str(exc))
            raise
        for reason, n in dropped.items():
            self._rest_dropped.add(reason, f"{venue_symbol} {interval}", n)
        self.rest_bars += len(bars)
        last = payload[-1][0] if payload and isinstance(payload[-1], list) and payload[-1] else None
        return bars, len(payload), last if type(last) is int else None

    @staticmethod
    def _closed(parts: list[BarArray], interval: str, end_ns: int) -> BarArray:
        parts = [p for p in parts if len(p)]
        if not parts:
            return empty_bars()
        out = np.concatenate(parts) if len(parts) > 1 else parts[0]
        out = out[parse_interval(interval).next_open_array(out["open_time"]) <= end_ns]
        if len(out) > 1:
            keep = np.r_[True, np.diff(out["open_time"]) > 0]
            out = out[keep]
        return out

    # ------------------------------------------------------------------------------- websocket
    def connect(
        self, symbols: Sequence[str], intervals: Sequence[str]
    ) -> AbstractAsyncContextManager[AsyncIterator[Bar]]:
        """One combined-stream websocket for every (symbol, interval); iterating yields closed bars only."""
        return self._connect(symbols, intervals)

    def stream_url(self, symbols: Sequence[str], intervals: Sequence[str]) -> str:
        for iv in intervals:
            self._check_interval(iv)
        unknown = [s for s in symbols if s not in self._to_venue]
        if unknown:
            raise ValueError(f"{self.name}: not this feed's instruments: {unknown}")
        streams = [stream_name(self._to_venue[s], iv) for s in symbols for iv in intervals]
        if len(streams) > MAX_STREAMS[self.market]:
            raise ConfigError(
                f"{self.name}: {len(streams)} streams on one connection; Binance {self.market} allows "
                f"{MAX_STREAMS[self.market]} (fewer instruments or timeframes)"
            )
        return combined_stream_url(self._ws_url, self.market, streams)

    @asynccontextmanager
    async def _connect(self, symbols: Sequence[str], intervals: Sequence[str]) -> AsyncIterator[AsyncIterator[Bar]]:
        url = self.stream_url(symbols, intervals)
        if self._parser is not None:  # keep the totals across connections
            self._forming += self._parser.forming
            self._control += self._parser.control
        self._parser = KlineParser(
            {self._to_venue[s]: s for s in symbols}, intervals, max_frame_bytes=self._max_frame_bytes
        )
        receive_timeout = self._reconnect.receive_timeout_seconds
        self.connections += 1
        async with self._session.ws_connect(
            url,
            heartbeat=min(30.0, receive_timeout / 3),
            autoping=True,
            decode_text=False,
            max_msg_size=max(4 * self._max_frame_bytes, 1 << 20),
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=min(5.0, receive_timeout)),
        ) as ws:
            self.connected = True
            log.info("stream connected", extra={"source": self.name, "streams": len(symbols) * len(intervals)})
            try:
                yield _KlineStream(self, ws, self._parser, receive_timeout)
            finally:
                self.connected = False

    def _handle(self, parser: KlineParser, raw: bytes) -> Bar | None:
        """One frame: a closed bar, or None (forming update, control reply, or dropped and counted)."""
        self.messages += 1
        try:
            bar = parser.parse(raw)
        except BadData as exc:
            self._malformed.add(exc.reason, str(exc))
            return None
        if bar is None:
            return None
        close_ms = bar.open_time // MS + _span_ms(bar)
        if close_ms > self._clock.now_ns() // MS + self._future_ms:
            self._malformed.add("future", f"{bar.symbol} {bar.interval} closes at {close_ms} ms")
            return None
        self.closed_bars += 1
        return bar

    def _disconnected(self, reason: str) -> None:
        self.disconnects[reason] += 1

    def _check_interval(self, interval: str) -> None:
        if interval not in INTERVALS[self.market]:
            raise ValueError(f"{self.name}: Binance {self.market} has no {interval!r} klines")

    def statistics(self) -> dict[str, Any]:
        parser = self._parser
        return {
            "market": self.market,
            "connected": self.connected,
            "connections": self.connections,
            "disconnects": dict(self.disconnects),
            "messages": self.messages,
            "closed_bars": self.closed_bars,
            "forming_updates": self._forming + (parser.forming if parser else 0),
            "control_replies": self._control + (parser.control if parser else 0),
            "malformed": dict(self._malformed.counts),
            "rest_pages": self.rest_pages,
            "rest_bars": self.rest_bars,
            "rest_rows_dropped": dict(self._rest_dropped.counts),
            "http": self._source.statistics(),
        }


def _span_ms(bar: Bar) -> int:
    return (parse_interval(bar.interval).next_open(bar.open_time) - bar.open_time) // MS


class _KlineStream:
    """Async iterator over one websocket: closed bars; raises :class:`FeedDisconnected` when the link ends."""

    __slots__ = ("_owner", "_parser", "_timeout", "_ws")

    def __init__(
        self, owner: BinanceKlines, ws: aiohttp.ClientWebSocketResponse[Any], parser: KlineParser, timeout: float
    ) -> None:
        self._owner = owner
        self._ws = ws
        self._parser = parser
        self._timeout = timeout

    def __aiter__(self) -> _KlineStream:
        return self

    async def __anext__(self) -> Bar:
        ws, owner, parser = self._ws, self._owner, self._parser
        while True:
            try:
                msg = await ws.receive(timeout=self._timeout)
            except TimeoutError:
                owner._disconnected("silence")
                raise FeedDisconnected(f"{owner.name}: nothing received for {self._timeout:g} s") from None
            kind = msg.type
            if kind is aiohttp.WSMsgType.TEXT or kind is aiohttp.WSMsgType.BINARY:
                data = msg.data
                try:
                    bar = owner._handle(parser, data if isinstance(data, bytes) else data.encode())
                except ServerShutdown:
                    owner._disconnected("server_shutdown")
                    log.info("server shutdown notice; reconnecting", extra={"source": owner.name})
                    raise
                if bar is not None:
                    return bar
                continue
            if kind is aiohttp.WSMsgType.ERROR:
                owner._disconnected("error")
                raise FeedDisconnected(f"{owner.name}: websocket error: {ws.exception() or msg.data}")
            owner._disconnected("closed")
            raise FeedDisconnected(f"{owner.name}: websocket closed by the server (code {ws.close_code})")


# ------------------------------------------------------------------------------------- funding
_PIA_USD = re.compile(r"^([A-Z0-9]+)-USD$")


def funding_venue_symbols(symbols: Sequence[str], instruments: Sequence[Instrument]) -> dict[str, str]:
    """pia symbol -> USD-M perpetual: the Binance instrument's venue symbol, else ``BASE-USD`` -> ``BASEUSDT``."""
    by_symbol = {i.symbol: i for i in instruments}
    out: dict[str, str] = {}
    for s in symbols:
        inst = by_symbol.get(s)
        if inst is not None and inst.venue in (Venue.BINANCE_SPOT, Venue.BINANCE_FUTURES):
            out[s] = inst.venue_symbol
        elif (m := _PIA_USD.match(s)) is not None:
            out[s] = f"{m.group(1)}USDT"
        else:
            log.warning("funding symbol has no USD-M perpetual; skipped", extra={"symbol": s})
    return out


class FundingFeed:
    """Polls ``GET /fapi/v1/premiumIndex`` per symbol every ``poll_seconds`` and publishes ``FundingUpdated``.

    A failed poll (HTTP error, open circuit, bad answer) is counted and logged (once per reason per
    minute) and retried at the next poll; :meth:`run` never ends on its own.
    """

    name = "binance_funding"

    def __init__(
        self,
        config: LiveFeedConfig,
        instruments: Sequence[Instrument],
        http: HttpClient,
        source: Source,
        bus: Bus,
        clock: Clock,
        *,
        poll_seconds: float = 60.0,
    ) -> None:
        self._url = config.binance.futures_rest_url.rstrip("/") + PREMIUM_INDEX_PATH
        self.symbols = funding_venue_symbols(config.binance.funding_symbols, instruments)
        self._http = http
        self._source = source
        self._bus = bus
        self._clock = clock
        self._poll = poll_seconds
        self._errors = _RateLimitedLog(self.name, clock, "funding poll failed")
        self.polls = 0
        self.published = 0
        self.latest: dict[str, FundingUpdated] = {}

    async def run(self) -> None:
        while True:
            await self.poll_once()
            await self._clock.sleep(self._poll)

    async def poll_once(self) -> int:
        """One round over every symbol; returns how many updates were published."""
        self.polls += 1
        done = 0
        for symbol, venue_symbol in self.symbols.items():
            try:
                payload = await self._http.get_json(self._source, self._url, {"symbol": venue_symbol})
                index = parse_premium_index(payload)
            except BadData as exc:
                self._errors.add(exc.reason, f"{venue_symbol}: {exc}")
                continue
            except FeedError as exc:
                self._errors.add(type(exc).__name__, f"{venue_symbol}: {exc}")
                continue
            if index.symbol != venue_symbol:
                self._errors.add("wrong_symbol", f"asked {venue_symbol}, got {index.symbol}")
                continue
            event = FundingUpdated(
                ts_event=index.time_ns,
                ts_recv=self._clock.now_ns(),
                symbol=symbol,
                funding_rate=index.funding_rate,
                mark_price=index.mark_price,
                next_funding_time=index.next_funding_ns,
            )
            self._bus.publish_nowait(funding(), event)
            self.latest[symbol] = event
            self.published += 1
            done += 1
        return done

    def statistics(self) -> dict[str, Any]:
        return {
            "symbols": dict(self.symbols),
            "polls": self.polls,
            "published": self.published,
            "errors": dict(self._errors.counts),
            "http": self._source.statistics(),
        }


# ------------------------------------------------------------------------------------- wiring
def build_binance_feeds(
    config: LiveFeedConfig,
    instruments: Sequence[Instrument],
    intervals: Sequence[str],
    session: aiohttp.ClientSession,
    clock: Clock,
) -> list[LiveFeed]:
    """One :class:`LiveFeed` for spot instruments (``binance_spot``) and one for futures (``binance_futures``)."""
    b, h, rc = config.binance, config.http, config.reconnect
    if not b.enabled:
        return []
    http = HttpClient(
        session, clock, retries=h.retries, backoff_seconds=h.backoff_seconds, timeout_seconds=h.timeout_seconds
    )
    feeds: list[LiveFeed] = []
    markets: tuple[tuple[Market, str, str], ...] = (
        ("spot", b.spot_rest_url, b.spot_ws_url),
        ("futures", b.futures_rest_url, b.futures_ws_url),
    )
    wanted = list(dict.fromkeys(intervals))
    for market, rest_url, ws_url in markets:
        mine = [i for i in instruments if i.venue is _VENUE[market]]
        if not mine:
            continue
        name = f"binance_{market}"
        bad = [iv for iv in wanted if iv not in INTERVALS[market]]
        if bad:
            raise ConfigError(f"{name}: Binance has no {', '.join(bad)} klines")
        if len(mine) * len(wanted) > MAX_STREAMS[market]:
            raise ConfigError(
                f"{name}: {len(mine)} instruments x {len(wanted)} intervals exceed Binance's "
                f"{MAX_STREAMS[market]} streams per connection"
            )
        breaker = CircuitBreaker(
            name, clock, failure_threshold=h.breaker_failures, reset_seconds=h.breaker_reset_seconds
        )
        source = BinanceKlines(
            name, rest_url, ws_url, market, mine, http, Source(name, breaker), clock, rc, session=session
        )
        backoff = Backoff(rc.initial_seconds, 2, rc.max_seconds)
        feeds.append(LiveFeed(source, mine, wanted, clock, history_bars=config.history_bars, backoff=backoff))
    return feeds
