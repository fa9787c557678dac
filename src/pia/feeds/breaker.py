"""A circuit breaker per data source: closed -> open -> half-open -> closed.

``failure_threshold`` consecutive failures open it for ``reset_seconds``; after that one probe is
allowed (half-open): success closes it, failure opens it again. A ban (Binance 418) opens it until
the ban ends, whatever the threshold. Its state appears in the heartbeat.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from pia.clock import Clock

log = logging.getLogger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, name: str, clock: Clock, *, failure_threshold: int = 5, reset_seconds: float = 60.0) -> None:
        self.name = name
        self._clock = clock
        self._threshold = failure_threshold
        self._reset = reset_seconds
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._open_until = 0.0
        self._probing = False
        self.opened = 0

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock.monotonic() >= self._open_until:
            self._state = BreakerState.HALF_OPEN
            self._probing = False
        return self._state

    def retry_in(self) -> float:
        """Seconds until a call may be tried (0 when it may be tried now)."""
        if self.state is BreakerState.OPEN:
            return max(0.0, self._open_until - self._clock.monotonic())
        return 0.0

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one probe at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def success(self) -> None:
        if self._state is not BreakerState.CLOSED:
            log.info("circuit closed", extra={"source": self.name})
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._probing = False

    def failure(self) -> None:
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self._threshold:
            self._open_for(self._reset, "failures")

    def open_until(self, seconds_from_now: float, reason: str) -> None:
        """Open now for at least ``seconds_from_now`` (a ban, a server's Retry-After)."""
        self._open_for(max(seconds_from_now, 0.0), reason)

    def _open_for(self, seconds: float, reason: str) -> None:
        until = self._clock.monotonic() + seconds
        if self._state is not BreakerState.OPEN or until > self._open_until:
            self._open_until = until
        if self._state is not BreakerState.OPEN:
            self.opened += 1
            log.warning(
                "circuit open",
                extra={"source": self.name, "reason": reason, "seconds": round(seconds, 1), "failures": self._failures},
            )
        self._state = BreakerState.OPEN
        self._probing = False

    def statistics(self) -> dict[str, Any]:
        return {
            "state": str(self.state),
            "consecutive_failures": self._failures,
            "opened": self.opened,
            "retry_in_s": round(self.retry_in(), 1),
        }
