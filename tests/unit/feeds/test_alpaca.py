"""The Alpaca stock feed: wire parsing (real recorded REST pages), auth and connection errors, session
candles live and from history, extended hours, corrections, reconnects, and the no-keys path.

Everything talks to :class:`~pia.testing.fake_alpaca.FakeAlpaca` on 127.0.0.1 (minute bars generated
from real daily candles; see :mod:`pia.testing.harness_alpaca`)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import orjson
import pytest
from pydantic import SecretStr

from pia.clock import LiveClock
from pia.config import AlpacaConfig, LiveFeedConfig, ReconnectConfig, Secrets
from pia.errors import BadData, FeedError
from pia.events import Bar
from pia.feeds.alpaca import AlpacaBars, AlpacaLiveFeed, AlpacaStreamError, build_alpaca_feed
from pia.feeds.alpaca_wire import format_time, parse_bars_page, parse_stream_bar, parse_time, read_frame, timeframe_code
from pia.feeds.backoff import Backoff
from pia.feeds.base import Quote
from pia.feeds.breaker import CircuitBreaker
from pia.feeds.http import HttpClient, Source
from pia.feeds.live import LiveFeed
from pia.instruments import AssetClass, Instrument, Universe, Venue, read_universe_toml
from pia.intervals import DAY, MINUTE, NS
from pia.market_hours import calendar
from pia.testing.fake_alpaca import AlpacaHarness, AlpacaMarket, FakeAlpaca
from pia.testing.harness import FeedHarness
from pia.testing.harness_alpaca import KEY_ID, SECRET_KEY, VirtualClock

OPT = "messages/alpaca/optitrader"
PAGES_11 = f"{OPT}/stocks_bars_1Day_21sym_2021-01-31_2023-01-31_11pages.json"
PAGES_3 = f"{OPT}/stocks_bars_1Day_21sym_2023-01-01_2023-06-01_3pages.json"
PAGE_1 = f"{OPT}/stocks_bars_1Day_5sym_2023-01-01_2023-06-01_1page.json"
INTERVALS = ("15m", "1h", "4h", "1d", "3d", "1w", "1M")


def ns(text: str) -> int:
    return int(np.datetime64(text, "ns").astype(np.int64))


def interactions(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text())["interactions"])


class Run:
    """Reads a feed's history and stream in a task; keeps every closed bar and quote."""

    def __init__(self, feed: LiveFeed) -> None:
        self.feed = feed
        self.bars: dict[tuple[str, str], list[Bar]] = defaultdict(list)
        self.history: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.quotes: list[Quote] = []
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> Run:
        for h in await self.feed.history(INTERVALS):
            self.history[(h.symbol, h.interval)] = h.bars["open_time"].tolist()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        async for item in self.feed.stream():
            if isinstance(item, Quote):
                self.quotes.append(item)
            else:
                self.bars[(item.symbol, item.interval)].append(item)
                self._changed.set()

    def times(self, symbol: str, interval: str) -> list[int]:
        return self.history[(symbol, interval)] + [b.open_time for b in self.bars[(symbol, interval)]]

    async def settle(self, harness: AlpacaHarness, within: float = 10.0) -> None:
        """Until every (symbol, interval) has as many candles as the fake has closed."""

        def complete() -> bool:
            return all(
                len(self.times(s, iv)) >= len(harness.expected(s, iv)) for s in harness.symbols for iv in INTERVALS
            )

        async def done() -> None:
            while not complete():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(done(), within)
        await asyncio.sleep(0.05)  # anything extra (a duplicate) would arrive now

    def assert_exact(self, harness: AlpacaHarness) -> None:
        for s in harness.symbols:
            for iv in INTERVALS:
                want = harness.expected(s, iv)
                assert self.times(s, iv) == want["open_time"].tolist(), (s, iv)
                streamed = {b.open_time: (b.open, b.high, b.low, b.close, b.volume) for b in self.bars[(s, iv)]}
                for row in want.tolist():
                    if row[0] in streamed:
                        assert streamed[row[0]] == row[1:], (s, iv, row[0])


@pytest.fixture
async def harness() -> AsyncIterator[AlpacaHarness]:
    async with AlpacaHarness().running() as h:
        yield h


