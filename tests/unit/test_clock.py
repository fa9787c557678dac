from __future__ import annotations

import asyncio

from pia.clock import FakeClock, LiveClock
from pia.intervals import NS


async def test_fake_clock_moves_only_when_advanced() -> None:
    clock = FakeClock(start_ns=1_000 * NS)
    assert clock.now_ns() == 1_000 * NS
    assert clock.monotonic() == 0.0
    await clock.advance(2.5)
    assert clock.now_ns() == 1_000 * NS + int(2.5 * NS)
    assert clock.monotonic() == 2.5


async def test_fake_sleep_wakes_at_its_deadline_in_order() -> None:
    clock = FakeClock(start_ns=0)
    woke: list[tuple[str, int]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now_ns()))

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("c", 3), ("a", 1), ("b", 2))]
    await asyncio.sleep(0)
    assert clock.sleepers == 3
    await clock.advance(1.5)
    assert woke == [("a", 1 * NS)]
    await clock.advance(10)
    assert woke == [("a", 1 * NS), ("b", 2 * NS), ("c", 3 * NS)]
    assert clock.now_ns() == int(11.5 * NS)
    await asyncio.gather(*tasks)


async def test_fake_clock_loop_sees_every_step() -> None:
    clock = FakeClock(start_ns=0)
    ticks: list[int] = []

    async def ticker() -> None:
        for _ in range(5):
            await clock.sleep(1)
            ticks.append(clock.now_ns() // NS)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    await clock.advance(5)
    await asyncio.wait_for(task, 1)
    assert ticks == [1, 2, 3, 4, 5]


async def test_live_clock_is_wall_time() -> None:
    import time

    clock = LiveClock()
    assert abs(clock.now_ns() - time.time_ns()) < 5 * NS
    await clock.sleep(0)
