"""In-process typed pub/sub with bounded per-subscriber queues and a per-topic overflow policy.

- Topics are built by the functions in :mod:`pia.topics`, never typed inline.
- Every subscriber owns a bounded queue. When it is full, the topic's policy decides:
  ``DROP_OLDEST`` discards the oldest queued event and counts it (market data where only the
  newest matters); ``BLOCK`` makes the publisher wait for room (back-pressure: nothing is lost).
- :meth:`Bus.close` ends the stream: subscribers drain what is queued, then their iteration ends.
- Every published event is logged at DEBUG with key ``event`` = its type name.
- :meth:`Bus.statistics` reports, per topic, published count and per subscriber depth and drops.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pia.errors import BusClosed
from pia.events import Event, log_fields

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)


class Overflow(StrEnum):
    DROP_OLDEST = "drop_oldest"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class Topic(Generic[E]):
    name: str
    event_type: type[E]
    overflow: Overflow


class Subscription(Generic[E]):
    """One subscriber's bounded queue on one topic. Iterate it, or call :meth:`receive`."""

    def __init__(self, topic: Topic[E], name: str, maxsize: int) -> None:
        self.topic = topic
        self.name = name
        self.maxsize = maxsize
        self._items: deque[E] = deque()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        self.delivered = 0
        self.dropped = 0
        self.blocked = 0  # publishes that had to wait for room
        self.max_depth = 0

    # -- consumer side --------------------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[E]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[E]:
        while True:
            try:
                yield await self.receive()
            except BusClosed:
                return

    async def receive(self) -> E:
        """The next event; raises :class:`BusClosed` once closed and drained."""
        while not self._items:
            if self._closed:
                raise BusClosed(f"{self.topic.name}: closed")
            fut = asyncio.get_running_loop().create_future()
            self._getters.append(fut)
            try:
                await fut
            finally:
                if fut in self._getters:
                    self._getters.remove(fut)
        return self._take()

    def receive_nowait(self) -> E | None:
        """The next event if one is queued, else None."""
        return self._take() if self._items else None

    def _take(self) -> E:
        item = self._items.popleft()
        self.delivered += 1
        self._wake(self._putters)
        return item

    @property
    def depth(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- producer side (called by the bus) ------------------------------------------------------
    def offer(self, event: E) -> bool:
        """Queue ``event`` without waiting. False if full under BLOCK policy (caller must wait)."""
        if len(self._items) >= self.maxsize:
            if self.topic.overflow is Overflow.BLOCK:
                return False
            self._items.popleft()
            self.dropped += 1
        self._items.append(event)
        if len(self._items) > self.max_depth:
            self.max_depth = len(self._items)
        self._wake(self._getters)
        return True

    async def put(self, event: E) -> None:
        if self.offer(event):
            return
        self.blocked += 1
        while len(self._items) >= self.maxsize:
            if self._closed:
                raise BusClosed(f"{self.topic.name}: subscriber {self.name} closed")
            fut = asyncio.get_running_loop().create_future()
            self._putters.append(fut)
            try:
                await fut
            finally:
                if fut in self._putters:
                    self._putters.remove(fut)
        self.offer(event)

    def close(self) -> None:
        """No more events; the consumer drains what is queued, then stops. Blocked publishers give up."""
        self._closed = True
        for waiters in (self._getters, self._putters):
            while waiters:
                fut = waiters.popleft()
                if not fut.done():
                    fut.set_result(None)

    @staticmethod
    def _wake(waiters: deque[asyncio.Future[None]]) -> None:
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def statistics(self) -> dict[str, Any]:
        return {
            "depth": len(self._items),
            "max_depth": self.max_depth,
            "maxsize": self.maxsize,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "blocked": self.blocked,
        }


@dataclass(slots=True)
class _TopicState:
    topic: Topic[Any]
    subscribers: list[Subscription[Any]] = field(default_factory=list)
    published: int = 0


class Bus:
    def __init__(self, default_maxsize: int = 8192) -> None:
        if default_maxsize < 1:
            raise ValueError("queue size must be at least 1")
        self._default_maxsize = default_maxsize
        self._topics: dict[str, _TopicState] = {}
        self._closed = False

    def _state(self, topic: Topic[Any]) -> _TopicState:
        state = self._topics.get(topic.name)
        if state is None:
            state = self._topics[topic.name] = _TopicState(topic)
        elif state.topic != topic:
            raise TypeError(f"topic {topic.name!r} already registered as {state.topic}")
        return state

    def subscribe(self, topic: Topic[E], name: str, maxsize: int | None = None) -> Subscription[E]:
        """A new subscriber queue on ``topic``; it sees events published from now on."""
        if self._closed:
            raise BusClosed("bus is closed")
        sub: Subscription[E] = Subscription(topic, name, maxsize or self._default_maxsize)
        self._state(topic).subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription[Any]) -> None:
        state = self._topics.get(sub.topic.name)
        if state and sub in state.subscribers:
            state.subscribers.remove(sub)
        sub.close()

    async def publish(self, topic: Topic[E], event: E) -> None:
        """Deliver ``event`` to every subscriber; waits for room on BLOCK topics (back-pressure)."""
        state = self._prepare(topic, event)
        for sub in state.subscribers:
            if not sub.offer(event):
                await sub.put(event)

    def publish_nowait(self, topic: Topic[E], event: E) -> None:
        """Deliver without waiting. Only for DROP_OLDEST topics, where a full queue drops its oldest."""
        if topic.overflow is not Overflow.DROP_OLDEST:
            raise TypeError(f"publish_nowait on {topic.name!r}, a back-pressure topic: use await publish()")
        state = self._prepare(topic, event)
        for sub in state.subscribers:
            sub.offer(event)

    def _prepare(self, topic: Topic[E], event: E) -> _TopicState:
        if self._closed:
            raise BusClosed(f"publish on closed bus ({topic.name})")
        if not isinstance(event, topic.event_type):
            raise TypeError(f"{topic.name} carries {topic.event_type.__name__}, not {type(event).__name__}")
        state = self._state(topic)
        state.published += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("event", extra=log_fields(event))
        return state

    def close_topic(self, topic: Topic[Any]) -> None:
        """End one topic's streams (staged shutdown: upstream topics close first)."""
        state = self._topics.get(topic.name)
        if state is not None:
            for sub in state.subscribers:
                sub.close()

    def close(self) -> None:
        """End every stream: subscribers drain their queues, then their iteration ends."""
        self._closed = True
        for state in self._topics.values():
            for sub in state.subscribers:
                sub.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def statistics(self) -> dict[str, Any]:
        """Per topic: policy, published count, and each subscriber's depth, drops and waits."""
        return {
            name: {
                "overflow": str(state.topic.overflow),
                "published": state.published,
                "subscribers": {s.name: s.statistics() for s in state.subscribers},
            }
            for name, state in self._topics.items()
        }

    def total_dropped(self) -> int:
        return sum(s.dropped for st in self._topics.values() for s in st.subscribers)