# ---------------------------------------------------------------------------------- wire
def test_recorded_rest_pages_parse_exactly(shared_data: Path) -> None:
    """The 11 recorded pages of one paginated request: 10513 daily bars, chained by page tokens."""
    pages = interactions(shared_data / PAGES_11)
    parsed = [parse_bars_page(orjson.loads(p["response"]["body"]), DAY) for p in pages]
    assert [p.count for p in parsed] == [1000] * 10 + [513]
    assert all(not p.dropped for p in parsed)
    for page, following in zip(parsed, pages[1:], strict=False):
        assert page.next_page_token is not None
        assert f"page_token={page.next_page_token}" in following["request"]["uri"].replace("%3D", "=")
    assert parsed[-1].next_page_token is None
    per_symbol: dict[str, list[int]] = defaultdict(list)
    for page in parsed:
        for sym, arr in page.bars.items():
            per_symbol[sym] += arr["open_time"].tolist()
    assert len(per_symbol) == 21 and sum(map(len, per_symbol.values())) == 10513
    assert {s: len(t) for s, t in per_symbol.items() if len(t) != 503} == {"COIN": 453}
    assert all(t == sorted(set(t)) for t in per_symbol.values())  # pages split symbols, never repeat a bar
    assert per_symbol["AAPL"][0] == ns("2021-02-01T05:00")  # midnight New York (EST) ...
    assert ns("2022-06-01T04:00") in per_symbol["AAPL"]  # ... and in summer (EDT)
    first = orjson.loads(pages[0]["response"]["body"])["bars"]["ACN"][0]
    got = parsed[0].bars["ACN"][0]
    assert (got["open"], got["high"], got["low"], got["close"], got["volume"]) == (
        first["o"], first["h"], first["l"], first["c"], first["v"],
    )  # fmt: skip
    for rel, count, n in ((PAGES_3, 2163, 3), (PAGE_1, 515, 1)):
        more = [parse_bars_page(orjson.loads(p["response"]["body"]), DAY) for p in interactions(shared_data / rel)]
        assert (len(more), sum(p.count for p in more), more[-1].next_page_token) == (n, count, None)


async def test_recorded_pages_replayed_through_the_client(shared_data: Path) -> None:
    """The real client walks the 11 recorded pages, sending each page's token back."""
    path = shared_data / PAGES_11
    pages = interactions(path)
    symbols = "AAPL,ACN,AMD,AMZN,BABA,BRK.B,COIN,DIS,GOOGL,JPM,META,MSFT,NFLX,NVDA,ORCL,PFE,SHOP,TSLA,V,WMT,ZM"
    market = AlpacaMarket({}, ns("2023-12-10T17:52"), date(2023, 12, 1), date(2023, 12, 8))
    fake = FakeAlpaca(market, key_id=KEY_ID, secret_key=SECRET_KEY, recordings=(path,))
    async with fake, aiohttp.ClientSession() as session:
        source = client(fake, session, symbols.split(","))
        got = await source.rest_bars(symbols.split(","), DAY, ns("2021-01-31"), ns("2023-02-01"))
    assert sum(len(a) for a in got.values()) == 10513
    sent = [c.params.get("page_token") for c in fake.rest_calls]
    tokens = [parse_bars_page(orjson.loads(p["response"]["body"])).next_page_token for p in pages]
    recorded = [None, *tokens[:-1]]
    assert sent == recorded and all(c.params["symbols"] == symbols for c in fake.rest_calls)
    assert source.statistics()["http"]["ratelimit_remaining"] is not None


def client(fake: FakeAlpaca, session: aiohttp.ClientSession, symbols: list[str]) -> AlpacaBars:
    clock = LiveClock()
    config = AlpacaConfig(rest_url=fake.url, ws_url=fake.ws_url)
    instruments = [
        Instrument(symbol=s, asset_class=AssetClass.STOCKS, venue=Venue.ALPACA, venue_symbol=s, name=s) for s in symbols
    ]
    http = HttpClient(session, clock, retries=0)
    source = Source("alpaca", CircuitBreaker("alpaca", clock))
    return AlpacaBars(
        config,
        SecretStr(KEY_ID),
        SecretStr(SECRET_KEY),
        instruments,
        http,
        source,
        clock,
        ReconnectConfig(),
        session=session,
    )


