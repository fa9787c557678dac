"""Waiting for a condition in the fakes without busy polling: woken by an event, re-checked briefly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_until(changed: asyncio.Event, predicate: Callable[[], bool], within: float, poll: float = 0.05) -> bool:
    """True once ``predicate()`` holds (checked whenever ``changed`` is set, and every ``poll`` seconds for
    conditions that change with time alone, like a stall ending); False after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        changed.clear()
        left = deadline - loop.time()
        if left <= 0:
            return False
        try:
            await asyncio.wait_for(changed.wait(), min(left, poll))
        except TimeoutError:
            pass
    return True
