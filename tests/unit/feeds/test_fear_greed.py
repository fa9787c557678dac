"""Fear & Greed: the VIX formula and classes (SEED-SPEC §2.2), the parsers, and the feed against the fakes."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta

import aiohttp
import pytest

from pia import topics
from pia.bus import Bus, Subscription
from pia.clock import FakeClock
from pia.config import FearGreedConfig, HttpConfig
from pia.errors import BadData
from pia.events import FearGreedUpdated
from pia.feeds.fear_greed import (
    VIX_CLOSE_OFFSET_NS,
    FearGreedFeed,
    classify,
    day_start_ns,
    parse_fng,
    parse_vix_csv,
    vix_to_fear_greed,
)
from pia.feeds.http import HttpClient
from pia.intervals import DAY, NS
from pia.testing.fake_external import FakeExternal

DAY0 = date(2026, 11, 24)
NOW = int(datetime(2026, 11, 24, 22, 0, tzinfo=UTC).timestamp()) * NS  # after the day's VIX close
LOGGER = "pia.feeds.fear_greed"


# ------------------------------------------------------------------------------------------ formula
@pytest.mark.parametrize(
    ("vix", "expected"),
    [
        (80.0, 5.0),
        (45.0, 5.0),
        (40.0, 5.0),
        (35.0, 12.5),
        (30.0, 20.0),
        (25.0, 35.0),
        (20.0, 50.0),
        (17.5, 65.0),
        (15.0, 80.0),
        (12.5, 90.0),
        (10.0, 100.0),
        (5.0, 100.0),  # 120 clamped
        (0.0, 100.0),
    ],
)
def test_vix_to_fear_greed_at_every_piece(vix: float, expected: float) -> None:
    assert vix_to_fear_greed(vix) == pytest.approx(expected)


@pytest.mark.parametrize("boundary", [40.0, 30.0, 20.0, 15.0])
def test_vix_formula_is_continuous_at_boundaries(boundary: float) -> None:
    eps = 1e-9
    assert vix_to_fear_greed(boundary - eps) == pytest.approx(vix_to_fear_greed(boundary), abs=1e-6)
    assert vix_to_fear_greed(boundary + eps) == pytest.approx(vix_to_fear_greed(boundary), abs=1e-6)


def test_vix_formula_is_monotone_and_bounded() -> None:
    values = [vix_to_fear_greed(v / 10) for v in range(0, 1000)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert min(values) == 5.0
    assert max(values) == 100.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_vix_formula_refuses_non_finite(bad: float) -> None:
    with pytest.raises(ValueError):
        vix_to_fear_greed(bad)


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (0, "Extreme Fear"),
        (20, "Extreme Fear"),
        (20.5, "Fear"),
        (40, "Fear"),
        (40.1, "Neutral"),
        (60, "Neutral"),
        (61, "Greed"),
        (80, "Greed"),
        (80.01, "Extreme Greed"),
        (100, "Extreme Greed"),
    ],
)
def test_classes(value: float, label: str) -> None:
    assert classify(value) == label


# ------------------------------------------------------------------------------------------ parsers
def test_parse_fng_reads_strings_and_keeps_the_api_label() -> None:
    payload = {
        "name": "Fear and Greed Index",
        "data": [{"value": "27", "value_classification": "Fear", "timestamp": "1767398400", "time_until_update": "9"}],
        "metadata": {"error": None},
    }
    assert parse_fng(payload) == (27, "Fear", 1767398400 * NS)
    payload["data"][0]["value_classification"] = ""  # type: ignore[index]
    assert parse_fng(payload)[1] == "Fear"  # our classes when the API gives none


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([], "bad_shape"),
        ({"data": [], "metadata": {"error": "limit reached"}}, "api_error"),
        ({"data": [], "metadata": {"error": None}}, "empty"),
        ({"data": None}, "empty"),
        ({"data": ["27"]}, "bad_shape"),
        ({"data": [{"value": "abc", "timestamp": "1"}]}, "bad_value"),
        ({"data": [{"value": "27.5", "timestamp": "1"}]}, "bad_value"),
        ({"data": [{"value": "101", "timestamp": "1"}]}, "bad_value"),
        ({"data": [{"value": True, "timestamp": "1"}]}, "bad_value"),
        ({"data": [{"value": "27"}]}, "bad_timestamp"),
        ({"data": [{"value": "27", "timestamp": "11-24-2026"}]}, "bad_timestamp"),
    ],
)
def test_parse_fng_rejects(payload: object, reason: str) -> None:
    with pytest.raises(BadData) as err:
        parse_fng(payload)
    assert err.value.reason == reason


def test_parse_vix_takes_the_last_row() -> None:
    text = "\ufeffDATE,OPEN,HIGH,LOW,CLOSE\r\n11/23/2026,18,19,17,18.5\r\n11/24/2026,18,19,16,17.25\r\n\r\n"
    assert parse_vix_csv(text) == (DAY0, 17.25)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("DATE,OPEN,HIGH,LOW,CLOSE\n", "empty"),
        ("<html>maintenance</html>\n", "bad_header"),
        ("DATE,OPEN,HIGH,LOW,CLOSE\n11/24/2026,18,19,16\n", "bad_row"),
        ("DATE,OPEN,HIGH,LOW,CLOSE\n2026-11-24,18,19,16,17\n", "bad_date"),
        ("DATE,OPEN,HIGH,LOW,CLOSE\n11/24/2026,18,19,16,abc\n", "bad_close"),
        ("DATE,OPEN,HIGH,LOW,CLOSE\n11/24/2026,18,19,16,nan\n", "bad_close"),
        ("DATE,OPEN,HIGH,LOW,CLOSE\n11/24/2026,18,19,16,-3\n", "bad_close"),
    ],
)
def test_parse_vix_rejects(text: str, reason: str) -> None:
    with pytest.raises(BadData) as err:
        parse_vix_csv(text)
    assert err.value.reason == reason


# ------------------------------------------------------------------------------------------ the feed
@pytest.fixture
async def fake() -> AsyncIterator[FakeExternal]:
    async with FakeExternal() as server:
        server.fear_greed.publish(22, day=DAY0 - timedelta(days=1))
        server.fear_greed.publish(27, day=DAY0)
        server.vix.add_close(DAY0 - timedelta(days=1), 19.0)
        server.vix.add_close(DAY0, 17.5)
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


class Rig:
    def __init__(self, fake: FakeExternal, session: aiohttp.ClientSession, *, retries: int = 0, breaker: int = 5):
        self.fake = fake
        self.clock = FakeClock(NOW)
        self.bus = Bus()
        self.sub: Subscription[FearGreedUpdated] = self.bus.subscribe(topics.fear_greed(), "test")
        self.http = HttpClient(session, self.clock, retries=retries, backoff_seconds=1.0, timeout_seconds=5.0)
        config = FearGreedConfig(crypto_url=fake.fear_greed_url, vix_url=fake.vix_url, poll_seconds=300)
        self.feed = FearGreedFeed(
            config, self.http, self.bus, self.clock, http_config=HttpConfig(breaker_failures=breaker)
        )

    def received(self) -> list[FearGreedUpdated]:
        out = []
        while (event := self.sub.receive_nowait()) is not None:
            out.append(event)
        return out

    def failures(self, source: str) -> dict[str, int]:
        failures: dict[str, int] = self.feed.statistics()["sources"][source]["failures"]
        return failures


async def until(predicate: Callable[[], bool]) -> None:
    """Let real socket I/O progress (the fake server) until ``predicate`` holds; no timers involved."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0)