def test_parse_time_and_stream_messages() -> None:
    assert parse_time("2026-01-02T15:31:00Z") == ns("2026-01-02T15:31")
    assert parse_time("2026-01-02T15:31:04.123456789Z") == ns("2026-01-02T15:31:04") + 123456789
    assert parse_time("2021-01-31T00:00:00+00:00") == ns("2021-01-31")
    assert parse_time("2026-01-02T10:31:00-05:00") == ns("2026-01-02T15:31")
    for bad in ("yesterday", "2026-02-30T00:00:00Z", "2026-01-02T15:31:00", 17):
        with pytest.raises(BadData) as err:
            parse_time(bad)
        assert err.value.reason == "bad_time"
    bar = parse_stream_bar(
        {"T": "b", "S": "SPY", "o": 1.0, "h": 2, "l": 0.5, "c": 1.5, "v": 7, "t": "2026-01-02T15:31:00Z"}
    )
    assert (bar.kind, bar.symbol, bar.open_ns, bar.end_ns - bar.open_ns, bar.high) == (
        "b",
        "SPY",
        ns("2026-01-02T15:31"),
        MINUTE,
        2.0,
    )
    good = {"T": "u", "S": "SPY", "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 7, "t": "2026-01-02T15:31:00Z"}
    cases = {
        "missing_field": {k: v for k, v in good.items() if k != "h"},
        "bad_type": {**good, "v": "7"},
        "bad_price": {**good, "l": 0.0},
        "bad_range": {**good, "h": 0.4},
        "bad_volume": {**good, "v": -1},
        "misaligned": {**good, "t": "2026-01-02T15:31:30Z"},
    }
    for reason, msg in cases.items():
        with pytest.raises(BadData) as err:
            parse_stream_bar(msg)
        assert err.value.reason == reason
    frame = orjson.dumps([good, {"T": "b", **{k: v for k, v in good.items() if k != "T"}, "S": "ZZZ"}, {"T": "t"}, 5])
    content = read_frame(frame, {"SPY": "SPY-PIA"})
    assert [(s, b.kind) for s, b in content.bars] == [("SPY-PIA", "u")]
    assert [r for r, _ in content.dropped] == ["unknown_symbol", "bad_type"]
    assert read_frame(b'[{"T":"error","code":406,"msg":"connection limit exceeded"}]', {}).errors == [
        (406, "connection limit exceeded")
    ]
    assert [r for r, _ in read_frame(b"\xff[]", {}).dropped] in (["non_utf8"], ["invalid_json"])
    assert (timeframe_code(MINUTE), timeframe_code(30 * MINUTE), timeframe_code(DAY)) == ("1Min", "30Min", "1Day")


# ---------------------------------------------------------------------------------- auth
async def test_auth_success_subscribes_bars_and_updated_bars(harness: AlpacaHarness) -> None:
    source = harness.make_source(VirtualClock(harness.fake.market, LiveClock()))
    async with source.connect(harness.symbols, INTERVALS):
        assert await harness.fake.wait_for_connection(within=2.0)
        [conn] = harness.fake._live()
        assert conn.authenticated
        assert conn.subs["bars"] == conn.subs["updatedBars"] == set(harness.symbols)
    stats = source.statistics()
    assert stats["connections"] == 1 and stats["auth_failures"] == 0


async def test_wrong_keys_are_refused_clearly(harness: AlpacaHarness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock = VirtualClock(harness.fake.market, LiveClock())
    source = harness.make_source(clock, secret_key="wrong-" + SECRET_KEY)
    with pytest.raises(AlpacaStreamError) as err:
        async with source.connect(harness.symbols, INTERVALS):
            pass
    assert err.value.code == 402 and "PIA_ALPACA_SECRET_KEY" in str(err.value)
    with pytest.raises(FeedError, match="HTTP 403"):
        await source.fetch("AAPL", "1d", start_ns=None, end_ns=clock.now_ns(), limit=10)
    assert source.statistics()["auth_failures"] == 2
    assert source.statistics()["stream_errors"] == {"402": 1}
    _assert_no_secret(caplog, "wrong-" + SECRET_KEY)


async def test_auth_failure_does_not_hot_loop(harness: AlpacaHarness) -> None:
    """402 every time: LiveFeed's backoff spaces the attempts (0.1 s doubling) instead of spinning."""
    feed = harness.make_feed(LiveClock(), secret_key="nope", backoff=Backoff(0.1, 2.0, 1.0))

    async def consume() -> None:
        async for _ in feed.stream():
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 2 <= harness.fake.connections_opened <= 4
    assert harness.fake.auth_messages == harness.fake.connections_opened
    assert "402" in feed.last_error


async def test_a_second_connection_gets_406(harness: AlpacaHarness) -> None:
    clock = VirtualClock(harness.fake.market, LiveClock())
    first, second = harness.make_source(clock), harness.make_source(clock)
    async with first.connect(harness.symbols, INTERVALS):
        with pytest.raises(AlpacaStreamError) as err:
            async with second.connect(harness.symbols, INTERVALS):
                pass
    assert err.value.code == 406 and "connection limit" in str(err.value)
    assert second.statistics()["stream_errors"] == {"406": 1} and second.statistics()["auth_failures"] == 0


# ---------------------------------------------------------------------------------- candles
async def test_live_equals_history_across_a_holiday_an_early_close_and_a_month_end() -> None:
    """Wed 2014-11-26 15:00 New York -> Thanksgiving (closed) -> Fri 28th (closes 13:00) -> Mon Dec 1:
    the streamed candles equal the fake's truth and what fetch() builds from REST, to the last bit."""
    h = AlpacaHarness(
        start=datetime(2014, 11, 26, 20, 0, tzinfo=UTC), first_day=date(2014, 10, 27), last_day=date(2014, 12, 5)
    )
    async with h.running():
        feed = h.make_feed(LiveClock())
        async with Run(feed) as run:
            await h.advance(330)
            await run.settle(h)
            run.assert_exact(h)
            now = h.fake.market.now_ns
            for (sym, iv), bars in run.bars.items():
                history = await feed.source.fetch(sym, iv, start_ns=bars[0].open_time, end_ns=now, limit=1000)
                assert [(b.open_time, b.open, b.high, b.low, b.close, b.volume) for b in bars] == history.tolist()
    aapl = {iv: [b.open_time for b in run.bars[("AAPL", iv)]] for iv in INTERVALS}
    assert aapl["4h"] == [ns("2014-11-26T18:30"), ns("2014-11-28T14:30")]  # 13:30-16:00, then 09:30-13:00
    assert ns("2014-11-28T17:30") in aapl["1h"] and ns("2014-11-28T18:30") not in aapl["1h"]
    assert aapl["1d"][-2:] == [ns("2014-11-26T14:30"), ns("2014-11-28T14:30")]
    assert aapl["1w"] == [ns("2014-11-24T14:30")] and aapl["1M"] == [ns("2014-11-03T14:30")]
    stats = feed.source.statistics()
    assert stats["corrections"].get("applied", 0) > 0 and stats["corrections"].get("after_emit", 0) == 0


async def test_extended_hours_minutes_are_quotes_not_bars() -> None:
    h = AlpacaHarness(start=datetime(2014, 10, 15, 19, 50, tzinfo=UTC))
    async with h.running():
        feed = h.make_feed(LiveClock())
        async with Run(feed) as run:
            await h.advance(20)  # over the close (16:00 New York = 20:00 UTC) into the next morning
            await run.settle(h)
    cal = calendar()
    extended = [q for q in run.quotes if q.extended_hours]
    assert len(extended) > 20 and all(not cal.is_open(q.ts_ns - MINUTE) for q in extended)
    assert all(cal.is_open(q.ts_ns - MINUTE) for q in run.quotes if not q.extended_hours)
    assert all(cal.is_open(b.open_time) for bars in run.bars.values() for b in bars)
    assert feed.source.statistics()["quotes"]["extended"] == len(extended)


async def test_updated_bars_correct_the_candle_in_progress_only(harness: AlpacaHarness) -> None:
    """``u`` for a minute of the 15m candle in progress changes it; ``u`` for a minute of an emitted 15m
    candle is counted and logged, and that candle is not emitted again (the 1h in progress takes it)."""
    feed = harness.make_feed(LiveClock())
    fake = harness.fake
    async with Run(feed) as run:
        await harness.advance(17)  # 11:00 .. 11:17 New York: the 11:00 candle is closed, 11:15 in progress
        await run.settle(harness)
        emitted = run.bars[("AAPL", "15m")][-1]
        assert emitted.open_time == ns("2014-10-15T15:00")

        def updated(t: str, high: float) -> bytes:
            msg = {"T": "u", "S": "AAPL", "o": 90.0, "h": high, "l": 80.0, "c": 90.0, "v": 5, "t": t}
            return orjson.dumps([msg])

        await fake.send_raw(updated("2014-10-15T15:16:00Z", 300.0))  # in progress
        await fake.send_raw(updated("2014-10-15T15:05:00Z", 400.0))  # emitted
        await harness.advance(13)  # to 11:30: closes 11:15 and the 11:00 hour
        await asyncio.sleep(0.2)
    bars = run.bars[("AAPL", "15m")]
    assert [b.open_time for b in bars].count(emitted.open_time) == 1
    assert bars[-1].open_time == ns("2014-10-15T15:15") and bars[-1].high == 300.0
    assert [b.high for b in run.bars[("AAPL", "1h")] if b.open_time == ns("2014-10-15T14:30")] == [400.0]
    corrections = feed.source.statistics()["corrections"]
    assert corrections["after_emit"] == 1 and corrections["applied"] >= 1


async def test_a_quiet_stream_closes_candles_by_time() -> None:
    """No bar of any symbol in the session's last minute and none after it: the close is seen by time
    (close_grace_s after the end, once the stream has been quiet that long); the market being closed
    then is expected silence, not a dead stream."""
    h = AlpacaHarness(start=datetime(2014, 10, 15, 19, 50, tzinfo=UTC), close_grace_s=0.1, receive_timeout=0.3)
    async with h.running():
        m = h.fake.market
        for sym, arr in m.minutes.items():
            m.minutes[sym] = arr[(arr["open_time"] < ns("2014-10-15T19:59")) | (arr["open_time"] >= ns("2014-10-16"))]
        feed = h.make_feed(LiveClock())
        async with Run(feed) as run:
            await h.advance(10)  # up to 16:00 New York; the 15:59 minute is empty everywhere
            await asyncio.sleep(0.2)
            assert ns("2014-10-15T13:30") not in [b.open_time for b in run.bars[("AAPL", "1d")]]
            m.now_ns += 5 * NS
            await run.settle(h, within=3.0)
            await asyncio.sleep(0.5)  # longer than receive_timeout, market closed: no reconnect
        run.assert_exact(h)
    assert [b.open_time for b in run.bars[("AAPL", "1d")]] == [ns("2014-10-15T13:30")]
    assert feed.reconnects == 0


async def test_reconnects_lose_nothing_and_repeat_nothing() -> None:
    """The stream is killed again and again (also right at the close), stalls, repeats and garbles
    messages, REST fails in between: the closed candles are exactly the fake's, each once."""
    h = AlpacaHarness(start=datetime(2014, 10, 15, 19, 40, tzinfo=UTC), receive_timeout=0.4)
    async with h.running():
        feed = h.make_feed(LiveClock())
        async with Run(feed) as run:
            for after, steps in ((1, 5), (3, 10), (2, 3), (7, 15), (1, 8)):
                h.drop_connection_after(after)
                await h.advance(steps)
            h.send_duplicates()
            h.send_malformed()
            await h.advance(6)
            h.fail_rest(500, 1)
            h.fail_rest(429, 1, retry_after=0.01)
            h.drop_connection_after(2)
            await h.advance(5)
            h.stall(0.8)
            await h.advance(12)
            await run.settle(h)
        run.assert_exact(h)
        minute_calls = [c for c in h.fake.rest_calls if c.params.get("timeframe") == "1Min"]
        assert len(minute_calls) >= 6  # each catch-up reads minutes only from just before the newest one seen
        assert all(parse_time(c.params["start"]) >= ns("2014-10-15T19:30") for c in minute_calls)
    stats = feed.source.statistics()
    assert feed.reconnects >= 6
    assert stats["disconnects"].get("silent", 0) >= 1
    assert stats["duplicates"] > 0 and feed.duplicates_skipped > 0
    assert {"invalid_json", "missing_field", "bad_price", "bad_range", "unknown_symbol", "bad_time"} <= set(
        stats["malformed"]
    )
    for (sym, iv), bars in run.bars.items():
        assert len({b.open_time for b in bars}) == len(bars), (sym, iv)


async def test_a_stream_error_reconnects(harness: AlpacaHarness) -> None:
    feed = harness.make_feed(LiveClock())
    async with Run(feed) as run:
        await harness.advance(2)
        await harness.fake.send_error(407, "slow client")
        await harness.advance(4)
        await run.settle(harness)
    run.assert_exact(harness)
    assert feed.source.statistics()["stream_errors"] == {"407": 1} and feed.reconnects >= 1


# ---------------------------------------------------------------------------------- wiring
async def test_no_keys_means_no_feed_and_one_info_line(caplog: pytest.LogCaptureFixture, repo_root: Path) -> None:
    caplog.set_level(logging.DEBUG)
    instruments = Universe.model_validate(read_universe_toml(repo_root / "configs" / "instruments.toml")).instruments
    stocks = [i for i in instruments if i.venue is Venue.ALPACA]
    async with aiohttp.ClientSession() as session:
        for secrets in (Secrets(), Secrets.from_env({"PIA_ALPACA_KEY_ID": "PKONLYTHEKEY"})):
            caplog.clear()
            got = build_alpaca_feed(LiveFeedConfig(), secrets, instruments, INTERVALS, session, LiveClock())
            assert got is None
            lines = [r for r in caplog.records if r.name == "pia.feeds.alpaca"]
            want = (
                "Alpaca keys not set (PIA_ALPACA_KEY_ID, PIA_ALPACA_SECRET_KEY): "
                + f"{len(stocks)} stock instruments skipped"
            )
            assert [(r.levelname, r.getMessage()) for r in lines] == [("INFO", want)]
            _assert_no_secret(caplog, "PKONLYTHEKEY")
        keys = Secrets.from_env({"PIA_ALPACA_KEY_ID": KEY_ID, "PIA_ALPACA_SECRET_KEY": SECRET_KEY})
        feed = build_alpaca_feed(LiveFeedConfig(), keys, instruments, INTERVALS, session, LiveClock())
        assert isinstance(feed, AlpacaLiveFeed) and isinstance(feed.source, AlpacaBars)
        assert [i.symbol for i in feed.instruments] == [i.symbol for i in stocks] and len(stocks) == 27
        crypto = [i for i in instruments if i.venue is not Venue.ALPACA]
        assert build_alpaca_feed(LiveFeedConfig(), keys, crypto, INTERVALS, session, LiveClock()) is None


async def test_no_secret_in_any_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with AlpacaHarness().running() as h:
        feed = h.make_feed(LiveClock())
        async with Run(feed) as run:
            h.drop_connection_after(2)
            h.send_malformed()
            await h.advance(6)
            await run.settle(h)
        bad = h.make_source(VirtualClock(h.fake.market, LiveClock()), key_id="PKBADKEY123", secret_key="s3cr3t-bad")
        with pytest.raises(FeedError):
            async with bad.connect(h.symbols, INTERVALS):
                pass
        with pytest.raises(FeedError):
            await bad.rest_bars(["AAPL"], MINUTE, h.fake.now_ns - 60 * MINUTE, h.fake.now_ns)
    assert len(caplog.records) > 3
    _assert_no_secret(caplog, SECRET_KEY, "s3cr3t-bad")


def _assert_no_secret(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        for secret in secrets:
            assert secret not in text, record.getMessage()


# ---------------------------------------------------------------------------------- the fake itself
async def test_fake_rest_paginates_across_symbols_and_speaks_errors(harness: AlpacaHarness) -> None:
    fake = harness.fake
    url = f"{fake.url}/v2/stocks/bars"
    auth = {"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET_KEY}
    start, end = format_time(fake.now_ns - 10 * MINUTE), format_time(fake.now_ns)
    query = {"symbols": "NVDA,AAPL,MSFT", "timeframe": "1Min", "start": start, "end": end, "limit": "7"}
    seen: list[tuple[str, str]] = []
    async with aiohttp.ClientSession() as session:
        token: str | None = ""
        pages = 0
        while token is not None:
            params = {**query, "page_token": token} if token else query
            async with session.get(url, params=params, headers=auth) as resp:
                assert resp.status == 200 and resp.headers["X-Ratelimit-Limit"] == "200"
                body = await resp.json()
            assert sum(len(v) for v in body["bars"].values()) <= 7
            seen += [(s, b["t"]) for s, bars in body["bars"].items() for b in bars]
            token, pages = body["next_page_token"], pages + 1
        assert pages >= 3 and seen == sorted(seen) and len(seen) == len(set(seen))
        assert [s for s, _ in seen] == sorted(s for s, _ in seen)  # by symbol, then time: pages split symbols
        async with session.get(url, params=query) as resp:
            assert (resp.status, await resp.json()) == (401, {"message": "unauthorized."})
        async with session.get(url, params=query, headers={**auth, "APCA-API-SECRET-KEY": "x"}) as resp:
            assert (resp.status, await resp.json()) == (403, {"message": "forbidden"})
        async with session.get(url, params={**query, "limit": "10001"}, headers=auth) as resp:
            assert resp.status == 422
        fake.fail_rest(429, 1, retry_after=1.5)
        async with session.get(url, params=query, headers=auth) as resp:
            assert (resp.status, await resp.json()) == (429, {"message": "too many requests"})
            assert resp.headers["Retry-After"] == "1.5" and resp.headers["X-Ratelimit-Remaining"] == "0"
        async with session.get(
            f"{fake.url}/v2/stocks/AAPL/bars", params={**query, "timeframe": "15Min"}, headers=auth
        ) as resp:
            one = await resp.json()
        assert one["symbol"] == "AAPL" and all(parse_time(b["t"]) % (15 * MINUTE) == 0 for b in one["bars"])


async def test_fake_stream_protocol(harness: AlpacaHarness) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{harness.fake.ws_url}/v2/iex") as ws:
        assert await ws.receive_json() == [{"T": "success", "msg": "connected"}]
        await ws.send_json({"action": "subscribe", "bars": ["AAPL"]})
        assert (await ws.receive_json())[0]["code"] == 401
        await ws.send_str("{not json")
        assert (await ws.receive_json())[0]["code"] == 400
        await ws.send_json({"action": "auth", "key": KEY_ID, "secret": SECRET_KEY})
        assert await ws.receive_json() == [{"T": "success", "msg": "authenticated"}]
        await ws.send_json({"action": "auth", "key": KEY_ID, "secret": SECRET_KEY})
        assert (await ws.receive_json())[0]["code"] == 403
        await ws.send_json({"action": "subscribe", "bars": ["AAPL", "MSFT"], "updatedBars": ["AAPL"]})
        reply = (await ws.receive_json())[0]
        assert reply["T"] == "subscription" and reply["bars"] == ["AAPL", "MSFT"] and reply["trades"] == []
        await ws.send_json({"action": "unsubscribe", "bars": ["MSFT"]})
        assert (await ws.receive_json())[0]["bars"] == ["AAPL"]
        await harness.fake.advance(1)
        frame = await ws.receive_json()
        assert {m["T"] for m in frame} <= {"b", "u"} and {m["S"] for m in frame} == {"AAPL"}


def test_harness_implements_the_contract_protocol() -> None:
    h: FeedHarness = AlpacaHarness()  # checked by mypy
    assert (h.name, h.symbols, h.intervals) == ("alpaca", ("AAPL", "MSFT", "NVDA"), INTERVALS)
    with pytest.raises(RuntimeError, match="not running"):
        h.expected("AAPL", "1d")
