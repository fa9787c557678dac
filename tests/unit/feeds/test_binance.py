"""Binance feeds: wire parsing on real captured messages and the documented examples, REST paging and
error handling against the fake Binance on 127.0.0.1, the websocket under faults (malformed frames,
shutdown notices, silence, dropped connections), the funding poller and the wiring."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import aiohttp
import numpy as np
import orjson
import pytest

from pia.bus import Bus
from pia.clock import FakeClock, LiveClock
from pia.config import BinanceConfig, LiveFeedConfig, ReconnectConfig
from pia.errors import BadData, ConfigError, FeedDisconnected
from pia.events import Bar, FundingUpdated
from pia.feeds.backoff import Backoff
from pia.feeds.base import BarArray
from pia.feeds.binance import BinanceKlines, FundingFeed, build_binance_feeds
from pia.feeds.binance_wire import (
    MS,
    KlineParser,
    Market,
    ServerShutdown,
    fmt_decimal,
    kline_event,
    parse_premium_index,
    parse_rest_klines,
)
from pia.feeds.breaker import BreakerState, CircuitBreaker
from pia.feeds.http import CircuitOpen, HttpClient, HttpStatusError, Source, SourceBanned
from pia.feeds.live import LiveFeed
from pia.feeds.ohlcv_files import load_ohlcv
from pia.instruments import AssetClass, Instrument, Venue
from pia.intervals import MINUTE, parse_interval
from pia.testing.fake_binance import BinanceMarket, FakeBinance
from pia.testing.harness_binance import VirtualClock, recorded_minutes
from pia.topics import funding

CAPTURED = "messages/binance/nautilus/captured"
DOCS = "messages/binance/nautilus/docs_examples"
FTX = "candles/ftx/nautilus/btc-perp-20211231-20220201_1m.csv"
SYMBOLS = {"BTCUSDT": "BTC-USD", "ETHUSDT": "ETH-USD"}
VENUE = {"BTC-USD": "BTCUSDT", "ETH-USD": "ETHUSDT"}


def inst(symbol: str, venue_symbol: str, venue: Venue = Venue.BINANCE_SPOT) -> Instrument:
    return Instrument(symbol=symbol, asset_class=AssetClass.CRYPTO, venue=venue, venue_symbol=venue_symbol, name=symbol)


SPOT = (inst("BTC-USD", "BTCUSDT"), inst("ETH-USD", "ETHUSDT"))
METALS = (inst("XAU-USD", "XAUUSDT", Venue.BINANCE_FUTURES), inst("XAG-USD", "XAGUSDT", Venue.BINANCE_FUTURES))


class RecordingClock:
    """The fake's virtual now; sleeps are recorded and return at once (nothing waits for real)."""

    def __init__(self, market: BinanceMarket) -> None:
        self._v = VirtualClock(market, LiveClock())
        self.slept: list[float] = []

    def now_ns(self) -> int:
        return self._v.now_ns()

    def monotonic(self) -> float:
        return self._v.monotonic()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture
async def fake(shared_data: Path) -> AsyncIterator[FakeBinance]:
    minutes = recorded_minutes(shared_data)
    futures = {"XAUUSDT": minutes["BTCUSDT"], "XAGUSDT": minutes["ETHUSDT"], **minutes}
    async with FakeBinance(BinanceMarket({"spot": minutes, "futures": futures}), ping_interval=0.4) as f:
        yield f


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def make_klines(
    fake: FakeBinance,
    session: aiohttp.ClientSession,
    *,
    market: Market = "spot",
    instruments: Sequence[Instrument] = SPOT,
    clock: RecordingClock | None = None,
    receive_timeout: float = 1.0,
) -> BinanceKlines:
    clk = clock or RecordingClock(fake.market)
    http = HttpClient(session, clk, retries=3, backoff_seconds=0.01, timeout_seconds=5.0)
    source = Source("binance_test", CircuitBreaker("binance_test", clk, failure_threshold=5, reset_seconds=60))
    reconnect = ReconnectConfig(initial_seconds=0.01, max_seconds=0.05, receive_timeout_seconds=receive_timeout)
    rest, ws = fake.rest_url(market), fake.ws_url(market)
    return BinanceKlines("binance_test", rest, ws, market, instruments, http, source, clk, reconnect, session=session)


