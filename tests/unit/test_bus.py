from __future__ import annotations

import asyncio
import logging

import pytest

from pia.bus import Bus, Overflow, Topic
from pia.errors import BusClosed
from pia.events import PriceUpdated


def price(n: int, symbol: str = "BTC-USD") -> PriceUpdated:
    return PriceUpdated(ts_event=n, ts_recv=n, symbol=symbol, price=float(n))


DROP: Topic[PriceUpdated] = Topic("test.drop", PriceUpdated, Overflow.DROP_OLDEST)
BLOCK: Topic[PriceUpdated] = Topic("test.block", PriceUpdated, Overflow.BLOCK)


async def test_fan_out_delivers_every_event_to_every_subscriber_in_order() -> None:
    bus = Bus(16)
    subs = [bus.subscribe(BLOCK, f"s{i}") for i in range(3)]
    for n in range(10):
        await bus.publish(BLOCK, price(n))
    bus.close()
    for sub in subs:
        got = [ev.ts_event async for ev in sub]
        assert got == list(range(10))
    stats = bus.statistics()["test.block"]
    assert stats["published"] == 10
    assert {name: s["delivered"] for name, s in stats["subscribers"].items()} == {
        "s0": 10,
        "s1": 10,
        "s2": 10,
    }


async def test_subscriber_sees_only_events_after_it_subscribed() -> None:
    bus = Bus(8)
    early = bus.subscribe(BLOCK, "early")
    await bus.publish(BLOCK, price(1))
    late = bus.subscribe(BLOCK, "late")
    await bus.publish(BLOCK, price(2))
    assert early.depth == 2
    assert late.depth == 1
    assert (late.receive_nowait() or price(-1)).ts_event == 2


async def test_bounded_queue_drops_oldest_and_counts() -> None:
    bus = Bus(4)
    slow = bus.subscribe(DROP, "slow")
    fast = bus.subscribe(DROP, "fast", maxsize=100)
    for n in range(10):
        bus.publish_nowait(DROP, price(n))
    assert slow.depth == 4
    assert [slow.receive_nowait().ts_event for _ in range(4)] == [6, 7, 8, 9]  # type: ignore[union-attr]
    assert slow.dropped == 6
    assert fast.dropped == 0 and fast.depth == 10
    assert bus.total_dropped() == 6
    st = bus.statistics()["test.drop"]["subscribers"]["slow"]
    assert st["dropped"] == 6 and st["max_depth"] == 4 and st["maxsize"] == 4


async def test_back_pressure_blocks_publisher_until_consumer_makes_room() -> None:
    bus = Bus(2)
    sub = bus.subscribe(BLOCK, "consumer")
    await bus.publish(BLOCK, price(1))
    await bus.publish(BLOCK, price(2))
    third = asyncio.create_task(bus.publish(BLOCK, price(3)))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not third.done(), "a full BLOCK queue must make the publisher wait"
    assert sub.depth == 2
    assert (await sub.receive()).ts_event == 1
    await asyncio.wait_for(third, 1)
    assert [(await sub.receive()).ts_event for _ in range(2)] == [2, 3]
    assert sub.dropped == 0 and sub.blocked == 1


async def test_back_pressure_loses_nothing_with_a_slow_consumer() -> None:
    bus = Bus(3)
    sub = bus.subscribe(BLOCK, "slow")
    received: list[int] = []

    async def consume() -> None:
        async for ev in sub:
            received.append(ev.ts_event)
            await asyncio.sleep(0)

    task = asyncio.create_task(consume())
    for n in range(200):
        await bus.publish(BLOCK, price(n))
    bus.close()
    await asyncio.wait_for(task, 5)
    assert received == list(range(200))
    assert sub.max_depth <= 3


async def test_publish_nowait_refuses_back_pressure_topic() -> None:
    bus = Bus(2)
    with pytest.raises(TypeError, match="back-pressure"):
        bus.publish_nowait(BLOCK, price(1))


async def test_wrong_event_type_is_refused() -> None:
    bus = Bus(2)
    topic = Topic("test.typed", PriceUpdated, Overflow.BLOCK)
    with pytest.raises(TypeError, match="carries PriceUpdated"):
        await bus.publish(topic, object())  # type: ignore[arg-type]


async def test_close_drains_then_ends_iteration_and_refuses_new_work() -> None:
    bus = Bus(8)
    sub = bus.subscribe(BLOCK, "s")
    await bus.publish(BLOCK, price(1))
    await bus.publish(BLOCK, price(2))
    bus.close()
    assert [ev.ts_event async for ev in sub] == [1, 2]
    with pytest.raises(BusClosed):
        await sub.receive()
    with pytest.raises(BusClosed):
        await bus.publish(BLOCK, price(3))
    with pytest.raises(BusClosed):
        bus.subscribe(BLOCK, "late")


async def test_close_wakes_a_waiting_consumer() -> None:
    bus = Bus(8)
    sub = bus.subscribe(BLOCK, "s")
    waiter = asyncio.create_task(sub.receive())
    await asyncio.sleep(0)
    bus.close()
    with pytest.raises(BusClosed):
        await asyncio.wait_for(waiter, 1)


async def test_close_releases_a_blocked_publisher_with_an_error() -> None:
    bus = Bus(1)
    bus.subscribe(BLOCK, "stuck")
    await bus.publish(BLOCK, price(1))
    blocked = asyncio.create_task(bus.publish(BLOCK, price(2)))
    await asyncio.sleep(0)
    bus.close_topic(BLOCK)
    with pytest.raises(BusClosed):
        await asyncio.wait_for(blocked, 1)


async def test_close_topic_ends_only_that_topic() -> None:
    bus = Bus(4)
    a = bus.subscribe(BLOCK, "a")
    b = bus.subscribe(DROP, "b")
    bus.close_topic(BLOCK)
    assert a.closed and not b.closed
    bus.publish_nowait(DROP, price(5))
    assert b.depth == 1


async def test_every_published_event_is_logged_at_debug_with_its_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = Bus(4)
    bus.subscribe(DROP, "s")
    with caplog.at_level(logging.DEBUG, logger="pia.bus"):
        bus.publish_nowait(DROP, price(7, "ETH-USD"))
    [record] = [r for r in caplog.records if r.name == "pia.bus"]
    assert record.levelno == logging.DEBUG
    assert record.event == "PriceUpdated"  # type: ignore[attr-defined]
    assert record.symbol == "ETH-USD"  # type: ignore[attr-defined]
    assert record.price == 7.0  # type: ignore[attr-defined]
