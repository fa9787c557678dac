"""HttpClient against a real aiohttp server on 127.0.0.1 answering scripted statuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from pia.clock import FakeClock
from pia.errors import FeedError
from pia.feeds.breaker import BreakerState, CircuitBreaker
from pia.feeds.http import CircuitOpen, HttpClient, HttpStatusError, Source, SourceBanned
from pia.testing.clock import SteppingClock


@dataclass
class Script:
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    calls: int = 0


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Script]]:
    script = Script()

    async def handler(request: web.Request) -> web.Response:
        script.calls += 1
        status, headers, body = script.answers.pop(0) if script.answers else (200, {}, b'{"ok": true}')
        return web.Response(status=status, headers=headers, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/x", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/x", script
    finally:
        await runner.cleanup()


def make(clock: FakeClock, threshold: int = 5) -> tuple[Source, CircuitBreaker]:
    breaker = CircuitBreaker("venue", clock, failure_threshold=threshold, reset_seconds=60)
    return Source("venue", breaker), breaker


async def test_success_records_weight(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(200, {"X-MBX-USED-WEIGHT-1M": "42"}, b"[1, 2]")]
    clock = SteppingClock()
    source, _ = make(clock)
    async with aiohttp.ClientSession() as session:
        assert await HttpClient(session, clock).get_json(source, url) == [1, 2]
    assert source.used_weight == 42
    assert clock.slept == []


async def test_5xx_and_truncated_bodies_are_retried_then_succeed(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(500, {}, b"oops"), (503, {}, b""), (200, {}, b'{"trunc'), (200, {}, b'{"a": 1}')]
    clock = SteppingClock()
    source, breaker = make(clock)
    async with aiohttp.ClientSession() as session:
        assert await HttpClient(session, clock, retries=3, backoff_seconds=1).get_json(source, url) == {"a": 1}
    assert script.calls == 4
    assert len(clock.slept) == 3
    assert 0.5 <= clock.slept[0] <= 1.0 and 1.0 <= clock.slept[1] <= 2.0 and 2.0 <= clock.slept[2] <= 4.0
    assert source.errors == {"500": 1, "503": 1, "bad_json": 1}
    assert breaker.state is BreakerState.CLOSED


async def test_429_waits_retry_after(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(429, {"Retry-After": "17"}, b'{"code":-1003,"msg":"Too much request weight used"}')]
    clock = SteppingClock()
    source, _ = make(clock)
    async with aiohttp.ClientSession() as session:
        assert await HttpClient(session, clock).get_json(source, url) == {"ok": True}
    assert clock.slept == [17.0]


async def test_other_4xx_is_not_retried(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(400, {}, b'{"code":-1121,"msg":"Invalid symbol."}')]
    clock = SteppingClock()
    source, breaker = make(clock)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(HttpStatusError, match=r"HTTP 400.*Invalid symbol") as err:
            await HttpClient(session, clock).get_json(source, url)
    assert err.value.status == 400
    assert script.calls == 1 and clock.slept == []
    assert breaker.state is BreakerState.CLOSED


async def test_418_opens_the_circuit_until_the_ban_ends(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(418, {"Retry-After": "120"}, b'{"code":-1003,"msg":"IP banned"}')]
    clock = SteppingClock()
    source, breaker = make(clock)
    async with aiohttp.ClientSession() as session:
        client = HttpClient(session, clock)
        with pytest.raises(SourceBanned, match="banned for 120 s"):
            await client.get_json(source, url)
        assert breaker.state is BreakerState.OPEN
        with pytest.raises(CircuitOpen):
            await client.get_json(source, url)
        assert script.calls == 1  # no request went out while banned
        await clock.advance(121)
        assert await client.get_json(source, url) == {"ok": True}
    assert breaker.state is BreakerState.CLOSED


async def test_exhausted_retries_count_toward_the_breaker(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(500, {}, b"x")] * 4
    clock = SteppingClock()
    source, breaker = make(clock, threshold=1)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(FeedError, match="after 3 retries"):
            await HttpClient(session, clock).get_json(source, url)
    assert breaker.state is BreakerState.OPEN


async def test_connection_refused_is_retried_then_fails() -> None:
    clock = SteppingClock()
    source, _ = make(clock)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(FeedError, match="ClientConnectorError"):
            await HttpClient(session, clock, retries=2).get_json(source, "http://127.0.0.1:9/none")
    assert len(clock.slept) == 2


async def test_breaker_half_open_allows_one_probe() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("b", clock, failure_threshold=2, reset_seconds=10)
    breaker.failure()
    assert breaker.allow()
    breaker.failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    await clock.advance(10)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow() and not breaker.allow()
    breaker.failure()
    assert breaker.state is BreakerState.OPEN and breaker.opened == 2
    await clock.advance(10)
    assert breaker.allow()
    breaker.success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()


async def test_get_text_retries_undecodable_bodies(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [(200, {}, b"\xff\xfe bad"), (200, {}, b"DATE,CLOSE\n01/02/2026,17.5\n")]
    clock = SteppingClock()
    source, _ = make(clock)
    async with aiohttp.ClientSession() as session:
        assert await HttpClient(session, clock).get_text(source, url) == "DATE,CLOSE\n01/02/2026,17.5\n"
    assert source.errors == {"bad_text": 1}
    assert len(clock.slept) == 1
