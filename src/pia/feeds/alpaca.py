"""The Alpaca stock feed: US equities from Alpaca Market Data v2 (REST history, websocket minute bars).

:class:`AlpacaBars` is the :class:`~pia.feeds.live.KlineSource` for Alpaca (``contiguous = False``:
minutes without trades have no bar); :func:`build_alpaca_feed` wraps it in an :class:`AlpacaLiveFeed`.
Candles follow the NYSE session (rules in :mod:`pia.market_hours`); live and history are built by
one rule from the same kind of data, so they agree exactly:

- **live**: the stream (``connected`` -> ``auth`` -> ``authenticated`` -> subscribe ``bars`` and
  ``updatedBars``) carries minute bars; a :class:`~pia.market_hours.SessionAggregator` per symbol
  builds every interval. A candle is emitted on the bar that ends it, or on a later bar of any symbol
  (Alpaca publishes every symbol's minute at once), or once the stream has been quiet for
  ``close_grace_s`` past its end. ``u`` bars correct the candle in progress; one landing in an emitted
  candle is counted and logged, never re-emitted. Minute bars outside the regular session become
  :class:`~pia.feeds.base.Quote` (``extended_hours=True``); regular minutes also yield a Quote.
- **(re)connect**: after subscribing, the minutes since the last one seen (first time: since the start
  of the oldest candle in progress) come from REST, so nothing closed while away is lost.
- **history** (:meth:`AlpacaBars.fetch`): REST bars of the longest timeframe whose grid holds every
  candle boundary (``30Min`` for 1h .. 1M, ``15Min`` for 15m): the same trades, far fewer bars; at
  most ``history_sessions`` sessions back (5 years).

Auth and plan errors (402, 406 connection limit, 409 ...) raise :class:`AlpacaStreamError` with the
code; :class:`~pia.feeds.live.LiveFeed`'s backoff spaces the retries (no hot loop).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import aiohttp
import orjson
from pydantic import SecretStr

from pia.clock import Clock
from pia.config import AlpacaConfig, LiveFeedConfig, ReconnectConfig, Secrets
from pia.errors import BadData, FeedDisconnected, FeedError
from pia.events import Bar
from pia.feeds.alpaca_wire import (
    AlpacaStreamError,
    BarsQuery,
    FeedHealth,
    StreamBar,
    SubArray,
    catch_up_parts,
    check_interval,
    concat_subs,
    control_messages,
    error_code,
    history_start,
    read_frame,
    sub_step_for,
)
from pia.feeds.backoff import Backoff
from pia.feeds.base import BarArray, Quote, empty_bars
from pia.feeds.breaker import CircuitBreaker
from pia.feeds.http import HttpClient, HttpStatusError, Source
from pia.feeds.live import KlineSource, LiveFeed
from pia.instruments import Instrument, Venue
from pia.intervals import MINUTE, NS, parse_interval
from pia.market_hours import NyseCalendar, SessionAggregator, calendar, session_candles

__all__ = ["AlpacaBars", "AlpacaLiveFeed", "AlpacaStreamError", "build_alpaca_feed"]

log = logging.getLogger(__name__)


class AlpacaBars:
    """Alpaca stock candles (REST + websocket), session-aligned. One instance per service."""

    contiguous = False

    def __init__(
        self,
        config: AlpacaConfig,
        key_id: SecretStr,
        secret_key: SecretStr,
        instruments: Sequence[Instrument],
        http: HttpClient,
        source: Source,
        clock: Clock,
        reconnect: ReconnectConfig,
        *,
        session: aiohttp.ClientSession,
        name: str = "alpaca",
        nyse: NyseCalendar | None = None,
        history_sessions: int = 1260,
        close_grace_s: float = 3.0,
        correction_window_s: float = 120.0,
    ) -> None:
        self.name = name
        self._config = config
        self._key_id, self._secret = key_id, secret_key
        self._to_venue = {i.symbol: i.venue_symbol for i in instruments}
        self._http, self._source, self._clock = http, source, clock
        self._reconnect = reconnect
        self._session = session
        self._nyse = nyse
        self._history_sessions = history_sessions
        self._grace = int(close_grace_s * NS)
        self._correction_window = int(correction_window_s * NS)
        self._rest_url = config.rest_url.rstrip("/")
        self._ws_url = config.ws_url.rstrip("/")
        self._aggs: dict[str, SessionAggregator] = {}
        self._cache: dict[tuple[str, int], tuple[int, int, SubArray]] = {}
        self._history_end: int | None = None
        self._data_time = 0
        self.connected = False
        self.counts = FeedHealth(name, clock)

    @property
    def cal(self) -> NyseCalendar:
        if self._nyse is None:
            self._nyse = calendar()
        return self._nyse

    def _headers(self) -> dict[str, str]:
        key, secret = self._key_id.get_secret_value(), self._secret.get_secret_value()
        return {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret}

    def _venue(self, symbol: str) -> str:
        try:
            return self._to_venue[symbol]
        except KeyError:
            raise ValueError(f"{self.name}: not an Alpaca instrument: {symbol!r}") from None

    # ------------------------------------------------------------------------------ REST
    async def rest_bars(self, venues: Sequence[str], step_ns: int, start_ns: int, end_ns: int) -> dict[str, SubArray]:
        """Every ``step_ns`` bar of ``venues`` starting at or after ``start_ns`` and ending by ``end_ns``
        (all pages of ``GET /v2/stocks/bars``)."""
        cfg = self._config
        query = BarsQuery(venues, step_ns, start_ns, end_ns, feed=cfg.data_feed, adjustment=cfg.adjustment)
        more = not query.empty
        while more:
            try:
                body = await self._http.get_json(
                    self._source, f"{self._rest_url}/v2/stocks/bars", query.params, self._headers()
                )
                more = query.add(body)
            except HttpStatusError as exc:
                if exc.status in (401, 403):
                    self.counts.auth_failures += 1
                    raise FeedError(
                        f"{self.name}: REST refused the request (HTTP {exc.status}: {exc.body[:120]}): check "
                        "PIA_ALPACA_KEY_ID / PIA_ALPACA_SECRET_KEY and that the plan covers the data feed"
                    ) from exc
                raise
            except BadData as exc:
                self.counts.malformed.add(f"rest_{exc.reason}", str(exc))
                raise FeedError(f"{self.name}: bad bars page: {exc}") from exc
        for reason, n in query.dropped.items():
            self.counts.malformed.add(f"rest_{reason}", "", n)
        return query.result()

    async def fetch(self, symbol: str, interval: str, *, start_ns: int | None, end_ns: int, limit: int) -> BarArray:
        """Closed session candles (end <= ``end_ns``), oldest first.

        With ``start_ns``: every closed candle from the one containing ``start_ns`` (or the first after
        it when the market is closed then). Without: the newest ``limit`` closed candles, looking back at
        most ``history_sessions`` sessions."""
        check_interval(interval)
        venue, cal = self._venue(symbol), self.cal
        if start_ns is None:
            self._history_end = end_ns if self._history_end is None else min(self._history_end, end_ns)
            start = history_start(cal, interval, end_ns, limit, self._history_sessions)
            # 30-minute history: read the whole look-back once; every longer interval reuses it
            first = max(0, cal.last_index_before(end_ns) - self._history_sessions + 1)
            widen = int(cal.opens[cal.group_table("1M")[0][first]])
        else:
            start, widen = cal.candle_from(interval, start_ns)[0], None
        if start < 0 or start >= end_ns:
            return empty_bars()
        step = sub_step_for(cal, [interval], start, end_ns)
        fetch_from = min(start, widen) if widen is not None and step == 30 * MINUTE else start
        subs = await self._cached_subs(venue, step, fetch_from, end_ns)
        candles = session_candles(subs, interval, cal, end_ns=end_ns, start_ns=start)
        return candles[-limit:] if start_ns is None else candles

    async def _cached_subs(self, venue: str, step: int, start: int, end: int) -> SubArray:
        for key in [k for k in self._cache if k[0] != venue]:
            del self._cache[key]
        got = self._cache.get((venue, step))
        if got is not None and got[0] <= start:
            c_start, c_end, arr = got
            if c_end < end:
                more = (await self.rest_bars([venue], step, c_end, end))[venue]
                arr = concat_subs([arr, more[more["open_time"] >= c_end]])
                self._cache[(venue, step)] = (c_start, end, arr)
            return arr[(arr["open_time"] >= start) & (arr["end_time"] <= end)]
        arr = (await self.rest_bars([venue], step, start, end))[venue]
        self._cache[(venue, step)] = (start, end, arr)
        return arr

    # ------------------------------------------------------------------------------ stream
    @asynccontextmanager
    async def connect(
        self, symbols: Sequence[str], intervals: Sequence[str]
    ) -> AsyncIterator[AsyncIterator[Bar | Quote]]:
        """Authenticate, subscribe, catch up from REST; iterating yields closed candles and Quotes."""
        for iv in intervals:
            check_interval(iv)
        venues = {self._venue(s): s for s in symbols}
        for s in symbols:
            agg = self._aggs.get(s)
            if agg is None or agg.intervals != sorted(set(intervals), key=lambda c: parse_interval(c).nominal_ns):
                self._aggs[s] = SessionAggregator(s, intervals, self.cal)
        timeout = self._reconnect.receive_timeout_seconds
        self.counts.connections += 1
        url = f"{self._ws_url}/v2/{self._config.data_feed}"
        async with self._session.ws_connect(
            url,
            heartbeat=min(30.0, max(timeout / 3, 0.05)),
            autoping=True,
            decode_text=False,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=min(5.0, timeout)),
        ) as ws:
            stream = _AlpacaStream(self, ws, venues)
            await stream.handshake()
            await self._catch_up(venues, stream.out)
            self.connected = True
            log.info("alpaca stream connected", extra={"source": self.name, "symbols": len(venues), "url": url})
            try:
                yield stream
            finally:
                self.connected = False
                stream.close()

    async def _catch_up(self, venues: Mapping[str, str], out: deque[Bar | Quote]) -> None:
        """REST minutes since the last one seen (first time: since the oldest candle in progress)."""
        now, cal = self._clock.now_ns(), self.cal
        starts: dict[str, int] = {}
        fresh = all(self._aggs[s].observed_from is None for s in venues.values())
        for venue, symbol in venues.items():
            agg = self._aggs[symbol]
            if agg.observed_from is None:
                seen_at = min(now, self._history_end or now) - self._grace
                agg.start(min(cal.candle_from(iv, seen_at)[0] for iv in agg.intervals))
                starts[venue] = agg.observed_from or 0
            else:
                # every symbol's minutes up to the newest seen of any symbol were published (none lost
                # if quiet), so a symbol without trades does not drag the catch-up back to its seed
                seen = max(agg.latest_end, self._data_time)
                starts[venue] = max(agg.observed_from, seen - self._correction_window)
        until = now // MINUTE * MINUTE
        start = min(starts.values(), default=until)
        intervals = next(iter(self._aggs.values())).intervals if self._aggs else []
        parts = catch_up_parts(cal, intervals, start, until, coarse=fresh)  # coarse only from a common seed
        latest: dict[str, Any] = {}
        reached = 0
        for a, b, st in parts:
            got = await self.rest_bars(list(venues), st, a, b)
            for venue, arr in got.items():
                agg = self._aggs[venues[venue]]
                outcomes, bars = agg.ingest_rows(arr[arr["open_time"] >= starts[venue]], coarse=st > MINUTE)
                self.counts.catch_up_bars += len(outcomes)
                for outcome, t in outcomes:
                    self.counts.outcome(outcome, "rest", agg.symbol, t)
                self._emit(bars, out)
                if len(arr):
                    reached = max(reached, int(arr["open_time"][-1]))
                    if st == MINUTE:
                        latest[venue] = arr[-1].tolist()
        for venue, (t, _, o, h, low, c, v) in latest.items():  # the freshest price
            self._quote(venues[venue], StreamBar("b", venue, t, o, h, low, c, v), out)
        self.data_reached(reached, out)

    def data_reached(self, ts_ns: int, out: deque[Bar | Quote]) -> None:
        """A bar of some symbol starting at ``ts_ns`` arrived: Alpaca publishes every symbol's bar of a
        minute at once, so every candle ending by then is complete, whichever symbol it belongs to."""
        if ts_ns > self._data_time:
            self._data_time = ts_ns
            for agg in self._aggs.values():
                self._emit(agg.flush(ts_ns), out)

    def flush(self, out: deque[Bar | Quote]) -> None:
        """Emit candles whose end is ``close_grace_s`` in the past (for a stream gone quiet)."""
        until = self._clock.now_ns() - self._grace
        for agg in self._aggs.values():
            self._emit(agg.flush(until), out)

    def next_deadline(self) -> int | None:
        ends = [d for agg in self._aggs.values() if (d := agg.next_deadline()) is not None]
        return min(ends) + self._grace if ends else None

    def on_bar(self, symbol: str, bar: StreamBar, out: deque[Bar | Quote]) -> None:
        """One ``b``/``u`` message from the stream."""
        agg = self._aggs[symbol]
        if bar.kind == "b":
            self.counts.minute_bars += 1
            self.data_reached(bar.open_ns, out)
        if self.cal.index_at(bar.open_ns) < 0:  # extended hours: a price, not a bar
            self._emit(agg.flush(bar.open_ns), out)
            if bar.kind == "b":
                self._quote(symbol, bar, out)
            return
        outcome, bars = agg.ingest(bar.open_ns, bar.end_ns, bar.open, bar.high, bar.low, bar.close, bar.volume)
        self.counts.outcome(outcome, bar.kind, symbol, bar.open_ns)
        self._emit(bars, out)
        if bar.kind == "b" and outcome == "new":
            self._quote(symbol, bar, out)

    def _quote(self, symbol: str, bar: StreamBar, out: deque[Bar | Quote]) -> None:
        extended = self.cal.index_at(bar.open_ns) < 0
        self.counts.quotes["extended" if extended else "regular"] += 1
        out.append(Quote(symbol, bar.close, bar.end_ns, extended_hours=extended))

    def _emit(self, bars: list[Bar], out: deque[Bar | Quote]) -> None:
        for b in bars:
            self.counts.candles[b.interval] += 1
            out.append(b)

    def statistics(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            **self.counts.as_dict(),
            "partial_skipped": sum(a.partial_skipped for a in self._aggs.values()),
            "http": self._source.statistics(),
        }


class _AlpacaStream:
    """Iterates one connection: candles and Quotes, with time-based closes and a silence check."""

    def __init__(self, src: AlpacaBars, ws: aiohttp.ClientWebSocketResponse[Any], venues: Mapping[str, str]) -> None:
        self._src, self._ws, self._venues = src, ws, venues
        self._clock = src._clock
        self._timeout = src._reconnect.receive_timeout_seconds
        self._last_msg = self._clock.monotonic()
        self._recv: asyncio.Future[Any] | None = None
        self._early: list[bytes] = []
        self.out: deque[Bar | Quote] = deque()

    def __aiter__(self) -> _AlpacaStream:
        return self

    async def __anext__(self) -> Bar | Quote:
        src = self._src
        for raw in self._early:
            self._frame(raw)
        self._early.clear()
        grace = src._grace / NS
        while True:
            if self.out:
                return self.out.popleft()
            now, idle = self._clock.now_ns(), self._clock.monotonic() - self._last_msg
            deadline = src.next_deadline()
            if deadline is not None and deadline <= now and idle >= grace:
                src.flush(self.out)  # quiet for a while and past a candle's end: nothing more will come
                continue
            wait = self._timeout
            if deadline is not None:
                wait = min(wait, max((deadline - now) / NS, grace - idle, 0.001))
            msg = await self._receive(wait)
            if msg is not None:
                self._message(msg)
            elif self._clock.monotonic() - self._last_msg > self._timeout and not src.cal.expected_silence(now):
                src.counts.disconnects["silent"] += 1
                raise FeedDisconnected(f"alpaca stream silent for {self._timeout:.1f} s while the market is open")

    async def _receive(self, wait: float) -> aiohttp.WSMessage | None:
        if self._recv is None:
            self._recv = asyncio.ensure_future(self._ws.receive())
        sleeper: asyncio.Future[Any] = asyncio.ensure_future(self._clock.sleep(wait))
        try:
            await asyncio.wait({self._recv, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
        if not self._recv.done():
            return None
        msg: aiohttp.WSMessage = self._recv.result()
        self._recv = None
        return msg

    def _message(self, msg: aiohttp.WSMessage) -> None:
        self._last_msg = self._clock.monotonic()
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            self._src.counts.disconnects["closed"] += 1
            raise FeedDisconnected(f"alpaca stream closed by the server ({msg.data})")
        if msg.type is aiohttp.WSMsgType.ERROR:
            self._src.counts.disconnects["error"] += 1
            raise FeedDisconnected(f"alpaca stream error: {msg.data}")
        if msg.type is aiohttp.WSMsgType.BINARY:
            self._src.counts.malformed.add("binary_frame", f"{len(msg.data)} bytes")
            return
        if msg.type is aiohttp.WSMsgType.TEXT:
            self._frame(msg.data)

    def _frame(self, raw: bytes | str) -> None:
        """Handle one frame: data messages go to the source; an error message ends the connection."""
        content = read_frame(raw, self._venues)
        for reason, detail in content.dropped:
            self._src.counts.malformed.add(reason, detail)
        for symbol, bar in content.bars:
            self._src.on_bar(symbol, bar, self.out)
        if content.errors:
            raise self._src.counts.stream_error(*content.errors[0], handshake=False)

    async def handshake(self) -> None:
        """``connected`` -> auth -> ``authenticated`` -> subscribe -> ``subscription``."""
        src = self._src
        await self._expect("connected")
        auth = {"action": "auth", "key": src._key_id.get_secret_value(), "secret": src._secret.get_secret_value()}
        await self._ws.send_str(orjson.dumps(auth).decode())
        await self._expect("authenticated")
        venues = list(self._venues)
        await self._ws.send_str(orjson.dumps({"action": "subscribe", "bars": venues, "updatedBars": venues}).decode())
        reply = await self._expect("subscription")
        missing = sorted(set(venues) - set(reply.get("bars") or []))
        if missing:
            log.warning("alpaca did not subscribe every symbol", extra={"source": src.name, "missing": missing})

    async def _expect(self, what: str) -> dict[str, Any]:
        async with asyncio.timeout(self._timeout):
            while True:
                msg = await self._ws.receive()
                if msg.type is aiohttp.WSMsgType.BINARY:
                    continue
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    self._src.counts.disconnects["closed_in_handshake"] += 1
                    raise FeedDisconnected(f"alpaca stream closed while waiting for {what!r} ({msg.type.name})")
                controls = control_messages(msg.data)
                if not controls and what == "subscription":  # data may already follow: keep it for the stream
                    self._early.append(msg.data)
                for item in controls:
                    if item.get("T") == "error":
                        raise self._src.counts.stream_error(error_code(item), str(item.get("msg", "")), handshake=True)
                    if item.get("T") == what or (item.get("T") == "success" and item.get("msg") == what):
                        return item

    def close(self) -> None:
        if self._recv is not None:
            self._recv.cancel()
            self._recv = None


class AlpacaLiveFeed(LiveFeed):
    """:class:`LiveFeed` over :class:`AlpacaBars`, whose stream also carries :class:`Quote` price updates
    (``LiveFeed`` itself admits only bars: a Quote passes through untouched, not deduplicated)."""

    def __init__(
        self,
        source: AlpacaBars,
        instruments: Sequence[Instrument],
        intervals: Sequence[str],
        clock: Clock,
        *,
        history_bars: int = 500,
        backoff: Backoff | None = None,
    ) -> None:
        # KlineSource.connect is typed to yield Bar only; this source yields Bar | Quote (see _admit)
        super().__init__(
            cast(KlineSource, source), instruments, intervals, clock, history_bars=history_bars, backoff=backoff
        )

    async def _admit(self, bar: Bar | Quote) -> list[Bar]:
        if isinstance(bar, Quote):
            return [cast(Bar, bar)]  # handed on as is: FeedRunner publishes it as PriceUpdated
        return await super()._admit(bar)


def build_alpaca_feed(
    config: LiveFeedConfig,
    secrets: Secrets,
    instruments: Sequence[Instrument],
    intervals: Sequence[str],
    session: aiohttp.ClientSession,
    clock: Clock,
) -> LiveFeed | None:
    """The Alpaca feed for the stock instruments, or None (no stocks, disabled, or no keys: one INFO line)."""
    stocks = [i for i in instruments if i.venue is Venue.ALPACA]
    if not stocks or not config.alpaca.enabled:
        return None
    if secrets.alpaca_key_id is None or secrets.alpaca_secret_key is None:
        log.info(
            f"Alpaca keys not set (PIA_ALPACA_KEY_ID, PIA_ALPACA_SECRET_KEY): {len(stocks)} stock instruments skipped",
            extra={"source": "alpaca", "instruments_skipped": len(stocks)},
        )
        return None
    http_cfg = config.http
    http = HttpClient(
        session,
        clock,
        retries=http_cfg.retries,
        backoff_seconds=http_cfg.backoff_seconds,
        timeout_seconds=http_cfg.timeout_seconds,
    )
    breaker = CircuitBreaker(
        "alpaca", clock, failure_threshold=http_cfg.breaker_failures, reset_seconds=http_cfg.breaker_reset_seconds
    )
    source = AlpacaBars(
        config.alpaca,
        secrets.alpaca_key_id,
        secrets.alpaca_secret_key,
        stocks,
        http,
        Source("alpaca", breaker),
        clock,
        config.reconnect,
        session=session,
    )
    rc = config.reconnect
    return AlpacaLiveFeed(
        source,
        stocks,
        intervals,
        clock,
        history_bars=config.history_bars,
        backoff=Backoff(rc.initial_seconds, 2.0, rc.max_seconds),
    )
