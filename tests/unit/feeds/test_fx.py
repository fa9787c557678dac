"""FX reference rates: Frankfurter parsing, the cache, staleness, and never a made-up rate."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta

import aiohttp
import pytest

from pia import topics
from pia.bus import Bus, Subscription
from pia.clock import FakeClock
from pia.config import FxConfig, HttpConfig
from pia.errors import BadData
from pia.events import FxRateUpdated
from pia.feeds.fear_greed import day_start_ns
from pia.feeds.fx import ECB_PUBLISH_OFFSET_NS, FxFeed, parse_latest
from pia.feeds.http import HttpClient
from pia.intervals import NS
from pia.testing.fake_external import FakeExternal

DAY0 = date(2026, 11, 24)
NOW = int(datetime(2026, 11, 24, 17, 0, tzinfo=UTC).timestamp()) * NS  # after the day's ECB fixing
LOGGER = "pia.feeds.fx"


# ------------------------------------------------------------------------------------------ parser
def test_parse_latest() -> None:
    payload = {"amount": 1.0, "base": "USD", "date": "2026-11-24", "rates": {"SEK": 10.52, "NOK": 11.1}}
    assert parse_latest(payload, "USD", ("SEK",)) == (DAY0, {"SEK": 10.52})
    payload["amount"] = 2.0
    payload["rates"] = {"SEK": 21.04}
    assert parse_latest(payload, "USD", ("SEK", "NOK")) == (DAY0, {"SEK": 10.52})  # per 1 USD; NOK missing


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("nope", "bad_shape"),
        ({"base": "EUR", "date": "2026-11-24", "rates": {"SEK": 1.0}}, "wrong_base"),
        ({"base": "USD", "amount": 0, "date": "2026-11-24", "rates": {"SEK": 1.0}}, "bad_amount"),
        ({"base": "USD", "date": "24/11/2026", "rates": {"SEK": 1.0}}, "bad_date"),
        ({"base": "USD", "date": "2026-13-24", "rates": {"SEK": 1.0}}, "bad_date"),
        ({"base": "USD", "rates": {"SEK": 1.0}}, "bad_date"),
        ({"base": "USD", "date": "2026-11-24", "rates": {}}, "empty"),
        ({"base": "USD", "date": "2026-11-24", "rates": {"NOK": 11.1}}, "missing_rate"),
        ({"base": "USD", "date": "2026-11-24", "rates": {"SEK": "10.5"}}, "missing_rate"),
        ({"base": "USD", "date": "2026-11-24", "rates": {"SEK": -1.0}}, "missing_rate"),
        ({"base": "USD", "date": "2026-11-24", "rates": {"SEK": float("nan")}}, "missing_rate"),
    ],
)
def test_parse_latest_rejects(payload: object, reason: str) -> None:
    with pytest.raises(BadData) as err:
        parse_latest(payload, "USD", ("SEK",))
    assert err.value.reason == reason


# ------------------------------------------------------------------------------------------ the feed
@pytest.fixture
async def fake() -> AsyncIterator[FakeExternal]:
    async with FakeExternal() as server:
        server.frankfurter.set_rate("USD", "SEK", 10.52, day=DAY0)
        server.frankfurter.set_rate("USD", "NOK", 11.1, day=DAY0)
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


class Rig:
    def __init__(self, fake: FakeExternal, session: aiohttp.ClientSession, quotes: tuple[str, ...] = ("SEK",)):
        self.fake = fake
        self.clock = FakeClock(NOW)
        self.bus = Bus()
        self.sub: Subscription[FxRateUpdated] = self.bus.subscribe(topics.fx(), "test")
        http = HttpClient(session, self.clock, retries=0, timeout_seconds=5.0)
        config = FxConfig(url=fake.frankfurter_url, quotes=quotes, poll_seconds=3600, stale_after_seconds=7200)
        self.feed = FxFeed(config, http, self.bus, self.clock, http_config=HttpConfig(breaker_failures=100))

    def received(self) -> list[FxRateUpdated]:
        out = []
        while (event := self.sub.receive_nowait()) is not None:
            out.append(event)
        return out

    def failures(self, quote: str = "SEK") -> dict[str, int]:
        failures: dict[str, int] = self.feed.statistics()["pairs"][f"USD/{quote}"]["failures"]
        return failures

    async def poll_after(self, seconds: float) -> list[FxRateUpdated]:
        await self.clock.advance(seconds)
        return await self.feed.poll_once()


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and r.name == LOGGER]


async def until(predicate: Callable[[], bool]) -> None:
    """Let real socket I/O progress (the fake server) until ``predicate`` holds; no timers involved."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0)


