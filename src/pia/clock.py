"""Time, injected. The live clock reads the system; the fake clock moves only when a test says so."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol

from pia.intervals import NS


class Clock(Protocol):
    def now_ns(self) -> int:
        """Wall-clock time, ns since the epoch (UTC)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for ages and timeouts)."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""


class LiveClock:
    def now_ns(self) -> int:
        return time.time_ns()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock for tests: ``sleep`` waits until :meth:`advance` moves time past its deadline.

    Sleepers wake in deadline order (ties in the order they slept), each with time set to its deadline,
    so code that loops on ``sleep`` sees every step it would see live. Nothing ever sleeps for real.
    """

    def __init__(self, start_ns: int = 1_700_000_000 * NS) -> None:
        self._now = start_ns
        self._mono = 0.0
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now_ns(self) -> int:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    @property
    def sleepers(self) -> int:
        return sum(1 for *_, f in self._sleepers if not f.done())

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + int(seconds * NS), next(self._seq), fut))
        await fut

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking every sleeper whose deadline is reached, in order."""
        target = self._now + int(seconds * NS)
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            self._step_to(deadline)
            if not fut.done():
                fut.set_result(None)
                # let the woken task run (and perhaps sleep again) before the next deadline
                for _ in range(5):
                    await asyncio.sleep(0)
        self._step_to(target)
        await asyncio.sleep(0)

    def _step_to(self, ts: int) -> None:
        if ts > self._now:
            self._mono += (ts - self._now) / NS
            self._now = ts
