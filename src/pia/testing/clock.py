"""A fake clock whose sleeps return at once (time jumps forward) and are recorded.

For code under test that must wait (retry backoff, reconnect delays) where the test only cares
about how long it chose to wait, not about interleaving with other sleepers (use
:class:`pia.clock.FakeClock` for that).
"""

from __future__ import annotations

import asyncio

from pia.clock import FakeClock
from pia.intervals import NS


class SteppingClock(FakeClock):
    def __init__(self, start_ns: int = 1_700_000_000 * NS) -> None:
        super().__init__(start_ns)
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self._step_to(self.now_ns() + int(max(seconds, 0.0) * NS))
        await asyncio.sleep(0)