async def test_publishes_crypto_stocks_and_metals(fake: FakeExternal, session: aiohttp.ClientSession) -> None:
    rig = Rig(fake, session)
    events = await rig.feed.poll_once()
    assert rig.received() == events
    by_class = {e.asset_class: e for e in events}
    assert set(by_class) == {"crypto", "stocks", "metals"}
    crypto = by_class["crypto"]
    assert (crypto.value, crypto.classification, crypto.vix) == (27.0, "Fear", None)
    assert crypto.ts_event == day_start_ns(DAY0)
    assert crypto.ts_recv == NOW
    assert fake.fear_greed.last_query == {"limit": "1", "format": "json"}
    for ac in ("stocks", "metals"):
        e = by_class[ac]
        assert (e.value, e.classification, e.vix) == (65.0, "Greed", 17.5)
        assert e.ts_event == day_start_ns(DAY0) + VIX_CLOSE_OFFSET_NS
        assert e.source == "cboe_vix"
    assert rig.feed.latest("crypto") == crypto


async def test_no_duplicate_events_on_unchanged_data(fake: FakeExternal, session: aiohttp.ClientSession) -> None:
    rig = Rig(fake, session)
    assert len(await rig.feed.poll_once()) == 3
    assert await rig.feed.poll_once() == []
    assert rig.feed.unchanged == 3
    fake.vix.add_close(DAY0, 31.0)  # same date, new (intraday-revised) close -> stocks and metals only
    changed = await rig.feed.poll_once()
    assert [(e.asset_class, e.value) for e in changed] == [("stocks", pytest.approx(18.5)), ("metals", 18.5)]
    fake.fear_greed.publish(27, day=DAY0 + timedelta(days=1))  # same value, new date -> published
    changed = await rig.feed.poll_once()
    assert [(e.asset_class, e.value) for e in changed] == [("crypto", 27.0)]
    assert rig.feed.statistics()["published"] == {"crypto": 2, "stocks": 2, "metals": 2}


