"""FX reference rates: ECB rates from the Frankfurter API, cached in memory, never invented.

:class:`FxFeed` polls ``GET {url}/latest?from=BASE&to=QUOTE`` for each configured pair (one request
each, so an unknown quote cannot take the others down) every ``poll_seconds`` (sooner,
``retry_seconds``, after a poll with a failure) and keeps the last good rate per pair. After each poll it
publishes :class:`~pia.events.FxRateUpdated` on ``market.fx`` for a pair whose rate, reference date or
staleness changed.

- **Stale** when the last good fetch is older than ``stale_after_seconds``, or the ECB reference date
  is more than ``max_rate_age_days`` (4) calendar days old (a long weekend is normal). A stale rate is
  still published, with ``stale=True``, and a WARNING is logged (at most once per ``warn_every_seconds``
  while it stays stale); an INFO line says when it is fresh again.
- **No rate at all** (nothing good fetched since start): an ERROR "no USD/SEK rate available" (at most
  once per ``warn_every_seconds``) and no event. There is no hard-coded fallback rate, ever.
- Failures (HTTP, open circuit, malformed or empty answers, a date going backwards or in the future)
  are counted by reason per pair and logged once per burst; they never end the loop.

``ts_event`` of a rate is its reference date at 15:00 UTC (the ECB publishes around 16:00 CET: at or
after the publication all year); ``ts_recv`` is when pia fetched it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pia import topics
from pia.bus import Bus
from pia.clock import Clock
from pia.config import FxConfig, HttpConfig
from pia.errors import BadData, FeedError
from pia.events import FxRateUpdated
from pia.feeds.fear_greed import FailureLog, day_start_ns, failure_reason, make_source
from pia.feeds.http import HttpClient
from pia.intervals import HOUR, NS

log = logging.getLogger(__name__)

FX_SOURCE = "frankfurter"
ECB_PUBLISH_OFFSET_NS = 15 * HOUR  # 16:00 CET; the CEST publication (14:00 UTC) is earlier still


def parse_latest(payload: Any, base: str, quotes: tuple[str, ...]) -> tuple[date, dict[str, float]]:
    """Frankfurter ``/latest`` JSON -> (reference date, {quote: rate per 1 ``base``}) for the quotes it
    has valid rates for; BadData when the answer as a whole is unusable (no valid quote at all)."""
    if not isinstance(payload, dict):
        raise BadData("bad_shape", f"expected an object, got {type(payload).__name__}")
    if payload.get("base") != base:
        raise BadData("wrong_base", f"asked for {base}, got {payload.get('base')!r}")
    amount = payload.get("amount", 1.0)
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount) or amount <= 0:
        raise BadData("bad_amount", repr(amount))
    raw_date = payload.get("date")
    try:
        day = date.fromisoformat(raw_date) if isinstance(raw_date, str) and len(raw_date) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise BadData("bad_date", repr(raw_date))
    rates = payload.get("rates")
    if not isinstance(rates, dict) or not rates:
        raise BadData("empty", "no rates")
    out: dict[str, float] = {}
    for quote in quotes:
        rate = rates.get(quote)
        if isinstance(rate, int | float) and not isinstance(rate, bool) and math.isfinite(rate) and rate > 0:
            out[quote] = float(rate) / float(amount)
    if not out:
        raise BadData("missing_rate", f"none of {', '.join(quotes)} in {sorted(rates)[:10]}")
    return day, out


@dataclass(frozen=True, slots=True)
class _Cached:
    rate: float
    day: date
    fetched_ns: int
    fetched_mono: float


class FxFeed:
    name = "fx"

    def __init__(
        self,
        config: FxConfig,
        http: HttpClient,
        bus: Bus,
        clock: Clock,
        *,
        http_config: HttpConfig | None = None,
        max_rate_age_days: int = 4,
        warn_every_seconds: float = 3600.0,
        retry_seconds: float = 60.0,
    ) -> None:
        self._config = config
        self._http = http
        self._bus = bus
        self._clock = clock
        self._topic = topics.fx()
        self._base = config.base.upper()
        self._quotes = tuple(dict.fromkeys(q.upper() for q in config.quotes))
        self._max_age_days = max_rate_age_days
        self._warn_every = warn_every_seconds
        self._retry = min(retry_seconds, config.poll_seconds)
        self._source = make_source(FX_SOURCE, clock, http_config or HttpConfig())
        self._failures = {q: FailureLog(log, f"{FX_SOURCE} {self._base}/{q}") for q in self._quotes}
        self._cache: dict[str, _Cached] = {}
        self._published: dict[str, tuple[float, date, bool]] = {}
        self._alarmed_at: dict[str, float] = {}  # quote -> monotonic time of the last stale/missing log
        self.polls = 0
        self.published = 0

    async def run(self) -> None:
        """Poll until cancelled: every ``poll_seconds``, or ``retry_seconds`` after a failed poll."""
        if not self._config.enabled:
            log.info("fx feed disabled")
            return
        while True:
            await self.poll_once()
            failed = any(f.consecutive for f in self._failures.values()) or len(self._cache) < len(self._quotes)
            await self._clock.sleep(self._retry if failed else self._config.poll_seconds)

    async def poll_once(self) -> list[FxRateUpdated]:
        """Fetch once, update the cache, then publish each pair whose rate, date or staleness changed."""
        self.polls += 1
        out = []
        for quote in self._quotes:
            await self._fetch(quote)
            event = self._update(quote)
            if event is not None:
                out.append(event)
        return out

    async def _fetch(self, quote: str) -> None:
        """One request per pair, so a quote the API does not know cannot take the others down."""
        url = f"{self._config.url.rstrip('/')}/latest"
        failures = self._failures[quote]
        try:
            payload = await self._http.get_json(self._source, url, {"from": self._base, "to": quote})
            day, rates = parse_latest(payload, self._base, (quote,))
            today = datetime.fromtimestamp(self._clock.now_ns() / NS, UTC).date()
            if (day - today).days > 1:
                raise BadData("future_date", f"reference date {day} is after {today}")
            cached = self._cache.get(quote)
            if cached is not None and day < cached.day:
                raise BadData("out_of_order", f"reference date {day} is older than the cached {cached.day}")
        except FeedError as exc:
            failures.failure(failure_reason(exc), str(exc))
            return
        failures.success()
        self._cache[quote] = _Cached(rates[quote], day, self._clock.now_ns(), self._clock.monotonic())

    def _stale_reasons(self, cached: _Cached) -> list[str]:
        reasons = []
        age_s = self._clock.monotonic() - cached.fetched_mono
        if age_s > self._config.stale_after_seconds:
            reasons.append(f"last good fetch {age_s / 3600:.1f} h ago")
        today = datetime.fromtimestamp(self._clock.now_ns() / NS, UTC).date()
        days = (today - cached.day).days
        if days > self._max_age_days:
            reasons.append(f"ECB reference date {cached.day} is {days} days old")
        return reasons

    def _event(self, quote: str, cached: _Cached, stale: bool) -> FxRateUpdated:
        return FxRateUpdated(
            ts_event=day_start_ns(cached.day) + ECB_PUBLISH_OFFSET_NS,
            ts_recv=cached.fetched_ns,
            base=self._base,
            quote=quote,
            rate=cached.rate,
            rate_date=cached.day.isoformat(),
            stale=stale,
        )

    def _update(self, quote: str) -> FxRateUpdated | None:
        pair = f"{self._base}/{quote}"
        cached = self._cache.get(quote)
        if cached is None:
            if self._alarm_due(quote):
                log.error(
                    f"no {pair} rate available",
                    extra={"pair": pair, "last_error": self._failures[quote].last_error, "polls": self.polls},
                )
            return None
        reasons = self._stale_reasons(cached)
        stale = bool(reasons)
        if stale and self._alarm_due(quote):
            log.warning(
                f"{pair} rate is stale; consumers are told (stale=True), no fallback is used",
                extra={
                    "pair": pair,
                    "rate": cached.rate,
                    "rate_date": cached.day.isoformat(),
                    "why": "; ".join(reasons),
                    "last_error": self._failures[quote].last_error,
                },
            )
        elif not stale and quote in self._alarmed_at:
            del self._alarmed_at[quote]
            log.info(
                f"{pair} rate fresh", extra={"pair": pair, "rate": cached.rate, "rate_date": cached.day.isoformat()}
            )
        key = (cached.rate, cached.day, stale)
        if self._published.get(quote) == key:
            return None
        event = self._event(quote, cached, stale)
        self._published[quote] = key
        self.published += 1
        self._bus.publish_nowait(self._topic, event)
        return event

    def _alarm_due(self, quote: str) -> bool:
        now = self._clock.monotonic()
        last = self._alarmed_at.get(quote)
        if last is not None and now - last < self._warn_every:
            return False
        self._alarmed_at[quote] = now
        return True

    def latest(self, base: str, quote: str) -> FxRateUpdated | None:
        """The last good rate for ``base``/``quote``, with its staleness as of now; None if there is none."""
        if base.upper() != self._base:
            return None
        cached = self._cache.get(quote.upper())
        if cached is None:
            return None
        return self._event(quote.upper(), cached, bool(self._stale_reasons(cached)))

    def statistics(self) -> dict[str, Any]:
        pairs: dict[str, Any] = {}
        for quote in self._quotes:
            cached = self._cache.get(quote)
            pair: dict[str, Any] = {"rate": None, **self._failures[quote].statistics()}
            if cached is not None:
                pair.update(
                    rate=cached.rate,
                    rate_date=cached.day.isoformat(),
                    age_s=round(self._clock.monotonic() - cached.fetched_mono, 1),
                    stale=bool(self._stale_reasons(cached)),
                )
            pairs[f"{self._base}/{quote}"] = pair
        return {
            "polls": self.polls,
            "published": self.published,
            "pairs": pairs,
            "http": self._source.statistics(),
        }
