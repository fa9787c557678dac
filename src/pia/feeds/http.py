"""HTTP for the feeds: one aiohttp session per service, retries only where they are safe, and the
server's limits honoured.

- Retried (up to ``retries`` times, exponential backoff with jitter via tenacity): timeouts,
  connection errors, 5xx, truncated or non-JSON bodies, and 429 (after the server's ``Retry-After``).
- Never retried: other 4xx (the request is wrong; retrying cannot help) -> :class:`HttpStatusError`.
- 418 (Binance IP ban): the source's circuit opens until the ban ends -> :class:`SourceBanned`.
- Each source has a :class:`~pia.feeds.breaker.CircuitBreaker`; while open, calls fail fast with
  :class:`CircuitOpen`. Request weight (``X-MBX-USED-WEIGHT-1M``) and Alpaca's
  ``X-Ratelimit-Remaining`` are recorded from every response.
Only GET is offered: market data is read-only, so every call is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from pia.clock import Clock
from pia.errors import FeedError
from pia.feeds.breaker import CircuitBreaker

log = logging.getLogger(__name__)


class HttpStatusError(FeedError):
    """A 4xx answer other than 429/418: the request itself is wrong. Not retried."""

    def __init__(self, source: str, status: int, body: str) -> None:
        super().__init__(f"{source}: HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class SourceBanned(FeedError):
    """HTTP 418: the venue banned this IP; its circuit stays open until the ban ends."""


class CircuitOpen(FeedError):
    """The source's circuit breaker is open; try again in ``retry_in`` seconds."""

    def __init__(self, source: str, retry_in: float) -> None:
        super().__init__(f"{source}: circuit open, retry in {retry_in:.0f} s")
        self.retry_in = retry_in


class _Retryable(FeedError):
    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


@dataclass
class Source:
    """Per-source state: its breaker and what the server last said about our limits."""

    name: str
    breaker: CircuitBreaker
    used_weight: int | None = None
    ratelimit_remaining: int | None = None
    requests: int = 0
    retries: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def statistics(self) -> dict[str, Any]:
        return {
            "breaker": self.breaker.statistics(),
            "used_weight_1m": self.used_weight,
            "ratelimit_remaining": self.ratelimit_remaining,
            "requests": self.requests,
            "retries": self.retries,
            "errors": dict(self.errors),
        }


class HttpClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        clock: Clock,
        *,
        retries: int = 3,
        backoff_seconds: float = 1.0,
        timeout_seconds: float = 10.0,
        max_retry_after: float = 300.0,
    ) -> None:
        self._session = session
        self._clock = clock
        self._retries = retries
        self._backoff = backoff_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._max_retry_after = max_retry_after

    @property
    def session(self) -> aiohttp.ClientSession:
        """The service's one session (websocket clients connect through it too)."""
        return self._session

    async def get_json(
        self,
        source: Source,
        url: str,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """GET ``url`` and decode its JSON body, under the rules in the module doc."""
        return await self._get(source, url, params, headers, _decode_json)

    async def get_text(
        self,
        source: Source,
        url: str,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """GET ``url`` and return its UTF-8 body (e.g. a CSV), under the same rules."""
        text: str = await self._get(source, url, params, headers, _decode_text)
        return text

    async def _get(
        self,
        source: Source,
        url: str,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str] | None,
        decode: Callable[[Source, bytes], Any],
    ) -> Any:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self._clock.sleep,
            reraise=True,
            before_sleep=lambda state: self._before_sleep(source, state),
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._once(source, url, params, headers, decode)
        except _Retryable as exc:
            source.breaker.failure()
            raise FeedError(f"{source.name}: {exc} (after {self._retries} retries)") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.wait is not None:
            return min(exc.wait, self._max_retry_after)
        base = self._backoff * 2.0 ** (state.attempt_number - 1)
        return float(base * (0.5 + 0.5 * random.random()))

    def _before_sleep(self, source: Source, state: RetryCallState) -> None:
        source.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.info("retrying request", extra={"source": source.name, "attempt": state.attempt_number, "error": str(exc)})

    async def _once(
        self,
        source: Source,
        url: str,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str] | None,
        decode: Callable[[Source, bytes], Any],
    ) -> Any:
        if not source.breaker.allow():
            raise CircuitOpen(source.name, source.breaker.retry_in())
        source.requests += 1
        try:
            async with self._session.get(url, params=params, headers=headers, timeout=self._timeout) as resp:
                self._record_limits(source, resp.headers)
                body = await resp.read()
                status = resp.status
                retry_after = _seconds(resp.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientError) as exc:
            source.count(type(exc).__name__)
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        if status == 200:
            data = decode(source, body)
            source.breaker.success()
            return data
        text = body.decode("utf-8", "replace")
        if status == 429:
            source.count("429")
            log.warning("rate limited", extra={"source": source.name, "retry_after_s": retry_after})
            raise _Retryable(f"HTTP 429: {text[:200]}", wait=retry_after if retry_after is not None else None)
        if status == 418:
            source.count("418")
            ban = retry_after if retry_after is not None else 120.0
            source.breaker.open_until(ban, "banned (HTTP 418)")
            raise SourceBanned(f"{source.name}: HTTP 418, banned for {ban:.0f} s: {text[:200]}")
        if status >= 500:
            source.count(str(status))
            raise _Retryable(f"HTTP {status}: {text[:200]}")
        source.count(str(status))
        raise HttpStatusError(source.name, status, text)

    @staticmethod
    def _record_limits(source: Source, headers: Mapping[str, str]) -> None:
        weight = headers.get("X-MBX-USED-WEIGHT-1M") or headers.get("X-MBX-USED-WEIGHT-1m")
        if weight is not None and weight.isdigit():
            source.used_weight = int(weight)
        remaining = headers.get("X-Ratelimit-Remaining")
        if remaining is not None and remaining.isdigit():
            source.ratelimit_remaining = int(remaining)


def _decode_json(source: Source, body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        source.count("bad_json")
        raise _Retryable(f"truncated or invalid JSON body ({len(body)} bytes)") from exc


def _decode_text(source: Source, body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        source.count("bad_text")
        raise _Retryable(f"body is not UTF-8 ({len(body)} bytes)") from exc


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


async def close_session(session: aiohttp.ClientSession) -> None:
    await session.close()
    await asyncio.sleep(0)