async def test_500_then_recovery_on_the_polling_clock(
    fake: FakeExternal, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(fake, session)
    fake.fear_greed.fail(500, times=3)
    fake.vix.fail(503, times=3)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        task = asyncio.create_task(rig.feed.run())
        try:
            await until(lambda: rig.feed.polls == 1 and rig.clock.sleepers == 1)
            for _ in range(2):  # failed polls retry after 60 s (not poll_seconds)
                await rig.clock.advance(60)
                await until(lambda: rig.clock.sleepers == 1 and fake.vix.requests == rig.feed.polls)
            assert rig.feed.polls == 3
            assert rig.received() == []
            assert rig.failures("alternative_me") == {"http_500": 3}
            assert rig.failures("cboe_vix") == {"http_503": 3}
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert sorted(r.source for r in warnings) == ["alternative_me", "cboe_vix"]  # type: ignore[attr-defined]
            await rig.clock.advance(60)
            await until(lambda: rig.feed.polls == 4 and rig.clock.sleepers == 1)
            assert {e.asset_class for e in rig.received()} == {"crypto", "stocks", "metals"}
            assert sum(r.getMessage() == "source recovered" for r in caplog.records) == 2
            await rig.clock.advance(299)  # healthy again: back to poll_seconds
            assert rig.feed.polls == 4
            await rig.clock.advance(1)
            await until(lambda: rig.feed.polls == 5 and rig.clock.sleepers == 1)
            assert rig.received() == []
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


async def test_malformed_and_empty_data_dropped_and_counted(
    fake: FakeExternal, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(fake, session, breaker=100)
    fake.fear_greed.send_malformed()
    fake.fear_greed.send_empty()
    fake.fear_greed.send_api_error("too many requests")
    fake.vix.send_malformed()
    fake.vix.send_empty()
    fake.vix.fail(404)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(3):
            assert await rig.feed.poll_once() == []
    assert rig.received() == []
    assert rig.failures("alternative_me") == {"malformed": 1, "empty": 1, "api_error": 1}
    assert rig.failures("cboe_vix") == {"bad_close": 1, "empty": 1, "http_404": 1}
    assert len(caplog.records) == 2  # once per burst per source
    assert fake.vix.requests == 3  # the 404 was not retried
    assert len(await rig.feed.poll_once()) == 3
    assert rig.feed.statistics()["sources"]["cboe_vix"]["consecutive_failures"] == 0


async def test_bad_values_on_the_wire(fake: FakeExternal, session: aiohttp.ClientSession) -> None:
    rig = Rig(fake, session)
    fake.fear_greed.publish("n/a", day=DAY0)
    fake.vix.add_close(DAY0, float("nan"))
    assert await rig.feed.poll_once() == []
    assert rig.failures("alternative_me") == {"bad_value": 1}
    assert rig.failures("cboe_vix") == {"bad_close": 1}


async def test_dates_going_backwards_or_into_the_future_are_refused(
    fake: FakeExternal, session: aiohttp.ClientSession
) -> None:
    rig = Rig(fake, session)
    assert len(await rig.feed.poll_once()) == 3
    fake.vix.rows.pop()  # a stale copy of the file: the latest row is an older day
    fake.fear_greed.publish(90, day=DAY0 + timedelta(days=3))  # beyond now + 1 day
    assert await rig.feed.poll_once() == []
    assert rig.failures("cboe_vix") == {"out_of_order": 1}
    assert rig.failures("alternative_me") == {"future_date": 1}
    assert rig.feed.latest("stocks") is not None
    assert rig.feed.latest("stocks").vix == 17.5  # type: ignore[union-attr]


async def test_http_retries_sleep_on_the_injected_clock(fake: FakeExternal, session: aiohttp.ClientSession) -> None:
    rig = Rig(fake, session, retries=2)
    fake.fear_greed.fail(502, times=2)
    fake.vix.fail(500, times=2)
    poll = asyncio.create_task(rig.feed.poll_once())
    while not poll.done():
        await until(lambda: rig.clock.sleepers == 1 or poll.done())
        if rig.clock.sleepers:
            await rig.clock.advance(10)  # past any backoff (1 s, 2 s with jitter)
    assert len(poll.result()) == 3
    stats = rig.feed.statistics()["sources"]
    assert stats["alternative_me"]["http"]["retries"] == 2
    assert stats["cboe_vix"]["http"]["retries"] == 2
    assert stats["cboe_vix"]["failures"] == {}


async def test_open_circuit_fails_fast(fake: FakeExternal, session: aiohttp.ClientSession) -> None:
    rig = Rig(fake, session, breaker=2)
    fake.vix.fail(500, times=10)
    for _ in range(4):
        await rig.feed.poll_once()
    assert fake.vix.requests == 2
    assert rig.failures("cboe_vix") == {"http_500": 2, "circuit_open": 2}
    await rig.clock.advance(60)  # breaker_reset_seconds: one probe, still failing
    await rig.feed.poll_once()
    assert fake.vix.requests == 3


async def test_disabled_feed_returns_at_once(session: aiohttp.ClientSession) -> None:
    clock = FakeClock(NOW)
    feed = FearGreedFeed(FearGreedConfig(enabled=False), HttpClient(session, clock), Bus(), clock)
    await asyncio.wait_for(feed.run(), timeout=1)
    assert feed.polls == 0


async def test_statistics_shape(fake: FakeExternal, session: aiohttp.ClientSession) -> None:
    rig = Rig(fake, session)
    await rig.feed.poll_once()
    stats = rig.feed.statistics()
    assert stats["polls"] == 1
    assert stats["latest"]["stocks"]["vix"] == 17.5
    assert stats["sources"]["alternative_me"]["http"]["requests"] == 1
    assert stats["sources"]["cboe_vix"]["http"]["breaker"]["state"] == "closed"
    assert rig.clock.now_ns() - stats["latest"]["crypto"]["ts_event"] < DAY


async def test_the_fake_speaks_the_wire_format(fake: FakeExternal, session: aiohttp.ClientSession) -> None:
    async with session.get(fake.fear_greed_url, params={"limit": 0, "date_format": "us"}) as resp:
        body = await resp.json()
    assert body["metadata"] == {"error": None}
    assert [d["timestamp"] for d in body["data"]] == ["11-24-2026", "11-23-2026"]  # newest first
    assert body["data"][0]["value"] == "27"
    assert "time_until_update" in body["data"][0]
    assert "time_until_update" not in body["data"][1]
    async with session.get(fake.fear_greed_url) as resp:
        assert len((await resp.json())["data"]) == 1  # limit defaults to 1
    async with session.get(fake.vix_url) as resp:
        assert (await resp.text()).splitlines()[-1] == "11/24/2026,17.500000,18.375000,16.625000,17.500000"