def make_feed(klines: BinanceKlines, fake: FakeBinance, intervals: Sequence[str]) -> LiveFeed:
    clock = VirtualClock(fake.market, LiveClock())
    instruments = SPOT if klines.market == "spot" else METALS
    return LiveFeed(klines, instruments, intervals, clock, history_bars=1000, backoff=Backoff(0.01, 2, 0.05))


class Collect:
    """History then the stream of a LiveFeed, per (symbol, interval), in a task."""

    def __init__(self, feed: LiveFeed) -> None:
        self.feed = feed
        self.got: dict[tuple[str, str], list[Bar]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Collect:
        for h in await self.feed.history(self.feed._intervals):
            rows = [(h.symbol, h.interval, r) for r in h.bars]
            self.got[(h.symbol, h.interval)] += [_bar(s, iv, r) for s, iv, r in rows]
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        async for bar in self.feed.stream():
            assert isinstance(bar, Bar)
            self.got[(bar.symbol, bar.interval)].append(bar)

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def until(self, fake: FakeBinance, venue: dict[str, str], m: Market = "spot") -> None:

        await until(
            lambda: all(
                len(self.got[(s, iv)]) >= len(fake.market.closed(m, vs, iv))
                for s, vs in venue.items()
                for iv in self.feed._intervals
            ),
            15,
        )
        await asyncio.sleep(0.05)  # a duplicate would arrive now


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Let real socket I/O progress until ``predicate`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.002)


def _bar(symbol: str, interval: str, r: np.void) -> Bar:
    return Bar(
        symbol=symbol,
        interval=interval,
        open_time=int(r["open_time"]),
        open=float(r["open"]),
        high=float(r["high"]),
        low=float(r["low"]),
        close=float(r["close"]),
        volume=float(r["volume"]),
    )


def assert_exact(got: list[Bar], want: BarArray) -> None:
    """Same candles, same order, same values (volume too): nothing missing, nothing twice."""
    assert [b.open_time for b in got] == want["open_time"].tolist()
    rows = [(b.open, b.high, b.low, b.close, b.volume) for b in got]
    assert rows == [tuple(float(r[f]) for f in ("open", "high", "low", "close", "volume")) for r in want]


async def advance(fake: FakeBinance, steps: int, market: Market = "spot") -> None:
    """Like the harness: each minute waits for a live stream connection, so the stream carries it."""
    for _ in range(steps):
        await fake.wait_for_connection(market, within=5)
        await fake.advance(1)


# ------------------------------------------------------------------------------------ wire: REST
def test_captured_spot_klines_parse_exactly(shared_data: Path) -> None:
    payload = json.loads((shared_data / CAPTURED / "http_spot_market_klines.json").read_text())
    bars, dropped = parse_rest_klines(payload, "1m")
    assert not dropped
    assert len(bars) == 10
    assert bars["open_time"].tolist() == [(1634943780000 + 60_000 * i) * MS for i in range(10)]
    first = bars[0]
    assert (first["open"], first["high"], first["low"], first["close"], first["volume"]) == (
        60685.22,
        60729.84,
        60670.90,
        60719.27,
        21.63272,
    )
    assert bars[-1]["volume"] == 0.04734


@pytest.mark.parametrize("name", ["spot_klines_response.json", "http_futures_market_klines.json"])
def test_documented_weekly_kline_rows_parse(shared_data: Path, name: str) -> None:
    bars, dropped = parse_rest_klines(json.loads((shared_data / DOCS / name).read_text()), "1w")
    assert not dropped
    assert bars["open_time"].tolist() == [1499040000000 * MS]
    assert (bars[0]["open"], bars[0]["high"], bars[0]["low"], bars[0]["close"]) == (0.0163479, 0.8, 0.015758, 0.015771)


def test_bad_rest_rows_are_dropped_by_reason() -> None:
    t = 1767225600000

    def r(
        i: int, o: object = "10", h: object = "12", lo: object = "9", c: object = "11", close: int = 0
    ) -> list[object]:
        return [t + 60_000 * i, o, h, lo, c, "1", close or t + 60_000 * i + 59_999, "0", 1, "0", "0", "0"]

    payload = [r(0), r(1, o="NaN"), r(2, h="8"), r(3, close=t), r(4, o="abc"), [1, 2], r(5), r(5)]
    bars, dropped = parse_rest_klines(payload, "1m")
    assert bars["open_time"].tolist() == [t * MS, (t + 300_000) * MS]
    assert dropped == {"bad_price": 2, "bad_range": 1, "misaligned": 1, "missing_field": 1, "duplicate": 1}
    with pytest.raises(BadData, match="bad_payload"):
        parse_rest_klines({"code": -1121, "msg": "Invalid symbol."}, "1m")


def test_documented_premium_index(shared_data: Path) -> None:
    p = parse_premium_index(json.loads((shared_data / DOCS / "http_futures_market_premium_index.json").read_text()))
    assert (p.symbol, p.mark_price, p.funding_rate) == ("BTCUSDT", 11793.63104562, 0.00038246)
    assert (p.next_funding_ns, p.time_ns) == (1597392000000 * MS, 1597370495002 * MS)
    delivery = {"symbol": "BTCUSDT_260626", "markPrice": "1", "lastFundingRate": "", "nextFundingTime": 0, "time": 0}
    with pytest.raises(BadData, match="bad_price"):
        parse_premium_index(delivery)


# ------------------------------------------------------------------------------------ wire: websocket
def parser() -> KlineParser:
    return KlineParser(SYMBOLS, ["1m", "15m", "1h", "1w", "1M", "3d"])


def test_documented_futures_kline_messages(shared_data: Path) -> None:
    p = parser()
    assert p.parse((shared_data / DOCS / "futures_kline_stream_open.json").read_bytes()) is None
    assert p.forming == 1
    bar = p.parse((shared_data / DOCS / "futures_kline_stream_closed.json").read_bytes())
    assert bar == Bar(
        symbol="BTC-USD",
        interval="1m",
        open_time=1638747660000 * MS,
        open=0.001,
        high=0.0025,
        low=0.001,
        close=0.002,
        volume=1000.0,
    )


def test_protocol_doc_combined_message_and_control_and_shutdown() -> None:
    doc = (
        b'{"stream": "btcusdt@kline_1m", "data": {"e": "kline", "E": 1767225660012, "s": "BTCUSDT",'
        b'"k": {"t": 1767225600000, "T": 1767225659999, "s": "BTCUSDT", "i": "1m", "f": 5712345000,'
        b'"L": 5712346012, "o": "87650.10000000", "c": "87699.00000000", "h": "87710.00000000",'
        b'"l": "87640.01000000", "v": "14.01234000", "n": 1013, "x": true, "q": "1228190.11223344",'
        b'"V": "7.00112000", "Q": "613700.44556677", "B": "0"}}}'
    )
    p = parser()
    bar = p.parse(doc)
    assert bar is not None
    assert (bar.symbol, bar.open_time, bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        "BTC-USD",
        1767225600000 * MS,
        87650.1,
        87710.0,
        87640.01,
        87699.0,
        14.01234,
    )
    assert p.parse(b'{"result": null, "id": 1}') is None
    assert p.control == 1
    with pytest.raises(ServerShutdown):
        p.parse(b'{"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": 1770123456789}}')


def _closed(**k: object) -> bytes:
    event = kline_event("BTCUSDT", "1h", (1767225600000 * MS, 10.0, 12.0, 9.0, 11.0, 3.0), closed=True, event_ms=1)
    for name, value in k.items():
        if value is None:
            del event["k"][name]
        else:
            event["k"][name] = value
    return orjson.dumps({"stream": "btcusdt@kline_1h", "data": event})


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b'{"stream":"btcusdt@kline_1h","data":{"e":"kl', "invalid_json"),
        (b'{"data":{"e":"kline","s":"\xff\xfe"}}', "non_utf8"),
        (_closed(pad="x" * 70_000), "oversized"),
        (b"[1,2]", "not_object"),
        (b'{"stream":"a","data":[1]}', "not_object"),
        (_closed(c=None), "missing_field"),
        (_closed(x="yes"), "missing_field"),
        (b'{"stream":"a","data":{"E":1}}', "missing_field"),
        (b'{"stream":"a","data":{"e":"trade"}}', "unknown_event"),
        (_closed(s="DOGEUSDT"), "unknown_symbol"),
        (_closed(i="2h"), "unknown_interval"),
        (_closed(t="1767225600000"), "bad_time"),
        (_closed(t=1767225600000 + 1), "misaligned"),
        (_closed(T=1767225600000 + 59_999), "misaligned"),
        (_closed(o="NaN"), "bad_price"),
        (_closed(h="inf"), "bad_price"),
        (_closed(l="0"), "bad_price"),
        (_closed(c="-11"), "bad_price"),
        (_closed(o="eleven"), "bad_price"),
        (_closed(o=None), "missing_field"),
        (_closed(h="8.5"), "bad_range"),
        (_closed(o="12.5"), "bad_range"),
        (_closed(c="8"), "bad_range"),
        (_closed(v="-1"), "bad_volume"),
        (_closed(v="NaN"), "bad_volume"),
    ],
)
def test_malformed_frames_raise_bad_data_with_reason(frame: bytes, reason: str) -> None:
    with pytest.raises(BadData) as info:
        parser().parse(frame)
    assert info.value.reason == reason


def test_interval_times_are_checked_per_interval() -> None:
    p = parser()
    month = kline_event("BTCUSDT", "1M", (1767225600000 * MS, 10.0, 12.0, 9.0, 11.0, 3.0), closed=True, event_ms=1)
    assert month["k"]["T"] == 1769903999999  # 2026-02-01 - 1 ms
    assert p.parse(orjson.dumps(month)) is not None
    # Binance anchors 3d candles to its own day, not the epoch: only the length is checked
    three = kline_event("BTCUSDT", "3d", (86_400_000 * MS, 10.0, 12.0, 9.0, 11.0, 3.0), closed=True, event_ms=1)
    assert p.parse(orjson.dumps(three)) is not None


def test_fmt_decimal_round_trips() -> None:
    for x in (87650.1, 0.0001, 1e-9, 123456.123456789, 3.0):
        assert float(fmt_decimal(x)) == x
    assert fmt_decimal(87650.1) == "87650.10000000"


# ------------------------------------------------------------------------------------ REST against the fake
async def test_fetch_pages_forward_and_backward_exactly(shared_data: Path, session: aiohttp.ClientSession) -> None:
    minutes = load_ohlcv(shared_data / FTX, interval="1m").bars[:3000]
    market = BinanceMarket({"spot": {"BTCUSDT": minutes}}, int(minutes["open_time"][2800]))
    async with FakeBinance(market) as fake:
        k = make_klines(fake, session, instruments=SPOT[:1])
        now = fake.now_ns
        truth = market.closed("spot", "BTCUSDT", "1m")
        assert len(truth) == 2800
        got = await k.fetch("BTC-USD", "1m", start_ns=None, end_ns=now, limit=2500)
        np.testing.assert_array_equal(got, truth[-2500:])
        assert [c.params["limit"] for c in fake.rest_calls] == ["1000", "1000", "502"]
        fake.rest_calls.clear()
        start = int(truth["open_time"][100]) - 30 * 10**9  # mid-candle: candles opening from then on
        got = await k.fetch("BTC-USD", "1m", start_ns=start, end_ns=now, limit=1000)
        np.testing.assert_array_equal(got, truth[100:])  # open times >= start
        assert len(fake.rest_calls) == 3
        assert {c.params["symbol"] for c in fake.rest_calls} == {"BTCUSDT"}
        fifteen = await k.fetch("BTC-USD", "15m", start_ns=None, end_ns=now, limit=1000)
        np.testing.assert_array_equal(fifteen, market.closed("spot", "BTCUSDT", "15m"))


async def test_fetch_returns_only_closed_candles(fake: FakeBinance, session: aiohttp.ClientSession) -> None:
    k = make_klines(fake, session)
    now = fake.now_ns + 7 * MINUTE
    await fake.advance(7)  # now is 7 minutes into a 15m candle
    served = fake.market.rest_rows("spot", "BTCUSDT", "15m")
    assert served[-1][0] == parse_interval("15m").floor(now)  # Binance shows the forming candle
    got = await k.fetch("BTC-USD", "15m", start_ns=None, end_ns=now, limit=5)
    assert len(got) == 5
    assert int(got["open_time"][-1]) == served[-2][0]
    assert np.all(parse_interval("15m").next_open_array(got["open_time"]) <= now)
    with pytest.raises(ValueError, match="not one of this feed"):
        await k.fetch("DOGE-USD", "15m", start_ns=None, end_ns=now, limit=5)


async def test_429_waits_retry_after_then_succeeds(fake: FakeBinance, session: aiohttp.ClientSession) -> None:
    clock = RecordingClock(fake.market)
    k = make_klines(fake, session, clock=clock)
    fake.fail_rest(429, 1, retry_after=17)
    got = await k.fetch("BTC-USD", "1m", start_ns=None, end_ns=fake.now_ns, limit=10)
    assert len(got) == 10
    assert clock.slept == [17.0]
    assert [c.status for c in fake.rest_calls] == [429, 200]
    http = k.statistics()["http"]
    assert http["errors"] == {"429": 1}
    assert http["used_weight_1m"] == 3  # 1 for the refused call, 2 for klines


async def test_418_opens_the_circuit(fake: FakeBinance, session: aiohttp.ClientSession) -> None:
    k = make_klines(fake, session)
    fake.fail_rest(418, 1, retry_after=120)
    with pytest.raises(SourceBanned):
        await k.fetch("BTC-USD", "1m", start_ns=None, end_ns=fake.now_ns, limit=10)
    assert k._source.breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        await k.fetch("BTC-USD", "1m", start_ns=None, end_ns=fake.now_ns, limit=10)
    assert len(fake.rest_calls) == 1  # the open circuit sent nothing


async def test_5xx_and_truncated_bodies_are_retried(fake: FakeBinance, session: aiohttp.ClientSession) -> None:
    k = make_klines(fake, session)
    fake.fail_rest(500, 1)
    fake.fail_rest(503, 1)
    fake.truncate_rest(1)
    got = await k.fetch("BTC-USD", "1m", start_ns=None, end_ns=fake.now_ns, limit=10)
    assert len(got) == 10
    assert [c.status for c in fake.rest_calls] == [500, 503, 200, 200]
    assert k.statistics()["http"]["retries"] == 3


async def test_400_is_not_retried(fake: FakeBinance, session: aiohttp.ClientSession) -> None:
    k = make_klines(fake, session, instruments=[inst("NOPE-USD", "NOPEUSDT")])
    with pytest.raises(HttpStatusError) as info:
        await k.fetch("NOPE-USD", "1m", start_ns=None, end_ns=fake.now_ns, limit=10)
    assert info.value.status == 400
    assert orjson.loads(info.value.body) == {"code": -1121, "msg": "Invalid symbol."}
    assert len(fake.rest_calls) == 1


async def test_fake_rest_checks_parameters(fake: FakeBinance, session: aiohttp.ClientSession) -> None:
    base = fake.rest_url("spot") + "/api/v3/klines"
    for params, code in [
        ({"symbol": "BTCUSDT", "interval": "7m"}, -1120),
        ({"symbol": "BTCUSDT", "interval": "1m", "limit": "1001"}, -1130),
        ({"interval": "1m"}, -1102),
        ({"symbol": "btc/usdt", "interval": "1m"}, -1100),
        ({"symbol": "BTCUSDT", "interval": "1m", "startTime": "5", "endTime": "4"}, -1023),
    ]:
        async with session.get(base, params=params) as resp:
            assert resp.status == 400
            assert (await resp.json())["code"] == code
    futures = fake.rest_url("futures") + "/fapi/v1/klines"
    async with session.get(futures, params={"symbol": "XAUUSDT", "interval": "1m", "limit": "1500"}) as resp:
        assert resp.status == 200
        assert resp.headers["X-MBX-USED-WEIGHT-1M"] == "10"
        rows = await resp.json()
    assert len(rows[0]) == 12 and isinstance(rows[0][1], str)


# ------------------------------------------------------------------------------------ websocket against the fake
async def test_stream_yields_closed_bars_and_counts_malformed(
    fake: FakeBinance, session: aiohttp.ClientSession
) -> None:
    k = make_klines(fake, session)
    got: list[Bar] = []
    async with k.connect(["BTC-USD", "ETH-USD"], ["1m", "5m"]) as live:
        await fake.wait_for_connection("spot")
        fake.send_malformed()
        await fake.advance(5)
        async for bar in live:
            got.append(bar)
            if len(got) == 5 * 2 + 2:
                break
    assert k.statistics()["malformed"] == {
        "invalid_json": 1,
        "missing_field": 1,
        "bad_price": 5,
        "bad_range": 2,
        "unknown_symbol": 1,
        "misaligned": 1,
        "non_utf8": 1,
        "oversized": 1,
        "not_object": 1,
        "unknown_event": 1,
    }
    for symbol, vs in VENUE.items():
        for iv in ("1m", "5m"):
            want = fake.market.closed("spot", vs, iv)
            mine = [b for b in got if (b.symbol, b.interval) == (symbol, iv)]
            assert_exact(mine, want[len(want) - len(mine) :])
    assert k.statistics()["forming_updates"] == fake.sent["forming"]


async def test_malformed_bursts_log_once_per_reason(
    fake: FakeBinance, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    k = make_klines(fake, session)
    with caplog.at_level(logging.WARNING, logger="pia.feeds.binance"):
        async with k.connect(["BTC-USD"], ["1m"]) as live:
            await fake.wait_for_connection("spot")
            for _ in range(3):
                fake.send_malformed()
                await fake.advance(1)
            n = 0
            async for _bar in live:
                n += 1
                if n == 3:
                    break
    dropped = [r for r in caplog.records if r.getMessage() == "kline frame dropped"]
    assert len(dropped) == 10  # one line per reason, though each burst repeated it
    assert k.statistics()["malformed"]["bad_price"] == 15


async def test_futures_stream_uses_the_market_route(fake: FakeBinance, session: aiohttp.ClientSession) -> None:
    k = make_klines(fake, session, market="futures", instruments=METALS)
    assert k.stream_url(["XAU-USD"], ["1m", "1M"]) == fake.ws_url("futures") + (
        "/market/stream?streams=xauusdt@kline_1m/xauusdt@kline_1M"
    )
    async with k.connect(["XAU-USD", "XAG-USD"], ["1m"]) as live:
        await fake.wait_for_connection("futures")
        await fake.advance(2)
        got = [await anext(live) for _ in range(4)]
    assert {b.symbol for b in got} == {"XAU-USD", "XAG-USD"}
    assert_exact([b for b in got if b.symbol == "XAU-USD"], fake.market.closed("futures", "XAUUSDT", "1m")[-2:])


async def test_silence_ends_the_stream(fake: FakeBinance, session: aiohttp.ClientSession) -> None:
    k = make_klines(fake, session, receive_timeout=0.3)
    async with k.connect(["BTC-USD"], ["1m"]) as live:
        await fake.wait_for_connection("spot")
        fake.stall(3.0)
        with pytest.raises(FeedDisconnected, match=r"nothing received|PONG"):
            await anext(live)
    assert sum(k.statistics()["disconnects"].values()) == 1


async def test_server_shutdown_reconnects_without_loss(fake: FakeBinance, session: aiohttp.ClientSession) -> None:
    k = make_klines(fake, session)
    feed = make_feed(k, fake, ["1m", "5m"])
    async with Collect(feed) as c:
        await advance(fake, 4)
        await fake.send_server_shutdown()
        await advance(fake, 8)
        await c.until(fake, VENUE)
    assert k.statistics()["disconnects"]["server_shutdown"] == 1
    assert feed.reconnects == 1
    for symbol, vs in VENUE.items():
        for iv in ("1m", "5m"):
            assert_exact(c.got[(symbol, iv)], fake.market.closed("spot", vs, iv))


async def test_killing_the_stream_repeatedly_loses_and_repeats_nothing(
    fake: FakeBinance, session: aiohttp.ClientSession
) -> None:
    k = make_klines(fake, session)
    intervals = ["1m", "5m", "15m"]
    feed = make_feed(k, fake, intervals)
    async with Collect(feed) as c:
        await advance(fake, 3)
        for n in (3, 7, 1, 12, 5):
            fake.drop_connection_after(n)
            await advance(fake, 6)
        fake.send_out_of_order()
        await advance(fake, 10)
        fake.send_duplicates()
        fake.drop_connection_after(4)
        await advance(fake, 10)
        await c.until(fake, VENUE)
    assert feed.reconnects >= 6
    assert feed.duplicates_skipped > 0
    assert fake.connections_opened >= 7
    assert k.closed_bars > 0  # the stream carried bars, not only REST backfill
    for symbol, vs in VENUE.items():
        for iv in intervals:
            assert_exact(c.got[(symbol, iv)], fake.market.closed("spot", vs, iv))


# ------------------------------------------------------------------------------------ funding
async def test_funding_feed_publishes_mark_price_and_rate(fake: FakeBinance, session: aiohttp.ClientSession) -> None:
    bus = Bus(16)
    sub = bus.subscribe(funding(), "test")
    clock = RecordingClock(fake.market)
    config = LiveFeedConfig(binance=BinanceConfig(futures_rest_url=fake.rest_url("futures")))
    http = HttpClient(session, clock, retries=1, backoff_seconds=0.01)
    source = Source("binance_funding", CircuitBreaker("binance_funding", clock))
    feed = FundingFeed(config, SPOT, http, source, bus, clock)
    fake.market.funding_rates["ETHUSDT"] = -0.00012345
    assert feed.symbols == {"BTC-USD": "BTCUSDT", "ETH-USD": "ETHUSDT"}
    assert await feed.poll_once() == 2
    events = [sub.receive_nowait(), sub.receive_nowait()]
    assert all(isinstance(e, FundingUpdated) for e in events)
    btc, eth = (e for e in events if e is not None)
    mark = float(f"{fake.market.mark_price('BTCUSDT'):.8f}")
    assert (btc.symbol, btc.funding_rate, btc.mark_price) == ("BTC-USD", 0.0001, mark)
    assert (eth.funding_rate, eth.next_funding_time) == (-0.00012345, fake.market.next_funding_ms() * MS)
    assert btc.ts_event == fake.now_ns and btc.next_funding_time > btc.ts_event
    fake.fail_rest(500, 2)  # BTC's poll fails after its retry; ETH's succeeds
    assert await feed.poll_once() == 1
    assert feed.statistics()["errors"] == {"FeedError": 1}
    fake.fail_rest(400, 2)
    assert await feed.poll_once() == 0
    assert feed.statistics()["errors"] == {"FeedError": 1, "HttpStatusError": 2}


async def test_funding_feed_run_polls_every_interval(fake: FakeBinance, session: aiohttp.ClientSession) -> None:
    bus = Bus(64)
    sub = bus.subscribe(funding(), "test")
    clock = FakeClock(fake.now_ns)
    config = LiveFeedConfig(
        binance=BinanceConfig(futures_rest_url=fake.rest_url("futures"), funding_symbols=("BTC-USD",))
    )
    http = HttpClient(session, clock, retries=0)
    feed = FundingFeed(config, SPOT, http, Source("f", CircuitBreaker("f", clock)), bus, clock, poll_seconds=60)
    task = asyncio.create_task(feed.run())
    try:
        for n in range(1, 4):

            def sleeping(n: int = n) -> bool:
                return feed.polls == n and clock.sleepers == 1

            await until(sleeping)
            await clock.advance(60)
        await until(lambda: feed.published == 4)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert sub.depth == 4 == feed.published


# ------------------------------------------------------------------------------------ wiring
async def test_build_binance_feeds_one_per_market(session: aiohttp.ClientSession) -> None:
    alpaca = Instrument(symbol="QQQ", asset_class=AssetClass.STOCKS, venue=Venue.ALPACA, venue_symbol="QQQ", name="Q")
    clock = FakeClock()
    feeds = build_binance_feeds(LiveFeedConfig(), [*SPOT, *METALS, alpaca], ["15m", "1h", "1M"], session, clock)
    assert [f.name for f in feeds] == ["binance_spot", "binance_futures"]
    assert [i.symbol for i in feeds[1].instruments] == ["XAU-USD", "XAG-USD"]
    spot, metals = feeds[0].source, feeds[1].source
    assert isinstance(spot, BinanceKlines)
    assert isinstance(metals, BinanceKlines)
    assert spot.stream_url(["BTC-USD"], ["15m"]) == "wss://data-stream.binance.vision/stream?streams=btcusdt@kline_15m"
    assert metals.stream_url(["XAU-USD"], ["1h"]) == "wss://fstream.binance.com/market/stream?streams=xauusdt@kline_1h"
    assert spot._source is not metals._source  # a circuit breaker per market
    only_spot = build_binance_feeds(LiveFeedConfig(), list(SPOT), ["15m"], session, clock)
    assert [f.name for f in only_spot] == ["binance_spot"]
    disabled = LiveFeedConfig(binance=BinanceConfig(enabled=False))
    assert build_binance_feeds(disabled, list(SPOT), ["15m"], session, clock) == []
    with pytest.raises(ConfigError, match="1s"):
        build_binance_feeds(LiveFeedConfig(), list(METALS), ["1s"], session, clock)
    many = [inst(f"C{i}-USD", f"C{i}USDT", Venue.BINANCE_FUTURES) for i in range(41)]
    with pytest.raises(ConfigError, match="200 streams"):
        build_binance_feeds(LiveFeedConfig(), many, ["15m", "1h", "4h", "1d", "1w"], session, clock)


async def test_fake_speaks_subscribe_on_raw_connections(fake: FakeBinance, session: aiohttp.ClientSession) -> None:
    async with session.ws_connect(fake.ws_url("spot") + "/ws") as ws:
        await ws.send_str('{"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": 1}')
        assert await ws.receive_json() == {"result": None, "id": 1}
        await ws.send_str('{"method": "LIST_SUBSCRIPTIONS", "id": "x"}')
        assert await ws.receive_json() == {"result": ["btcusdt@kline_1m"], "id": "x"}
        await ws.send_str('{"method": "GET_PROPERTY", "params": ["combined"], "id": 2}')
        assert await ws.receive_json() == {"result": False, "id": 2}
        await ws.send_str("nonsense")
        assert (await ws.receive_json())["code"] == 3
        await fake.advance(1)
        forming, closed = await ws.receive_json(), await ws.receive_json()
    assert (forming["e"], forming["k"]["x"], closed["k"]["x"]) == ("kline", False, True)  # raw: not wrapped
    assert closed["k"]["t"] * MS == int(fake.market.closed("spot", "BTCUSDT", "1m")["open_time"][-1])


async def test_fake_closes_silent_or_flooding_sockets(fake: FakeBinance, session: aiohttp.ClientSession) -> None:
    fake.ping_interval, fake.pong_timeout = 0.05, 0.2
    async with session.ws_connect(fake.ws_url("spot") + "/stream?streams=btcusdt@kline_1m", autoping=False) as ws:
        kinds = []
        while (msg := await ws.receive(timeout=5)).type is aiohttp.WSMsgType.PING:
            kinds.append(msg.type)
        assert len(kinds) >= 3  # pings every 0.05 s, never answered: closed after 0.2 s
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    fake.ping_interval = 20.0
    async with session.ws_connect(fake.ws_url("spot") + "/stream?streams=btcusdt@kline_1m") as ws:
        for _ in range(6):  # more than 5 incoming messages in a second
            await ws.ping()
        msg = await ws.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert msg.data == aiohttp.WSCloseCode.POLICY_VIOLATION