async def test_publishes_a_fresh_rate(fake: FakeExternal, session: aiohttp.ClientSession) -> None:
    rig = Rig(fake, session)
    events = await rig.feed.poll_once()
    assert rig.received() == events
    (event,) = events
    assert (event.base, event.quote, event.rate, event.rate_date, event.stale) == (
        "USD",
        "SEK",
        10.52,
        "2026-11-24",
        False,
    )
    assert event.ts_event == day_start_ns(DAY0) + ECB_PUBLISH_OFFSET_NS
    assert event.ts_recv == NOW
    assert fake.frankfurter.last_query == {"from": "USD", "to": "SEK"}
    assert rig.feed.latest("USD", "SEK") == event
    assert rig.feed.latest("usd", "sek") == event
    assert rig.feed.latest("EUR", "SEK") is None
    assert rig.feed.latest("USD", "NOK") is None


async def test_several_quotes(fake: FakeExternal, session: aiohttp.ClientSession) -> None:
    rig = Rig(fake, session, quotes=("SEK", "NOK"))
    events = await rig.feed.poll_once()
    assert [(e.quote, e.rate) for e in events] == [("SEK", 10.52), ("NOK", 11.1)]
    assert fake.frankfurter.requests == 2


async def test_an_unknown_quote_does_not_take_the_others_down(
    fake: FakeExternal, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(fake, session, quotes=("XYZ", "SEK"))
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        (event,) = await rig.feed.poll_once()
    assert event.quote == "SEK"
    assert records(caplog, logging.ERROR) == ["no USD/XYZ rate available"]
    pairs = rig.feed.statistics()["pairs"]
    assert pairs["USD/XYZ"]["rate"] is None
    assert pairs["USD/XYZ"]["failures"] == {"http_404": 1}
    assert pairs["USD/SEK"]["rate"] == 10.52


async def test_no_duplicate_events_on_unchanged_data(fake: FakeExternal, session: aiohttp.ClientSession) -> None:
    rig = Rig(fake, session)
    assert len(await rig.feed.poll_once()) == 1
    assert await rig.poll_after(3600) == []  # same date, same rate: the weekend looks like this
    fake.frankfurter.set_rate("USD", "SEK", 10.61, day=DAY0 + timedelta(days=1))
    (event,) = await rig.poll_after(3600)
    assert (event.rate, event.rate_date, event.stale) == (10.61, "2026-11-25", False)
    assert rig.feed.statistics()["published"] == 2


async def test_no_rate_at_start_means_no_event_and_an_error(
    fake: FakeExternal, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(fake, session)
    fake.frankfurter.fail(500, times=3)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert await rig.feed.poll_once() == []
        assert await rig.poll_after(60) == []
    assert rig.received() == []
    assert rig.feed.latest("USD", "SEK") is None
    assert records(caplog, logging.ERROR) == ["no USD/SEK rate available"]  # once per hour, not per poll
    assert rig.failures() == {"http_500": 2}
    assert rig.feed.statistics()["pairs"]["USD/SEK"]["rate"] is None


async def test_500_then_recovery_on_the_polling_clock(
    fake: FakeExternal, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(fake, session)
    fake.frankfurter.fail(500, times=2)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        task = asyncio.create_task(rig.feed.run())
        try:
            await until(lambda: rig.feed.polls == 1 and rig.clock.sleepers == 1)
            await rig.clock.advance(60)  # without a rate it retries after 60 s, not poll_seconds
            await until(lambda: rig.feed.polls == 2 and rig.clock.sleepers == 1)
            assert rig.received() == []
            await rig.clock.advance(60)
            await until(lambda: rig.feed.polls == 3 and rig.clock.sleepers == 1)
            (event,) = rig.received()
            assert (event.rate, event.stale) == (10.52, False)
            await rig.clock.advance(3599)  # healthy: next poll after poll_seconds
            assert rig.feed.polls == 3
            await rig.clock.advance(1)
            await until(lambda: rig.feed.polls == 4 and rig.clock.sleepers == 1)
            assert rig.received() == []
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert records(caplog, logging.ERROR) == ["no USD/SEK rate available"]
    assert len(records(caplog, logging.WARNING)) == 1  # the failure burst, once
    assert "source recovered" in records(caplog, logging.INFO)


async def test_stale_after_failed_fetches_then_fresh_again(
    fake: FakeExternal, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(fake, session)
    await rig.feed.poll_once()
    rig.received()
    fake.frankfurter.fail(503, times=1000)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert await rig.poll_after(3600) == []  # 1 h since the last good fetch: still fresh
        (event,) = await rig.poll_after(3601)  # 2 h 1 s: stale, published once with the cached rate
        assert (event.rate, event.rate_date, event.stale) == (10.52, "2026-11-24", True)
        stale_warnings = [m for m in records(caplog, logging.WARNING) if "stale" in m]
        assert len(stale_warnings) == 1
        for _ in range(10):  # stays stale: no new event, no new warning within the hour
            assert await rig.poll_after(60) == []
        assert len([m for m in records(caplog, logging.WARNING) if "stale" in m]) == 1
        assert rig.feed.latest("USD", "SEK").stale is True  # type: ignore[union-attr]
        await rig.poll_after(3000)  # an hour after the first warning: reminded once more
        assert len([m for m in records(caplog, logging.WARNING) if "stale" in m]) == 2
    fake.frankfurter.clear_faults()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        (event,) = await rig.poll_after(60)
    assert (event.rate, event.stale) == (10.52, False)
    assert "USD/SEK rate fresh" in records(caplog, logging.INFO)
    assert [e.stale for e in rig.received()] == [True, False]


@pytest.mark.parametrize(("age_days", "stale"), [(4, False), (5, True)])
async def test_stale_when_the_ecb_date_is_old(
    fake: FakeExternal, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture, age_days: int, stale: bool
) -> None:
    rig = Rig(fake, session)
    fake.frankfurter.set_date("USD", DAY0 - timedelta(days=age_days))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        (event,) = await rig.feed.poll_once()
    assert event.stale is stale
    assert len(records(caplog, logging.WARNING)) == (1 if stale else 0)


async def test_malformed_and_empty_answers_are_dropped_and_counted(
    fake: FakeExternal, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(fake, session)
    await rig.feed.poll_once()
    rig.received()
    fake.frankfurter.send_malformed()
    fake.frankfurter.send_empty()
    fake.frankfurter.fail(404)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(3):
            assert await rig.poll_after(60) == []
    assert rig.failures() == {"malformed": 1, "empty": 1, "http_404": 1}
    assert len(records(caplog, logging.WARNING)) == 1  # once per burst
    assert rig.feed.latest("USD", "SEK").rate == 10.52  # type: ignore[union-attr]  # the cache survives


async def test_dates_going_backwards_or_into_the_future_are_refused(
    fake: FakeExternal, session: aiohttp.ClientSession
) -> None:
    rig = Rig(fake, session)
    await rig.feed.poll_once()
    fake.frankfurter.set_rate("USD", "SEK", 9.0, day=DAY0 - timedelta(days=1))
    assert await rig.poll_after(60) == []
    fake.frankfurter.set_rate("USD", "SEK", 9.0, day=DAY0 + timedelta(days=3))
    assert await rig.poll_after(60) == []
    assert rig.failures() == {"out_of_order": 1, "future_date": 1}
    assert rig.feed.latest("USD", "SEK").rate == 10.52  # type: ignore[union-attr]


async def test_disabled_feed_returns_at_once(session: aiohttp.ClientSession) -> None:
    clock = FakeClock(NOW)
    feed = FxFeed(FxConfig(enabled=False), HttpClient(session, clock), Bus(), clock)
    await asyncio.wait_for(feed.run(), timeout=1)
    assert feed.polls == 0


async def test_the_fake_speaks_the_wire_format(fake: FakeExternal, session: aiohttp.ClientSession) -> None:
    url = f"{fake.frankfurter_url}/latest"
    async with session.get(url, params={"from": "USD", "to": "SEK", "amount": "10"}) as resp:
        assert await resp.json() == {"amount": 10.0, "base": "USD", "date": "2026-11-24", "rates": {"SEK": 105.2}}
    async with session.get(url, params={"from": "USD"}) as resp:
        assert (await resp.json())["rates"] == {"NOK": 11.1, "SEK": 10.52}
    async with session.get(url) as resp:  # from defaults to EUR, which this fake has no rates for
        assert resp.status == 404
